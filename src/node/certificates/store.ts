/**
 * User certificates (`/v1/certificates`) in SQLite, schema version 1:
 *
 *   certificates(uuid TEXT PRIMARY KEY, owner TEXT, name TEXT, created_at INTEGER,
 *                record TEXT -- CertificateRecord as JSON, private key included)
 *     UNIQUE(owner, name)
 *
 * The database file holds private keys, so it (and its WAL/SHM files) is
 * created 0600 under a 0700 directory.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Errno, NodeError } from '../errors.js';

export interface CertificateRecord {
  uuid: string;
  name: string;
  owner: string;
  createdAt: number;
  commonName: string;
  /** DNS names the certificate is valid for (SANs, else the CN). */
  hostnames: string[];
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: number;
  notAfter: number;
  chainPem: string;
  keyPem: string;
}

export class CertificateStore {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    for (const f of [`${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > 1) throw new Error(`certificate database has schema ${version}, newer than this build (1)`);
    if (version < 1) {
      this.db.transaction(() => {
        this.db.exec(`CREATE TABLE certificates (
          uuid TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
          created_at INTEGER NOT NULL, record TEXT NOT NULL, UNIQUE (owner, name));`);
        this.db.pragma('user_version = 1');
      })();
    }
  }

  insert(c: CertificateRecord): void {
    try {
      this.db
        .prepare('INSERT INTO certificates (uuid, owner, name, created_at, record) VALUES (?, ?, ?, ?, ?)')
        .run(c.uuid, c.owner, c.name, c.createdAt, JSON.stringify(c));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new NodeError(Errno.EEXIST, `a certificate named ${c.name} already exists`);
      throw err;
    }
  }

  /** Replaces a stored record's material (uuid, owner, name and creation time stay). */
  replace(c: CertificateRecord): void {
    this.db.prepare('UPDATE certificates SET record = ? WHERE uuid = ?').run(JSON.stringify(c), c.uuid);
  }

  get(uuid: string): CertificateRecord | undefined {
    const row = this.db.prepare('SELECT record FROM certificates WHERE uuid = ?').get(uuid) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as CertificateRecord) : undefined;
  }

  getByName(owner: string, name: string): CertificateRecord | undefined {
    const row = this.db.prepare('SELECT record FROM certificates WHERE owner = ? AND name = ?').get(owner, name) as
      | { record: string }
      | undefined;
    return row ? (JSON.parse(row.record) as CertificateRecord) : undefined;
  }

  list(): CertificateRecord[] {
    const rows = this.db.prepare('SELECT record FROM certificates ORDER BY created_at, name').all() as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as CertificateRecord);
  }

  delete(uuid: string): boolean {
    return this.db.prepare('DELETE FROM certificates WHERE uuid = ?').run(uuid).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}
