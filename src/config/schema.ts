/**
 * The shape of one `ukcd` setting and how its text becomes a value.
 *
 * A setting is named by a dotted key (`registry.max_blob_bytes`): in ukcd.yaml it is
 * the nested map `registry: { max_blob_bytes: ... }`, in the environment
 * `UKC_REGISTRY_MAX_BLOB_BYTES`, on the command line `--set registry.max_blob_bytes=...`.
 *
 * Value kinds (every limit is one of the numeric ones):
 *   int       a whole number
 *   bytes     a whole number of bytes, or with a unit: 512KiB, 64MiB, 4GiB (binary), 1MB (decimal)
 *   duration  a number in the setting's unit (ms or s), or with a unit: 500ms, 90s, 15m, 1h, 2d
 *   enum      one of a fixed list of words
 * Ranges (`min`, `max`) are checked after the conversion, in the setting's own unit.
 */
import { UsageError } from '../util/index.js';

/** The `ukcd` roles a setting can apply to. `dev` runs a control plane and a node in one process. */
export type Role = 'dev' | 'controlplane' | 'node' | 'registry';
export const ROLES: readonly Role[] = ['dev', 'controlplane', 'node', 'registry'];

export type SettingKind = 'int' | 'bytes' | 'duration' | 'enum';
export type SettingValue = number | string;

export interface Setting {
  /** Dotted, snake_case: `section.name`. */
  key: string;
  kind: SettingKind;
  /** For durations: the unit of the value handed to the code (and of a bare number). */
  unit?: 'ms' | 's';
  default: SettingValue;
  min?: number;
  max?: number;
  /** For enums. */
  values?: readonly string[];
  description: string;
  roles: readonly Role[];
  /** The older command-line flag that sets it too (documentation). */
  flag?: string;
}

/** A setting's file, environment or flag value that does not fit: exit code 2, no stack. */
export class ConfigError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The environment variable of a key: `registry.max_blob_bytes` → `UKC_REGISTRY_MAX_BLOB_BYTES`. */
export function envName(key: string): string {
  return `UKC_${key.toUpperCase().replace(/\./g, '_')}`;
}

function describeKind(s: Setting): string {
  switch (s.kind) {
    case 'int':
      return 'a whole number';
    case 'bytes':
      return 'a size in bytes (e.g. 1048576, 512KiB, 64MiB, 4GiB)';
    case 'duration':
      return `a duration (e.g. 500ms, 90s, 15m, 1h; a bare number is ${s.unit === 's' ? 'seconds' : 'milliseconds'})`;
    case 'enum':
      return `one of ${(s.values ?? []).join(', ')}`;
  }
}

/**
 * Parses a raw value (a YAML scalar, or the text of an environment variable or flag) of
 * `setting`; throws a plain Error naming what was wanted (the caller adds where it came from).
 */
export function parseSettingValue(setting: Setting, raw: unknown): SettingValue {
  const want = (): Error => new Error(`${setting.key} must be ${describeKind(setting)}, not ${JSON.stringify(raw)}`);
  if (setting.kind === 'enum') {
    if (typeof raw !== 'string' || !(setting.values ?? []).includes(raw)) throw want();
    return raw;
  }
  let n: number;
  if (typeof raw === 'number') {
    n = raw;
  } else if (typeof raw === 'string') {
    const text = raw.trim();
    if (/^\d+$/.test(text)) {
      n = Number(text);
    } else if (setting.kind === 'bytes') {
      const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text);
      const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) throw want();
      n = Math.round(Number(m[1]) * unit);
    } else if (setting.kind === 'duration') {
      const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text);
      if (!m) throw want();
      const ms = Number(m[1]) * DURATION_MS[m[2]!]!;
      n = setting.unit === 's' ? ms / 1000 : ms;
    } else {
      throw want();
    }
  } else {
    throw want();
  }
  if (!Number.isSafeInteger(n)) throw want();
  if (setting.min !== undefined && n < setting.min) throw new Error(`${setting.key} must be at least ${formatSettingValue(setting, setting.min)}, not ${formatSettingValue(setting, n)}`);
  if (setting.max !== undefined && n > setting.max) throw new Error(`${setting.key} must be at most ${formatSettingValue(setting, setting.max)}, not ${formatSettingValue(setting, n)}`);
  return n;
}

/** A value as people write it: `64MiB`, `5m`, `30s`; exact (a value that is no whole unit stays a number). */
export function formatSettingValue(setting: Setting, value: SettingValue): string {
  if (typeof value === 'string') return value;
  if (setting.kind === 'bytes' && value > 0) {
    for (const [unit, size] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
      if (value % size === 0) return `${value / size}${unit}`;
    }
    return String(value);
  }
  if (setting.kind === 'duration' && value > 0) {
    const ms = setting.unit === 's' ? value * 1000 : value;
    for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
      if (ms % size === 0) return `${ms / size}${unit}`;
    }
    return `${ms}ms`;
  }
  return String(value);
}
