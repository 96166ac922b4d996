import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_MAX_MANIFEST_BYTES,
  ManifestError,
  ManifestTooLargeError,
  parseImageConfig,
  parseManifest,
} from './manifest.js';
import { MediaType } from './mediatypes.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const enc = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const config = { mediaType: MediaType.OciConfig, digest: D('c'), size: 10 };
const layer = { mediaType: MediaType.OciLayerTar, digest: D('1'), size: 20, annotations: { a: 'b' } };
const image = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] };

test('parses an image manifest and lists its blob references', () => {
  const p = parseManifest(enc(image), { contentType: MediaType.OciManifest });
  assert.equal(p.kind, 'manifest');
  assert.equal(p.mediaType, MediaType.OciManifest);
  assert.deepEqual(p.blobs.map((b) => b.digest), [D('c'), D('1')]);
  assert.deepEqual(p.manifests, []);
  assert.equal(p.artifactType, MediaType.OciConfig, 'artifactType falls back to the config media type');
});

test('parses an index with subject, artifactType and annotations', () => {
  const idx = {
    schemaVersion: 2,
    artifactType: 'application/x-thing',
    manifests: [{ mediaType: MediaType.OciManifest, digest: D('2'), size: 5, platform: { architecture: 'x86_64', os: 'kraftcloud' } }],
    subject: { mediaType: MediaType.OciManifest, digest: D('3'), size: 7 },
    annotations: { 'org.opencontainers.image.created': 'now' },
  };
  const p = parseManifest(enc(idx), { contentType: `${MediaType.OciIndex}; charset=utf-8` });
  assert.equal(p.kind, 'index');
  assert.equal(p.mediaType, MediaType.OciIndex);
  assert.deepEqual(p.manifests.map((m) => m.digest), [D('2')]);
  assert.equal(p.subject?.digest, D('3'));
  assert.equal(p.artifactType, 'application/x-thing');
  assert.deepEqual(p.annotations, idx.annotations);
});

test('ambiguous and mislabelled documents are refused (CVE-2021-41190)', () => {
  const cases: [string, unknown, string | undefined][] = [
    ['layers and manifests', { ...image, manifests: [] }, MediaType.OciManifest],
    ['index with config', { schemaVersion: 2, mediaType: MediaType.OciIndex, config, manifests: [] }, MediaType.OciIndex],
    ['mediaType differs from Content-Type', image, MediaType.OciIndex],
    ['manifest typed as index by header without field', { schemaVersion: 2, config, layers: [] }, MediaType.OciIndex],
    ['index without manifests', { schemaVersion: 2, mediaType: MediaType.OciIndex }, undefined],
  ];
  for (const [name, doc, ct] of cases) {
    assert.throws(() => parseManifest(enc(doc), { contentType: ct }), ManifestError, name);
  }
});

test('malformed documents and descriptors are refused', () => {
  const bad: [string, unknown][] = [
    ['schemaVersion 1', { ...image, schemaVersion: 1 }],
    ['not an object', [1, 2]],
    ['traversal digest', { ...image, layers: [{ ...layer, digest: 'sha256:../../etc/passwd' }] }],
    ['uppercase digest', { ...image, config: { ...config, digest: `sha256:${'A'.repeat(64)}` } }],
    ['negative size', { ...image, layers: [{ ...layer, size: -1 }] }],
    ['fractional size', { ...image, layers: [{ ...layer, size: 1.5 }] }],
    ['size as string', { ...image, layers: [{ ...layer, size: '20' }] }],
    ['mediaType not a string', { ...image, layers: [{ ...layer, mediaType: 5 }] }],
    ['annotations not strings', { ...image, annotations: { a: 1 } }],
    ['layers not an array', { ...image, layers: {} }],
    ['unknown media type', { ...image, mediaType: 'application/json' }],
    ['mediaType not a string', { ...image, mediaType: 7 }],
  ];
  for (const [name, doc] of bad) assert.throws(() => parseManifest(enc(doc)), ManifestError, name);
  assert.throws(() => parseManifest(Buffer.from('{not json')), ManifestError);
});

test('the size cap is enforced before parsing, and 4 MiB is accepted', () => {
  assert.throws(() => parseManifest(Buffer.alloc(11), { maxBytes: 10 }), ManifestTooLargeError);
  const pad = 'x'.repeat(DEFAULT_MAX_MANIFEST_BYTES - 1000);
  const big = enc({ ...image, annotations: { pad } });
  assert.ok(big.length <= DEFAULT_MAX_MANIFEST_BYTES);
  assert.equal(parseManifest(big).kind, 'manifest');
});

test('image configs are checked for os, architecture and diff_ids', () => {
  const cfg = { architecture: 'x86_64', os: 'kraftcloud', rootfs: { type: 'layers', diff_ids: [D('1')] }, config: { Cmd: ['/app'] } };
  assert.deepEqual(parseImageConfig(enc(cfg)).config?.Cmd, ['/app']);
  assert.throws(() => parseImageConfig(enc({ ...cfg, rootfs: { type: 'layers', diff_ids: ['nope'] } })), ManifestError);
  assert.throws(() => parseImageConfig(enc({ os: 'linux' })), ManifestError);
});
