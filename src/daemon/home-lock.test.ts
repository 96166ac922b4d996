import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCommandLine } from '../util/index.js';
import { devCommand } from './dev.js';
import { HOME_LOCK_FILE, lockHome } from './home-lock.js';

test('a home held by a live ukcd is refused, naming its pid; a lock left by a dead one is taken over; release removes it', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'ukc-lock-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  writeFileSync(join(home, HOME_LOCK_FILE), `${other.pid}\ndev\n`);
  assert.throws(() => lockHome(home, 'dev'), new RegExp(`another ukcd \\(pid ${other.pid}\\) is using ${home}`));
  other.kill('SIGKILL');
  await new Promise((r) => other.once('exit', r));
  const release = lockHome(home, 'dev');
  assert.equal(readFileSync(join(home, HOME_LOCK_FILE), 'utf8'), `${process.pid}\ndev\n`);
  release();
  assert.equal(existsSync(join(home, HOME_LOCK_FILE)), false);
});

test('ukcd dev on a busy control-plane port names the port and the flag, in one line, and leaves its home unlocked', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'ukc-busy-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.after(() => holder.close());
  const busy = (holder.address() as AddressInfo).port;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  stdout.resume();
  const env = { HOME: home, UKC_HOME: join(home, 'ukc'), UNIKRAFT_CONFIG: join(home, 'config.yaml') };
  const code = await runCommandLine('ukcd', [devCommand], ['dev', '--controlplane-port', String(busy), '--log-level', 'error'], {
    cwd: home,
    env,
    stdout,
    stderr,
    signal: new AbortController().signal,
  });
  assert.equal(code, 1, err);
  assert.match(err, new RegExp(`127\\.0\\.0\\.1:${busy}.*pick another with --controlplane-port`));
  assert.doesNotMatch(err, /internal error|\n\s+at /);
  assert.equal(existsSync(join(home, 'ukc', HOME_LOCK_FILE)), false);
});
