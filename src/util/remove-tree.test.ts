import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeTree } from './remove-tree.js';

test('removeTree removes a nested tree without following links; a missing path is fine', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ukc-rmtree-'));
  try {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    const root = join(base, 'root');
    mkdirSync(join(root, 'a', 'b', 'c'), { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(root, 'a', `f${i}`), '');
    writeFileSync(join(root, 'a', 'b', 'c', 'deep'), 'd');
    symlinkSync(outside, join(root, 'link-to-outside'));
    await removeTree(root);
    assert.equal(existsSync(root), false);
    assert.equal(existsSync(join(outside, 'keep')), true, 'a symlink is removed, never followed');
    await removeTree(root);
    await removeTree(join(outside, 'keep'));
    assert.equal(existsSync(join(outside, 'keep')), false, 'a file is removed too');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
