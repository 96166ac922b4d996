// Property tests over the parsers that read untrusted text: digests (src/oci/digest.ts), upload
// Content-Range and blob Range (src/registry/http.ts), token scopes (src/auth/scope.ts) and
// Kraftfiles (src/builder/kraftfile.ts). For each: on arbitrary input it throws nothing but its own
// typed error, and it accepts every well-formed generated input with the meaning it was built with.
// Fixed seeds and bounded runs keep the suite deterministic and fast.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { AuthInputError, formatScope, parseResourceScope, parseScopes, REPOSITORY_ACTIONS, type RepositoryAction } from '../../src/auth/index.js';
import { KraftfileError, parseKraftfile } from '../../src/builder/kraftfile.js';
import { DigestError, parseDigest } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/registry/errors.js';
import { parseBlobRange, parseUploadContentRange } from '../../src/registry/http.js';

const RUNS = { seed: 20261128, numRuns: 400 };
const FEWER = { seed: 20261128, numRuns: 150 };

/** Runs `parse` and answers its result, or `undefined` when it threw an error `isTyped` accepts; anything else fails. */
function typedOnly<T>(parse: () => T, isTyped: (e: unknown) => boolean, input: unknown): T | undefined {
  try {
    return parse();
  } catch (e) {
    assert.ok(isTyped(e), `unexpected ${e instanceof Error ? e.name : typeof e} for ${JSON.stringify(input)?.slice(0, 200)}: ${String(e)}`);
    return undefined;
  }
}

/** Arbitrary text, biased towards the parser's own alphabet so near-misses are common. */
function textNear(alphabet: string, maxLength = 150): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: fc.constantFrom(...alphabet.split('')), maxLength }),
  );
}

const lowerHex = (length: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: length, maxLength: length });

describe('property: parseDigest', () => {
  it('throws only DigestError on arbitrary input', () => {
    fc.assert(
      fc.property(textNear('sha256512:abcdefABCDEF0123456789./-_+=%'), (text) => {
        const d = typedOnly(() => parseDigest(text), (e) => e instanceof DigestError, text);
        // Whatever it accepts is canonical: safe to put in a path.
        if (d) assert.match(d.text, /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/);
      }),
      RUNS,
    );
  });

  it('accepts every canonical sha256 and sha512 digest', () => {
    const digest = fc.oneof(
      lowerHex(64).map((hex) => ({ algorithm: 'sha256' as const, hex })),
      lowerHex(128).map((hex) => ({ algorithm: 'sha512' as const, hex })),
    );
    fc.assert(
      fc.property(digest, ({ algorithm, hex }) => {
        const d = parseDigest(`${algorithm}:${hex}`);
        assert.deepEqual({ algorithm: d.algorithm, hex: d.hex, text: d.text }, { algorithm, hex, text: `${algorithm}:${hex}` });
      }),
      RUNS,
    );
  });

  it('refuses one-character mutations of a valid digest (uppercase, wrong length, path characters)', () => {
    fc.assert(
      fc.property(lowerHex(64), fc.nat(63), fc.constantFrom('A', 'F', '.', '/', 'g', ':', '%', ' '), (hex, at, ch) => {
        const bad = `sha256:${hex.slice(0, at)}${ch}${hex.slice(at + 1)}`;
        assert.throws(() => parseDigest(bad), DigestError);
        assert.throws(() => parseDigest(`sha256:${hex}${ch === ' ' ? '0' : ch}`), DigestError);
      }),
      FEWER,
    );
  });
});

describe('property: upload Content-Range and blob Range', () => {
  it('parseUploadContentRange throws only RegistryError RANGE_INVALID on arbitrary input', () => {
    fc.assert(
      fc.property(textNear('bytes =-/*0123456789 '), (text) => {
        const r = typedOnly(() => parseUploadContentRange(text), (e) => e instanceof RegistryError && e.code === 'RANGE_INVALID' && e.status === 416, text);
        if (r) assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && r.start <= r.end);
      }),
      RUNS,
    );
  });

  it('parseUploadContentRange accepts every well-formed range with its bounds', () => {
    const bound = fc.integer({ min: 0, max: 999_999_999_999_999 });
    fc.assert(
      fc.property(bound, bound, fc.constantFrom('', 'bytes ', 'bytes='), fc.constantFrom('', '/*', '/1234'), (a, b, prefix, suffix) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        assert.deepEqual(parseUploadContentRange(`${prefix}${start}-${end}${suffix}`), { start, end });
      }),
      RUNS,
    );
  });

  it('parseBlobRange never throws, and what it answers lies inside the blob', () => {
    fc.assert(
      fc.property(textNear('bytes=-,0123456789 '), fc.nat(1_000_000), (text, size) => {
        const r = parseBlobRange(text, size);
        if (r !== undefined && r !== 'unsatisfiable') assert.ok(r.start >= 0 && r.start <= r.end && r.end < size, `${text} of ${size}`);
      }),
      RUNS,
    );
  });
});

// A repository name by the auth grammar: lowercase components joined by separators, then by '/'.
const component = fc
  .array(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split('')), minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 })
  .chain((parts) => fc.array(fc.constantFrom('.', '_', '__', '-', '--'), { minLength: parts.length - 1, maxLength: parts.length - 1 }).map((seps) => parts.reduce((acc, p, i) => (i === 0 ? p : `${acc}${seps[i - 1]!}${p}`), '')));
const repositoryName = fc.array(component, { minLength: 1, maxLength: 4 }).map((cs) => cs.join('/'));
const actionList = fc.subarray([...REPOSITORY_ACTIONS, '*'] as const, { minLength: 1 });

describe('property: token scopes', () => {
  it('parseScopes throws only AuthInputError(scope) on arbitrary input', () => {
    fc.assert(
      fc.property(fc.array(textNear('repository:registry:catalog:pull,push,delete,*/._-ABC ()', 120), { maxLength: 4 }), (values) => {
        const scopes = typedOnly(() => parseScopes(values), (e) => e instanceof AuthInputError && e.what === 'scope', values);
        for (const s of scopes ?? []) assert.equal(parseResourceScope(formatScope(s)).name, s.name, 'what it accepts, it can print and read back');
      }),
      RUNS,
    );
  });

  it('accepts every well-formed repository scope, with actions normalised', () => {
    fc.assert(
      fc.property(repositoryName, actionList, (name, actions) => {
        const s = parseResourceScope(`repository:${name}:${actions.join(',')}`);
        const want: RepositoryAction[] = actions.includes('*') ? [...REPOSITORY_ACTIONS] : REPOSITORY_ACTIONS.filter((a) => actions.includes(a));
        assert.deepEqual({ ...s }, { type: 'repository', name, actions: want });
        assert.deepEqual(parseScopes([formatScope(s)]), [s]);
      }),
      RUNS,
    );
  });
});

// A well-formed Kraftfile built as data and written by a YAML library (so quoting is always right).
const envName = fc
  .tuple(fc.constantFrom(...'ABCXYZ_abc'.split('')), fc.string({ unit: fc.constantFrom(...'ABC_xyz019'.split('')), maxLength: 10 }))
  .map(([h, t]) => h + t);
const safeText = fc.string({ maxLength: 30 }).filter((s) => !s.includes('\u0000'));
const kraftfileModel = fc.record({
  spec: fc.constantFrom('v0.5', 'v0.6', 'v0.7'),
  name: fc.string({ unit: fc.constantFrom(...'abcdefghij-0123'.split('')), minLength: 1, maxLength: 20 }),
  runtime: fc.constantFrom('base:latest', 'base-compat:latest', 'nginx:1.25', 'unikraft.org/python:3.12'),
  cmd: fc.array(safeText.filter((s) => s.length > 0), { minLength: 1, maxLength: 5 }),
  env: fc.dictionary(envName, safeText, { maxKeys: 6 }),
  labels: fc.dictionary(
    fc.oneof(fc.string({ unit: fc.constantFrom(...'abcdefg.-_/'.split('')), minLength: 1, maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString')),
    safeText,
    { maxKeys: 4 },
  ),
});

describe('property: parseKraftfile', () => {
  it('throws only KraftfileError on arbitrary text', () => {
    const yamlish = fc
      .array(
        fc.oneof(
          fc.constantFrom('spec: v0.6', 'name: x', 'cmd: [a, b]', 'env:', '  A: 1', '- x', 'rootfs: ./Dockerfile', 'targets:', '  - kraftcloud/x86_64', '&a [*a]', 'labels: {a: b}', '{', ']', '"', "'", ': :', '\t'),
          fc.string({ maxLength: 30 }),
        ),
        { maxLength: 12 },
      )
      .map((lines) => lines.join('\n'));
    fc.assert(
      fc.property(fc.oneof(yamlish, fc.string({ maxLength: 300 })), (text) => {
        typedOnly(() => parseKraftfile(text, 'Kraftfile'), (e) => e instanceof KraftfileError, text);
      }),
      FEWER,
    );
  });

  it('accepts every well-formed generated Kraftfile with the values it was written with', () => {
    fc.assert(
      fc.property(kraftfileModel, (m) => {
        const text = stringify(m);
        const k = parseKraftfile(text, 'Kraftfile');
        assert.equal(k.spec, m.spec);
        assert.equal(k.name, m.name);
        assert.equal(k.runtime, m.runtime);
        assert.deepEqual(k.cmd, m.cmd);
        assert.deepEqual(k.env, Object.keys(m.env).sort().map((key) => `${key}=${m.env[key]!}`));
        // fast-check's dictionaries have no prototype, so `__proto__` is an ordinary key there: compare entries.
        assert.deepEqual(Object.entries(k.labels).sort(), Object.entries(m.labels).sort());
      }),
      FEWER,
    );
  });
});
