/**
 * Serialises async work per key (one upload session, one directory, one instance),
 * without a global lock. The one keyed mutex of the project (store's, node's).
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Resolves when every run queued so far (on any key) has finished, whatever its outcome. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}
