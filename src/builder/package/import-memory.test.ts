// Fault 6 of issue 13: `unikraft images import` of an archive with very many entries streams.
// It peaked at 487 MiB RSS for 200,000 empty entries, most of it the removal of the temporary
// tree by fs.rm({ recursive }) (one pending removal per entry) and the rest the tree walk
// holding every entry. Measured in a child process: RSS growth stays bounded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeTarHeader } from '../../oci/index.js';

/** One ustar header for an empty regular file (oci's deterministic writer). */
function tarHeader(name: string): Buffer {
  return encodeTarHeader({ type: 'file', name, size: 0, source: new Uint8Array(0), mode: 0o644 });
}

const ENTRIES = 40_000;

test(`images import of an archive of ${ENTRIES} empty entries grows RSS by less than 80 MiB`, { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-import-mem-'));
  try {
    const archive = join(dir, 'many.tar');
    const parts: Buffer[] = [];
    for (let i = 0; i < ENTRIES; i++) parts.push(tarHeader(`d/f${i}`));
    parts.push(Buffer.alloc(1024));
    writeFileSync(archive, Buffer.concat(parts));
    const script = `
      const { importRootfs } = await import(${JSON.stringify(new URL('./import.js', import.meta.url).href)});
      const { BlobDir } = await import(${JSON.stringify(new URL('./blobs.js', import.meta.url).href)});
      const before = process.memoryUsage().rss;
      const r = await importRootfs(${JSON.stringify(archive)}, { blobs: new BlobDir(${JSON.stringify(join(dir, 'blobs'))}), epoch: 0, compression: 'gzip' });
      process.stdout.write(JSON.stringify({ before, peak: process.resourceUsage().maxRSS * 1024, layer: r.layer.size }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { before: number; peak: number; layer: number };
    const growthMiB = (out.peak - out.before) / 1048576;
    assert.ok(out.layer > 0);
    assert.ok(growthMiB < 80, `RSS grew by ${growthMiB.toFixed(0)} MiB while importing ${ENTRIES} entries`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
