/**
 * The node-wide allocator of host id ranges for instances' user namespaces:
 * range k is [first + k * 65536, first + (k + 1) * 65536), mapped to uid/gid
 * 0..65535 inside one instance. Each live run holds its own range, so no two
 * instances (of the same tenant or not) share host ids.
 *
 * Invariants:
 *  - A range is taken at start and given back when the run's leftovers are
 *    cleaned up (micro.ts `cleanup`), never earlier.
 *  - The range is recorded in the run's ref.json; the driver's `init` reserves
 *    every range a run directory records before any new start, so a node
 *    restarted after `kill -9` never hands out a range still in use, and
 *    `adopt` re-reserves it (idempotent).
 */
export const USERNS_SIZE = 65536;

export class HostIdRanges {
  private readonly used = new Set<number>();

  constructor(
    /** First host uid/gid handed out (the default leaves the usual /etc/subuid area, 100000.., alone). */
    readonly first: number,
    /** How many ranges exist. */
    readonly count: number,
  ) {
    if (!Number.isSafeInteger(first) || first < 1 || !Number.isSafeInteger(count) || count < 1 || first + count * USERNS_SIZE > 2 ** 32 - 1) {
      throw new RangeError('host id ranges must lie within 1 .. 2^32-2');
    }
  }

  /** The base of a free range; ENOSPC-like Error when every range is taken. */
  take(): number {
    for (let k = 0; k < this.count; k++) {
      const base = this.first + k * USERNS_SIZE;
      if (!this.used.has(base)) {
        this.used.add(base);
        return base;
      }
    }
    throw new Error(`all ${this.count} user namespace id ranges are in use`);
  }

  /** Marks a recorded range as taken (recovery); false when it is not one of ours. */
  reserve(base: number): boolean {
    if (!this.owns(base)) return false;
    this.used.add(base);
    return true;
  }

  release(base: number | undefined): void {
    if (base !== undefined) this.used.delete(base);
  }

  owns(base: number): boolean {
    return Number.isSafeInteger(base) && base >= this.first && (base - this.first) % USERNS_SIZE === 0 && (base - this.first) / USERNS_SIZE < this.count;
  }

  get inUse(): number {
    return this.used.size;
  }
}
