import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AccountStore, DEFAULT_ACCOUNT_QUOTAS, looksLikeApiToken } from './accounts.js';
import { AccountError, AuthInputError } from './errors.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function memoryStore(now = (): number => 1_700_000_000_000): { store: AccountStore; db: Database.Database } {
  const db = new Database(':memory:');
  return { store: new AccountStore({ database: db, now: () => now() }), db };
}

test('accounts: create with default or given quotas, list, update, delete', () => {
  const { store } = memoryStore();
  const a = store.createAccount('alice');
  assert.equal(a.role, 'user');
  assert.deepEqual(a.quotas, DEFAULT_ACCOUNT_QUOTAS);
  assert.equal(a.createdAt.getTime(), 1_700_000_000_000);
  store.createAccount('bob', { quotas: { maxInstances: 2 } });
  assert.equal(store.getAccount('bob')?.quotas.maxInstances, 2);
  assert.deepEqual(store.listAccounts().map((x) => x.name), ['alice', 'bob']);
  assert.equal(store.setQuotas('alice', { maxLiveMemoryMb: 512 }).quotas.maxLiveMemoryMb, 512);
  assert.throws(() => store.setQuotas('alice', { maxServices: -1 }), AuthInputError);
  assert.throws(() => store.createAccount('alice'), (e: unknown) => e instanceof AccountError && e.kind === 'exists');
  assert.throws(() => store.createAccount('Bad Name'), AuthInputError);
  assert.throws(() => store.createAccount('official'), AuthInputError);
  assert.throws(() => store.createAccount('root'), AuthInputError);
  store.deleteAccount('bob');
  assert.equal(store.getAccount('bob'), undefined);
});

test('tokens: the database never holds the secret, only its sha256 (raw table check)', () => {
  const { store, db } = memoryStore();
  store.createAccount('alice');
  const created = store.createToken('alice', { scope: 'registry-pull', label: 'ci' });
  assert.ok(looksLikeApiToken(created.text));
  const [, id, secret] = /^ukc_([0-9a-f]{32})_(.+)$/.exec(created.text) ?? [];
  assert.equal(id, created.info.id);
  const rows = db.prepare('SELECT * FROM auth_tokens').all() as Record<string, unknown>[];
  assert.equal(rows.length, 1);
  const dump = JSON.stringify(db.prepare('SELECT * FROM auth_tokens').raw().all());
  assert.ok(secret !== undefined && secret.length === 43);
  assert.equal(dump.includes(secret), false, 'secret found in the table');
  assert.equal(dump.includes(created.text), false);
  assert.equal(rows[0]?.secret_sha256, createHash('sha256').update(secret).digest('hex'));
});

test('tokens: authenticate, wrong secret, unknown id, revoked, garbage', () => {
  let now = 1_700_000_000_000;
  const { store } = memoryStore(() => now);
  store.createAccount('alice');
  const t = store.createToken('alice');
  const ok = store.authenticateToken(t.text);
  assert.equal(ok?.account.name, 'alice');
  assert.equal(ok?.token.scope, 'full');
  assert.equal(ok?.token.lastUsedAt?.getTime(), now);
  // last_used_at is written at most once per resolution window
  now += 1000;
  assert.equal(store.authenticateToken(t.text)?.token.lastUsedAt?.getTime(), now - 1000);
  now += 60_000;
  assert.equal(store.authenticateToken(t.text)?.token.lastUsedAt?.getTime(), now);

  const flipped = t.text.slice(0, -1) + (t.text.endsWith('A') ? 'B' : 'A');
  assert.equal(store.authenticateToken(flipped), undefined);
  const otherId = `ukc_${'0'.repeat(32)}${t.text.slice(36)}`;
  assert.equal(store.authenticateToken(otherId), undefined);
  for (const g of ['', 'ukc_', t.text + 'x', t.text.toUpperCase(), ` ${t.text}`, 'x'.repeat(100_000), `ukc_${'g'.repeat(32)}_${'a'.repeat(43)}`]) {
    assert.equal(store.authenticateToken(g), undefined);
  }
  assert.equal(store.revokeToken(t.info.id), true);
  assert.equal(store.revokeToken(t.info.id), false);
  assert.equal(store.authenticateToken(t.text), undefined);
  assert.ok(store.listTokens('alice')[0]?.revokedAt instanceof Date);
});

test('tokens: deleting an account removes its tokens; limits and bad input', () => {
  const { store, db } = memoryStore();
  store.createAccount('alice');
  const t = store.createToken('alice');
  store.deleteAccount('alice');
  assert.equal(store.authenticateToken(t.text), undefined);
  assert.equal((db.prepare('SELECT count(*) AS n FROM auth_tokens').get() as { n: number }).n, 0);
  assert.throws(() => store.createToken('nobody'), (e: unknown) => e instanceof AccountError && e.kind === 'not-found');
  store.createAccount('bob');
  assert.throws(() => store.createToken('bob', { scope: 'admin' as never }), AuthInputError);
  assert.throws(() => store.createToken('bob', { label: 'a\nb' }), AuthInputError);
  const small = new AccountStore({ database: db, maxTokensPerAccount: 2 });
  small.createToken('bob');
  small.createToken('bob');
  assert.throws(() => small.createToken('bob'), AccountError);
});

test('root: first start writes the token file with mode 0600; later starts leave it', (t) => {
  const dir = tempDir(t);
  const dbPath = join(dir, 'state.db');
  const tokenFile = join(dir, 'secrets', 'root-token');
  const store = new AccountStore({ path: dbPath });
  assert.deepEqual(store.ensureRootAccount(tokenFile), { tokenWritten: true });
  const st = statSync(tokenFile);
  assert.equal(st.mode & 0o777, 0o600);
  const text = readFileSync(tokenFile, 'utf8').trim();
  const who = store.authenticateToken(text);
  assert.equal(who?.account.name, 'root');
  assert.equal(who?.account.role, 'root');
  assert.deepEqual(readdirSync(join(dir, 'secrets')), ['root-token'], 'no temp file left behind');
  store.close();

  const again = new AccountStore({ path: dbPath });
  assert.equal(again.schemaVersion, 1);
  assert.deepEqual(again.ensureRootAccount(tokenFile), { tokenWritten: false });
  assert.equal(readFileSync(tokenFile, 'utf8').trim(), text);
  // Rotation revokes the old root token.
  again.rotateRootToken(tokenFile);
  const rotated = readFileSync(tokenFile, 'utf8').trim();
  assert.notEqual(rotated, text);
  assert.equal(again.authenticateToken(text), undefined);
  assert.equal(again.authenticateToken(rotated)?.account.name, 'root');
  assert.throws(() => again.deleteAccount('root'), (e: unknown) => e instanceof AccountError && e.kind === 'last-root');
  again.close();
});

test('root: a token file that cannot be written leaves no live root token behind', (t) => {
  const dir = tempDir(t);
  const { store } = memoryStore();
  const blocker = join(dir, 'file');
  writeFileSync(blocker, 'x'); // a regular file where the token file's directory should be
  assert.throws(() => store.ensureRootAccount(join(blocker, 'root-token')));
  assert.equal(store.listTokens('root').length, 0);
});

test('schema: a database from a newer program is refused', () => {
  const db = new Database(':memory:');
  new AccountStore({ database: db });
  db.prepare('UPDATE auth_schema SET version = 99').run();
  assert.throws(() => new AccountStore({ database: db }), /newer/);
});
