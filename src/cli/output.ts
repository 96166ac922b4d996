/**
 * Output formats of the CLI (`-o kv|table|json|yaml|quiet`). Commands never
 * print results themselves: they return a `View` (ordered records, the table's
 * columns, the field `quiet` prints) and `render` turns it into text.
 *
 *   kv     one block per record, `key: value` with right-aligned keys; nested
 *          objects flatten to dotted keys (`resources.memory`), lists join with
 *          ", "; blocks are separated by a blank line (the docs' samples)
 *   table  upper-case headers, columns padded to the widest cell
 *   json   the records as a JSON array, 2-space indent
 *   yaml   the records as a YAML sequence
 *   quiet  one identifying value per line (for scripts: `xargs`, `$(...)`)
 *
 * Empty values (undefined, null, "", [], {}) are left out of kv blocks and shown
 * as empty cells in tables, so every format says the same thing.
 */
import { UsageError } from '../util/index.js';
import { yaml } from './yaml.js';

export const OUTPUT_FORMATS = ['kv', 'table', 'json', 'yaml', 'quiet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export type DisplayValue = string | number | boolean | null | undefined | DisplayValue[] | { [key: string]: DisplayValue };
export type DisplayRecord = { [key: string]: DisplayValue };

export interface Column {
  header: string;
  /** Dotted path into the record. */
  path: string;
}

export interface View {
  records: DisplayRecord[];
  columns: Column[];
  /** Dotted path printed by `-o quiet`. */
  quiet: string;
  /** Printed (kv and table only) when there are no records. */
  empty?: string;
}

export function parseOutputFormat(text: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat;
  throw new UsageError(`unknown output format "${text}": use one of ${OUTPUT_FORMATS.join(', ')}`);
}

function isEmpty(v: DisplayValue): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

function scalarText(v: DisplayValue): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(scalarText).join(', ');
  if (typeof v === 'object') {
    return Object.entries(v)
      .filter(([, x]) => !isEmpty(x))
      .map(([k, x]) => `${k}=${scalarText(x)}`)
      .join(', ');
  }
  return String(v);
}

function lookup(record: DisplayRecord, path: string): DisplayValue {
  let cur: DisplayValue = record;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/** Flattens nested objects into dotted keys; lists of objects are numbered (`domains.0.fqdn`). */
function flatten(record: DisplayRecord, prefix = '', out: [string, string][] = []): [string, string][] {
  for (const [key, value] of Object.entries(record)) {
    if (isEmpty(value)) continue;
    const name = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value) && value.some((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
      value.forEach((x, i) => {
        if (typeof x === 'object' && x !== null && !Array.isArray(x)) flatten(x, `${name}.${i}`, out);
        else if (!isEmpty(x)) out.push([`${name}.${i}`, scalarText(x)]);
      });
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      flatten(value, name, out);
    } else {
      out.push([name, scalarText(value)]);
    }
  }
  return out;
}

function renderKv(view: View): string {
  if (view.records.length === 0) return view.empty ? `${view.empty}\n` : '';
  return view.records
    .map((r) => {
      const pairs = flatten(r);
      const width = Math.max(0, ...pairs.map(([k]) => k.length));
      return pairs.map(([k, v]) => `${k.padStart(width)}: ${v}\n`).join('');
    })
    .join('\n');
}

function renderTable(view: View): string {
  if (view.records.length === 0) return view.empty ? `${view.empty}\n` : '';
  const rows = [view.columns.map((c) => c.header.toUpperCase()), ...view.records.map((r) => view.columns.map((c) => scalarText(lookup(r, c.path))))];
  const widths = view.columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd() + '\n').join('');
}

/** Drops empty fields so json/yaml carry what kv shows, in the same order. */
function prune(v: DisplayValue): DisplayValue {
  if (Array.isArray(v)) return v.map(prune);
  if (v !== null && typeof v === 'object') {
    const out: DisplayRecord = {};
    for (const [k, x] of Object.entries(v)) {
      const kept = prune(x);
      if (!isEmpty(kept)) out[k] = kept;
    }
    return out;
  }
  return v;
}

export function render(view: View, format: OutputFormat): string {
  switch (format) {
    case 'kv':
      return renderKv(view);
    case 'table':
      return renderTable(view);
    case 'json':
      return `${JSON.stringify(view.records.map(prune), null, 2)}\n`;
    case 'yaml':
      return view.records.length === 0 ? '[]\n' : yaml().stringify(view.records.map(prune));
    case 'quiet':
      return view.records.map((r) => `${scalarText(lookup(r, view.quiet))}\n`).join('');
  }
}

/** Bytes as the CLI shows them: `512 B`, `1.5 KiB`, `256 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** A duration since `from` for tables: `5s ago`, `3m ago`, `2h ago`, `4d ago`. */
export function formatAge(from: string | undefined, now: number): string {
  if (from === undefined) return '';
  const t = Date.parse(from);
  if (Number.isNaN(t)) return from;
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
