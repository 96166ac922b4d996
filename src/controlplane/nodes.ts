/**
 * Nodes and metros. A node registers itself (name, metro, API and local
 * registry addresses) and then reports its health periodically; the control
 * plane marks a node `unhealthy` when it said so and `offline` when it has not
 * reported for `offlineAfterMs`. A metro is the set of nodes sharing its name;
 * its API address is that of its first healthy node.
 *
 * Records live in SQLite (`controlplane.db`); a registration with a known name
 * updates that node's record (a restarted node keeps its uuid).
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';

export type NodeState = 'healthy' | 'unhealthy' | 'offline';

export interface NodeRecord {
  uuid: string;
  name: string;
  metro: string;
  api: string;
  registry: string | null;
  registeredAt: number;
  lastSeenAt: number;
  /** What the node last reported. */
  healthy: boolean;
  instances: number | null;
}

export interface MetroRecord {
  name: string;
  api: string | null;
  registry: string | null;
  nodes: number;
  healthyNodes: number;
}

export interface NodeDirectoryOptions {
  path: string;
  /** A node silent this long is `offline`. */
  offlineAfterMs?: number;
  /** Nodes registered at most. */
  maxNodes?: number;
  now?: () => number;
}

export const DEFAULT_NODE_DIRECTORY_LIMITS = { offlineAfterMs: 60_000, maxNodes: 10_000 };

export class NodeDirectoryError extends Error {
  constructor(
    readonly kind: 'not-found' | 'invalid' | 'full',
    message: string,
  ) {
    super(message);
    this.name = 'NodeDirectoryError';
  }
}

interface Row {
  uuid: string;
  name: string;
  metro: string;
  api: string;
  registry: string | null;
  registered_at: number;
  last_seen_at: number;
  healthy: number;
  instances: number | null;
}

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function toRecord(r: Row): NodeRecord {
  return {
    uuid: r.uuid,
    name: r.name,
    metro: r.metro,
    api: r.api,
    registry: r.registry,
    registeredAt: r.registered_at,
    lastSeenAt: r.last_seen_at,
    healthy: r.healthy === 1,
    instances: r.instances,
  };
}

function checkUrl(what: string, text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new NodeDirectoryError('invalid', `${what} must be an http(s) URL`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || text.length > 512) {
    throw new NodeDirectoryError('invalid', `${what} must be an http(s) URL without credentials`);
  }
  return u.toString().replace(/\/+$/, '');
}

export class NodeDirectory {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly offlineAfterMs: number;
  private readonly maxNodes: number;

  constructor(options: NodeDirectoryOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS nodes (
      uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, metro TEXT NOT NULL, api TEXT NOT NULL, registry TEXT,
      registered_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, healthy INTEGER NOT NULL, instances INTEGER)`);
    this.now = options.now ?? Date.now;
    this.offlineAfterMs = options.offlineAfterMs ?? DEFAULT_NODE_DIRECTORY_LIMITS.offlineAfterMs;
    this.maxNodes = options.maxNodes ?? DEFAULT_NODE_DIRECTORY_LIMITS.maxNodes;
  }

  close(): void {
    this.db.close();
  }

  stateOf(n: NodeRecord): NodeState {
    if (this.now() - n.lastSeenAt > this.offlineAfterMs) return 'offline';
    return n.healthy ? 'healthy' : 'unhealthy';
  }

  register(req: { name: string; metro: string; api: string; registry?: string }): NodeRecord {
    if (!NAME_RE.test(req.name)) throw new NodeDirectoryError('invalid', 'node name must be a DNS label');
    if (!NAME_RE.test(req.metro)) throw new NodeDirectoryError('invalid', 'metro must be a DNS label');
    const api = checkUrl('api', req.api);
    const registry = req.registry === undefined ? null : req.registry;
    if (registry !== null && !/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(registry)) {
      throw new NodeDirectoryError('invalid', 'registry must be host[:port]');
    }
    const now = this.now();
    return this.db.transaction(() => {
      const existing = this.db.prepare('SELECT * FROM nodes WHERE name = ?').get(req.name) as Row | undefined;
      if (existing) {
        this.db
          .prepare('UPDATE nodes SET metro = ?, api = ?, registry = ?, last_seen_at = ?, healthy = 1 WHERE uuid = ?')
          .run(req.metro, api, registry, now, existing.uuid);
        return toRecord(this.db.prepare('SELECT * FROM nodes WHERE uuid = ?').get(existing.uuid) as Row);
      }
      const count = (this.db.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n;
      if (count >= this.maxNodes) throw new NodeDirectoryError('full', `at most ${this.maxNodes} nodes`);
      const uuid = randomUUID();
      this.db
        .prepare('INSERT INTO nodes (uuid, name, metro, api, registry, registered_at, last_seen_at, healthy, instances) VALUES (?, ?, ?, ?, ?, ?, ?, 1, NULL)')
        .run(uuid, req.name, req.metro, api, registry, now, now);
      return toRecord(this.db.prepare('SELECT * FROM nodes WHERE uuid = ?').get(uuid) as Row);
    }).immediate();
  }

  reportHealth(uuid: string, report: { healthy: boolean; instances?: number }): NodeRecord {
    const info = this.db
      .prepare('UPDATE nodes SET last_seen_at = ?, healthy = ?, instances = ? WHERE uuid = ?')
      .run(this.now(), report.healthy ? 1 : 0, report.instances ?? null, uuid);
    if (info.changes === 0) throw new NodeDirectoryError('not-found', 'no such node');
    return this.get(uuid);
  }

  get(uuidOrName: string): NodeRecord {
    const row = this.db.prepare('SELECT * FROM nodes WHERE uuid = ? OR name = ?').get(uuidOrName, uuidOrName) as Row | undefined;
    if (!row) throw new NodeDirectoryError('not-found', 'no such node');
    return toRecord(row);
  }

  list(): NodeRecord[] {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY metro, name').all() as Row[]).map(toRecord);
  }

  remove(uuidOrName: string): NodeRecord {
    const n = this.get(uuidOrName);
    this.db.prepare('DELETE FROM nodes WHERE uuid = ?').run(n.uuid);
    return n;
  }

  metros(): MetroRecord[] {
    const byMetro = new Map<string, MetroRecord>();
    for (const n of this.list()) {
      const m = byMetro.get(n.metro) ?? { name: n.metro, api: null, registry: null, nodes: 0, healthyNodes: 0 };
      m.nodes++;
      if (this.stateOf(n) === 'healthy') {
        m.healthyNodes++;
        if (m.api === null) {
          m.api = n.api;
          m.registry = n.registry;
        }
      }
      byMetro.set(n.metro, m);
    }
    return [...byMetro.values()];
  }
}
