import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { formatBytes, ProgressMeter, ProgressRenderer, type ProgressEvent } from './progress.js';

class Sink extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe('progress', () => {
  it('formats sizes', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(256 * 1024 * 1024), '256.0 MiB');
  });

  it('meters rate-limited events and a final done event', () => {
    let t = 0;
    const events: ProgressEvent[] = [];
    const m = new ProgressMeter('sha256:abc', 'push', 300, (e) => events.push(e), 100, () => t);
    t = 10;
    m.add(100); // emits (first)
    t = 20;
    m.add(100); // too soon: no event
    t = 1000;
    m.add(100);
    m.finish();
    assert.deepEqual(events.map((e) => [e.bytes, e.done]), [[100, false], [300, false], [300, true]]);
    assert.equal(events.at(-1)?.rate, 300);
  });

  it('draws one updating line on a terminal', () => {
    const out = new Sink(true);
    const r = new ProgressRenderer(out, { now: () => 0, intervalMs: 0 });
    r.update({ id: 'sha256:aaaa', phase: 'push', bytes: 1024, total: 2048, rate: 1024, done: false });
    r.update({ id: 'sha256:aaaa', phase: 'push', bytes: 2048, total: 2048, rate: 1024, done: true });
    r.finish();
    assert.ok(!out.text.slice(0, -1).includes('\n'), 'no newline until finish');
    assert.ok(out.text.startsWith('\r'));
    assert.match(out.text, /1\/1 blobs {2}2\.0 KiB \/ 2\.0 KiB/);
    assert.ok(out.text.endsWith('\n'));
  });

  it('writes plain lines when not a terminal, throttled per item', () => {
    const out = new Sink(false);
    let t = 0;
    const r = new ProgressRenderer(out, { now: () => t, intervalMs: 1000 });
    r.update({ id: 'sha256:0123456789abcdef', phase: 'pull', bytes: 10, total: 100, rate: 10, done: false });
    t = 10;
    r.update({ id: 'sha256:0123456789abcdef', phase: 'pull', bytes: 20, total: 100, rate: 10, done: false });
    r.update({ id: 'sha256:0123456789abcdef', phase: 'pull', bytes: 100, total: 100, rate: 10, done: true });
    const lines = out.text.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[1], '0123456789ab: pull 100 B / 100 B 10 B/s done');
    assert.ok(!out.text.includes('\r'));
  });
});
