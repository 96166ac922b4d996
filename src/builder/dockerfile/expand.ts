/**
 * Variable expansion with the rules of Docker's Dockerfile word lexer (BuildKit
 * `frontend/dockerfile/shell`), for the instructions the builder itself expands:
 * ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (and ARG
 * defaults, heredoc bodies with an unquoted delimiter). RUN, CMD and ENTRYPOINT are
 * never passed through here: their text belongs to the shell inside the image.
 *
 * Rules (outside quotes): `'...'` is literal; `"..."` expands `$` and honours the
 * escape character only before `"`, `$` and itself; the escape character makes
 * the next character literal; `$NAME`, `${NAME}`, `${NAME:-w}`, `${NAME-w}`,
 * `${NAME:+w}`, `${NAME+w}`, `${NAME:?w}`, `${NAME?w}` as in POSIX sh, where `w` is
 * itself expanded. An unset variable expands to the empty string. `$` not
 * followed by a name stays `$`.
 *
 * Invariant: a string with no `$`, no quote and no escape character is returned
 * unchanged (property-tested).
 */

/** Looks a variable up; `undefined` means unset (different from set-but-empty). */
export type VariableLookup = (name: string) => string | undefined;

export type EscapeChar = '\\' | '`';

export class ExpansionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpansionError';
  }
}

export interface ExpandOptions {
  /** The Dockerfile's escape character (`# escape=`). Default `\`. */
  escape?: EscapeChar;
  /**
   * Keep quotes and escape characters in the output and only expand `$`
   * (what BuildKit does for heredoc bodies). Text in single quotes is still not expanded.
   */
  raw?: boolean;
}

const SPECIAL_PARAMS = new Set(['*', '#', '@', '?', '-', '$', '!', '0']);

function isNameChar(ch: string): boolean {
  return /^[\p{L}\p{N}_]$/u.test(ch);
}

class WordScanner {
  private pos = 0;
  constructor(
    private readonly chars: string[],
    private readonly lookup: VariableLookup,
    private readonly escape: EscapeChar,
    private readonly raw: boolean,
  ) {}

  peek(): string | undefined {
    return this.chars[this.pos];
  }

  next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Processes until `stop` (consumed) or the end; returns the text and whether `stop` was found. */
  processUntil(stop: string | undefined, rawEscapes: boolean): { text: string; found: boolean } {
    let out = '';
    while (this.peek() !== undefined) {
      const ch = this.peek() as string;
      if (stop !== undefined && ch === stop) {
        this.next();
        return { text: out, found: true };
      }
      if (ch === "'") {
        out += this.singleQuote();
      } else if (ch === '"') {
        out += this.doubleQuote();
      } else if (ch === '$') {
        out += this.dollar();
      } else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === undefined) break; // an escape at the very end is dropped
          if (this.raw || rawEscapes) out += ch;
          out += escaped;
        } else {
          out += ch;
        }
      }
    }
    return { text: out, found: false };
  }

  private singleQuote(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") break;
      out += ch;
    }
    return this.raw ? `'${out}'` : out;
  }

  private doubleQuote(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        break;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const following = this.peek();
        if (following === undefined) continue;
        if (following === '"' || following === '$' || following === this.escape) {
          this.next();
          out += this.raw ? ch + following : following;
          continue;
        }
      }
      out += ch;
    }
    return this.raw ? `"${out}"` : out;
  }

  private name(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) return name;
      if (name === '' && /^[0-9]$/.test(ch)) {
        while (this.peek() !== undefined && /^[0-9]$/.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) {
        this.next();
        return ch;
      }
      if (!isNameChar(ch)) return name;
      name += this.next();
    }
  }

  private dollar(): string {
    this.next(); // the '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.lookup(name) ?? '';
    }
    this.next(); // the '{'
    const first = this.peek();
    if (first === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');
    const name = this.name();
    const op = this.next();
    if (op === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (op === '}') return this.lookup(name) ?? '';
    let nullIsUnset = false;
    let modifier = op;
    if (op === ':') {
      nullIsUnset = true;
      const after = this.next();
      if (after === undefined) throw new ExpansionError("syntax error: missing '}'");
      modifier = after;
    }
    if (modifier !== '-' && modifier !== '+' && modifier !== '?') {
      throw new ExpansionError(`unsupported modifier (${nullIsUnset ? ':' : ''}${modifier}) in substitution of \${${name}}`);
    }
    const { text: word, found } = this.processUntil('}', false);
    if (!found) throw new ExpansionError("syntax error: missing '}'");
    const value = this.lookup(name);
    const missing = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return missing ? word : (value as string);
      case '+':
        return missing ? '' : word;
      default: // '?'
        if (missing) {
          const why = word !== '' ? word : value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty';
          throw new ExpansionError(`${name}: ${why}`);
        }
        return value as string;
    }
  }
}

/** Expands one word: removes quotes (unless `raw`), applies escapes, substitutes variables. */
export function expandWord(word: string, lookup: VariableLookup, options: ExpandOptions = {}): string {
  const scanner = new WordScanner([...word], lookup, options.escape ?? '\\', options.raw ?? false);
  return scanner.processUntil(undefined, false).text;
}

/**
 * Splits text into words at unquoted, unescaped whitespace, keeping quotes and
 * escapes in each word so that `expandWord` can process it afterwards (BuildKit's
 * `parseWords`).
 */
export function splitWords(text: string, escape: EscapeChar = '\\'): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | null = null;
  let inWord = false;
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (quote === null && /\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === escape && quote !== "'" && i + 1 < chars.length) {
      word += ch + (chars[++i] as string);
      continue;
    }
    if (quote === null && (ch === '"' || ch === "'")) quote = ch;
    else if (quote === ch) quote = null;
    word += ch;
  }
  if (inWord) words.push(word);
  return words;
}

/** Builds a lookup over ordered `K=V` entries (later entries win, as in an environment). */
export function lookupFromEnvList(env: readonly string[]): VariableLookup {
  const map = new Map<string, string>();
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq > 0) map.set(entry.slice(0, eq), entry.slice(eq + 1));
    else if (eq < 0) map.set(entry, '');
  }
  return (name) => map.get(name);
}
