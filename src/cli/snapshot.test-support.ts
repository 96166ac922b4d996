/**
 * Test-only snapshot files for CLI output. Snapshots live in the source tree
 * (`src/cli/__snapshots__/<suite>.snap.json`, reviewed like code); tests run
 * from dist/, so the path is resolved back to src/. A missing or different
 * snapshot fails; `UPDATE_SNAPSHOTS=1` rewrites the file instead.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../../src/cli/__snapshots__/', import.meta.url));

export class Snapshots {
  private readonly path: string;
  private readonly stored: Record<string, string>;
  private readonly seen: Record<string, string> = {};
  private readonly update = process.env.UPDATE_SNAPSHOTS === '1';

  constructor(suite: string) {
    this.path = `${dir}${suite}.snap.json`;
    this.stored = existsSync(this.path) ? (JSON.parse(readFileSync(this.path, 'utf8')) as Record<string, string>) : {};
  }

  match(name: string, actual: string): void {
    this.seen[name] = actual;
    if (this.update) {
      writeFileSync(this.path, `${JSON.stringify({ ...this.stored, ...this.seen }, null, 2)}\n`);
      return;
    }
    const expected = this.stored[name];
    assert.ok(expected !== undefined, `no snapshot "${name}" in ${this.path} (run with UPDATE_SNAPSHOTS=1 and review it)`);
    assert.equal(actual, expected, `output differs from snapshot "${name}"`);
  }
}
