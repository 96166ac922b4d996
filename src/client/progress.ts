/**
 * Transfer progress: the events the client emits, a rate meter, and a small
 * renderer — one updating line on a terminal, plain lines otherwise (logs, CI).
 */
import type { Writable } from 'node:stream';

export interface ProgressEvent {
  /** What is moving: usually a blob digest. */
  id: string;
  phase: 'push' | 'pull' | 'mount' | 'exists';
  bytes: number;
  /** Total size when known, else 0. */
  total: number;
  /** Smoothed bytes per second over the transfer so far. */
  rate: number;
  done: boolean;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Tracks one transfer and makes rate-limited ProgressEvents from byte counts. */
export class ProgressMeter {
  private bytes = 0;
  private lastEmit = Number.NEGATIVE_INFINITY;
  private readonly started: number;

  constructor(
    private readonly id: string,
    private readonly phase: ProgressEvent['phase'],
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    /** Least time between two events for the same transfer, in ms. */
    private readonly minIntervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  add(n: number): void {
    this.bytes += n;
    if (!this.listener) return;
    const t = this.now();
    if (t - this.lastEmit >= this.minIntervalMs) {
      this.lastEmit = t;
      this.listener(this.event(false));
    }
  }

  /** Sets the absolute count (after a resume moved it). */
  set(n: number): void {
    this.bytes = n;
  }

  finish(): void {
    this.listener?.(this.event(true));
  }

  private event(done: boolean): ProgressEvent {
    const seconds = Math.max((this.now() - this.started) / 1000, 0.001);
    return { id: this.id, phase: this.phase, bytes: this.bytes, total: this.total, rate: this.bytes / seconds, done };
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

function shortId(id: string): string {
  const colon = id.indexOf(':');
  return colon > 0 ? id.slice(colon + 1, colon + 13) : id.slice(0, 12);
}

export interface ProgressRendererOptions {
  /** Force the terminal (single line) or plain mode; default: the stream's isTTY. */
  tty?: boolean;
  /** Least time between two redraws (terminal) or two lines per item (plain), in ms. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Renders ProgressEvents. On a terminal: one line, redrawn in place, summing
 * every transfer. Elsewhere: one line per item when it finishes, and at most
 * one line per `intervalMs` per item while it runs.
 */
export class ProgressRenderer {
  private readonly items = new Map<string, ProgressEvent>();
  private readonly lastLine = new Map<string, number>();
  private lastDraw = 0;
  private drawn = false;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly out: Writable & { isTTY?: boolean },
    options: ProgressRendererOptions = {},
  ) {
    this.tty = options.tty ?? out.isTTY === true;
    this.intervalMs = options.intervalMs ?? (this.tty ? 100 : 2000);
    this.now = options.now ?? Date.now;
  }

  /** A ProgressListener bound to this renderer. */
  readonly listener: ProgressListener = (e) => this.update(e);

  update(event: ProgressEvent): void {
    this.items.set(event.id, event);
    const t = this.now();
    if (this.tty) {
      if (event.done || t - this.lastDraw >= this.intervalMs) {
        this.lastDraw = t;
        this.out.write(`\r${this.summary()}\x1b[K`);
        this.drawn = true;
      }
      return;
    }
    const last = this.lastLine.get(event.id);
    if (event.done || last === undefined || t - last >= this.intervalMs) {
      this.lastLine.set(event.id, t);
      this.out.write(`${this.itemLine(event)}\n`);
    }
  }

  /** Ends the terminal line (so later output starts on a fresh one). */
  finish(): void {
    if (this.tty && this.drawn) this.out.write(`\r${this.summary()}\x1b[K\n`);
    this.drawn = false;
  }

  itemLine(e: ProgressEvent): string {
    const id = shortId(e.id);
    if (e.phase === 'exists') return `${id}: already present`;
    if (e.phase === 'mount') return `${id}: mounted`;
    const size = e.total > 0 ? `${formatBytes(e.bytes)} / ${formatBytes(e.total)}` : formatBytes(e.bytes);
    return `${id}: ${e.phase} ${size} ${formatRate(e.rate)}${e.done ? ' done' : ''}`;
  }

  summary(): string {
    let bytes = 0;
    let total = 0;
    let rate = 0;
    let done = 0;
    for (const e of this.items.values()) {
      bytes += e.bytes;
      total += e.total;
      if (e.done) done++;
      else rate += e.rate;
    }
    return `${done}/${this.items.size} blobs  ${formatBytes(bytes)} / ${formatBytes(total)}  ${formatRate(rate)}`;
  }
}
