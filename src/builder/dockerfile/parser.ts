/**
 * Dockerfile parser: text → typed instruction list with line numbers. Pure (no I/O).
 *
 * Follows BuildKit's frontend parser:
 * - Parser directives (`# syntax=`, `# escape=`, `# check=`) are read only from the
 *   leading run of directive lines; the first other line (comment, blank line,
 *   instruction, or an unknown directive) ends them. A directive may appear once.
 * - A line whose last non-blank character is the escape character continues on the
 *   next line; comment lines and blank lines inside a continuation are skipped.
 *   Continued text is joined without inserting anything.
 * - `#` starts a comment only at the start of a line (after blanks).
 * - Keywords are case-insensitive; leading `--flag[=value]` words are split off.
 * - RUN, COPY and ADD may carry heredocs (`<<EOF`, `<<-EOF` strips leading tabs,
 *   a quoted delimiter disables expansion of the body); bodies follow the line.
 * - A JSON string array is the exec form; anything else (including invalid JSON)
 *   is the shell form.
 * Errors are `DockerfileError`s naming the file, the line and the instruction.
 */
import { splitWords, expandWord, type EscapeChar } from './expand.js';

export const KEYWORDS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;
export type Keyword = (typeof KEYWORDS)[number];

/** Flags each instruction accepts (anything else is an error, as in Docker). */
const ALLOWED_FLAGS: Partial<Record<Keyword, readonly string[]>> = {
  FROM: ['platform'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  RUN: ['mount', 'network', 'security'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};
const REPEATABLE_FLAGS = new Set(['mount', 'exclude']);
const HEREDOC_KEYWORDS = new Set<Keyword>(['RUN', 'COPY', 'ADD']);
const JSON_KEYWORDS = new Set<Keyword>(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'VOLUME', 'COPY', 'ADD', 'HEALTHCHECK']);

export class DockerfileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly instruction: string | null,
    readonly reason: string,
  ) {
    super(`${file}:${line}${instruction ? ` ${instruction}` : ''}: ${reason}`);
    this.name = 'DockerfileError';
  }
}

export interface InstructionFlag {
  name: string;
  /** Raw (unexpanded) value; `null` for a bare `--flag`. */
  value: string | null;
}

export interface Heredoc {
  /** The delimiter with quotes removed, e.g. `EOF`. */
  name: string;
  /** The body, each line ending in `\n`; with `<<-`, leading tabs already stripped. */
  content: string;
  /** False when the delimiter was quoted: the body is taken literally. */
  expand: boolean;
  stripTabs: boolean;
}

export interface Instruction {
  keyword: Keyword;
  /** First and last line (1-based) of the instruction, heredoc bodies included. */
  line: number;
  endLine: number;
  flags: InstructionFlag[];
  /** The text after the keyword and flags, continuations joined, trimmed. */
  args: string;
  /** The exec form when `args` is a JSON array of strings (only for instructions that have one). */
  json: string[] | null;
  heredocs: Heredoc[];
}

export interface ParserDirectives {
  syntax?: string;
  escape: EscapeChar;
  check?: string;
}

export interface ParsedDockerfile {
  file: string;
  directives: ParserDirectives;
  instructions: Instruction[];
  warnings: string[];
}

const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_RE = /^(\d*)<<(-?)([^<]*)$/;

function isComment(line: string): boolean {
  return line.trimStart().startsWith('#');
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** Returns the line without a trailing escape character (and blanks after it), and whether it was there. */
function trimContinuation(line: string, escape: EscapeChar): { text: string; continues: boolean } {
  const trimmed = line.replace(/[ \t]+$/, '');
  if (trimmed.endsWith(escape)) return { text: trimmed.slice(0, -1), continues: true };
  return { text: line, continues: false };
}

function parseJsonArray(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    // Not JSON: Docker silently treats it as the shell form.
  }
  return null;
}

/** Splits leading `--name[=value]` words off `text`. `--` alone ends the flags. */
function takeFlags(text: string): { flags: InstructionFlag[]; rest: string } {
  const flags: InstructionFlag[] = [];
  let rest = text.trimStart();
  while (rest.startsWith('--')) {
    const [word] = splitWords(rest);
    if (word === undefined) break;
    rest = rest.slice(word.length).trimStart();
    if (word === '--') break;
    const body = word.slice(2);
    const eq = body.indexOf('=');
    flags.push(eq < 0 ? { name: body, value: null } : { name: body.slice(0, eq), value: body.slice(eq + 1) });
  }
  return { flags, rest };
}

interface HeredocMarker {
  name: string;
  expand: boolean;
  stripTabs: boolean;
}

function heredocMarkers(args: string, escape: EscapeChar): HeredocMarker[] {
  const markers: HeredocMarker[] = [];
  for (const word of splitWords(args, escape)) {
    const m = HEREDOC_RE.exec(word);
    if (!m || m[3] === '') continue;
    const rawName = m[3] as string;
    const name = expandWord(rawName, () => undefined, { escape });
    markers.push({ name, expand: name === rawName, stripTabs: m[2] === '-' });
  }
  return markers;
}

export interface ParseOptions {
  /** Upper bound on the size of the Dockerfile, in characters. */
  maxLength?: number;
}

export const DEFAULT_MAX_DOCKERFILE_LENGTH = 4 * 1024 * 1024;

export function parseDockerfile(text: string, file = 'Dockerfile', options: ParseOptions = {}): ParsedDockerfile {
  const maxLength = options.maxLength ?? DEFAULT_MAX_DOCKERFILE_LENGTH;
  if (text.length > maxLength) throw new DockerfileError(file, 1, null, `file is larger than ${maxLength} characters`);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: ParserDirectives = { escape: '\\' };
  const seen = new Set<string>();
  const warnings: string[] = [];
  const instructions: Instruction[] = [];

  let i = 0;
  // Directives: only the leading run of `# key=value` lines with known keys.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i] as string);
    if (!m) break;
    const key = (m[1] as string).toLowerCase();
    const value = m[2] as string;
    if (!KNOWN_DIRECTIVES.has(key)) break;
    if (seen.has(key)) throw new DockerfileError(file, i + 1, null, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw new DockerfileError(file, i + 1, null, `invalid escape token '${value}' does not match ` + '` or \\');
      }
      directives.escape = value;
    } else if (key === 'syntax') {
      directives.syntax = value;
    } else {
      directives.check = value;
    }
  }
  const escape = directives.escape;

  while (i < lines.length) {
    const first = lines[i] as string;
    if (isBlank(first) || isComment(first)) {
      i++;
      continue;
    }
    const startLine = i + 1;
    let { text, continues } = trimContinuation(first.trimStart(), escape);
    i++;
    while (continues && i < lines.length) {
      const next = lines[i] as string;
      i++;
      if (isComment(next)) continue;
      if (isBlank(next)) {
        warnings.push(`${file}:${i}: empty continuation line (ignored; it will be an error in a future Docker)`);
        continue;
      }
      const part = trimContinuation(next, escape);
      text += part.text;
      continues = part.continues;
    }
    const lastLine = i;
    const keywordMatch = /^(\S+)\s*([\s\S]*)$/.exec(text) as RegExpExecArray;
    const rawKeyword = keywordMatch[1] as string;
    const upper = rawKeyword.toUpperCase();
    if (!(KEYWORDS as readonly string[]).includes(upper)) {
      throw new DockerfileError(file, startLine, rawKeyword, `unknown instruction: ${rawKeyword}`);
    }
    const keyword = upper as Keyword;
    let flags: InstructionFlag[] = [];
    let args = (keywordMatch[2] as string).trim();
    if (ALLOWED_FLAGS[keyword] !== undefined) {
      ({ flags, rest: args } = takeFlags(args));
      args = args.trim();
      const allowed = ALLOWED_FLAGS[keyword] as readonly string[];
      const counted = new Set<string>();
      for (const flag of flags) {
        if (!allowed.includes(flag.name)) {
          throw new DockerfileError(file, startLine, keyword, `unknown flag: --${flag.name}`);
        }
        if (counted.has(flag.name) && !REPEATABLE_FLAGS.has(flag.name)) {
          throw new DockerfileError(file, startLine, keyword, `duplicate flag specified: --${flag.name}`);
        }
        counted.add(flag.name);
      }
    }
    const json = JSON_KEYWORDS.has(keyword) ? parseJsonArray(args) : null;

    const heredocs: Heredoc[] = [];
    let endLine = lastLine;
    if (HEREDOC_KEYWORDS.has(keyword) && json === null) {
      for (const marker of heredocMarkers(args, escape)) {
        let content = '';
        let closed = false;
        while (i < lines.length) {
          let body = lines[i] as string;
          i++;
          if (marker.stripTabs) body = body.replace(/^\t+/, '');
          if (body === marker.name) {
            closed = true;
            break;
          }
          content += body + '\n';
        }
        if (!closed) {
          throw new DockerfileError(file, startLine, keyword, `unterminated heredoc: no line "${marker.name}" closes it`);
        }
        endLine = i;
        heredocs.push({ name: marker.name, content, expand: marker.expand, stripTabs: marker.stripTabs });
      }
    }

    if (args === '' && heredocs.length === 0) {
      throw new DockerfileError(file, startLine, keyword, `${keyword} requires at least one argument`);
    }
    instructions.push({ keyword, line: startLine, endLine, flags, args, json, heredocs });
  }
  return { file, directives, instructions, warnings };
}

/** The value of a flag (last occurrence), `undefined` if absent. A bare `--flag` yields `'true'`. */
export function flagValue(instruction: Instruction, name: string): string | undefined {
  let value: string | undefined;
  for (const flag of instruction.flags) if (flag.name === name) value = flag.value ?? 'true';
  return value;
}

/** Every value of a repeatable flag, in order. */
export function flagValues(instruction: Instruction, name: string): string[] {
  return instruction.flags.filter((f) => f.name === name).map((f) => f.value ?? 'true');
}
