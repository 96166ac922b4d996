/**
 * Group commit for fsync-like operations.
 *
 * Invariant: a promise returned by `request()` settles with the outcome of a
 * run of `work` that *started after* `request()` was called. So whatever the
 * caller wrote before asking is covered by that run, and concurrent callers
 * share one run instead of queueing one each: at most one run is in flight and
 * at most one more is waiting to start (every new caller joins that one).
 * A failed run rejects every caller that joined it; the next request starts a
 * fresh run.
 */
export class CoalescedSync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** Runs of `work` started so far (for tests and metrics). */
  runs = 0;

  constructor(private readonly work: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.queued) return this.queued;
    const prev = this.running ?? Promise.resolve();
    const p: Promise<void> = prev
      .catch(() => undefined)
      .then(() => {
        // From here on new callers must wait for a later run: this one may
        // already have missed their writes.
        this.queued = undefined;
        this.running = p;
        this.runs++;
        return this.work();
      })
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.queued = p;
    return p;
  }

  /** Resolves when no run is in flight or waiting (without starting one). */
  async settled(): Promise<void> {
    for (let p = this.queued ?? this.running; p; p = this.queued ?? this.running) await p.catch(() => undefined);
  }

  /** True while a run is in flight or waiting. */
  get busy(): boolean {
    return this.running !== undefined || this.queued !== undefined;
  }
}
