/**
 * Kraftfile (spec v0.5–v0.7): find, parse, validate, resolve.
 *
 * - `parseKraftfile(text, file)` is pure: YAML → typed `Kraftfile` with paths still
 *   as written. Every error is a `KraftfileError` naming the file, the line and the
 *   field (`Kraftfile:7: env[2]: "1X" is not a valid variable name`).
 * - `loadKraftfile(dirOrFile)` finds the file (`Kraftfile`, `kraft.yaml`,
 *   `kraft.yml`, in that order), parses it and classifies `rootfs` relative to the
 *   Kraftfile's directory (a Dockerfile, a directory, a CPIO archive, a tarball or
 *   an EROFS image), returning absolute paths.
 *
 * Decisions: unknown top-level fields are rejected (a typo like `comand:` must not
 * silently change what runs). A `cmd` string is split like a POSIX shell splits
 * words (quotes and backslashes; no variables, no globbing). `env` as a map is
 * sorted by key, as a list kept in order; a list entry must be `KEY=VALUE`.
 * The build context of a Dockerfile rootfs is the Dockerfile's directory unless
 * the long form names `path`.
 */
import { open, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

export const KRAFTFILE_NAMES = ['Kraftfile', 'kraft.yaml', 'kraft.yml'] as const;
export const SUPPORTED_SPECS = ['v0.5', 'v0.6', 'v0.7'] as const;
export type KraftfileSpec = (typeof SUPPORTED_SPECS)[number];

export const KNOWN_PLATFORMS = ['kraftcloud', 'qemu', 'fc', 'firecracker', 'xen'] as const;
export const KNOWN_ARCHITECTURES = ['x86_64', 'arm64', 'arm'] as const;

export class KraftfileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly field: string | null,
    readonly reason: string,
  ) {
    super(`${file}${line !== null ? `:${line}` : ''}: ${field !== null ? `${field}: ` : ''}${reason}`);
    this.name = 'KraftfileError';
  }
}

export type RootfsKind = 'dockerfile' | 'directory' | 'cpio' | 'tarball' | 'erofs';
export type RootfsFormat = 'cpio' | 'erofs';

/** `rootfs` as written (paths relative to the Kraftfile's directory). */
export interface RootfsSpec {
  /** The path as written: a Dockerfile, a directory, an archive. */
  path: string;
  /** Long form `source: {dockerfile}`: the Dockerfile, with `path` the context. */
  dockerfile: string | null;
  /** Long form `source: {type}`: the declared kind (otherwise detected on load). */
  type: RootfsKind | null;
  /** Long form `format`: how the rootfs is packed into the image. */
  format: RootfsFormat | null;
  line: number;
}

/** `rootfs` resolved on disk; all paths absolute. */
export type ResolvedRootfs =
  | { kind: 'dockerfile'; dockerfile: string; context: string; format: RootfsFormat | null }
  | { kind: 'directory' | 'cpio' | 'tarball' | 'erofs'; path: string; format: RootfsFormat | null };

export interface KraftfileTarget {
  platform: string;
  architecture: string;
}

export interface KraftfileVolume {
  source: string | null;
  destination: string;
  driver: string | null;
  readOnly: boolean;
}

/** A YAML value kept as data (for `unikraft`, `template`, `libraries`). */
export type KraftfileValue = string | number | boolean | null | KraftfileValue[] | { [key: string]: KraftfileValue };

export interface Kraftfile {
  /** Absolute path when loaded from disk; as given to `parseKraftfile` otherwise. */
  file: string;
  spec: KraftfileSpec;
  name: string | null;
  runtime: string | null;
  rootfs: RootfsSpec | null;
  cmd: string[] | null;
  /** `KEY=VALUE`, in order (a map is sorted by key). */
  env: string[];
  labels: Record<string, string>;
  volumes: KraftfileVolume[];
  targets: KraftfileTarget[];
  unikraft: KraftfileValue | null;
  template: KraftfileValue | null;
  libraries: KraftfileValue | null;
  roms: string[];
  outdir: string | null;
}

export interface LoadedKraftfile extends Kraftfile {
  dir: string;
  rootfsResolved: ResolvedRootfs | null;
}

export interface KraftfileOptions {
  /** Upper bound on the Kraftfile size in bytes. */
  maxBytes?: number;
  /** Upper bound on YAML alias expansions (billion-laughs guard). */
  maxAliasCount?: number;
}
export const DEFAULT_MAX_KRAFTFILE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_ALIAS_COUNT = 100;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Splits a command line into words like a POSIX shell (without expansions):
 * whitespace separates words; `'…'` is literal; in `"…"` a backslash escapes only
 * `"`, `\`, `$`, `` ` `` and newline; outside quotes a backslash escapes any
 * character and backslash-newline disappears.
 */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (ch === '\\') {
      const next = chars[++i];
      if (next === undefined) throw new Error('unfinished escape at the end');
      inWord = inWord || next !== '\n';
      if (next !== '\n') word += next;
    } else if (ch === "'") {
      inWord = true;
      const end = chars.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      word += chars.slice(i + 1, end).join('');
      i = end;
    } else if (ch === '"') {
      inWord = true;
      for (i++; ; i++) {
        const c = chars[i];
        if (c === undefined) throw new Error('unterminated double quote');
        if (c === '"') break;
        if (c === '\\' && ['"', '\\', '$', '`', '\n'].includes(chars[i + 1] as string)) {
          i++;
          if (chars[i] !== '\n') word += chars[i];
        } else word += c;
      }
    } else {
      inWord = true;
      word += ch;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Quotes one word so that `splitCommandLine` gives it back unchanged. */
export function quoteCommandWord(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

class Reader {
  constructor(
    readonly file: string,
    readonly doc: Document.Parsed,
    readonly lines: LineCounter,
  ) {}

  lineOf(node: Node | null | undefined): number | null {
    const offset = node?.range?.[0];
    return offset === undefined ? null : this.lines.linePos(offset).line;
  }

  fail(node: Node | null | undefined, field: string, reason: string): never {
    throw new KraftfileError(this.file, this.lineOf(node), field, reason);
  }

  deref(node: unknown): Node | null {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node as Node;
  }

  /** A scalar as a string (numbers and booleans are written back as text). */
  scalarText(node: Node | null, field: string): string {
    if (!isScalar(node)) this.fail(node, field, 'must be a single value (text)');
    const v = node.value;
    if (v === null || v === undefined) this.fail(node, field, 'must not be empty');
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
      return isScalar(node) && typeof node.source === 'string' ? node.source : String(v);
    }
    this.fail(node, field, 'must be text');
  }

  string(node: Node | null, field: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') this.fail(node, field, 'must be text');
    return node.value;
  }

  toValue(node: Node | null): KraftfileValue {
    return (node === null ? null : node.toJS(this.doc, { maxAliasCount: DEFAULT_MAX_ALIAS_COUNT })) as KraftfileValue;
  }
}

function parseSpec(r: Reader, node: Node | null): KraftfileSpec {
  const text = r.scalarText(node, 'spec');
  const normalized = text.startsWith('v') ? text : `v${text}`;
  if (!(SUPPORTED_SPECS as readonly string[]).includes(normalized)) {
    r.fail(node, 'spec', `unsupported version "${text}" (supported: ${SUPPORTED_SPECS.join(', ')})`);
  }
  return normalized as KraftfileSpec;
}

function parseCmd(r: Reader, node: Node | null): string[] {
  if (isSeq(node)) {
    return node.items.map((item, i) => r.scalarText(r.deref(item), `cmd[${i}]`));
  }
  const text = r.string(node, 'cmd');
  try {
    const words = splitCommandLine(text);
    if (words.length === 0) r.fail(node, 'cmd', 'is empty');
    return words;
  } catch (err) {
    if (err instanceof KraftfileError) throw err;
    return r.fail(node, 'cmd', `cannot split "${text}": ${(err as Error).message}`);
  }
}

function parseEnv(r: Reader, node: Node | null): string[] {
  if (isSeq(node)) {
    return node.items.map((raw, i) => {
      const item = r.deref(raw);
      const entry = r.scalarText(item, `env[${i}]`);
      const eq = entry.indexOf('=');
      if (eq < 0) r.fail(item, `env[${i}]`, `"${entry}" must be KEY=VALUE`);
      const key = entry.slice(0, eq);
      if (!ENV_NAME_RE.test(key)) r.fail(item, `env[${i}]`, `"${key}" is not a valid variable name`);
      return entry;
    });
  }
  if (isMap(node)) {
    const pairs = node.items.map((pair) => {
      const keyNode = r.deref(pair.key);
      const key = r.scalarText(keyNode, 'env');
      if (!ENV_NAME_RE.test(key)) r.fail(keyNode, `env.${key}`, `"${key}" is not a valid variable name`);
      const valueNode = r.deref(pair.value);
      const value = isScalar(valueNode) && (valueNode.value === null || valueNode.value === undefined) ? '' : r.scalarText(valueNode, `env.${key}`);
      return [key, value] as const;
    });
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return pairs.map(([k, v]) => `${k}=${v}`);
  }
  return r.fail(node, 'env', 'must be a list of KEY=VALUE or a map');
}

function parseLabels(r: Reader, node: Node | null): Record<string, string> {
  if (!isMap(node)) r.fail(node, 'labels', 'must be a map of names to text');
  const labels: Record<string, string> = {};
  for (const pair of node.items) {
    const keyNode = r.deref(pair.key);
    const key = r.scalarText(keyNode, 'labels');
    if (key === '') r.fail(keyNode, 'labels', 'a label name is empty');
    // defineProperty, not assignment: a label named `__proto__` must be kept as a label, not swallowed by the setter.
    Object.defineProperty(labels, key, { value: r.scalarText(r.deref(pair.value), `labels.${key}`), enumerable: true, writable: true, configurable: true });
  }
  return labels;
}

function parseTargets(r: Reader, node: Node | null): KraftfileTarget[] {
  if (!isSeq(node)) r.fail(node, 'targets', 'must be a list');
  return node.items.map((raw, i) => {
    const item = r.deref(raw);
    const field = `targets[${i}]`;
    let platform: string;
    let architecture: string;
    if (isScalar(item)) {
      const text = r.string(item, field);
      const parts = text.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) r.fail(item, field, `"${text}" must be PLATFORM/ARCH, e.g. kraftcloud/x86_64`);
      [platform, architecture] = parts as [string, string];
    } else if (isMap(item)) {
      const get = (...keys: string[]): Node | null => {
        for (const k of keys) if (item.has(k)) return r.deref(item.get(k, true));
        return null;
      };
      for (const pair of item.items) {
        const k = r.scalarText(r.deref(pair.key), field);
        if (!['plat', 'platform', 'arch', 'architecture', 'name'].includes(k)) r.fail(r.deref(pair.key), `${field}.${k}`, 'unknown field (use plat/platform and arch/architecture)');
      }
      const p = get('plat', 'platform');
      const a = get('arch', 'architecture');
      if (p === null) r.fail(item, field, 'needs plat (or platform)');
      if (a === null) r.fail(item, field, 'needs arch (or architecture)');
      platform = r.string(p, `${field}.plat`);
      architecture = r.string(a, `${field}.arch`);
    } else {
      return r.fail(item, field, 'must be PLATFORM/ARCH or {plat, arch}');
    }
    if (!(KNOWN_PLATFORMS as readonly string[]).includes(platform)) r.fail(item, field, `unknown platform "${platform}" (known: ${KNOWN_PLATFORMS.join(', ')})`);
    if (!(KNOWN_ARCHITECTURES as readonly string[]).includes(architecture)) r.fail(item, field, `unknown architecture "${architecture}" (known: ${KNOWN_ARCHITECTURES.join(', ')})`);
    return { platform, architecture };
  });
}

function parseVolumes(r: Reader, node: Node | null): KraftfileVolume[] {
  if (!isSeq(node)) r.fail(node, 'volumes', 'must be a list');
  return node.items.map((raw, i) => {
    const item = r.deref(raw);
    const field = `volumes[${i}]`;
    if (isScalar(item)) {
      const text = r.string(item, field);
      const parts = text.split(':');
      if (parts.length === 1) return { source: null, destination: ensureAbsolute(r, item, field, text), driver: null, readOnly: false };
      if (parts.length > 3 || (parts.length === 3 && parts[2] !== 'ro' && parts[2] !== 'rw')) r.fail(item, field, `"${text}" must be SOURCE:DEST[:ro]`);
      return { source: parts[0] as string, destination: ensureAbsolute(r, item, field, parts[1] as string), driver: null, readOnly: parts[2] === 'ro' };
    }
    if (isMap(item)) {
      const text = (k: string): string | null => (item.has(k) ? r.string(r.deref(item.get(k, true)), `${field}.${k}`) : null);
      for (const pair of item.items) {
        const k = r.scalarText(r.deref(pair.key), field);
        if (!['source', 'destination', 'driver', 'readOnly', 'readonly'].includes(k)) r.fail(r.deref(pair.key), `${field}.${k}`, 'unknown field');
      }
      const destination = text('destination');
      if (destination === null) r.fail(item, field, 'needs destination');
      const ro = item.get('readOnly', true) ?? item.get('readonly', true);
      const roNode = r.deref(ro);
      if (roNode !== null && !(isScalar(roNode) && typeof roNode.value === 'boolean')) r.fail(roNode, `${field}.readOnly`, 'must be true or false');
      return { source: text('source'), destination: ensureAbsolute(r, item, field, destination), driver: text('driver'), readOnly: roNode !== null && isScalar(roNode) && roNode.value === true };
    }
    return r.fail(item, field, 'must be SOURCE:DEST or {source, destination}');
  });
}

function ensureAbsolute(r: Reader, node: Node | null, field: string, path: string): string {
  if (!path.startsWith('/')) r.fail(node, field, `destination "${path}" must be an absolute path`);
  return path;
}

const ROOTFS_KINDS: readonly RootfsKind[] = ['dockerfile', 'directory', 'cpio', 'tarball', 'erofs'];

function parseRootfs(r: Reader, node: Node | null): RootfsSpec {
  const line = r.lineOf(node) ?? 1;
  if (isScalar(node)) {
    const path = r.string(node, 'rootfs');
    if (path === '') r.fail(node, 'rootfs', 'must not be empty');
    return { path, dockerfile: null, type: null, format: null, line };
  }
  if (!isMap(node)) return r.fail(node, 'rootfs', 'must be a path or {source, format}');
  for (const pair of node.items) {
    const k = r.scalarText(r.deref(pair.key), 'rootfs');
    if (k !== 'source' && k !== 'format') r.fail(r.deref(pair.key), `rootfs.${k}`, 'unknown field (use source and format)');
  }
  let format: RootfsFormat | null = null;
  if (node.has('format')) {
    const f = r.deref(node.get('format', true));
    const text = r.string(f, 'rootfs.format');
    if (text !== 'cpio' && text !== 'erofs') r.fail(f, 'rootfs.format', `"${text}" must be cpio or erofs`);
    format = text;
  }
  const source = r.deref(node.get('source', true));
  if (source === null) r.fail(node, 'rootfs.source', 'is required in the long form');
  if (isScalar(source)) {
    const path = r.string(source, 'rootfs.source');
    if (path === '') r.fail(source, 'rootfs.source', 'must not be empty');
    return { path, dockerfile: null, type: null, format, line };
  }
  if (!isMap(source)) return r.fail(source, 'rootfs.source', 'must be a path or {path, dockerfile, type}');
  for (const pair of source.items) {
    const k = r.scalarText(r.deref(pair.key), 'rootfs.source');
    if (!['path', 'dockerfile', 'type'].includes(k)) r.fail(r.deref(pair.key), `rootfs.source.${k}`, 'unknown field (use path, dockerfile, type)');
  }
  const get = (k: string): string | null => (source.has(k) ? r.string(r.deref(source.get(k, true)), `rootfs.source.${k}`) : null);
  const dockerfile = get('dockerfile');
  const typeText = get('type');
  if (typeText !== null && !(ROOTFS_KINDS as readonly string[]).includes(typeText)) {
    r.fail(r.deref(source.get('type', true)), 'rootfs.source.type', `"${typeText}" must be one of ${ROOTFS_KINDS.join(', ')}`);
  }
  const type = (typeText as RootfsKind | null) ?? (dockerfile !== null ? 'dockerfile' : null);
  if (dockerfile !== null && type !== 'dockerfile') r.fail(source, 'rootfs.source', `dockerfile is given but type is "${type}"`);
  const path = get('path') ?? (dockerfile !== null ? '.' : null);
  if (path === null) r.fail(source, 'rootfs.source.path', 'is required');
  return { path, dockerfile, type, format, line };
}

const TOP_LEVEL = ['spec', 'specification', 'name', 'runtime', 'rootfs', 'cmd', 'env', 'labels', 'volumes', 'targets', 'unikraft', 'template', 'libraries', 'roms', 'outdir'];

/** Parses Kraftfile text. `file` is used in error messages and kept in the result. */
export function parseKraftfile(text: string, file = 'Kraftfile', options: KraftfileOptions = {}): Kraftfile {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_KRAFTFILE_BYTES;
  if (Buffer.byteLength(text) > maxBytes) throw new KraftfileError(file, null, null, `larger than ${maxBytes} bytes`);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0]?.line ?? lines.linePos(problem.pos[0]).line;
    throw new KraftfileError(file, at, null, `not valid YAML: ${problem.message.split('\n')[0]}`);
  }
  const r: Reader = new Reader(file, doc, lines);
  const root = r.deref(doc.contents);
  if (!isMap(root)) throw new KraftfileError(file, r.lineOf(root) ?? 1, null, 'must be a YAML map of fields (spec, runtime, rootfs, cmd, ...)');
  const fields = new Map<string, Node | null>();
  for (const pair of root.items) {
    const keyNode = r.deref(pair.key);
    const key = r.scalarText(keyNode, '(field name)');
    if (!TOP_LEVEL.includes(key)) {
      r.fail(keyNode, key, `unknown field (known: ${TOP_LEVEL.join(', ')})`);
    }
    fields.set(key, r.deref(pair.value));
  }
  if (fields.has('spec') && fields.has('specification')) r.fail(fields.get('specification'), 'specification', 'give either spec or specification, not both');
  const specNode = fields.get('spec') ?? fields.get('specification');
  if (specNode === undefined) throw new KraftfileError(file, 1, 'spec', 'is required (e.g. spec: v0.6)');
  const spec = parseSpec(r, specNode);
  const present = (k: string): Node | null | undefined => {
    const v = fields.get(k);
    if (v === undefined) return undefined;
    if (v === null || (isScalar(v) && v.value === null)) r.fail(v, k, 'is empty');
    return v;
  };
  const opt = <T>(k: string, parse: (n: Node | null) => T): T | null => {
    const n = present(k);
    return n === undefined ? null : parse(n);
  };
  const kraftfile: Kraftfile = {
    file,
    spec,
    name: opt('name', (n) => r.string(n, 'name')),
    runtime: opt('runtime', (n) => r.string(n, 'runtime')),
    rootfs: opt('rootfs', (n) => parseRootfs(r, n)),
    cmd: opt('cmd', (n) => parseCmd(r, n)),
    env: opt('env', (n) => parseEnv(r, n)) ?? [],
    labels: opt('labels', (n) => parseLabels(r, n)) ?? {},
    volumes: opt('volumes', (n) => parseVolumes(r, n)) ?? [],
    targets: opt('targets', (n) => parseTargets(r, n)) ?? [],
    unikraft: opt('unikraft', (n) => r.toValue(n)),
    template: opt('template', (n) => r.toValue(n)),
    libraries: opt('libraries', (n) => r.toValue(n)),
    roms: opt('roms', (n) => {
      if (!isSeq(n)) r.fail(n, 'roms', 'must be a list of paths');
      return n.items.map((item, i) => r.string(r.deref(item), `roms[${i}]`));
    }) ?? [],
    outdir: opt('outdir', (n) => r.string(n, 'outdir')),
  };
  if (kraftfile.runtime === null && kraftfile.unikraft === null && kraftfile.template === null) {
    throw new KraftfileError(file, r.lineOf(root) ?? 1, null, 'one of runtime, unikraft or template is required');
  }
  return kraftfile;
}

/** Finds the Kraftfile in `dir` (first of KRAFTFILE_NAMES that exists), or null. */
export async function findKraftfile(dir: string): Promise<string | null> {
  for (const name of KRAFTFILE_NAMES) {
    const path = join(dir, name);
    const s = await stat(path).catch(() => null);
    if (s?.isFile()) return path;
  }
  return null;
}

async function sniff(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1100);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Detects what a rootfs file is from its first bytes and its name. */
export function classifyRootfsFile(name: string, head: Buffer): RootfsKind | null {
  const magic = head.subarray(0, 6).toString('latin1');
  if (magic === '070701' || magic === '070702' || magic === '070707') return 'cpio';
  if (head.length >= 1028 && head.readUInt32LE(1024) === 0xe0f5e1e2) return 'erofs';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tarball';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tarball'; // gzip
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'tarball';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'tarball'; // xz
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'tarball'; // zstd
  const base = basename(name).toLowerCase();
  if (base.includes('dockerfile') || base.includes('containerfile')) return 'dockerfile';
  if (/\.(cpio|initrd)$/.test(base)) return 'cpio';
  if (/\.(tar|tar\.gz|tgz|tar\.xz|tar\.bz2|tar\.zst)$/.test(base)) return 'tarball';
  if (/\.erofs$/.test(base)) return 'erofs';
  return null;
}

/**
 * Finds, parses and resolves a Kraftfile. `path` is a directory to search or the
 * Kraftfile itself (the `-K` option).
 */
export async function loadKraftfile(path: string, options: KraftfileOptions = {}): Promise<LoadedKraftfile> {
  const absolute = resolve(path);
  const s = await stat(absolute).catch(() => null);
  if (s === null) throw new KraftfileError(absolute, null, null, 'no such file or directory');
  const file = s.isDirectory() ? await findKraftfile(absolute) : absolute;
  if (file === null) throw new KraftfileError(absolute, null, null, `no Kraftfile here (looked for ${KRAFTFILE_NAMES.join(', ')})`);
  const size = (await stat(file)).size;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_KRAFTFILE_BYTES;
  if (size > maxBytes) throw new KraftfileError(file, null, null, `larger than ${maxBytes} bytes`);
  const fh = await open(file, 'r');
  let text: string;
  try {
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  const parsed = parseKraftfile(text, file, options);
  const dir = dirname(file);
  return { ...parsed, dir, rootfsResolved: parsed.rootfs ? await resolveRootfs(file, dir, parsed.rootfs) : null };
}

async function resolveRootfs(file: string, dir: string, spec: RootfsSpec): Promise<ResolvedRootfs> {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  const missing = (p: string, field: string): never => {
    throw new KraftfileError(file, spec.line, field, `${p} does not exist (paths are relative to ${dir})`);
  };
  const path = at(spec.path);
  const s = await stat(path).catch(() => null);
  if (s === null) missing(spec.path, 'rootfs');
  if (spec.dockerfile !== null || spec.type === 'dockerfile') {
    const dockerfile = spec.dockerfile !== null ? at(spec.dockerfile) : path;
    const ds = await stat(dockerfile).catch(() => null);
    if (ds === null || !ds.isFile()) missing(spec.dockerfile ?? spec.path, 'rootfs.source.dockerfile');
    const context = spec.dockerfile !== null ? path : dirname(dockerfile);
    if (!(await stat(context)).isDirectory()) throw new KraftfileError(file, spec.line, 'rootfs.source.path', `${context} is not a directory`);
    return { kind: 'dockerfile', dockerfile, context, format: spec.format };
  }
  if (s?.isDirectory()) {
    if (spec.type !== null && spec.type !== 'directory') throw new KraftfileError(file, spec.line, 'rootfs', `${spec.path} is a directory, not ${spec.type}`);
    return { kind: 'directory', path, format: spec.format };
  }
  const detected = classifyRootfsFile(path, await sniff(path));
  const kind = spec.type ?? detected;
  if (kind === null) {
    throw new KraftfileError(file, spec.line, 'rootfs', `cannot tell what ${spec.path} is: expected a Dockerfile, a directory, a CPIO archive, a tarball or an EROFS image`);
  }
  if (kind === 'dockerfile') return { kind, dockerfile: path, context: dirname(path), format: spec.format };
  if (kind === 'directory') throw new KraftfileError(file, spec.line, 'rootfs', `${spec.path} is a file, not a directory`);
  return { kind, path, format: spec.format };
}
