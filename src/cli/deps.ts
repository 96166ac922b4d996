/** What the CLI's commands get injected (tests pass their own): the clock, the platform transport, sleep. Loaded on every start, so light. */
import { setTimeout as delay } from 'node:timers/promises';
import type { PlatformTransport } from '../client/index.js';

export interface CliDeps {
  now: () => number;
  /** How platform API requests are sent (default node:http). */
  transport?: PlatformTransport;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const defaultDeps: CliDeps = {
  now: Date.now,
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}).then(() => undefined),
};
