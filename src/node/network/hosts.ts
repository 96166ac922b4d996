/**
 * `<name>.internal` per tenant: one hosts file per account, bind-mounted
 * read-only as the instance's /etc/hosts, listing only that account's
 * instances (plus localhost and `node.internal`). Another account's instance
 * with the same name is simply absent, so it can never shadow or be reached
 * by name. Names are unique per account (the instance store's
 * UNIQUE(owner, name)), so each file names an instance at most once.
 *
 * Invariants:
 *  - A file is rewritten in place (same inode: write, then truncate), because
 *    every instance of the account sees it through a bind mount of that inode.
 *  - File names are a hash of the account name, never the name itself (any
 *    account name is safe as a path).
 *  - A file whose account has no instance left is removed (a later start
 *    makes a new one before it is mounted).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface HostsEntry {
  ip: string;
  name: string;
}

export class TenantHosts {
  constructor(
    readonly dir: string,
    private readonly nodeIp: string,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  }

  /** The hosts file of `owner`'s instances. */
  pathFor(owner: string): string {
    return join(this.dir, createHash('sha256').update(owner).digest('hex').slice(0, 24));
  }

  /** Writes `owner`'s file with `entries` (in place); removes it when there are none. */
  write(owner: string, entries: readonly HostsEntry[]): void {
    const path = this.pathFor(owner);
    if (entries.length === 0) {
      rmSync(path, { force: true });
      return;
    }
    const lines = ['127.0.0.1\tlocalhost', `${this.nodeIp}\tnode.internal`, ...entries.map((e) => `${e.ip}\t${e.name}.internal`)];
    const fd = openSync(path, existsSync(path) ? 'r+' : 'w', 0o644);
    try {
      const data = Buffer.from(lines.join('\n') + '\n');
      // Write first, then cut: a reader never sees an empty file.
      writeSync(fd, data, 0, data.length, 0);
      ftruncateSync(fd, data.length);
    } finally {
      closeSync(fd);
    }
  }

  /** Removes the files of accounts not in `owners` (left by instances gone while the node was down). */
  prune(owners: Iterable<string>): void {
    const keep = new Set([...owners].map((o) => this.pathFor(o)));
    for (const f of readdirSync(this.dir)) if (!keep.has(join(this.dir, f))) rmSync(join(this.dir, f), { force: true });
  }
}
