/**
 * COPY/ADD source matching: Go `filepath.Match` per path segment (`*`, `?`,
 * `[...]` with `^` or `!` negation, `\` escapes; no `**`, no braces; `*`
 * matches dotfiles), each directory read through the confined resolver.
 */
import { readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolveInRoot } from './inroot.js';

export function hasWildcard(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** Translates one Go filepath.Match segment pattern to a RegExp. */
export function segmentRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i] as string);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new Error(`bad pattern "${pattern}": unterminated [`);
      let body = pattern.slice(i + 1, end);
      let neg = '';
      if (body.startsWith('^') || body.startsWith('!')) {
        neg = '^';
        body = body.slice(1);
      }
      re += `[${neg}${body.replace(/\\(.)/g, '\\$1').replace(/\]/g, '\\]')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`${re}$`, 's');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Expands a (clean, absolute inside `root`) pattern to the matching paths inside
 * the root, sorted. Without wildcards, answers the path itself.
 */
export async function expandPattern(root: string, pattern: string, maxMatches = 100_000): Promise<string[]> {
  const clean = posix.normalize(`/${pattern}`);
  if (!hasWildcard(clean)) return [clean];
  let current = ['/'];
  const segments = clean.split('/').filter((s) => s !== '');
  for (const seg of segments) {
    const next: string[] = [];
    for (const dir of current) {
      if (!hasWildcard(seg)) {
        next.push(posix.join(dir, seg));
        continue;
      }
      const re = segmentRegExp(seg);
      let names: string[] = [];
      try {
        names = await readdir(await resolveInRoot(root, dir));
      } catch {
        continue;
      }
      for (const n of names.sort()) {
        if (re.test(n)) next.push(posix.join(dir, n));
        if (next.length > maxMatches) throw new Error(`pattern ${pattern} matches more than ${maxMatches} paths`);
      }
    }
    current = next;
  }
  return current;
}
