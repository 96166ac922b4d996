// walkTreeStream yields exactly walkTree's canonical order (bytewise full paths, parents first,
// hardlinks to the first path), one entry at a time; the tar writer streams from it.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareBytewise, compareUtf8, walkTree, walkTreeStream, TreeLimitError, type TreeEntry } from './tree.js';

async function collect(gen: AsyncGenerator<TreeEntry>): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const e of gen) out.push(e);
  return out;
}

test('walkTreeStream: same entries, same order, same hardlinks as walkTree, filters and limits included', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ukc-tree-'));
  try {
    // Names that sort around `dir/`: '-' (0x2d) and '.' (0x2e) come before '/', '0' (0x30) after.
    for (const d of ['python3', 'python3/lib', 'python3/lib-dynload', 'a', 'a/b', 'a/b/c', 'skip', 'skip/inner', 'é']) mkdirSync(join(root, d), { recursive: true });
    for (const f of ['python3.11', 'python3-config', 'python30', 'python3/x', 'python3/lib.so', 'python3/lib/z', 'a-b', 'a.b', 'a0', 'a/b-c', 'a/b/c/d', 'skip/inner/f', 'é/f', ' space', '~tilde']) {
      writeFileSync(join(root, f), f);
    }
    linkSync(join(root, 'a0'), join(root, 'a/b/hard'));
    linkSync(join(root, 'a0'), join(root, 'python3/hard'));
    symlinkSync('../a0', join(root, 'a/link'));
    const strip = (es: TreeEntry[]) => es.map((e) => [e.path, e.kind, e.hardlinkOf ?? null]);
    assert.deepEqual(strip(await collect(walkTreeStream(root))), strip(await walkTree(root)));
    const filter = (path: string): boolean => path !== 'skip' && !path.endsWith('.so');
    assert.deepEqual(strip(await collect(walkTreeStream(root, { filter }))), strip(await walkTree(root, { filter })));
    await assert.rejects(collect(walkTreeStream(root, { maxEntries: 5 })), TreeLimitError);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('compareUtf8 orders like the UTF-8 bytes (surrogate pairs above the rest of the BMP)', () => {
  const words = ['a', 'a/', 'a-', 'a0', 'é', 'z', '\uffff', '\u{1f600}', '\ue000', 'ab', '', '\u00ff', '\ud7ff'];
  for (const x of words) for (const y of words) assert.equal(Math.sign(compareUtf8(x, y)), Math.sign(compareBytewise(x, y)), `${x} vs ${y}`);
});
