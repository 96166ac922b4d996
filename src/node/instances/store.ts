/**
 * Instance records in SQLite (better-sqlite3, WAL). Layout, schema version 1:
 *
 *   instances(uuid TEXT PRIMARY KEY, owner TEXT, name TEXT, state TEXT,
 *             created_at INTEGER, record TEXT  -- the full InstanceRecord as JSON)
 *   UNIQUE(owner, name)                          -- names are unique per account
 *
 * The indexed columns are copies of fields inside `record`, always written in
 * the same statement. Every multi-row change runs in one transaction, so a
 * crash never leaves half of a replica set behind.
 */
import Database from 'better-sqlite3';
import { Errno, NodeError } from '../errors.js';
import type { InstanceRecord } from './model.js';

export const INSTANCE_SCHEMA_VERSION = 1;

interface Row {
  record: string;
}

export class InstanceStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > INSTANCE_SCHEMA_VERSION)
      throw new Error(`instance database has schema ${version}, newer than this build (${INSTANCE_SCHEMA_VERSION})`);
    if (version === INSTANCE_SCHEMA_VERSION) return;
    this.db.transaction(() => {
      this.db.exec(`
        CREATE TABLE instances (
          uuid TEXT PRIMARY KEY,
          owner TEXT NOT NULL,
          name TEXT NOT NULL,
          state TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          record TEXT NOT NULL,
          UNIQUE (owner, name)
        );
        CREATE INDEX instances_state ON instances(state);
      `);
      this.db.pragma(`user_version = ${INSTANCE_SCHEMA_VERSION}`);
    })();
  }

  /** Inserts all records or none; EEXIST when a name is taken in its account. */
  insertAll(records: readonly InstanceRecord[]): void {
    const insert = this.db.prepare(
      'INSERT INTO instances (uuid, owner, name, state, created_at, record) VALUES (?, ?, ?, ?, ?, ?)',
    );
    try {
      this.db.transaction(() => {
        for (const r of records) insert.run(r.uuid, r.owner, r.name, r.state, r.createdAt, JSON.stringify(r));
      })();
    } catch (err) {
      if (err instanceof Error && (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new NodeError(Errno.EEXIST, 'an instance with this name already exists');
      throw err;
    }
  }

  get(uuid: string): InstanceRecord | undefined {
    const row = this.db.prepare('SELECT record FROM instances WHERE uuid = ?').get(uuid) as Row | undefined;
    return row ? (JSON.parse(row.record) as InstanceRecord) : undefined;
  }

  getByName(owner: string, name: string): InstanceRecord | undefined {
    const row = this.db.prepare('SELECT record FROM instances WHERE owner = ? AND name = ?').get(owner, name) as
      | Row
      | undefined;
    return row ? (JSON.parse(row.record) as InstanceRecord) : undefined;
  }

  nameTaken(owner: string, name: string): boolean {
    return this.db.prepare('SELECT 1 FROM instances WHERE owner = ? AND name = ?').get(owner, name) !== undefined;
  }

  /** All records, oldest first; only `owner`'s when given. */
  list(owner?: string): InstanceRecord[] {
    const rows = (
      owner === undefined
        ? this.db.prepare('SELECT record FROM instances ORDER BY created_at, name').all()
        : this.db.prepare('SELECT record FROM instances WHERE owner = ? ORDER BY created_at, name').all(owner)
    ) as Row[];
    return rows.map((r) => JSON.parse(r.record) as InstanceRecord);
  }

  /** Replaces the stored record (same uuid). Returns false when it no longer exists. */
  put(record: InstanceRecord): boolean {
    const res = this.db
      .prepare('UPDATE instances SET name = ?, state = ?, record = ? WHERE uuid = ?')
      .run(record.name, record.state, JSON.stringify(record), record.uuid);
    return res.changes === 1;
  }

  delete(uuid: string): boolean {
    return this.db.prepare('DELETE FROM instances WHERE uuid = ?').run(uuid).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}
