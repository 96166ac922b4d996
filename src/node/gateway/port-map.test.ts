import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePortMap, PortMapError } from './port-map.js';

test('--port-map maps public ports to host addresses; unmapped ports use the default host', () => {
  const at = parsePortMap('443=127.0.0.1:8443, 80=127.0.0.1:8080,5432=[::1]:15432');
  assert.deepEqual(at(443), { host: '127.0.0.1', port: 8443 });
  assert.deepEqual(at(80), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(at(5432), { host: '::1', port: 15432 });
  assert.deepEqual(at(8443), { host: '0.0.0.0', port: 8443 });
});

test('--port-map rejects malformed entries with the entry in the message', () => {
  for (const bad of ['443', '443=8443', '443=127.0.0.1', '0=127.0.0.1:1', '443=127.0.0.1:70000', '443=[zz]:1', '443=1.2.3.4:1,443=1.2.3.4:2', 'x=1.2.3.4:5']) {
    assert.throws(() => parsePortMap(bad), PortMapError, bad);
  }
});
