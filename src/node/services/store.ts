/**
 * Service group records in SQLite (better-sqlite3, WAL). Schema version 1:
 *
 *   service_groups(uuid TEXT PRIMARY KEY, owner TEXT, name TEXT,
 *                  created_at INTEGER, record TEXT -- ServiceGroupRecord as JSON)
 *     UNIQUE(owner, name)
 *   service_domains(fqdn TEXT PRIMARY KEY, group_uuid TEXT)
 *     -- one row per domain of every group: a public hostname routes to exactly one group
 *
 * A group and its domain rows change together in one transaction.
 * Membership is not stored here: an instance names its group (`serviceGroup.uuid`).
 */
import Database from 'better-sqlite3';
import { Errno, NodeError } from '../errors.js';
import type { NormalizedService } from '../../client/index.js';

export const SERVICE_SCHEMA_VERSION = 1;

export interface DomainRecord {
  fqdn: string;
  certificate?: { uuid: string; name: string };
}

export interface ServiceGroupRecord {
  uuid: string;
  name: string;
  owner: string;
  createdAt: number;
  services: NormalizedService[];
  domains: DomainRecord[];
  softLimit: number | null;
  hardLimit: number | null;
  /** False for groups created inline with an instance: deleted with their last instance. */
  persistent: boolean;
}

export class ServiceGroupStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SERVICE_SCHEMA_VERSION)
      throw new Error(`service database has schema ${version}, newer than this build (${SERVICE_SCHEMA_VERSION})`);
    if (version < SERVICE_SCHEMA_VERSION) {
      this.db.transaction(() => {
        this.db.exec(`
          CREATE TABLE service_groups (
            uuid TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
            created_at INTEGER NOT NULL, record TEXT NOT NULL, UNIQUE (owner, name));
          CREATE TABLE service_domains (fqdn TEXT PRIMARY KEY, group_uuid TEXT NOT NULL);
        `);
        this.db.pragma(`user_version = ${SERVICE_SCHEMA_VERSION}`);
      })();
    }
  }

  private writeDomains(g: ServiceGroupRecord): void {
    this.db.prepare('DELETE FROM service_domains WHERE group_uuid = ?').run(g.uuid);
    const ins = this.db.prepare('INSERT INTO service_domains (fqdn, group_uuid) VALUES (?, ?)');
    for (const d of g.domains) ins.run(d.fqdn, g.uuid);
  }

  /** EEXIST when the name is taken in the account or a domain is used by another group. */
  insert(g: ServiceGroupRecord): void {
    this.guard(() =>
      this.db.transaction(() => {
        this.db
          .prepare('INSERT INTO service_groups (uuid, owner, name, created_at, record) VALUES (?, ?, ?, ?, ?)')
          .run(g.uuid, g.owner, g.name, g.createdAt, JSON.stringify(g));
        this.writeDomains(g);
      })(),
    );
  }

  put(g: ServiceGroupRecord): void {
    this.guard(() =>
      this.db.transaction(() => {
        this.db.prepare('UPDATE service_groups SET name = ?, record = ? WHERE uuid = ?').run(g.name, JSON.stringify(g), g.uuid);
        this.writeDomains(g);
      })(),
    );
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
        throw new NodeError(Errno.EEXIST, 'a service group with this name or domain already exists');
      throw err;
    }
  }

  get(uuid: string): ServiceGroupRecord | undefined {
    const row = this.db.prepare('SELECT record FROM service_groups WHERE uuid = ?').get(uuid) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as ServiceGroupRecord) : undefined;
  }

  getByName(owner: string, name: string): ServiceGroupRecord | undefined {
    const row = this.db.prepare('SELECT record FROM service_groups WHERE owner = ? AND name = ?').get(owner, name) as
      | { record: string }
      | undefined;
    return row ? (JSON.parse(row.record) as ServiceGroupRecord) : undefined;
  }

  nameTaken(owner: string, name: string): boolean {
    return this.db.prepare('SELECT 1 FROM service_groups WHERE owner = ? AND name = ?').get(owner, name) !== undefined;
  }

  /** The group owning `fqdn`, if any. */
  domainOwner(fqdn: string): string | undefined {
    const row = this.db.prepare('SELECT group_uuid FROM service_domains WHERE fqdn = ?').get(fqdn) as { group_uuid: string } | undefined;
    return row?.group_uuid;
  }

  list(): ServiceGroupRecord[] {
    const rows = this.db.prepare('SELECT record FROM service_groups ORDER BY created_at, name').all() as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as ServiceGroupRecord);
  }

  delete(uuid: string): boolean {
    let changed = false;
    this.db.transaction(() => {
      changed = this.db.prepare('DELETE FROM service_groups WHERE uuid = ?').run(uuid).changes === 1;
      this.db.prepare('DELETE FROM service_domains WHERE group_uuid = ?').run(uuid);
    })();
    return changed;
  }

  close(): void {
    this.db.close();
  }
}
