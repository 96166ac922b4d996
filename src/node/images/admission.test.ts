// Security case 15 (test/security/README.md): what admission refuses, on plain trees and CPIO archives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admitCpio, admitTree, refusalOf } from './admission.js';
import { NodeError } from '../errors.js';
import { Errno } from '../errors.js';

const root = process.getuid?.() === 0;

test('row 15: refusalOf names device nodes, fifos, sockets and setuid/setgid files; ordinary entries pass', () => {
  assert.equal(refusalOf('char', 0o20666), 'a character device node');
  assert.equal(refusalOf('block', 0o60660), 'a block device node');
  assert.equal(refusalOf('fifo', 0o10644), 'a fifo');
  assert.equal(refusalOf('socket', 0o140755), 'a socket');
  assert.equal(refusalOf('file', 0o104755), 'a setuid file');
  assert.equal(refusalOf('directory', 0o42775), 'a setgid directory');
  assert.equal(refusalOf('file', 0o100755), undefined);
  assert.equal(refusalOf('symlink', 0o120777), undefined);
});

async function refused(p: Promise<void>, name: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof NodeError);
    assert.equal(err.errno, Errno.EINVAL);
    assert.match(err.message, name);
    assert.match(err.message, /^layer x: its initrd holds/);
    return true;
  });
}

test('row 15: a tree with a fifo, a setuid file or (as root) a device node is refused, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-admission-'));
  try {
    mkdirSync(join(dir, 'ok', 'bin'), { recursive: true });
    writeFileSync(join(dir, 'ok', 'bin', 'app'), 'x');
    symlinkSync('/etc/shadow', join(dir, 'ok', 'link'));
    await admitTree(join(dir, 'ok'), 'layer x');
    mkdirSync(join(dir, 'fifo', 'run'), { recursive: true });
    assert.equal(spawnSync('mkfifo', [join(dir, 'fifo', 'run', 'pipe')]).status, 0);
    await refused(admitTree(join(dir, 'fifo'), 'layer x'), /a fifo at "\/run\/pipe"/);
    mkdirSync(join(dir, 'suid', 'bin'), { recursive: true });
    writeFileSync(join(dir, 'suid', 'bin', 'su'), 'x');
    chmodSync(join(dir, 'suid', 'bin', 'su'), 0o4755);
    await refused(admitTree(join(dir, 'suid'), 'layer x'), /a setuid file at "\/bin\/su"/);
    if (root) {
      mkdirSync(join(dir, 'dev', 'dev'), { recursive: true });
      assert.equal(spawnSync('mknod', [join(dir, 'dev', 'dev', 'kvm'), 'c', '10', '232']).status, 0);
      await refused(admitTree(join(dir, 'dev'), 'layer x'), /a character device node at "\/dev\/kvm"/);
      mkdirSync(join(dir, 'blk'), { recursive: true });
      assert.equal(spawnSync('mknod', [join(dir, 'blk', 'loop5'), 'b', '7', '5']).status, 0);
      await refused(admitTree(join(dir, 'blk'), 'layer x'), /a block device node at "\/loop5"/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** One newc header + name (+ padding), no data. */
function newcEntry(name: string, mode: number, rdevMajor = 0, rdevMinor = 0): Buffer {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const fields = [1, mode, 0, 0, 1, 0, 0, 0, 0, rdevMajor, rdevMinor, name.length + 1, 0].map(hex).join('');
  const head = Buffer.from(`070701${fields}${name}\0`, 'latin1');
  return Buffer.concat([head, Buffer.alloc((4 - (head.length % 4)) % 4)]);
}

test('row 15: a CPIO initrd with a device node (c 1 11, kmsg) or a fifo is refused, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-admission-'));
  try {
    const write = (file: string, entries: Buffer[]): string => {
      const p = join(dir, file);
      writeFileSync(p, Buffer.concat([...entries, newcEntry('TRAILER!!!', 0)]));
      return p;
    };
    await admitCpio(write('ok.cpio', [newcEntry('bin', 0o40755), newcEntry('dev', 0o40755)]), 'layer x');
    await refused(admitCpio(write('kmsg.cpio', [newcEntry('dev', 0o40755), newcEntry('dev/kmsg', 0o20600, 1, 11)]), 'layer x'), /a character device node at "\/dev\/kmsg"/);
    await refused(admitCpio(write('fifo.cpio', [newcEntry('./tmp/f', 0o10644)]), 'layer x'), /a fifo at "\/tmp\/f"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
