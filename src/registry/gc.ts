/**
 * Garbage collection: mark, then sweep.
 *
 * Mark: every manifest present in any repository, and every blob or manifest
 * they reference. Sweep: every stored blob not marked AND last committed
 * before now - gracePeriod. The grace period is what keeps in-flight work
 * safe: a blob pushed just before the manifest that will name it is younger
 * than the grace period. Each removal first drops the blob's repository links
 * in one metadata transaction that re-checks nothing references it (so a
 * manifest committed meanwhile wins), then removes the bytes only if they were
 * not re-committed meanwhile (see BlobStore.delete olderThan).
 */
import type { BlobStore, MetadataStore } from '../store/index.js';

export interface GcOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Blobs younger than this (ms) are never swept. Default one hour. */
  gracePeriodMs?: number;
  /** Report what would go; change nothing. */
  dryRun?: boolean;
  now?: () => number;
}

export interface GcReport {
  marked: number;
  /** Digests removed (or, in a dry run, that would be). */
  swept: string[];
  bytesFreed: number;
  /** Unreferenced but younger than the grace period. */
  keptInGrace: number;
}

export const DEFAULT_GC_GRACE_PERIOD_MS = 60 * 60 * 1000;

export async function collectGarbage(opts: GcOptions): Promise<GcReport> {
  const now = (opts.now ?? Date.now)();
  const cutoff = now - (opts.gracePeriodMs ?? DEFAULT_GC_GRACE_PERIOD_MS);
  const live = await opts.metadata.liveDigests();
  const report: GcReport = { marked: live.size, swept: [], bytesFreed: 0, keptInGrace: 0 };
  for await (const digest of opts.blobs.list()) {
    if (live.has(digest.text)) continue;
    const st = await opts.blobs.stat(digest);
    if (!st) continue;
    if (st.modifiedAt >= cutoff) {
      report.keptInGrace++;
      continue;
    }
    if (opts.dryRun) {
      if (!(await opts.metadata.isReferenced(digest.text))) {
        report.swept.push(digest.text);
        report.bytesFreed += st.size;
      }
      continue;
    }
    if (!(await opts.metadata.releaseUnreferenced(digest.text))) continue;
    if (await opts.blobs.delete(digest, { olderThan: cutoff })) {
      report.swept.push(digest.text);
      report.bytesFreed += st.size;
    }
  }
  return report;
}
