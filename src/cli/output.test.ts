import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import type { Instance } from '../client/platform.js';
import { formatAge, formatBytes, OUTPUT_FORMATS, parseOutputFormat, render } from './output.js';
import { centralImageRows, imagesView, instancesView, localImageRows } from './views.js';
import { Snapshots } from './snapshot.test-support.js';

const snap = new Snapshots('output');
const NOW = Date.parse('2025-01-01T00:10:00Z');

const instances: Instance[] = [
  {
    status: 'success',
    uuid: '0b6c2d3e-1111-4222-8333-444455556666',
    name: 'httpserver-ma2i9',
    state: 'running',
    image: 'alice/httpserver@sha256:' + 'a'.repeat(64),
    memory_mb: 512,
    vcpus: 1,
    args: ['/usr/bin/python3', '/src/server.py'],
    private_ip: '10.0.0.2',
    private_fqdn: 'httpserver-ma2i9.internal',
    created_at: '2025-01-01T00:05:00.000Z',
    started_at: '2025-01-01T00:05:00.015Z',
    boot_time_us: 15230,
    service_group: { name: 'young-night-5fpf0jj8', domains: [{ fqdn: 'young-night-5fpf0jj8.dev.localhost' }] },
  },
  {
    status: 'success',
    uuid: '1c7d3e4f-2222-4333-8444-555566667777',
    name: 'httpserver-x81kq',
    state: 'stopped',
    image: 'alice/httpserver@sha256:' + 'a'.repeat(64),
    memory_mb: 128,
    vcpus: 1,
    created_at: '2025-01-01T00:09:30.000Z',
  },
];

test('instances render in every format (snapshots)', () => {
  const view = instancesView(instances, 'dev', NOW);
  for (const format of OUTPUT_FORMATS) snap.match(`instances.${format}`, render(view, format));
});

test('json and yaml carry the same records as kv, without empty fields', () => {
  const view = instancesView(instances, 'dev', NOW);
  const fromJson = JSON.parse(render(view, 'json')) as Record<string, unknown>[];
  const fromYaml = parseYaml(render(view, 'yaml')) as Record<string, unknown>[];
  assert.deepEqual(fromYaml, fromJson);
  assert.equal(fromJson.length, 2);
  assert.equal(fromJson[1]!.service, undefined);
  assert.deepEqual(fromJson[0]!.resources, { memory: '512 MiB', vcpus: 1 });
});

test('images from the central list and from a node render as REF DIGEST (snapshots)', () => {
  const rows = [
    ...centralImageRows([{ name: 'alice/index.ukc.test/httpserver', tags: [{ name: 'latest', digest: 'sha256:' + 'b'.repeat(64) }] }]),
    ...localImageRows(
      [{ url: 'index.node1.ukc.test/alice/httpserver@sha256:' + 'b'.repeat(64), tags: ['alice/httpserver:latest'], size_in_bytes: 3 * 1024 * 1024 + 512 * 1024 }],
      'dev',
    ),
  ];
  assert.equal(rows[0]!.ref, 'index.ukc.test/alice/httpserver:latest');
  assert.equal(rows[1]!.ref, 'index.node1.ukc.test/alice/httpserver:latest');
  const view = imagesView(rows);
  for (const format of OUTPUT_FORMATS) snap.match(`images.${format}`, render(view, format));
});

test('empty lists say so in kv and table, and print nothing in quiet', () => {
  const view = instancesView([], 'dev', NOW);
  assert.equal(render(view, 'kv'), 'no instances\n');
  assert.equal(render(view, 'table'), 'no instances\n');
  assert.equal(render(view, 'quiet'), '');
  assert.equal(render(view, 'json'), '[]\n');
  assert.equal(render(view, 'yaml'), '[]\n');
});

test('parseOutputFormat refuses unknown formats with a usage error', () => {
  assert.equal(parseOutputFormat('table'), 'table');
  assert.throws(() => parseOutputFormat('xml'), { name: 'UsageError', message: /unknown output format "xml"/ });
});

test('formatBytes and formatAge', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(256 * 1024 * 1024), '256 MiB');
  assert.equal(formatAge('2025-01-01T00:09:55Z', NOW), '5s ago');
  assert.equal(formatAge('2024-12-30T00:10:00Z', NOW), '2d ago');
  assert.equal(formatAge(undefined, NOW), '');
});
