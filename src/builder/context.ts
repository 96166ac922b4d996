/**
 * The build context: which files `.dockerignore` leaves in, and what a COPY/ADD
 * copies. Reads the filesystem (lstat, readdir, readlink) but never writes it.
 *
 * Contract with the executor — `resolveCopySources(request)` returns a list of
 * `CopyOperation`s, in order, and the executor performs exactly those:
 * - `directory` (source null): make sure `dest` exists as a directory (mode 0755,
 *   owned per --chown); `directory` with a source: create `dest` with the source
 *   directory's mode and mtime.
 * - `file`: copy the regular file at `source` (an absolute host path that is
 *   guaranteed to lie inside `request.root`) to `dest`, keeping mode and mtime.
 *   When `placeIntoExistingDir` is set and `dest` already is a directory in the
 *   stage, the file goes to `dest/<placeIntoExistingDir>` instead.
 * - `symlink`: create a symlink at `dest` whose text is `target` (links inside a
 *   copied directory stay links; they are not followed).
 * - `url` (ADD only): download `url` to `dest`.
 * Destinations are absolute paths in the stage, normalised. Parent directories
 * of a destination that do not exist are created (0755) by the executor.
 *
 * Invariants (security): every `source` is inside `root`. Sources are resolved
 * like a chroot: `..` never climbs above the root, and a symlink — absolute or
 * relative — is resolved relative to the root, so a context holding
 * `link -> /` exposes the context, not the host. `../` in a source path is an
 * error. Files excluded by `.dockerignore` are never sources, whether named
 * directly, matched by a wildcard, reached through a symlink or inside a copied
 * directory.
 *
 * Wildcards follow Go's `filepath.Match` per path segment: `*`, `?`, `[a-z]`,
 * `[^a-z]` (Go has no `[!...]`: `!` is literal), `\` escapes; no `**`, no braces;
 * `*` matches names starting with a dot.
 */
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import dockerignoreModule from '@balena/dockerignore';

// The package is CommonJS (`module.exports = factory`) while its types declare a
// default export; under NodeNext the runtime value is the factory itself.
type IgnoreFactory = typeof dockerignoreModule.default;
const dockerignore: IgnoreFactory =
  typeof dockerignoreModule === 'function' ? (dockerignoreModule as unknown as IgnoreFactory) : dockerignoreModule.default;

export class ContextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextError';
  }
}

// ---------------------------------------------------------------------------
// .dockerignore

export interface ContextFilter {
  /** The file the patterns came from, or null. */
  source: string | null;
  patterns: readonly string[];
  /** True when `relPath` (posix, relative to the context root) is excluded. */
  excludes(relPath: string): boolean;
  /** True when some pattern re-includes (`!`), so excluded directories must still be walked. */
  hasExceptions: boolean;
}

/** Patterns from `.dockerignore` text: `#` comment lines and blank lines dropped, blanks trimmed. */
export function parseDockerignore(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== '!');
}

export function createContextFilter(patterns: readonly string[], source: string | null = null): ContextFilter {
  // Docker anchors every pattern at the context root: a leading `/` means nothing more.
  const cleaned = patterns.map((p) => {
    const neg = p.startsWith('!');
    const body = (neg ? p.slice(1) : p).trim().replace(/^\/+/, '');
    return (neg ? '!' : '') + posix.normalize(body === '' ? '.' : body);
  });
  const matcher = dockerignore().add(cleaned);
  return {
    source,
    patterns: cleaned,
    hasExceptions: cleaned.some((p) => p.startsWith('!')),
    excludes: (relPath) => relPath !== '' && relPath !== '.' && matcher.ignores(relPath),
  };
}

/** A filter that excludes nothing (for copying from another stage's root). */
export const NO_FILTER: ContextFilter = createContextFilter([]);

/**
 * Loads the ignore rules for a build: `<Dockerfile>.dockerignore` beside the
 * Dockerfile wins over `<context>/.dockerignore`; neither → nothing excluded.
 */
export async function loadDockerignore(contextDir: string, dockerfile?: string): Promise<ContextFilter> {
  const candidates = [...(dockerfile ? [join(dirname(dockerfile), `${basename(dockerfile)}.dockerignore`)] : []), join(contextDir, '.dockerignore')];
  for (const file of candidates) {
    const s = await stat(file).catch(() => null);
    if (s?.isFile()) return createContextFilter(parseDockerignore(await readFile(file, 'utf8')), file);
  }
  return createContextFilter([], null);
}

// ---------------------------------------------------------------------------
// Walking

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface ContextEntry {
  /** Posix path relative to the walked root. */
  path: string;
  type: EntryType;
}

export interface WalkOptions {
  /** Upper bound on the number of entries listed (a context this large is an error). */
  maxEntries?: number;
}
export const DEFAULT_MAX_CONTEXT_ENTRIES = 1_000_000;

function entryType(s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  return s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'directory' : s.isFile() ? 'file' : 'other';
}

/**
 * Lists the entries under `dir` that the filter leaves in, sorted bytewise,
 * parents before children. Symlinks are listed, not followed. A directory that
 * is excluded but holds a re-included entry is listed too (it must exist for
 * its child). `prefix` is `dir`'s path relative to the filter's root.
 */
async function walk(dir: string, prefix: string, filter: ContextFilter, budget: { left: number }): Promise<ContextEntry[]> {
  const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const out: ContextEntry[] = [];
  for (const name of names) {
    if (--budget.left < 0) throw new ContextError(`the build context has more than the allowed number of entries`);
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    const full = join(dir, name);
    const type = entryType(await lstat(full));
    const excluded = filter.excludes(rel);
    if (type === 'directory') {
      if (excluded && !filter.hasExceptions) continue;
      const children = await walk(full, rel, filter, budget);
      if (!excluded || children.length > 0) out.push({ path: rel, type }, ...children);
    } else if (!excluded) {
      out.push({ path: rel, type });
    }
  }
  return out;
}

/** Every entry of the context the filter leaves in (relative posix paths, sorted, parents first). */
export async function walkContext(contextDir: string, filter: ContextFilter, options: WalkOptions = {}): Promise<ContextEntry[]> {
  return walk(contextDir, '', filter, { left: options.maxEntries ?? DEFAULT_MAX_CONTEXT_ENTRIES });
}

// ---------------------------------------------------------------------------
// Go filepath.Match

export class BadPatternError extends ContextError {
  constructor(pattern: string) {
    super(`syntax error in pattern "${pattern}"`);
    this.name = 'BadPatternError';
  }
}

/** True when `path` holds a wildcard character (Go's `hasMeta`: `*`, `?`, `[`, `\`). */
export function hasWildcard(path: string): boolean {
  return /[*?[\\]/.test(path);
}

function scanChunk(p: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let i = 0;
  let star = false;
  while (i < p.length && p[i] === '*') {
    i++;
    star = true;
  }
  p = p.slice(i);
  let inRange = false;
  let j = 0;
  scan: for (; j < p.length; j++) {
    switch (p[j]) {
      case '\\':
        if (j + 1 < p.length) j++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, j), rest: p.slice(j) };
}

/** Reads one possibly escaped character of a class; null on a malformed class. */
function classChar(chunk: string[], at: number): { ch: string; next: number } | null {
  if (at >= chunk.length || chunk[at] === '-' || chunk[at] === ']') return null;
  if (chunk[at] === '\\') {
    at++;
    if (at >= chunk.length) return null;
  }
  const next = at + 1;
  if (next >= chunk.length) return null;
  return { ch: chunk[at] as string, next };
}

/** Matches `chunk` at the start of `s`; returns the rest of `s`, or null. Throws on a bad pattern. */
function matchChunk(chunk: string[], s: string[], pattern: string): string[] | null {
  let failed = false;
  let c = 0;
  let k = 0;
  while (c < chunk.length) {
    if (!failed && k >= s.length) failed = true;
    const ch = chunk[c] as string;
    if (ch === '[') {
      const r = failed ? '' : (s[k++] as string);
      c++;
      let negated = false;
      if (c < chunk.length && chunk[c] === '^') {
        negated = true;
        c++;
      }
      let match = false;
      let ranges = 0;
      for (;;) {
        if (c < chunk.length && chunk[c] === ']' && ranges > 0) {
          c++;
          break;
        }
        const lo = classChar(chunk, c);
        if (lo === null) throw new BadPatternError(pattern);
        c = lo.next;
        let hi = lo.ch;
        if (chunk[c] === '-') {
          const h = classChar(chunk, c + 1);
          if (h === null) throw new BadPatternError(pattern);
          hi = h.ch;
          c = h.next;
        }
        const cp = r.codePointAt(0) ?? -1;
        if ((lo.ch.codePointAt(0) as number) <= cp && cp <= (hi.codePointAt(0) as number)) match = true;
        ranges++;
      }
      if (match === negated) failed = true;
    } else if (ch === '?') {
      if (!failed) {
        if (s[k] === '/') failed = true;
        k++;
      }
      c++;
    } else {
      let lit = ch;
      if (ch === '\\') {
        c++;
        if (c >= chunk.length) throw new BadPatternError(pattern);
        lit = chunk[c] as string;
      }
      if (!failed) {
        if (lit !== s[k]) failed = true;
        k++;
      }
      c++;
    }
  }
  return failed ? null : s.slice(k);
}

/** Go's `filepath.Match(pattern, name)` on a Unix system. Throws `BadPatternError`. */
export function goMatch(pattern: string, name: string): boolean {
  let p = [...pattern];
  let s = [...name];
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk.length === 0) return !s.includes('/');
    const t = matchChunk(chunk, s, pattern);
    if (t !== null && (t.length === 0 || p.length > 0)) {
      s = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < s.length && s[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, s.slice(i + 1), pattern);
        if (t2 !== null) {
          if (p.length === 0 && t2.length > 0) continue;
          s = t2;
          continue outer;
        }
      }
    }
    // No match: still report a malformed rest of the pattern, as Go does.
    while (p.length > 0) {
      const next = scanChunk(p);
      p = next.rest;
      matchChunk(next.chunk, [], pattern);
    }
    return false;
  }
  return s.length === 0;
}

// ---------------------------------------------------------------------------
// Resolving inside a root

export const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves `rel` inside `root` as if `root` were `/` (chroot semantics): `..`
 * stops at the root and symlink targets, absolute or relative, stay inside it.
 * Returns the resolved path relative to the root, or null if it does not exist.
 */
export async function resolveInRoot(root: string, rel: string, followLast = true): Promise<string | null> {
  const pending = rel.split('/').filter((c) => c !== '' && c !== '.');
  const parts: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const comp = pending.shift() as string;
    if (comp === '.') continue;
    if (comp === '..') {
      parts.pop();
      continue;
    }
    const full = join(root, ...parts, comp);
    const s = await lstat(full).catch(() => null);
    if (s === null) return null;
    if (s.isSymbolicLink() && (followLast || pending.length > 0)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new ContextError(`too many levels of symbolic links resolving ${rel}`);
      const target = await readlink(full);
      if (target.startsWith('/')) parts.length = 0;
      pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
      continue;
    }
    parts.push(comp);
  }
  return parts.join('/');
}

// ---------------------------------------------------------------------------
// COPY / ADD

export type CopyOperation =
  | { kind: 'directory'; source: string | null; dest: string }
  | { kind: 'file'; source: string; dest: string; placeIntoExistingDir: string | null }
  | { kind: 'symlink'; source: string; dest: string; target: string }
  | { kind: 'url'; url: string; dest: string };

export interface CopyRequest {
  /** Absolute path: the context directory, or another stage's root filesystem. */
  root: string;
  /** The context's ignore rules; `NO_FILTER` for a stage root. */
  filter: ContextFilter;
  /** Source paths as written (already expanded); absolute ones are relative to the root. */
  sources: readonly string[];
  /** Absolute destination in the stage. */
  dest: string;
  /** The destination was written as a directory (trailing `/`, `.`). */
  destIsDir: boolean;
  /** ADD: allow http(s) URLs as sources. */
  allowUrls?: boolean;
  /** COPY --exclude patterns (dockerignore syntax, relative to each source). */
  excludes?: readonly string[];
  /** Instruction name for messages (`COPY`, `ADD`). */
  instruction?: string;
  maxEntries?: number;
}

const URL_RE = /^https?:\/\//i;

/** Cleans a source path to a root-relative path, refusing to leave the root. */
export function cleanSourcePath(source: string, instruction = 'COPY'): string {
  const normalized = posix.normalize(source.replace(/^\/+/, '') || '.');
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new ContextError(`${instruction} source "${source}" is outside the build context`);
  }
  return normalized === '.' ? '' : normalized.replace(/\/+$/, '');
}

async function matchWildcard(root: string, pattern: string, filter: ContextFilter): Promise<string[]> {
  const segments = pattern.split('/');
  let current: string[] = [''];
  for (const [i, seg] of segments.entries()) {
    const next: string[] = [];
    for (const logical of current) {
      const real = await resolveInRoot(root, logical);
      if (real === null) continue;
      const dir = join(root, real);
      const s = await stat(dir).catch(() => null);
      if (!s?.isDirectory()) continue;
      if (!hasWildcard(seg)) {
        const candidate = logical === '' ? seg : `${logical}/${seg}`;
        if ((await lstat(join(dir, seg)).catch(() => null)) !== null) next.push(candidate);
        continue;
      }
      for (const name of (await readdir(dir)).sort()) {
        if (goMatch(seg, name)) next.push(logical === '' ? name : `${logical}/${name}`);
      }
    }
    current = i === segments.length - 1 ? next.filter((p) => !filter.excludes(p)) : next;
  }
  return current;
}

export async function resolveCopySources(request: CopyRequest): Promise<CopyOperation[]> {
  const { root, filter } = request;
  const ins = request.instruction ?? 'COPY';
  const budget = { left: request.maxEntries ?? DEFAULT_MAX_CONTEXT_ENTRIES };
  const excludes = request.excludes && request.excludes.length > 0 ? createContextFilter(request.excludes) : null;
  const anyWildcard = request.sources.some((s) => !URL_RE.test(s) && hasWildcard(s));
  const intoDir = request.destIsDir || request.sources.length > 1 || anyWildcard;
  if (!request.dest.startsWith('/')) throw new ContextError(`${ins} destination "${request.dest}" must be absolute (resolve it against WORKDIR first)`);
  const dest = posix.normalize(request.dest).replace(/(.)\/+$/, '$1');
  const ops: CopyOperation[] = [];

  // Expand wildcards first so that every concrete source is known.
  const concrete: { logical: string; written: string; matched: boolean }[] = [];
  for (const written of request.sources) {
    if (URL_RE.test(written)) {
      if (!request.allowUrls) throw new ContextError(`${ins} cannot fetch URLs ("${written}"); use ADD`);
      const name = basename(new URL(written).pathname) || 'index.html';
      ops.push({ kind: 'url', url: written, dest: intoDir ? posix.join(dest, name) : dest });
      continue;
    }
    const logical = cleanSourcePath(written, ins);
    if (hasWildcard(logical)) {
      const matches = await matchWildcard(root, logical, filter);
      if (matches.length === 0) throw new ContextError(`${ins} source "${written}" matches no files in the build context`);
      for (const m of matches) concrete.push({ logical: m, written, matched: true });
    } else {
      concrete.push({ logical, written, matched: false });
    }
  }

  for (const { logical, written, matched } of concrete) {
    if (filter.excludes(logical)) throw new ContextError(`${ins} source "${written}" is excluded by ${filter.source ?? '.dockerignore'}`);
    const real = await resolveInRoot(root, logical);
    // A wildcard match that dangles or leads to an excluded file is skipped; a named source is an error.
    if (matched && (real === null || filter.excludes(real))) continue;
    if (real === null) throw new ContextError(`${ins} source "${written}" not found in the build context`);
    if (filter.excludes(real)) throw new ContextError(`${ins} source "${written}" leads to "${real}", which is excluded by ${filter.source ?? '.dockerignore'}`);
    const hostPath = join(root, real);
    const s = await stat(hostPath);
    if (s.isDirectory()) {
      // A directory source copies its contents.
      const destDir = dest;
      ops.push({ kind: 'directory', source: null, dest: destDir });
      const sub = createScopedFilter(filter, real);
      for (const entry of await walk(hostPath, '', sub, budget)) {
        if (excludes?.excludes(entry.path)) continue;
        const source = join(hostPath, entry.path);
        const target = posix.join(destDir, entry.path);
        if (entry.type === 'directory') ops.push({ kind: 'directory', source, dest: target });
        else if (entry.type === 'file') ops.push({ kind: 'file', source, dest: target, placeIntoExistingDir: null });
        else if (entry.type === 'symlink') ops.push({ kind: 'symlink', source, dest: target, target: await readlink(source) });
        // Devices, FIFOs and sockets are not copied.
      }
    } else if (s.isFile()) {
      const name = posix.basename(logical);
      if (excludes?.excludes(name)) continue;
      if (intoDir) ops.push({ kind: 'file', source: hostPath, dest: posix.join(dest, name), placeIntoExistingDir: null });
      else ops.push({ kind: 'file', source: hostPath, dest, placeIntoExistingDir: name });
    } else {
      throw new ContextError(`${ins} source "${written}" is not a regular file or directory`);
    }
  }
  return ops;
}

/** The filter seen from a subdirectory `prefix` of the root. */
function createScopedFilter(filter: ContextFilter, prefix: string): ContextFilter {
  if (prefix === '') return filter;
  return { ...filter, excludes: (rel) => filter.excludes(`${prefix}/${rel}`) };
}
