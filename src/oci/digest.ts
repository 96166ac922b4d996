/**
 * Content digests, parsed by a strict grammar before any use.
 *
 * Invariant: a `Digest` value only exists after `parseDigest` accepted it, so
 * code that builds a path or URL from `digest.hex` never sees `..`, `/`,
 * uppercase hex or a wrong length (containers/image CVE-2024-3727).
 *
 * Grammar (OCI image spec, restricted to the algorithms we verify):
 *   digest    := algorithm ":" encoded
 *   algorithm := "sha256" | "sha512"
 *   encoded   := [a-f0-9]{64} for sha256, [a-f0-9]{128} for sha512
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** The canonical text form, `algorithm:hex`. */
  readonly text: string;
}

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** Why a digest string was refused; `unsupported` is a well-formed but unknown algorithm. */
export type DigestErrorKind = 'malformed' | 'unsupported';

export class DigestError extends Error {
  constructor(
    readonly kind: DigestErrorKind,
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = 'DigestError';
  }
}

// The general OCI grammar, used only to tell "unknown algorithm" from "garbage".
const GENERAL = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

function isAlgorithm(s: string): s is DigestAlgorithm {
  return s === 'sha256' || s === 'sha512';
}

/** Parses `text` strictly; throws `DigestError` on anything but a canonical sha256/sha512 digest. */
export function parseDigest(text: string): Digest {
  if (typeof text !== 'string' || text.length > 200) {
    throw new DigestError('malformed', String(text).slice(0, 200), 'digest is not a string of sane length');
  }
  const colon = text.indexOf(':');
  if (colon <= 0) throw new DigestError('malformed', text, `invalid digest "${text}": expected algorithm:hex`);
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  if (!isAlgorithm(algorithm)) {
    if (GENERAL.test(text)) {
      throw new DigestError('unsupported', text, `unsupported digest algorithm "${algorithm}"`);
    }
    throw new DigestError('malformed', text, `invalid digest "${text}"`);
  }
  const want = HEX_LENGTH[algorithm];
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
    throw new DigestError('malformed', text, `invalid ${algorithm} digest: want ${want} lowercase hex characters`);
  }
  return Object.freeze({ algorithm, hex, text });
}

/** Like `parseDigest` but answers `undefined` instead of throwing. */
export function tryParseDigest(text: string): Digest | undefined {
  try {
    return parseDigest(text);
  } catch {
    return undefined;
  }
}

export function isDigestString(text: string): boolean {
  return tryParseDigest(text) !== undefined;
}

export function digestEquals(a: Digest, b: Digest): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}

/** Digest of an in-memory buffer (manifests, configs: small documents only). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  const hex = createHash(algorithm).update(data).digest('hex');
  return Object.freeze({ algorithm, hex, text: `${algorithm}:${hex}` });
}

/** Incremental hasher that yields a `Digest`. */
export class Digester {
  private readonly hash: Hash;
  private count = 0;

  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.count += chunk.length;
  }

  get size(): number {
    return this.count;
  }

  digest(): Digest {
    const hex = this.hash.digest('hex');
    return Object.freeze({ algorithm: this.algorithm, hex, text: `${this.algorithm}:${hex}` });
  }
}

/**
 * A pass-through stream that hashes and counts what flows through it. After
 * 'finish'/'end', `result()` gives the digest and size.
 */
export class DigestingStream extends Transform {
  private readonly digester: Digester;
  private final: Digest | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.digester = new Digester(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.final = this.digester.digest();
    cb();
  }

  get bytes(): number {
    return this.digester.size;
  }

  result(): { digest: Digest; size: number } {
    if (!this.final) throw new Error('DigestingStream.result() called before the stream ended');
    return { digest: this.final, size: this.digester.size };
  }
}
