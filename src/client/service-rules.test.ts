import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePortShorthand, parsePortShorthands, PortSpecError, serviceRulesViolation, type Handler, type ServiceSpec } from './service-rules.js';

const svc = (port: number, handlers: Handler[], destination_port?: number): ServiceSpec => ({
  port,
  handlers,
  ...(destination_port !== undefined ? { destination_port } : {}),
});

test('valid combinations pass', () => {
  assert.equal(serviceRulesViolation([svc(443, ['http', 'tls'], 8080), svc(80, ['http', 'redirect'], 443)]), undefined);
  assert.equal(serviceRulesViolation([svc(80, ['http'], 8080)]), undefined);
  assert.equal(serviceRulesViolation([svc(5432, ['tls'])]), undefined);
  assert.equal(serviceRulesViolation([svc(8443, ['tls'], 8080), svc(443, ['tls', 'http'])]), undefined);
});

test('every invalid handler combination on every port class is rejected with a message naming the rule', () => {
  const subsets: Handler[][] = [[], ['tls'], ['http'], ['redirect'], ['tls', 'http'], ['tls', 'redirect'], ['http', 'redirect'], ['tls', 'http', 'redirect']];
  const valid = (port: number, h: Set<Handler>, dest: number): boolean => {
    if (h.has('redirect')) return port === 80 && dest === 443 && h.has('http') && !h.has('tls');
    if (port === 80) return h.has('http') && !h.has('tls');
    if (port === 443) return h.has('http') && h.has('tls');
    return h.has('tls') && !h.has('http');
  };
  let rejected = 0;
  for (const port of [80, 443, 8080, 1]) {
    for (const dest of [443, 8080]) {
      for (const handlers of subsets) {
        const v = serviceRulesViolation([svc(port, handlers, dest)]);
        if (valid(port, new Set(handlers), dest)) assert.equal(v, undefined, `${port}:${dest}/${handlers.join('+')}`);
        else {
          rejected++;
          assert.ok(v, `${port}:${dest}/${handlers.join('+')} must be rejected`);
          assert.match(v, new RegExp(`(port ${port}|${port}:${dest})`));
          assert.match(v, /must|only|cannot|needs/);
        }
      }
    }
  }
  assert.ok(rejected > 40);
});

test('a public port twice, duplicate handlers, an empty list and out-of-range ports are rejected', () => {
  assert.match(serviceRulesViolation([svc(443, ['http', 'tls']), svc(443, ['http', 'tls'])])!, /listed twice/);
  assert.match(serviceRulesViolation([svc(443, ['http', 'tls', 'tls'])])!, /handler is listed twice/);
  assert.match(serviceRulesViolation([])!, /at least one service/);
  assert.match(serviceRulesViolation([svc(70000, ['tls'])])!, /not a TCP port/);
  assert.match(serviceRulesViolation([svc(8443, ['tls'], 0)])!, /destination_port 0/);
});

test('-p 443:8080 is 443:8080/http+tls plus 80:443/http+redirect', () => {
  assert.deepEqual(parsePortShorthand('443:8080'), [
    { port: 443, destination_port: 8080, handlers: ['tls', 'http'] },
    { port: 80, destination_port: 443, handlers: ['http', 'redirect'] },
  ]);
  assert.deepEqual(parsePortShorthand('443:8080/tls+http'), [{ port: 443, destination_port: 8080, handlers: ['tls', 'http'] }]);
  assert.deepEqual(parsePortShorthand('8443:8080'), [{ port: 8443, destination_port: 8080, handlers: ['tls'] }]);
  assert.deepEqual(parsePortShorthand('80:8080'), [{ port: 80, destination_port: 8080, handlers: ['http'] }]);
  assert.deepEqual(parsePortShorthand('5432'), [{ port: 5432, destination_port: 5432, handlers: ['tls'] }]);
  // An explicit 80 wins over the one implied by 443.
  assert.deepEqual(parsePortShorthands(['443:8080', '80:8081']), [
    { port: 443, destination_port: 8080, handlers: ['tls', 'http'] },
    { port: 80, destination_port: 8081, handlers: ['http'] },
  ]);
});

test('bad -p values fail with PortSpecError naming the value', () => {
  for (const bad of ['', 'x', '443:', ':8080', '443:8080/', '443:8080/gzip', '0:80', '443:99999', '8080:80/http', '443:8080/tls', '80:8080/tls+http', '443:1;rm']) {
    assert.throws(
      () => parsePortShorthand(bad),
      (e: unknown) => e instanceof PortSpecError && e.message.startsWith(`${bad}:`),
      bad,
    );
  }
  assert.throws(() => parsePortShorthands(['443:8080', '443:9090']), /port 443 is given twice/);
});
