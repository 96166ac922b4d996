import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges } from './auth.js';

describe('parseChallenges', () => {
  it('parses a Bearer challenge whose scope holds commas', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
    assert.equal(c?.scheme, 'bearer');
    assert.deepEqual(c?.params, { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' });
  });

  it('parses several challenges in one header, unquoted values and escapes', () => {
    const cs = parseChallenges('Basic realm="x \\"y\\"", Bearer realm=https://r/t, error=insufficient_scope');
    assert.equal(cs.length, 2);
    assert.deepEqual(cs[0], { scheme: 'basic', params: { realm: 'x "y"' } });
    assert.deepEqual(cs[1], { scheme: 'bearer', params: { realm: 'https://r/t', error: 'insufficient_scope' } });
  });

  it('survives garbage without looping', () => {
    assert.deepEqual(parseChallenges(''), []);
    assert.doesNotThrow(() => parseChallenges('=,,=="" ;;; \u0000 Bearer'));
  });
});
