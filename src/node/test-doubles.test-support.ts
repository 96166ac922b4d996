/**
 * Test doubles for the node's unit tests ONLY (never imported by product
 * code): a hand-driven clock, a scripted runtime driver, an in-memory image
 * resolver and catalog. The real driver (sandbox `micro`) and resolver
 * (local registry + central pull) are supplied by the integration.
 */
import { setImmediate as flushMacrotask } from 'node:timers/promises';
import { Errno, NodeError } from './errors.js';
import type { Clock, TimerHandle } from './clock.js';
import type { AdoptRequest, InstanceSpec, RuntimeDriver, RuntimeEvent, RuntimeHandle, RuntimeHooks } from './runtime/driver.js';
import type { ImageRequest, ImageResolver, ResolvedImage } from './images/resolver.js';
import type { CatalogImage, ImageCatalog } from './images/catalog.js';

export class ManualClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  constructor(private current = Date.UTC(2025, 0, 1)) {}
  now(): number {
    return this.current;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return { cancel: () => (this.timers = this.timers.filter((t) => t !== timer)) };
  }
  pending(): number[] {
    return this.timers.map((t) => t.at - this.current).sort((a, b) => a - b);
  }
  /** Moves time forward, firing due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (let i = 0; i < 10_000; i++) {
      await settle();
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = due.at;
      due.fn();
    }
    this.current = target;
    await settle();
  }
}

/** Lets queued promise chains and immediates run (bounded). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await flushMacrotask();
}

interface FakeRun {
  spec: InstanceSpec;
  hooks: RuntimeHooks;
  alive: boolean;
  ref: string;
}

/** A scripted driver: runs "start" at once, exits on demand, obeys stop unless told to ignore it. */
export class FakeDriver implements RuntimeDriver {
  readonly runs: FakeRun[] = [];
  /** Instance names whose start throws. */
  failStart = new Set<string>();
  /** Instance names that ignore a graceful stop (need a kill). */
  ignoreStop = new Set<string>();
  /** Runtime refs that survive a controller restart. */
  survivors = new Map<string, RuntimeHooks | undefined>();
  autoStarted = true;
  private nextRef = 0;

  current(name: string): FakeRun | undefined {
    return [...this.runs].reverse().find((r) => r.spec.name === name && r.alive);
  }

  emit(run: FakeRun, event: RuntimeEvent): void {
    if (!run.alive) return;
    if (event.type === 'exited') run.alive = false;
    run.hooks.onEvent(event);
  }

  exit(name: string, event: { code: number | null; signal?: NodeJS.Signals | null; oom?: boolean }): void {
    const run = this.current(name);
    if (!run) throw new Error(`no live run for ${name}`);
    this.emit(run, { type: 'exited', code: event.code, signal: event.signal ?? null, oom: event.oom ?? false });
  }

  private handle(run: FakeRun): RuntimeHandle {
    return {
      runtimeRef: run.ref,
      stop: async () => {
        if (!this.ignoreStop.has(run.spec.name)) setImmediate(() => this.emit(run, { type: 'exited', code: 0, signal: null, oom: false }));
      },
      kill: async () => {
        setImmediate(() => this.emit(run, { type: 'exited', code: null, signal: 'SIGKILL', oom: false }));
      },
      stats: async () => ({ rssBytes: 4096 * 100, cpuTimeUs: 1500 }),
      detach: () => {
        this.survivors.set(run.ref, undefined);
      },
    };
  }

  async start(spec: InstanceSpec, hooks: RuntimeHooks): Promise<RuntimeHandle> {
    await Promise.resolve();
    if (this.failStart.has(spec.name)) throw new NodeError(Errno.ENOENT, 'rootfs missing');
    const run: FakeRun = { spec, hooks, alive: true, ref: `run-${this.nextRef++}` };
    this.runs.push(run);
    hooks.onOutput(Buffer.from(`hello from ${spec.name}\n`));
    if (this.autoStarted) setImmediate(() => this.emit(run, { type: 'started', bootTimeUs: 1500, privateIp: '10.0.0.2' }));
    return this.handle(run);
  }

  async adopt(request: AdoptRequest, hooks: RuntimeHooks): Promise<RuntimeHandle | undefined> {
    if (!this.survivors.has(request.runtimeRef)) return undefined;
    const old = this.runs.find((r) => r.ref === request.runtimeRef);
    if (!old) return undefined;
    old.hooks = hooks;
    old.alive = true;
    return this.handle(old);
  }
}

export class FakeResolver implements ImageResolver {
  readonly images = new Map<string, ResolvedImage>();
  readonly requests: ImageRequest[] = [];
  add(ref: string, image: Omit<ResolvedImage, 'rootfs'>): void {
    const resolved = { ...image, rootfs: { kind: 'fake', ref: image.digestRef } };
    this.images.set(ref, resolved);
    this.images.set(image.digestRef, resolved);
  }
  async resolve(request: ImageRequest): Promise<ResolvedImage> {
    this.requests.push(request);
    const found = this.images.get(request.url);
    if (!found) throw new NodeError(Errno.ENOENT, `image ${request.url} not found`);
    return found;
  }
}

export class FakeCatalog implements ImageCatalog {
  constructor(readonly images: CatalogImage[] = []) {}
  async list(): Promise<CatalogImage[]> {
    return this.images;
  }
}
