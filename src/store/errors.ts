/** Typed failures of the blob store; the registry maps each to one spec error code. */
import type { Digest } from '../oci/index.js';
import type { ManifestReference } from './types.js';

export class BlobNotFoundError extends Error {
  constructor(readonly digest: Digest) {
    super(`blob ${digest.text} not found`);
    this.name = 'BlobNotFoundError';
  }
}

/** The bytes hashed to something else than the digest the client announced. */
export class DigestMismatchError extends Error {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(`content digest ${actual.text} does not match ${expected.text}`);
    this.name = 'DigestMismatchError';
  }
}

/** The byte count differs from the size the client announced. */
export class SizeMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`content size ${actual} does not match ${expected}`);
    this.name = 'SizeMismatchError';
  }
}

/** More bytes arrived than a configured cap allows. */
export class TooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`content exceeds the limit of ${limit} bytes`);
    this.name = 'TooLargeError';
  }
}

/** A chunk was offered at an offset other than the staged size. */
export class UploadOffsetError extends Error {
  constructor(
    readonly currentSize: number,
    readonly offered: number,
  ) {
    super(`chunk starts at ${offered} but the upload holds ${currentSize} bytes`);
    this.name = 'UploadOffsetError';
  }
}

export class UploadNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`upload ${id} not found`);
    this.name = 'UploadNotFoundError';
  }
}

/** A range outside the blob. */
export class RangeNotSatisfiableError extends Error {
  constructor(readonly size: number) {
    super(`range not satisfiable for a blob of ${size} bytes`);
    this.name = 'RangeNotSatisfiableError';
  }
}

/** Thrown by `putManifest` when the document names blobs or manifests the repository lacks. */
export class MissingReferencesError extends Error {
  constructor(readonly missing: ManifestReference[]) {
    super(`manifest references unknown content: ${missing.map((m) => m.digest).join(', ')}`);
    this.name = 'MissingReferencesError';
  }
}
