import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayListenError } from '../node/index.js';
import { UserError } from '../util/index.js';
import { listenFailure } from './listen-errors.js';

test('a busy gateway port or API port becomes one line naming the address and the flag; other errors pass through', () => {
  const gw = listenFailure(new GatewayListenError('cannot open public port 80 (127.0.0.1:8080): EADDRINUSE'), { api: '--listen', gateway: 'map it elsewhere with --port-map' });
  assert.ok(gw instanceof UserError);
  assert.equal(gw.message, 'gateway: cannot open public port 80 (127.0.0.1:8080): EADDRINUSE: another program holds the port; map it elsewhere with --port-map');
  const api = listenFailure(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:7000'), { code: 'EADDRINUSE' }), { api: '--listen' });
  assert.ok(api instanceof UserError);
  assert.equal(api.message, 'EADDRINUSE: address already in use 127.0.0.1:7000: another program holds the port; pick another with --listen');
  const other = new Error('disk on fire');
  assert.equal(listenFailure(other, { api: '--listen' }), other);
});
