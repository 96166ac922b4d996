/**
 * Accounts and API tokens in SQLite (better-sqlite3).
 *
 * Invariants:
 *   - the database never holds a token secret: a token's text is
 *     `ukc_<id>_<secret>` (id: 32 hex, secret: 32 random bytes as base64url)
 *     and only sha256(secret) is stored; lookup is by id, comparison is
 *     constant-time; the text is returned once, at creation, and never logged;
 *   - every multi-row change is one transaction; the schema carries a version
 *     (table `auth_schema`) and migrations run in order on open;
 *   - tables are prefixed `auth_` so the store can share a Database with others.
 *
 * Layout:
 *   auth_schema   (version)
 *   auth_accounts (name PK, role root|user, created_at ms, max_instances, max_live_memory_mb, max_services)
 *   auth_tokens   (id PK, account → auth_accounts, secret_sha256 hex, scope, label,
 *                  created_at ms, last_used_at ms|null, revoked_at ms|null)
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { AccountError, AuthInputError } from './errors.js';
import { parseAccountName, ROOT_ACCOUNT_NAME } from './names.js';
import { writeSecretFile } from './secretfile.js';

export type AccountRole = 'root' | 'user';

/**
 * What a token may be used for:
 *   full          — everything its account may do (platform API and registry);
 *   registry      — registry pull, push and delete only (CI pushing images);
 *   registry-pull — registry pull only (a node or a deploy key).
 */
export type TokenScope = 'full' | 'registry' | 'registry-pull';
export const TOKEN_SCOPES: readonly TokenScope[] = ['full', 'registry', 'registry-pull'];

export interface AccountQuotas {
  readonly maxInstances: number;
  readonly maxLiveMemoryMb: number;
  readonly maxServices: number;
}

export const DEFAULT_ACCOUNT_QUOTAS: Readonly<AccountQuotas> = Object.freeze({
  maxInstances: 16,
  maxLiveMemoryMb: 4096,
  maxServices: 8,
});

export interface Account {
  readonly name: string;
  readonly role: AccountRole;
  readonly createdAt: Date;
  readonly quotas: AccountQuotas;
}

export interface ApiTokenInfo {
  readonly id: string;
  readonly account: string;
  readonly scope: TokenScope;
  readonly label: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface CreatedApiToken {
  readonly info: ApiTokenInfo;
  /** The only time the secret exists outside the caller's hands: show it once, never log it. */
  readonly text: string;
}

export interface AuthenticatedToken {
  readonly account: Account;
  readonly token: ApiTokenInfo;
}

export interface AccountStoreOptions {
  /** A database file to open (WAL mode). Exactly one of `path` and `database`. */
  path?: string;
  /** A Database shared with other stores; its pragmas are the owner's business. */
  database?: Database.Database;
  /** Milliseconds since the epoch (injectable for tests). */
  now?: () => number;
  /** `last_used_at` is written at most this often per token, to spare writes (default 60 s). */
  lastUsedResolutionMs?: number;
  /** Most live (unrevoked) tokens one account may hold (default 100). */
  maxTokensPerAccount?: number;
  /** Longest accepted token label (default 200). */
  maxTokenLabelLength?: number;
}

export const TOKEN_PREFIX = 'ukc_';
const TOKEN_TEXT = /^ukc_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
const TOKEN_TEXT_LENGTH = TOKEN_PREFIX.length + 32 + 1 + 43;
const SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE auth_accounts (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('root', 'user')),
     created_at INTEGER NOT NULL,
     max_instances INTEGER NOT NULL,
     max_live_memory_mb INTEGER NOT NULL,
     max_services INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE auth_tokens (
     id TEXT PRIMARY KEY,
     account TEXT NOT NULL REFERENCES auth_accounts(name) ON DELETE CASCADE,
     secret_sha256 TEXT NOT NULL,
     scope TEXT NOT NULL CHECK (scope IN ('full', 'registry', 'registry-pull')),
     label TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     last_used_at INTEGER,
     revoked_at INTEGER
   ) STRICT;
   CREATE INDEX auth_tokens_by_account ON auth_tokens(account);`,
];

interface AccountRow {
  name: string;
  role: AccountRole;
  created_at: number;
  max_instances: number;
  max_live_memory_mb: number;
  max_services: number;
}

interface TokenRow {
  id: string;
  account: string;
  secret_sha256: string;
  scope: TokenScope;
  label: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

function toAccount(r: AccountRow): Account {
  return Object.freeze({
    name: r.name,
    role: r.role,
    createdAt: new Date(r.created_at),
    quotas: Object.freeze({
      maxInstances: r.max_instances,
      maxLiveMemoryMb: r.max_live_memory_mb,
      maxServices: r.max_services,
    }),
  });
}

function toTokenInfo(r: TokenRow): ApiTokenInfo {
  return Object.freeze({
    id: r.id,
    account: r.account,
    scope: r.scope,
    label: r.label,
    createdAt: new Date(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : new Date(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function parseTokenScope(text: unknown): TokenScope {
  if (typeof text === 'string' && (TOKEN_SCOPES as readonly string[]).includes(text)) return text as TokenScope;
  throw new AuthInputError('token-scope', `invalid token scope: want one of ${TOKEN_SCOPES.join(', ')}`);
}

function checkQuotas(q: AccountQuotas): AccountQuotas {
  for (const [k, v] of Object.entries(q)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new AuthInputError('quota', `quota ${k} must be a non-negative integer`);
  }
  return q;
}

/** True when `text` has the shape of one of our API tokens (says nothing about validity). */
export function looksLikeApiToken(text: string): boolean {
  return text.length === TOKEN_TEXT_LENGTH && TOKEN_TEXT.test(text);
}

export class AccountStore {
  readonly #db: Database.Database;
  readonly #ownsDb: boolean;
  readonly #now: () => number;
  readonly #lastUsedResolutionMs: number;
  readonly #maxTokensPerAccount: number;
  readonly #maxLabel: number;

  constructor(opts: AccountStoreOptions) {
    if ((opts.path === undefined) === (opts.database === undefined)) {
      throw new TypeError('AccountStore needs exactly one of path and database');
    }
    if (opts.database !== undefined) {
      this.#db = opts.database;
      this.#ownsDb = false;
    } else {
      this.#db = new Database(opts.path as string);
      this.#ownsDb = true;
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.pragma('busy_timeout = 5000');
      this.#db.pragma('foreign_keys = ON');
    }
    this.#now = opts.now ?? Date.now;
    this.#lastUsedResolutionMs = opts.lastUsedResolutionMs ?? 60_000;
    this.#maxTokensPerAccount = opts.maxTokensPerAccount ?? 100;
    this.#maxLabel = opts.maxTokenLabelLength ?? 200;
    this.#migrate();
  }

  #migrate(): void {
    this.#db.transaction(() => {
      this.#db.exec('CREATE TABLE IF NOT EXISTS auth_schema (version INTEGER NOT NULL) STRICT');
      const row = this.#db.prepare('SELECT version FROM auth_schema').get() as { version: number } | undefined;
      const current = row?.version ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new Error(`auth schema version ${current} is newer than this program (${SCHEMA_VERSION})`);
      }
      for (let v = current; v < SCHEMA_VERSION; v++) this.#db.exec(MIGRATIONS[v] as string);
      if (row === undefined) this.#db.prepare('INSERT INTO auth_schema (version) VALUES (?)').run(SCHEMA_VERSION);
      else this.#db.prepare('UPDATE auth_schema SET version = ?').run(SCHEMA_VERSION);
    }).immediate();
  }

  get schemaVersion(): number {
    return (this.#db.prepare('SELECT version FROM auth_schema').get() as { version: number }).version;
  }

  close(): void {
    if (this.#ownsDb) this.#db.close();
  }

  createAccount(name: string, opts: { role?: AccountRole; quotas?: Partial<AccountQuotas> } = {}): Account {
    const role = opts.role ?? 'user';
    if (role !== 'root' && role !== 'user') throw new AuthInputError('account-name', 'role must be root or user');
    const accountName = parseAccountName(name);
    if (accountName === ROOT_ACCOUNT_NAME && role !== 'root') {
      throw new AuthInputError('account-name', `account name ${ROOT_ACCOUNT_NAME} is kept for the root account`);
    }
    const quotas = checkQuotas({ ...DEFAULT_ACCOUNT_QUOTAS, ...opts.quotas });
    return this.#db.transaction(() => {
      if (this.getAccount(accountName) !== undefined) {
        throw new AccountError('exists', `account ${accountName} already exists`);
      }
      this.#db
        .prepare(
          `INSERT INTO auth_accounts (name, role, created_at, max_instances, max_live_memory_mb, max_services)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(accountName, role, this.#now(), quotas.maxInstances, quotas.maxLiveMemoryMb, quotas.maxServices);
      return this.getAccount(accountName) as Account;
    }).immediate();
  }

  getAccount(name: string): Account | undefined {
    const r = this.#db.prepare('SELECT * FROM auth_accounts WHERE name = ?').get(name) as AccountRow | undefined;
    return r === undefined ? undefined : toAccount(r);
  }

  listAccounts(): Account[] {
    return (this.#db.prepare('SELECT * FROM auth_accounts ORDER BY name').all() as AccountRow[]).map(toAccount);
  }

  setQuotas(name: string, quotas: Partial<AccountQuotas>): Account {
    return this.#db.transaction(() => {
      const current = this.getAccount(name);
      if (current === undefined) throw new AccountError('not-found', `no account ${name}`);
      const q = checkQuotas({ ...current.quotas, ...quotas });
      this.#db
        .prepare('UPDATE auth_accounts SET max_instances = ?, max_live_memory_mb = ?, max_services = ? WHERE name = ?')
        .run(q.maxInstances, q.maxLiveMemoryMb, q.maxServices, name);
      return this.getAccount(name) as Account;
    }).immediate();
  }

  /** Deletes an account and all its tokens; the last root account cannot be deleted. */
  deleteAccount(name: string): void {
    this.#db.transaction(() => {
      const current = this.getAccount(name);
      if (current === undefined) throw new AccountError('not-found', `no account ${name}`);
      if (current.role === 'root') {
        const roots = this.#db.prepare("SELECT count(*) AS n FROM auth_accounts WHERE role = 'root'").get() as { n: number };
        if (roots.n <= 1) throw new AccountError('last-root', 'the last root account cannot be deleted');
      }
      this.#db.prepare('DELETE FROM auth_tokens WHERE account = ?').run(name);
      this.#db.prepare('DELETE FROM auth_accounts WHERE name = ?').run(name);
    }).immediate();
  }

  createToken(account: string, opts: { scope?: TokenScope; label?: string } = {}): CreatedApiToken {
    const scope = parseTokenScope(opts.scope ?? 'full');
    const label = opts.label ?? '';
    if (typeof label !== 'string' || label.length > this.#maxLabel || [...label].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f')) {
      throw new AuthInputError('token-label', `token label must be printable text up to ${this.#maxLabel} characters`);
    }
    const id = randomUUID().replaceAll('-', '');
    const secret = randomBytes(32).toString('base64url');
    const row = this.#db.transaction(() => {
      if (this.getAccount(account) === undefined) throw new AccountError('not-found', `no account ${account}`);
      const live = this.#db
        .prepare('SELECT count(*) AS n FROM auth_tokens WHERE account = ? AND revoked_at IS NULL')
        .get(account) as { n: number };
      if (live.n >= this.#maxTokensPerAccount) {
        throw new AccountError('exists', `account ${account} already holds ${this.#maxTokensPerAccount} live tokens`);
      }
      this.#db
        .prepare(
          `INSERT INTO auth_tokens (id, account, secret_sha256, scope, label, created_at, last_used_at, revoked_at)
           VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)`,
        )
        .run(id, account, sha256(secret).toString('hex'), scope, label, this.#now());
      return this.#db.prepare('SELECT * FROM auth_tokens WHERE id = ?').get(id) as TokenRow;
    }).immediate();
    return Object.freeze({ info: toTokenInfo(row), text: `${TOKEN_PREFIX}${id}_${secret}` });
  }

  listTokens(account: string): ApiTokenInfo[] {
    const rows = this.#db
      .prepare('SELECT * FROM auth_tokens WHERE account = ? ORDER BY created_at, id')
      .all(account) as TokenRow[];
    return rows.map(toTokenInfo);
  }

  /** Revokes a token by id; answers whether a live token was revoked. */
  revokeToken(id: string): boolean {
    const r = this.#db
      .prepare('UPDATE auth_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(this.#now(), id);
    return r.changes === 1;
  }

  /**
   * Checks an API token text; answers the account and token, or undefined for
   * anything else (malformed, unknown id, wrong secret, revoked, account gone).
   */
  authenticateToken(text: string): AuthenticatedToken | undefined {
    if (typeof text !== 'string' || text.length !== TOKEN_TEXT_LENGTH) return undefined;
    const m = TOKEN_TEXT.exec(text);
    if (m === null) return undefined;
    const [, id, secret] = m as unknown as [string, string, string];
    const presented = sha256(secret);
    const row = this.#db.prepare('SELECT * FROM auth_tokens WHERE id = ?').get(id) as TokenRow | undefined;
    // Compare even when the id is unknown, so timing does not depend on the secret's correctness path.
    const stored = row === undefined ? Buffer.alloc(32) : Buffer.from(row.secret_sha256, 'hex');
    const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
    if (row === undefined || !equal || row.revoked_at !== null) return undefined;
    const account = this.getAccount(row.account);
    if (account === undefined) return undefined;
    const now = this.#now();
    if (row.last_used_at === null || now - row.last_used_at >= this.#lastUsedResolutionMs) {
      this.#db.prepare('UPDATE auth_tokens SET last_used_at = ? WHERE id = ?').run(now, id);
      row.last_used_at = now;
    }
    return Object.freeze({ account, token: toTokenInfo(row) });
  }

  /**
   * First start: creates the root account if missing and, when root holds no
   * live token, creates one and writes its text to `tokenFile` (mode 0600,
   * atomically). The text is never returned or logged. Answers whether a new
   * token file was written.
   */
  ensureRootAccount(tokenFile: string): { tokenWritten: boolean } {
    if (this.getAccount(ROOT_ACCOUNT_NAME) === undefined) {
      try {
        this.createAccount(ROOT_ACCOUNT_NAME, { role: 'root' });
      } catch (e) {
        if (!(e instanceof AccountError && e.kind === 'exists')) throw e; // another process won the race
      }
    }
    const live = this.listTokens(ROOT_ACCOUNT_NAME).some((t) => t.revokedAt === null);
    if (live) return { tokenWritten: false };
    this.rotateRootToken(tokenFile);
    return { tokenWritten: true };
  }

  /** Revokes every root token and writes a fresh one to `tokenFile` (mode 0600). */
  rotateRootToken(tokenFile: string): void {
    const old = this.listTokens(ROOT_ACCOUNT_NAME).filter((t) => t.revokedAt === null);
    const created = this.createToken(ROOT_ACCOUNT_NAME, { scope: 'full', label: 'root token (written to file)' });
    try {
      writeSecretFile(tokenFile, `${created.text}\n`);
    } catch (e) {
      this.#db.prepare('DELETE FROM auth_tokens WHERE id = ?').run(created.info.id);
      throw e;
    }
    for (const t of old) this.revokeToken(t.id);
  }
}
