import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateServiceName, GENERATED_SERVICE_NAME, isHostname } from './names.js';

test('generated names are <adjective>-<noun>-<8 chars> and valid hostnames', () => {
  const names = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const n = generateServiceName();
    assert.match(n, GENERATED_SERVICE_NAME);
    assert.ok(isHostname(`${n}.local.localhost`));
    names.add(n);
  }
  assert.ok(names.size > 195);
});
