import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ImageReferenceError,
  familiarReference,
  formatReference,
  parseReference,
  parseUnikraftReference,
  referenceName,
  tryParseReference,
} from './reference.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

test('normalises references the way Docker does', () => {
  const cases: Array<[string, string]> = [
    ['app', 'docker.io/library/app:latest'],
    ['app:1.0', 'docker.io/library/app:1.0'],
    ['alice/app:tag', 'docker.io/alice/app:tag'],
    ['alice/team/app', 'docker.io/alice/team/app:latest'],
    [`app@${DIGEST}`, `docker.io/library/app@${DIGEST}`],
    [`app:v2@${DIGEST}`, `docker.io/library/app:v2@${DIGEST}`],
    ['host:5000/ns/app', 'host:5000/ns/app:latest'],
    ['host:5000/ns/app:t', 'host:5000/ns/app:t'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['registry.example.com/app', 'registry.example.com/app:latest'],
    ['index.docker.io/app', 'docker.io/library/app:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['Registry/app', 'Registry/app:latest'],
    ['[::1]:5000/app:x', '[::1]:5000/app:x'],
    ['a__b/c-d.e---f/g_h', 'docker.io/a__b/c-d.e---f/g_h:latest'],
  ];
  for (const [input, want] of cases) {
    assert.equal(formatReference(parseReference(input)), want, input);
  }
});

test('splits a reference into its parts', () => {
  const ref = parseReference(`host:5000/ns/app:v1@${DIGEST}`);
  assert.equal(ref.domain, 'host:5000');
  assert.equal(ref.path, 'ns/app');
  assert.equal(ref.tag, 'v1');
  assert.equal(ref.digest?.text, DIGEST);
  assert.equal(referenceName(ref), 'host:5000/ns/app');
  const digestOnly = parseReference(`app@${DIGEST}`);
  assert.equal(digestOnly.tag, undefined, 'no default tag when a digest pins the image');
  assert.equal(parseReference('app', { defaultTag: undefined }).tag, undefined);
});

test('refuses malformed references with a clear error', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['App', /lowercase/],
    ['alice/App', /lowercase/],
    ['app:', /invalid tag/],
    ['app:-x', /invalid tag/],
    [`app:${'t'.repeat(129)}`, /invalid tag/],
    ['app@sha256:abc', /invalid sha256 digest/],
    [`app@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    ['app@', /invalid digest/],
    ['a b', /whitespace/],
    ['/app', /invalid repository name/],
    ['app/', /invalid repository name/],
    ['a//b', /invalid repository name/],
    ['a..b', /invalid repository name/],
    ['a_-b', /invalid repository name/],
    ['-host.com/app', /invalid registry domain/],
    ['host.com:99999/app', /invalid registry domain/],
    ['host.com/', /invalid repository name/],
    [':tag', /missing repository name/],
    [`${'a'.repeat(250)}/b/c`, /longer than 255/],
    ['x'.repeat(2000), /longer than 1024/],
    ['../../etc/passwd', /invalid registry domain/],
    ['etc/../passwd', /invalid repository name/],
  ];
  for (const [input, pattern] of bad) {
    assert.throws(() => parseReference(input), (err: unknown) => {
      assert.ok(err instanceof ImageReferenceError, `${input}: ${String(err)}`);
      assert.match(err.message, pattern, input);
      return true;
    });
  }
  assert.equal(tryParseReference('Bad Name'), undefined);
});

test('maps official short names onto the configured central registry', () => {
  const central = 'registry.ukc.test:5000';
  assert.equal(formatReference(parseUnikraftReference('base-compat:latest', central)), `${central}/official/base-compat:latest`);
  assert.equal(formatReference(parseUnikraftReference('base-compat', central)), `${central}/official/base-compat:latest`);
  assert.equal(formatReference(parseUnikraftReference('alice/httpserver', central)), `${central}/alice/httpserver:latest`);
  assert.equal(formatReference(parseUnikraftReference('other.io/x/y:1', central)), 'other.io/x/y:1');
  assert.equal(formatReference(parseUnikraftReference('localhost/app', central)), 'localhost/app:latest');
  assert.throws(() => parseUnikraftReference('app', 'bad host/'), ImageReferenceError);
  const ref = parseUnikraftReference('base-compat:latest', central);
  assert.equal(familiarReference(ref, { defaultDomain: central, officialNamespace: 'official' }), 'base-compat:latest');
});

test('familiar form drops default domain and official namespace', () => {
  assert.equal(familiarReference(parseReference('app')), 'app:latest');
  assert.equal(familiarReference(parseReference('alice/app:t')), 'alice/app:t');
  assert.equal(familiarReference(parseReference('docker.io/library/a/b')), 'library/a/b:latest');
  assert.equal(familiarReference(parseReference('localhost/app')), 'localhost/app:latest');
});

test('formatReference round-trips through parseReference (property)', () => {
  const comp = fc.stringMatching(/^[a-z0-9]{1,5}(?:(?:\.|_|__|-{1,2})[a-z0-9]{1,5}){0,2}$/);
  // Without a domain the first component must not look like one (no '.'), as in Docker.
  const first = fc.stringMatching(/^[a-z0-9]{1,5}(?:(?:_|__|-{1,2})[a-z0-9]{1,5}){0,2}$/);
  const domain = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom('localhost', 'localhost:5000', 'reg.example.com', 'r.io:443', '10.0.0.1:5000'),
  );
  const tag = fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined });
  const dig = fc.option(fc.stringMatching(/^[a-f0-9]{64}$/), { nil: undefined });
  fc.assert(
    fc.property(domain, first, fc.array(comp, { maxLength: 2 }), tag, dig, (d, head, parts, t, h) => {
      let text = (d ? `${d}/` : '') + [head, ...parts].join('/');
      if (t !== undefined) text += `:${t}`;
      if (h !== undefined) text += `@sha256:${h}`;
      const ref = parseReference(text);
      const again = parseReference(formatReference(ref));
      assert.deepEqual(again, ref);
      assert.equal(formatReference(again), formatReference(ref));
    }),
    { numRuns: 300 },
  );
});
