/**
 * Metadata store on SQLite (better-sqlite3 v12).
 *
 * Invariants:
 *  - WAL journal, foreign keys on; every multi-row change runs in one
 *    transaction, so a crash leaves either all of it or none.
 *  - The schema version lives in `schema_version`; `migrate()` brings an older
 *    file forward step by step and refuses a newer one.
 *  - Tags and manifest references cascade with their manifest; links and
 *    manifests cascade with their repository.
 *  - Digests arriving here were parsed by the caller (see types.ts).
 *
 * better-sqlite3 is synchronous; each call is short (prepared statements,
 * indexed lookups), so the event loop is held only for microseconds.
 *
 * Durability by group commit (`synchronous: 'full'`, the default): SQLite runs
 * with synchronous=NORMAL, which in WAL mode still syncs around checkpoints
 * (WAL before copying it back, the database after, the WAL header when it is
 * reused) but not at each commit. Every write method commits, then awaits an
 * fdatasync of the -wal file that *started after* its commit, on the libuv
 * thread pool (CoalescedSync): the promise resolves only when the change is on
 * disk, concurrent writers share one fdatasync, and the event loop never waits
 * for the disk. A crash loses at most a suffix of the WAL made only of changes
 * whose promises had not resolved (the WAL is replayed up to its last intact
 * commit), so every state seen after recovery is one the store went through.
 * Readers may see a change just before it is durable, as in any group-commit
 * database; callers acknowledge only after the write method resolved.
 */
import { fdatasync, fstatSync, openSync, closeSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CoalescedSync } from './coalesce.js';
import { MissingReferencesError } from './errors.js';
import type { ManifestRecord, ManifestReference, MetadataStore, Page, UploadRecord } from './types.js';

export interface SqliteMetadataStoreOptions {
  /**
   * SQLite `synchronous` level. FULL (default) fsyncs the WAL on every commit,
   * so an acknowledged change survives power loss; NORMAL only survives a
   * process crash.
   */
  synchronous?: 'full' | 'normal';
  /**
   * With `synchronous: 'full'`: how commits reach the disk. 'group' (default)
   * syncs the WAL off the event loop, one fdatasync shared by concurrent
   * writers (see the top of this file); 'sqlite' lets SQLite fsync the WAL
   * inside every commit (synchronous=FULL), holding the event loop meanwhile.
   */
  commitSync?: 'group' | 'sqlite';
  /** How long a writer waits for another process's lock (ms, default 5000). */
  busyTimeoutMs?: number;
  /** Flushes the WAL file (default: fdatasync on the thread pool). Tests wrap it to observe or fail it. */
  syncWal?: (fd: number) => Promise<void>;
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export const SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[] = [
  // 0 -> 1
  `
  CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE blob_links (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX blob_links_digest ON blob_links(digest);
  CREATE TABLE manifests (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX manifests_digest ON manifests(digest);
  CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
  CREATE TABLE manifest_refs (
    repo_id INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    ref_digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repo_id, manifest_digest, ref_digest, kind),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX manifest_refs_ref ON manifest_refs(ref_digest);
  CREATE TABLE tags (
    repo_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX tags_digest ON tags(repo_id, digest);
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    principal TEXT NOT NULL,
    offset INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX uploads_principal ON uploads(principal);
  CREATE INDEX uploads_updated ON uploads(updated_at);
  `,
];

interface ManifestRow {
  repository: string;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  created_at: number;
}

interface UploadRow {
  id: string;
  repository: string;
  principal: string;
  offset: number;
  created_at: number;
  updated_at: number;
}

function toUpload(r: UploadRow): UploadRecord {
  return {
    id: r.id,
    repository: r.repository,
    principal: r.principal,
    offset: r.offset,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const MAX_PAGE = 10_000;

export class SqliteMetadataStore implements MetadataStore {
  readonly db: Database.Database;
  private readonly s: ReturnType<SqliteMetadataStore['prepare']>;

  /** Group commit of the WAL; undefined when SQLite syncs by itself (or durability was waived). */
  private readonly walSync: CoalescedSync | undefined;
  private walFd: number | undefined;

  constructor(file: string, opts: SqliteMetadataStoreOptions = {}) {
    this.db = new Database(file);
    const wal = this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
    const full = opts.synchronous !== 'normal';
    const group = full && wal && (opts.commitSync ?? 'group') === 'group';
    this.db.pragma(`synchronous = ${full && !group ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.migrate();
    this.s = this.prepare();
    if (group) {
      // migrate() ran a read transaction, which opens (creating if need be) the -wal file.
      const walPath = `${this.db.name}-wal`;
      const fd = openSync(walPath, 'r');
      const a = fstatSync(fd);
      const b = statSync(walPath);
      if (a.ino !== b.ino || a.dev !== b.dev) {
        closeSync(fd);
        throw new Error(`${walPath} changed while opening it`);
      }
      this.walFd = fd;
      const sync = opts.syncWal ?? fdatasyncAsync;
      this.walSync = new CoalescedSync(() => sync(fd));
    }
  }

  /** Resolves once every change committed before the call is on disk (a no-op unless group commit is on). */
  private async durable(): Promise<void> {
    if (!this.walSync) return;
    // After a failed fdatasync the kernel may have dropped the dirty pages and a
    // later fdatasync can report success without them: refuse every later write
    // (a restart recovers from what is on disk), as databases do.
    if (this.walSyncError) throw this.walSyncError;
    try {
      await this.walSync.request();
    } catch (err) {
      this.walSyncError ??= new Error(`metadata WAL sync failed; restart to recover: ${(err as Error).message}`, { cause: err });
      throw this.walSyncError;
    }
  }
  private walSyncError: Error | undefined;

  /** fdatasyncs of the WAL started so far by group commit (for tests and metrics). */
  get walSyncs(): number {
    return this.walSync?.runs ?? 0;
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    let version = row?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new Error(`metadata database has schema ${version}, newer than this program's ${SCHEMA_VERSION}`);
    }
    const step = this.db.transaction((v: number) => {
      this.db.exec(MIGRATIONS[v]!);
      this.db.prepare('DELETE FROM schema_version').run();
      this.db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
    });
    while (version < SCHEMA_VERSION) {
      step.immediate(version);
      version++;
    }
  }

  private prepare() {
    const db = this.db;
    return {
      repoId: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?'),
      insertRepo: db.prepare<[string, number]>('INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING'),
      link: db.prepare<[number, string, number, number]>(
        'INSERT INTO blob_links (repo_id, digest, size, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      getLink: db.prepare<[string, string], { size: number }>(
        'SELECT l.size FROM blob_links l JOIN repositories r ON r.id = l.repo_id WHERE r.name = ? AND l.digest = ?',
      ),
      unlink: db.prepare<[string, string]>(
        'DELETE FROM blob_links WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?',
      ),
      unlinkEverywhere: db.prepare<[string]>('DELETE FROM blob_links WHERE digest = ?'),
      linkCount: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM blob_links WHERE digest = ?'),
      hasLink: db.prepare<[number, string], { one: number }>('SELECT 1 AS one FROM blob_links WHERE repo_id = ? AND digest = ?'),
      hasManifest: db.prepare<[number, string], { one: number }>('SELECT 1 AS one FROM manifests WHERE repo_id = ? AND digest = ?'),
      insertManifest: db.prepare(
        `INSERT INTO manifests (repo_id, digest, media_type, size, artifact_type, subject, annotations, created_at)
         VALUES (@repo_id, @digest, @media_type, @size, @artifact_type, @subject, @annotations, @created_at)
         ON CONFLICT (repo_id, digest) DO NOTHING`,
      ),
      insertRef: db.prepare<[number, string, string, string]>(
        'INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      upsertTag: db.prepare<[number, string, string, number]>(
        `INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      ),
      getManifest: db.prepare<[string, string], ManifestRow>(
        `SELECT r.name AS repository, m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.created_at
         FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.digest = ?`,
      ),
      refsOf: db.prepare<[number, string], { ref_digest: string; kind: 'blob' | 'manifest' }>(
        'SELECT ref_digest, kind FROM manifest_refs WHERE repo_id = ? AND manifest_digest = ?',
      ),
      resolveTag: db.prepare<[string, string], { digest: string }>(
        'SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = ? AND t.name = ?',
      ),
      tagsOf: db.prepare<[string, string], { name: string }>(
        'SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = ? AND t.digest = ? ORDER BY t.name',
      ),
      deleteManifest: db.prepare<[number, string]>('DELETE FROM manifests WHERE repo_id = ? AND digest = ?'),
      deleteTag: db.prepare<[string, string]>(
        'DELETE FROM tags WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?',
      ),
      listTags: db.prepare<[number, string, number], { name: string }>(
        'SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?',
      ),
      listManifests: db.prepare<[string], ManifestRow>(
        `SELECT r.name AS repository, m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.created_at
         FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? ORDER BY m.created_at DESC, m.digest`,
      ),
      listRepos: db.prepare<[string, number], { name: string }>(
        'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?',
      ),
      referrers: db.prepare<[string, string], ManifestRow>(
        `SELECT r.name AS repository, m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.created_at
         FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.subject = ? ORDER BY m.created_at, m.digest`,
      ),
      isReferenced: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM manifest_refs WHERE ref_digest = ? UNION ALL SELECT 1 FROM manifests WHERE digest = ? LIMIT 1',
      ),
      liveManifests: db.prepare<[], { digest: string }>('SELECT DISTINCT digest FROM manifests'),
      liveRefs: db.prepare<[], { ref_digest: string }>('SELECT DISTINCT ref_digest FROM manifest_refs'),
      insertUpload: db.prepare(
        `INSERT INTO uploads (id, repository, principal, offset, created_at, updated_at)
         VALUES (@id, @repository, @principal, @offset, @createdAt, @updatedAt)`,
      ),
      getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE id = ?'),
      updateUpload: db.prepare<[number, number, string]>('UPDATE uploads SET offset = ?, updated_at = ? WHERE id = ?'),
      deleteUpload: db.prepare<[string]>('DELETE FROM uploads WHERE id = ?'),
      listUploads: db.prepare<[number], UploadRow>('SELECT * FROM uploads WHERE updated_at < ? ORDER BY updated_at'),
      countUploads: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM uploads WHERE principal = ?'),
    };
  }

  private ensureRepo(name: string, now: number): number {
    const have = this.s.repoId.get(name);
    if (have) return have.id;
    this.s.insertRepo.run(name, now);
    return this.s.repoId.get(name)!.id;
  }

  async linkBlob(repo: string, digest: string, size: number): Promise<void> {
    this.linkTx ??= this.db.transaction((r: string, d: string, n: number) => {
      const now = Date.now();
      this.s.link.run(this.ensureRepo(r, now), d, n, now);
    });
    this.linkTx(repo, digest, size);
    await this.durable();
  }
  private linkTx: ((repo: string, digest: string, size: number) => void) | undefined;

  /** Links a committed upload and forgets its session, in one transaction. */
  async completeUpload(id: string, repo: string, digest: string, size: number): Promise<void> {
    this.completeTx ??= this.db.transaction((i: string, r: string, d: string, n: number) => {
      const now = Date.now();
      this.s.link.run(this.ensureRepo(r, now), d, n, now);
      this.s.deleteUpload.run(i);
    });
    this.completeTx(id, repo, digest, size);
    await this.durable();
  }
  private completeTx: ((id: string, repo: string, digest: string, size: number) => void) | undefined;

  async blobLink(repo: string, digest: string): Promise<{ size: number } | undefined> {
    const row = this.s.getLink.get(repo, digest);
    return row ? { size: row.size } : undefined;
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    const gone = this.s.unlink.run(repo, digest).changes > 0;
    await this.durable();
    return gone;
  }

  async putManifest(rec: ManifestRecord, tags: string[]): Promise<void> {
    this.putManifestTx ??= this.db.transaction((r: ManifestRecord, t: string[]) => {
      const now = Date.now();
      const repoId = this.ensureRepo(r.repository, now);
      const missing: ManifestReference[] = [];
      for (const ref of r.references) {
        const found =
          ref.kind === 'blob' ? this.s.hasLink.get(repoId, ref.digest) : this.s.hasManifest.get(repoId, ref.digest);
        if (!found) missing.push(ref);
      }
      if (missing.length > 0) throw new MissingReferencesError(missing);
      this.s.insertManifest.run({
        repo_id: repoId,
        digest: r.digest,
        media_type: r.mediaType,
        size: r.size,
        artifact_type: r.artifactType ?? null,
        subject: r.subject ?? null,
        annotations: r.annotations ? JSON.stringify(r.annotations) : null,
        created_at: r.createdAt,
      });
      for (const ref of r.references) this.s.insertRef.run(repoId, r.digest, ref.digest, ref.kind);
      this.s.link.run(repoId, r.digest, r.size, now);
      for (const tag of t) this.s.upsertTag.run(repoId, tag, r.digest, now);
    });
    this.putManifestTx.immediate(rec, tags);
    await this.durable();
  }
  private putManifestTx: Database.Transaction<(r: ManifestRecord, t: string[]) => void> | undefined;

  private toManifest(row: ManifestRow, repoId: number): ManifestRecord {
    const rec: ManifestRecord = {
      repository: row.repository,
      digest: row.digest,
      mediaType: row.media_type,
      size: row.size,
      createdAt: row.created_at,
      references: this.s.refsOf.all(repoId, row.digest).map((r) => ({ digest: r.ref_digest, kind: r.kind })),
    };
    if (row.artifact_type !== null) rec.artifactType = row.artifact_type;
    if (row.subject !== null) rec.subject = row.subject;
    if (row.annotations !== null) rec.annotations = JSON.parse(row.annotations) as Record<string, string>;
    return rec;
  }

  async getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    const row = this.s.getManifest.get(repo, digest);
    if (!row) return undefined;
    return this.toManifest(row, this.s.repoId.get(repo)!.id);
  }

  async resolveTag(repo: string, tag: string): Promise<string | undefined> {
    return this.s.resolveTag.get(repo, tag)?.digest;
  }

  async tagsOf(repo: string, digest: string): Promise<string[]> {
    return this.s.tagsOf.all(repo, digest).map((r) => r.name);
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const id = this.s.repoId.get(repo)?.id;
    if (id === undefined) return false;
    // Tags and references cascade with the manifest row: one statement, one transaction.
    const gone = this.s.deleteManifest.run(id, digest).changes > 0;
    await this.durable();
    return gone;
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    const gone = this.s.deleteTag.run(repo, tag).changes > 0;
    await this.durable();
    return gone;
  }

  private untagTx: ((repo: string, tag: string) => { digest: string; manifestRemoved: boolean } | undefined) | undefined;

  async untag(repo: string, tag: string): Promise<{ digest: string; manifestRemoved: boolean } | undefined> {
    this.untagTx ??= this.db.transaction((r: string, t: string) => {
      const digest = this.s.resolveTag.get(r, t)?.digest;
      if (digest === undefined) return undefined;
      this.s.deleteTag.run(r, t);
      let manifestRemoved = false;
      if (this.s.tagsOf.all(r, digest).length === 0) {
        const id = this.s.repoId.get(r)?.id;
        if (id !== undefined) manifestRemoved = this.s.deleteManifest.run(id, digest).changes > 0;
      }
      return { digest, manifestRemoved };
    });
    const result = this.untagTx(repo, tag);
    if (result) await this.durable();
    return result;
  }

  async listTags(repo: string, page: Page = {}): Promise<string[] | undefined> {
    const id = this.s.repoId.get(repo)?.id;
    if (id === undefined) return undefined;
    return this.s.listTags.all(id, page.last ?? '', clampPage(page.n)).map((r) => r.name);
  }

  async listManifests(repo: string): Promise<ManifestRecord[]> {
    const id = this.s.repoId.get(repo)?.id;
    if (id === undefined) return [];
    return this.s.listManifests.all(repo).map((r) => this.toManifest(r, id));
  }

  async repositoryExists(repo: string): Promise<boolean> {
    return this.s.repoId.get(repo) !== undefined;
  }

  async listRepositories(page: Page = {}): Promise<string[]> {
    return this.s.listRepos.all(page.last ?? '', clampPage(page.n)).map((r) => r.name);
  }

  async listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const id = this.s.repoId.get(repo)?.id;
    if (id === undefined) return [];
    return this.s.referrers
      .all(repo, subject)
      .filter((r) => artifactType === undefined || r.artifact_type === artifactType)
      .map((r) => this.toManifest(r, id));
  }

  async isReferenced(digest: string): Promise<boolean> {
    return this.s.isReferenced.get(digest, digest) !== undefined;
  }

  async createUpload(rec: UploadRecord): Promise<void> {
    this.s.insertUpload.run(rec);
    await this.durable();
  }

  async getUpload(id: string): Promise<UploadRecord | undefined> {
    const row = this.s.getUpload.get(id);
    return row ? toUpload(row) : undefined;
  }

  async updateUploadOffset(id: string, offset: number, updatedAt: number): Promise<void> {
    this.s.updateUpload.run(offset, updatedAt, id);
    await this.durable();
  }

  async deleteUpload(id: string): Promise<void> {
    this.s.deleteUpload.run(id);
    await this.durable();
  }

  async listUploads(updatedBefore: number = Number.MAX_SAFE_INTEGER): Promise<UploadRecord[]> {
    return this.s.listUploads.all(updatedBefore).map(toUpload);
  }

  async countUploads(principal: string): Promise<number> {
    return this.s.countUploads.get(principal)!.n;
  }

  async liveDigests(): Promise<Set<string>> {
    const live = new Set<string>();
    const read = this.db.transaction(() => {
      for (const r of this.s.liveManifests.iterate()) live.add(r.digest);
      for (const r of this.s.liveRefs.iterate()) live.add(r.ref_digest);
    });
    read();
    return live;
  }

  async releaseUnreferenced(digest: string): Promise<boolean> {
    this.releaseTx ??= this.db.transaction((d: string) => {
      if (this.s.isReferenced.get(d, d) !== undefined) return false;
      this.s.unlinkEverywhere.run(d);
      return true;
    });
    const released = this.releaseTx.immediate(digest);
    await this.durable();
    return released;
  }
  private releaseTx: Database.Transaction<(d: string) => boolean> | undefined;

  async blobLinkCount(digest: string): Promise<number> {
    return this.s.linkCount.get(digest)!.n;
  }

  async close(): Promise<void> {
    // Let a sync in flight finish before its fd goes away (closing checkpoints and syncs by itself).
    await this.walSync?.settled();
    if (this.db.open) this.db.close();
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
  }
}

function clampPage(n: number | undefined): number {
  if (n === undefined || !Number.isFinite(n)) return MAX_PAGE;
  return Math.max(0, Math.min(MAX_PAGE, Math.floor(n)));
}
