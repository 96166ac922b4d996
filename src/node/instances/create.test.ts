import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageBasename, mergeEnv, planInstances, scaleToZeroWithLabels, serviceRulesViolation, createRequestSchema, DEFAULT_INSTANCE_LIMITS } from './create.js';

test('image basenames are DNS-safe', () => {
  assert.equal(imageBasename('alice/httpserver-python312:latest'), 'httpserver-python312');
  assert.equal(imageBasename('index.unikraft.io/official/nginx@sha256:abc'), 'nginx');
  assert.equal(imageBasename('localhost:5000/Foo_Bar'), 'foo-bar');
  assert.equal(imageBasename('x/' + 'a'.repeat(100)).length, 57);
});

test('env merges over the image Env; explicit scale_to_zero fields beat labels', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=x=y', 'bad'], { A: '2' }), { A: '2', B: 'x=y' });
  const labels = { Labels: { 'cloud.unikraft.v1.instances/scale_to_zero.policy': 'idle', 'cloud.unikraft.v1.instances/scale_to_zero.cooldown_time_ms': '2500' } };
  assert.deepEqual(scaleToZeroWithLabels(undefined, labels), { policy: 'idle', stateful: false, cooldown_time_ms: 2500 });
  assert.deepEqual(scaleToZeroWithLabels({ policy: 'on', cooldown_time_ms: 10 }, labels), { policy: 'on', stateful: false, cooldown_time_ms: 10 });
  assert.equal(scaleToZeroWithLabels(undefined, {}), null);
});

test('service handler rules (§6)', () => {
  assert.equal(serviceRulesViolation([{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }, { port: 80, destination_port: 443, handlers: ['http', 'redirect'] }]), undefined);
  assert.match(String(serviceRulesViolation([{ port: 443, handlers: ['http'] }])), /443 must have http and tls/);
  assert.match(String(serviceRulesViolation([{ port: 8443, handlers: ['tls', 'http'] }])), /tls and not http/);
  assert.match(String(serviceRulesViolation([{ port: 81, destination_port: 443, handlers: ['redirect'] }])), /redirect/);
  assert.match(String(serviceRulesViolation([{ port: 80, handlers: ['http'] }, { port: 80, handlers: ['http'] }])), /twice/);
});

test('generated names are unique within one plan and avoid taken names', () => {
  const req = createRequestSchema(DEFAULT_INSTANCE_LIMITS).parse({ image: 'a/web', replicas: 50 });
  const taken = new Set<string>();
  const records = planInstances(req, {
    owner: 'o', now: 0, pullPolicy: 'if_not_present',
    image: { digestRef: `a/web@sha256:${'0'.repeat(64)}`, config: {}, rootfs: { kind: 'x' } },
    nameTaken: (n) => taken.has(n),
  });
  assert.equal(records.length, 51);
  assert.equal(new Set(records.map((r) => r.name)).size, 51);
  for (const r of records) assert.match(r.name, /^web-[a-z0-9]{5}$/);
  assert.throws(
    () => planInstances(req, { owner: 'o', now: 0, pullPolicy: 'never', image: { digestRef: 'a/web', config: {}, rootfs: { kind: 'x' } }, nameTaken: () => true }),
    /could not find a free instance name/,
  );
});
