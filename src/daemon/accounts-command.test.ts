// `ukcd accounts` and `ukcd tokens` in-process, over a temporary data directory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { AccountStore } from '../auth/index.js';
import { runCommandLine, type CommandContext } from '../util/command.js';
import { daemonCommands } from './commands.js';

const dir = mkdtempSync(join(tmpdir(), 'ukc-accounts-cmd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function ukcd(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ctx: CommandContext = { cwd: dir, env: {}, stdout, stderr, signal: new AbortController().signal };
  const code = await runCommandLine('ukcd', daemonCommands, argv, ctx);
  return { code, out, err };
}

test('accounts create/list/delete and tokens create/list/revoke work on the data directory', async () => {
  assert.equal((await ukcd('accounts', 'create', 'alice', '--data', 'data')).code, 0);
  const dup = await ukcd('accounts', 'create', 'alice', '--data', 'data');
  assert.equal(dup.code, 1, 'a duplicate is a user error');
  assert.match(dup.err, /alice/);
  const bad = await ukcd('accounts', 'create', 'Not_A_Name', '--data', 'data');
  assert.equal(bad.code, 1);
  assert.match((await ukcd('accounts', 'list', '--data', 'data')).out, /^alice\tuser\t/m);

  const created = await ukcd('tokens', 'create', 'alice', '--scope', 'registry-pull', '--label', 'ci', '--data', 'data');
  assert.equal(created.code, 0, created.err);
  const text = created.out.trim();
  assert.match(text, /^ukc_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/, 'stdout holds the token alone');
  assert.doesNotMatch(created.err, new RegExp(text), 'the secret is printed once, on stdout only');
  const store = new AccountStore({ path: join(dir, 'data', 'auth.db') });
  try {
    const found = store.authenticateToken(text);
    assert.equal(found?.account.name, 'alice');
    assert.equal(found?.token.scope, 'registry-pull');
    const id = found!.token.id;
    assert.match((await ukcd('tokens', 'list', 'alice', '--data', 'data')).out, new RegExp(`^${id}\\tregistry-pull\\tlive\\tci$`, 'm'));
    assert.equal((await ukcd('tokens', 'revoke', id, '--data', 'data')).code, 0);
    assert.equal(store.authenticateToken(text), undefined, 'a revoked token no longer authenticates');
    assert.equal((await ukcd('tokens', 'revoke', id, '--data', 'data')).code, 1, 'revoking twice is a user error');
  } finally {
    store.close();
  }
  assert.equal((await ukcd('accounts', 'delete', 'alice', '--accounts-db', 'data/auth.db')).code, 0);
  assert.doesNotMatch((await ukcd('accounts', 'list', '--data', 'data')).out, /alice/);
});

test('usage errors: missing database, bad scope, unknown verb, auth flags without --auth', async () => {
  assert.equal((await ukcd('accounts', 'create', 'bob')).code, 2);
  assert.equal((await ukcd('tokens', 'create', 'bob', '--scope', 'everything', '--data', 'data')).code, 2);
  assert.equal((await ukcd('tokens', 'frobnicate', '--data', 'data')).code, 2);
  assert.equal((await ukcd('registry', '--data', 'reg', '--accounts-db', 'x.db')).code, 2);
  assert.equal((await ukcd('registry', '--data', 'reg', '--auth', '--public-url', 'ftp://x')).code, 2);
});
