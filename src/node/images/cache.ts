/**
 * The node's image cache budget (issue 13, item 3): the bytes the node keeps for images (its
 * local registry's blobs and the prepared root filesystems) are held under `budgetBytes`
 * (`ukcd node --image-cache-mib`, default DEFAULT_IMAGE_CACHE_BYTES) by evicting images, least
 * recently used first.
 *
 * Invariants:
 *  - Only images this node PULLED from the central registry are ever evicted: they can be pulled
 *    again by the reference an instance records (`repository@digest`). An image pushed to the
 *    node, or pulled from another allowed registry, is never evicted (it may be the only copy,
 *    or not re-pullable under its cached name).
 *  - Never an image a live or standby instance needs (`inUse`), nor one used in the last
 *    EVICTION_GRACE_MS (a create that resolved it has not recorded its instance yet).
 *  - An evicted image's manifest goes first; a blob (and the rootfs prepared from it) goes only
 *    when no other manifest references it (the registry gc's one-transaction release).
 *  - Use times survive restarts: `<stateFile>` (JSON, written atomically) maps each evictable
 *    image to the last time an instance was created or started from it.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../util/index.js';

/** Default budget: 20 GiB. */
export const DEFAULT_IMAGE_CACHE_BYTES = 20 * 1024 * 1024 * 1024;
/** An image used this recently is never evicted (its instance may not be recorded yet). */
export const EVICTION_GRACE_MS = 60_000;

export interface ImageCacheOptions {
  /** Most bytes kept for images (registry blobs + prepared root filesystems). */
  budgetBytes: number;
  /** Where use times persist. */
  stateFile: string;
  /** Images (`repository@digest`) live or standby instances need; undefined while not known yet (no eviction then). */
  inUse: () => ReadonlySet<string> | undefined;
  /** Bytes the cache holds now. */
  measure: () => Promise<number>;
  /** Removes one image (its manifest, then blobs and rootfs nobody else references). */
  evict: (digestRef: string) => Promise<void>;
  /** Default EVICTION_GRACE_MS. */
  graceMs?: number;
  now?: () => number;
}

interface Entry {
  lastUsed: number;
}

export interface EvictionReport {
  before: number;
  after: number;
  evicted: string[];
}

export class ImageCacheBudget {
  private readonly entries = new Map<string, Entry>();
  private running: Promise<EvictionReport> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly options: ImageCacheOptions) {
    this.now = options.now ?? Date.now;
    try {
      const doc = JSON.parse(readFileSync(options.stateFile, 'utf8')) as Record<string, unknown>;
      for (const [ref, e] of Object.entries(doc)) {
        const lastUsed = (e as { lastUsed?: unknown } | null)?.lastUsed;
        if (typeof lastUsed === 'number' && Number.isFinite(lastUsed)) this.entries.set(ref, { lastUsed });
      }
    } catch {
      // no state yet (or unreadable: every image counts as unused since long)
    }
  }

  get budgetBytes(): number {
    return this.options.budgetBytes;
  }

  /** Records that `digestRef` was pulled (it becomes evictable) or used again (if it is). */
  touch(digestRef: string, pulled: boolean): void {
    const e = this.entries.get(digestRef);
    if (!e && !pulled) return;
    this.entries.set(digestRef, { lastUsed: this.now() });
    this.save();
  }

  /** Evictable images, least recently used first. */
  candidates(): string[] {
    return [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed).map(([ref]) => ref);
  }

  /**
   * Evicts until the cache fits the budget (one pass at a time; concurrent calls share it).
   * `keep`: the image being resolved right now, never evicted by its own pull.
   */
  enforce(keep?: string): Promise<EvictionReport> {
    this.running ??= this.pass(keep).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(keep: string | undefined): Promise<EvictionReport> {
    const before = await this.options.measure();
    const report: EvictionReport = { before, after: before, evicted: [] };
    if (before <= this.options.budgetBytes) return report;
    const inUse = this.options.inUse();
    if (inUse === undefined) return report;
    const now = this.now();
    for (const ref of this.candidates()) {
      if (report.after <= this.options.budgetBytes) break;
      const e = this.entries.get(ref)!;
      if (ref === keep || inUse.has(ref) || now - e.lastUsed < (this.options.graceMs ?? EVICTION_GRACE_MS)) continue;
      await this.options.evict(ref);
      this.entries.delete(ref);
      this.save();
      report.evicted.push(ref);
      report.after = await this.options.measure();
    }
    return report;
  }

  /** Writes are chained (one at a time, the latest table last). */
  private save(): void {
    const text = JSON.stringify(Object.fromEntries(this.entries));
    // Use times are a hint: losing them makes eviction order coarser, never unsafe.
    this.saving = this.saving.then(() => writeFileAtomic(this.options.stateFile, text)).catch(() => undefined);
  }

  /** Resolves once the use times written so far are on disk. */
  flushed(): Promise<void> {
    return this.saving;
  }
}
