/**
 * OCI / Docker schema 2 manifests, indexes and image configs: types, and the
 * strict validation a registry applies to a pushed manifest document.
 *
 * Invariant: `parseManifest` accepts a document only when its kind is
 * unambiguous (CVE-2021-41190): a manifest has `config` + `layers` and no
 * `manifests`; an index has `manifests` and neither `config` nor `layers`; the
 * `mediaType` field, when present, equals the Content-Type it was sent with.
 * Every descriptor's digest passed `parseDigest`, so references handed back
 * are safe to use as store keys.
 */
import { DigestError, parseDigest } from './digest.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, MediaType } from './mediatypes.js';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, Record<string, never>>;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    Volumes?: Record<string, Record<string, never>>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }[];
}

/** Why a document was refused; the registry answers MANIFEST_INVALID with this message. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** The document is larger than the accepted cap; the registry answers 413. */
export class ManifestTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`manifest exceeds ${limit} bytes`);
    this.name = 'ManifestTooLargeError';
  }
}

/** Default cap on a manifest document (the spec asks registries to accept at least 4 MiB). */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ParseManifestOptions {
  /** The request's Content-Type (parameters ignored). */
  contentType?: string;
  maxBytes?: number;
}

export type ParsedManifest =
  | (ParsedCommon & { kind: 'manifest'; document: ImageManifest })
  | (ParsedCommon & { kind: 'index'; document: ImageIndex });

interface ParsedCommon {
  /** The effective media type (from the document, else the Content-Type). */
  mediaType: string;
  /** Config and layers: blobs the repository must hold. */
  blobs: Descriptor[];
  /** Child manifests of an index: manifests the repository must hold. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`, falling back to the config's media type for image manifests (referrers API rule). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `type/subtype` per RFC 6838, with no parameters. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function stringMap(v: unknown, where: string): Record<string, string> {
  if (!isObject(v)) throw new ManifestError(`${where} must be an object of strings`);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ManifestError(`${where}["${k}"] must be a string`);
  }
  return v as Record<string, string>;
}

function stringArray(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new ManifestError(`${where} must be an array of strings`);
  return v as string[];
}

/** Validates one descriptor; `where` names it in error messages. */
export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new ManifestError(`${where} must be a descriptor object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || !MEDIA_TYPE.test(mediaType)) {
    throw new ManifestError(`${where}.mediaType must be a media type string`);
  }
  if (typeof digest !== 'string') throw new ManifestError(`${where}.digest must be a string`);
  try {
    parseDigest(digest);
  } catch (err) {
    if (err instanceof DigestError) throw new ManifestError(`${where}.digest: ${err.message}`);
    throw err;
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new ManifestError(`${where}.size must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (v.urls !== undefined) d.urls = stringArray(v.urls, `${where}.urls`);
  if (v.annotations !== undefined) d.annotations = stringMap(v.annotations, `${where}.annotations`);
  if (v.data !== undefined) {
    if (typeof v.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.data)) {
      throw new ManifestError(`${where}.data must be base64`);
    }
    d.data = v.data;
  }
  if (v.artifactType !== undefined) {
    if (typeof v.artifactType !== 'string' || !MEDIA_TYPE.test(v.artifactType)) {
      throw new ManifestError(`${where}.artifactType must be a media type string`);
    }
    d.artifactType = v.artifactType;
  }
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.architecture !== 'string' || typeof p.os !== 'string') {
      throw new ManifestError(`${where}.platform needs architecture and os strings`);
    }
    d.platform = p as unknown as Platform;
  }
  return d;
}

function descriptorList(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw new ManifestError(`${where} must be an array`);
  return v.map((item, i) => parseDescriptor(item, `${where}[${i}]`));
}

/** Strips parameters (`; charset=...`) and case from a Content-Type header. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t === '' ? undefined : t;
}

/**
 * Parses and validates a manifest or index as pushed to a registry. Throws
 * `ManifestTooLargeError` above the cap and `ManifestError` for anything
 * malformed or ambiguous.
 */
export function parseManifest(bytes: Uint8Array, opts: ParseManifestOptions = {}): ParsedManifest {
  const max = opts.maxBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  if (bytes.length > max) throw new ManifestTooLargeError(max);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    throw new ManifestError('document is not valid JSON');
  }
  if (!isObject(doc)) throw new ManifestError('document must be a JSON object');
  if (doc.schemaVersion !== 2) throw new ManifestError('schemaVersion must be 2');

  const declared = doc.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw new ManifestError('mediaType must be a string');
  const header = baseMediaType(opts.contentType);
  if (declared !== undefined && header !== undefined && declared !== header) {
    throw new ManifestError(`mediaType "${declared}" does not match Content-Type "${header}"`);
  }
  const hasLayers = 'layers' in doc;
  const hasConfig = 'config' in doc;
  const hasManifests = 'manifests' in doc;
  if (hasManifests && (hasLayers || hasConfig)) {
    throw new ManifestError('ambiguous document: it has both manifests and config/layers');
  }
  // Without a declared or sent type, the shape decides (OCI makes mediaType optional).
  const mediaType = declared ?? header ?? (hasManifests ? MediaType.OciIndex : MediaType.OciManifest);
  const annotations = doc.annotations === undefined ? undefined : stringMap(doc.annotations, 'annotations');
  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'subject');
  let artifactType: string | undefined;
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string' || !MEDIA_TYPE.test(doc.artifactType)) {
      throw new ManifestError('artifactType must be a media type string');
    }
    artifactType = doc.artifactType;
  }

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    if (hasManifests) throw new ManifestError('an image manifest must not have manifests');
    if (!hasConfig || !hasLayers) throw new ManifestError('an image manifest needs config and layers');
    const config = parseDescriptor(doc.config, 'config');
    const layers = descriptorList(doc.layers, 'layers');
    const document: ImageManifest = { ...(doc as object), schemaVersion: 2, config, layers } as ImageManifest;
    const parsed: ParsedManifest = {
      kind: 'manifest',
      mediaType,
      document,
      blobs: [config, ...layers],
      manifests: [],
      artifactType: artifactType ?? config.mediaType,
    };
    if (subject) parsed.subject = subject;
    if (annotations) parsed.annotations = annotations;
    return parsed;
  }
  if (INDEX_TYPES.has(mediaType)) {
    if (hasConfig || hasLayers) throw new ManifestError('an index must not have config or layers');
    if (!hasManifests) throw new ManifestError('an index needs manifests');
    const manifests = descriptorList(doc.manifests, 'manifests');
    const document: ImageIndex = { ...(doc as object), schemaVersion: 2, manifests } as ImageIndex;
    const parsed: ParsedManifest = { kind: 'index', mediaType, document, blobs: [], manifests };
    if (artifactType) parsed.artifactType = artifactType;
    if (subject) parsed.subject = subject;
    if (annotations) parsed.annotations = annotations;
    return parsed;
  }
  throw new ManifestError(`unsupported manifest media type "${mediaType}"`);
}

/** Parses an image config just enough to trust its shape (os, architecture, diff_ids). */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    throw new ManifestError('image config is not valid JSON');
  }
  if (!isObject(doc)) throw new ManifestError('image config must be a JSON object');
  if (typeof doc.architecture !== 'string' || typeof doc.os !== 'string') {
    throw new ManifestError('image config needs architecture and os strings');
  }
  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || rootfs.type !== 'layers') throw new ManifestError('image config rootfs.type must be "layers"');
  const diffIds = stringArray(rootfs.diff_ids, 'rootfs.diff_ids');
  for (const [i, id] of diffIds.entries()) {
    try {
      parseDigest(id);
    } catch {
      throw new ManifestError(`rootfs.diff_ids[${i}] is not a valid digest`);
    }
  }
  if (doc.config !== undefined && !isObject(doc.config)) throw new ManifestError('image config "config" must be an object');
  return doc as unknown as ImageConfig;
}
