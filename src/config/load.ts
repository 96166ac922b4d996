/**
 * The effective configuration of one `ukcd` start: every setting of the table (settings.ts)
 * resolved from its layers, each value remembering where it came from.
 *
 * Precedence, lowest first: the code's default < ukcd.yaml < the environment
 * (`UKC_<KEY>`) < the command line (`--set key=value`, and a role's own flags such as
 * `--upload-timeout`). A value that does not fit its setting is refused wherever it comes
 * from, naming the place (`ukcd.yaml:12:3`, `UKC_REGISTRY_MAX_BLOB_BYTES`, `--set`); so is a
 * key the table does not know, in the file (with its line) and in `--set`. Environment
 * variables that name no setting are left alone: UKC_HOME, UKC_TOKEN and others are not
 * settings.
 *
 * The file is `--config PATH` (it must exist), else `UKC_CONFIG`, else `<ukc home>/ukcd.yaml`
 * when that exists; without one every setting keeps its default.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode, type Pair } from 'yaml';
import { ConfigError, envName, parseSettingValue, type Setting, type SettingValue } from './schema.js';
import { SETTINGS } from './settings.js';

export const CONFIG_FILE_NAME = 'ukcd.yaml';
/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export type SettingSource = 'default' | 'file' | 'env' | 'flag';

export interface EffectiveSetting {
  setting: Setting;
  value: SettingValue;
  source: SettingSource;
  /** Where exactly: `ukcd.yaml:3:5`, `UKC_LOG_LEVEL`, `--set`, `--upload-timeout`. */
  origin?: string;
}

export interface ConfigInputs {
  /** `--config PATH`, when given. */
  configPath?: string;
  /** The data home the default file lives in (`<home>/ukcd.yaml`). */
  home: string;
  env: NodeJS.ProcessEnv;
  /** `--set key=value` texts, in order (a later one wins). */
  sets?: readonly string[];
  /** A role's own flags, already mapped to setting keys (value: the flag's text), with the flag's name. */
  flags?: readonly { key: string; value: string | undefined; flag: string }[];
}

export class DaemonConfig {
  private readonly byKey: Map<string, EffectiveSetting>;

  constructor(
    entries: readonly EffectiveSetting[],
    /** The file read, if any. */
    readonly file: string | undefined,
  ) {
    this.byKey = new Map(entries.map((e) => [e.setting.key, e]));
  }

  /** The effective value of a key of the table (a typo in the code is a bug: it throws). */
  value(key: string): SettingValue {
    const e = this.byKey.get(key);
    if (!e) throw new Error(`no setting ${key}`);
    return e.value;
  }

  number(key: string): number {
    return this.value(key) as number;
  }

  string(key: string): string {
    return String(this.value(key));
  }

  /** Every setting, in the table's order. */
  entries(): EffectiveSetting[] {
    return [...this.byKey.values()];
  }

  readonly valueOf = (key: string): SettingValue => this.value(key);
}

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));
const SECTIONS = new Set(SETTINGS.map((s) => s.key.slice(0, s.key.lastIndexOf('.'))));

/** The setting a `--set` or file key names, or undefined. */
export function settingOf(key: string): Setting | undefined {
  return BY_KEY.get(key);
}

/**
 * A hint for a mistyped key: a key it begins, else the key of the same section sharing the
 * most words of its last part (`upload_timeout` → `upload_session_timeout`), else none.
 */
function nearest(key: string): string {
  const section = key.includes('.') ? key.slice(0, key.indexOf('.')) : undefined;
  const words = new Set(key.slice(key.lastIndexOf('.') + 1).split('_'));
  let guess = SETTINGS.find((s) => s.key.startsWith(key));
  if (!guess) {
    let best = 0;
    for (const s of SETTINGS) {
      if (section !== undefined && !s.key.startsWith(`${section}.`)) continue;
      const score = s.key.slice(s.key.indexOf('.') + 1).split('_').filter((w) => words.has(w)).length;
      if (score > best) [best, guess] = [score, s];
    }
  }
  return guess ? ` (did you mean ${guess.key}?)` : '';
}

/** Which file to read: `--config`, else UKC_CONFIG, else `<home>/ukcd.yaml` if it exists. */
export function configFileOf(inputs: Pick<ConfigInputs, 'configPath' | 'home' | 'env'>): string | undefined {
  if (inputs.configPath !== undefined) return inputs.configPath;
  if (inputs.env.UKC_CONFIG) return inputs.env.UKC_CONFIG;
  const path = join(inputs.home, CONFIG_FILE_NAME);
  return existsSync(path) ? path : undefined;
}

/**
 * Parses a ukcd.yaml text into `key → {raw value, origin}`; refuses bad YAML, a top level
 * that is not a map, unknown keys and non-scalar values, each with `file:line:column`.
 */
export function parseConfigText(text: string, file: string): Map<string, { raw: unknown; origin: string }> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: YamlNode | null | undefined): string => {
    const offset = node?.range?.[0];
    if (offset === undefined) return file;
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const firstError = doc.errors[0];
  if (firstError) {
    const { line, col } = lines.linePos(firstError.pos[0]);
    throw new ConfigError(`${file}:${line}:${col}: not valid YAML: ${firstError.message.split('\n')[0]}`);
  }
  const out = new Map<string, { raw: unknown; origin: string }>();
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return out;
  if (!isMap(root)) throw new ConfigError(`${at(root as YamlNode)}: the file must be a map of settings (section: { key: value })`);
  const walk = (items: readonly Pair<unknown, unknown>[], prefix: string): void => {
    for (const pair of items) {
      const keyNode = pair.key as YamlNode | null;
      const name = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (name === undefined) throw new ConfigError(`${at(keyNode)}: keys must be plain words`);
      const key = prefix ? `${prefix}.${name}` : name;
      const value = pair.value as YamlNode | null;
      const setting = BY_KEY.get(key);
      if (setting) {
        if (!isScalar(value)) throw new ConfigError(`${at(value ?? keyNode)}: ${key} takes a single value`);
        out.set(key, { raw: value.value, origin: at(value) });
      } else if (SECTIONS.has(key) || [...SECTIONS].some((s) => s.startsWith(`${key}.`))) {
        if (!isMap(value)) throw new ConfigError(`${at(value ?? keyNode)}: ${key} is a section: give it a map of settings`);
        walk(value.items, key);
      } else {
        throw new ConfigError(`${at(keyNode)}: unknown key "${key}"${nearest(key)}`);
      }
    }
  };
  walk(root.items, '');
  return out;
}

function readConfigFile(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read config file ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? String(err)}`);
  }
  if (size > MAX_CONFIG_FILE_BYTES) throw new ConfigError(`config file ${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function parseAt(setting: Setting, raw: unknown, where: string): SettingValue {
  try {
    return parseSettingValue(setting, raw);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
}

/** Resolves every setting from its layers (see the file comment). */
export function loadDaemonConfig(inputs: ConfigInputs): DaemonConfig {
  const file = configFileOf(inputs);
  const fromFile = file !== undefined ? parseConfigText(readConfigFile(file), file) : new Map<string, { raw: unknown; origin: string }>();
  const fromSet = new Map<string, string>();
  for (const text of inputs.sets ?? []) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${text}: want KEY=VALUE`);
    const key = text.slice(0, eq).trim();
    if (!BY_KEY.has(key)) throw new ConfigError(`--set: unknown key "${key}"${nearest(key)}`);
    fromSet.set(key, text.slice(eq + 1));
  }
  const fromFlags = new Map<string, { value: string; flag: string }>();
  for (const f of inputs.flags ?? []) {
    // A role mapping its flag to a key the table lacks is a bug in the role, not a user mistake.
    if (!BY_KEY.has(f.key)) throw new Error(`${f.flag} maps to no setting (${f.key})`);
    if (f.value !== undefined) fromFlags.set(f.key, { value: f.value, flag: f.flag });
  }

  // Every layer's value is checked, also where a higher layer wins: a mistake never hides.
  const entries = SETTINGS.map((setting): EffectiveSetting => {
    let effective: EffectiveSetting = { setting, value: setting.default, source: 'default' };
    const inFile = fromFile.get(setting.key);
    if (inFile) effective = { setting, value: parseAt(setting, inFile.raw, inFile.origin), source: 'file', origin: inFile.origin };
    const envKey = envName(setting.key);
    const env = inputs.env[envKey];
    if (env !== undefined && env !== '') effective = { setting, value: parseAt(setting, env, envKey), source: 'env', origin: envKey };
    const set = fromSet.get(setting.key);
    if (set !== undefined) effective = { setting, value: parseAt(setting, set, `--set ${setting.key}`), source: 'flag', origin: '--set' };
    const flag = fromFlags.get(setting.key);
    if (flag) effective = { setting, value: parseAt(setting, flag.value, flag.flag), source: 'flag', origin: flag.flag };
    return effective;
  });
  return new DaemonConfig(entries, file);
}
