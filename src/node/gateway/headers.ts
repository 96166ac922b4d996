/**
 * The gateway's header handling: Host parsing, hop-by-hop stripping (RFC 9110
 * §7.6.1) and the one-pass request head the proxy forwards upstream.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** Lengths of the hop-by-hop names: most header names are rejected by length without lower-casing. */
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((h) => h.length));

export interface ParsedHost {
  name: string;
  port: string | undefined;
}

export function hostOf(header: string | undefined): ParsedHost | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(header);
  if (!m) return undefined;
  return { name: m[1]!.toLowerCase().replace(/\.$/, ''), port: m[2] };
}

/** Header names listed in `Connection` values (hop-by-hop for this message), lower-cased. */
function connectionListed(values: string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) for (const t of v.split(',')) if (t.trim() !== '') out.add(t.trim().toLowerCase());
  return out;
}

/** The end-to-end part of a message's raw headers: hop-by-hop fields and fields named by `Connection` dropped. */
export function endToEndHeaders(raw: readonly string[]): string[] {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === 10 && k.toLowerCase() === 'connection') (listed ??= connectionListed([])).add('connection');
  }
  if (listed !== undefined) {
    const values: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'connection') values.push(raw[i + 1]!);
    listed = connectionListed(values);
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (HOP_BY_HOP_LENGTHS.has(k.length) && HOP_BY_HOP.has(k.toLowerCase())) continue;
    if (listed !== undefined && listed.has(k.toLowerCase())) continue;
    out.push(k, raw[i + 1]!);
  }
  return out;
}

/** What the proxy needs from a request's raw headers, in one pass. */
export interface RequestHead {
  /** The Host value; undefined when absent. */
  host: string | undefined;
  /** More than one Host field line (answered 400, RFC 9112 §3.2). */
  hostRepeated: boolean;
  /** Headers to send upstream (end-to-end only, x-forwarded-* set). */
  headers: string[];
  /** The request has a body (Content-Length > 0 or a Transfer-Encoding). */
  body: boolean;
}

export function requestHead(raw: readonly string[], peer: string, secure: boolean): RequestHead {
  let host: string | undefined;
  let hostRepeated = false;
  let body = false;
  let chunked = false;
  let xff: string | undefined;
  let hasConnection = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    switch (k.length) {
      case 4:
        if (k.toLowerCase() === 'host') {
          if (host !== undefined) hostRepeated = true;
          host = raw[i + 1]!;
        }
        break;
      case 10:
        if (k.toLowerCase() === 'connection') hasConnection = true;
        break;
      case 14:
        if (k.toLowerCase() === 'content-length' && raw[i + 1] !== '0') body = true;
        break;
      case 15:
        if (k.toLowerCase() === 'x-forwarded-for') xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
        break;
      case 17:
        if (k.toLowerCase() === 'transfer-encoding') body = chunked = true;
        break;
    }
  }
  let headers: string[];
  if (!hasConnection && xff === undefined) {
    headers = [];
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!;
      if (HOP_BY_HOP_LENGTHS.has(k.length) && HOP_BY_HOP.has(k.toLowerCase())) continue;
      if (k.length === 17 && k.toLowerCase() === 'x-forwarded-proto') continue;
      headers.push(k, raw[i + 1]!);
    }
  } else {
    headers = endToEndHeaders(raw).filter((_, i, a) => {
      const name = (i % 2 === 0 ? a[i] : a[i - 1])!.toLowerCase();
      return name !== 'x-forwarded-for' && name !== 'x-forwarded-proto';
    });
  }
  // Node frames a piped body itself; it needs to be told to chunk it.
  if (chunked) headers.push('transfer-encoding', 'chunked');
  headers.push('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`, 'x-forwarded-proto', secure ? 'https' : 'http');
  return { host, hostRepeated, headers, body };
}
