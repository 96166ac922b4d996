/**
 * OCI image layout directories and their `.oci.tar` archives.
 *
 * On disk (image-spec image-layout.md):
 *
 *   <dir>/
 *   ├── oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   ├── index.json            image index; a manifest's tag is its
 *   │                         org.opencontainers.image.ref.name annotation
 *   └── blobs/
 *       └── <alg>/<hex>       content, named by its digest
 *
 * Invariants:
 * - A blob path is only ever built from a `Digest` that `parseDigest` accepted.
 * - A blob file's name is the digest of its bytes: `addBlob` hashes while it
 *   writes to a temp file (`blobs/<alg>/.tmp-<uuid>`) and renames only after the
 *   digest (and the expected size/digest, when given) matched.
 * - Every write is atomic: temp file, fsync, rename, fsync of the directory
 *   (util/durable.ts).
 * - The tar form is deterministic: fixed order (bytewise), 0:0, modes 0755/0644,
 *   mtime = `sourceDateEpoch` (default 0).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Digester, parseDigest, type Digest, type DigestAlgorithm } from './digest.js';
import { MediaType } from './mediatypes.js';
import { createTarStream, type TarEntry } from './tar.js';
import { extractTar, type ExtractOptions } from './extract.js';
import { fsyncDir, isTempName, writeFileAtomic } from '../util/index.js';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_INDEX_FILE = 'index.json';
export const OCI_LAYOUT_VERSION = '1.0.0';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** Largest index.json / manifest / config read into memory. */
export const DEFAULT_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

export interface LayoutPlatform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface LayoutDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: LayoutPlatform;
  artifactType?: string;
  urls?: string[];
}

export interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: LayoutDescriptor[];
  annotations?: Record<string, string>;
}

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

// ref ::= component ("/" component)*; component ::= alphanum (separator alphanum)*;
// alphanum ::= [A-Za-z0-9]+; separator ::= [-._:@+] | "--"
const REF_NAME_RE = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** True when `name` fits the image-layout grammar for `org.opencontainers.image.ref.name`. */
export function isValidLayoutRefName(name: string): boolean {
  return name.length <= 512 && REF_NAME_RE.test(name);
}

function toDigest(d: Digest | string): Digest {
  return typeof d === 'string' ? parseDigest(d) : d;
}

/** `<dir>/blobs/<alg>/<hex>`; a string digest is parsed strictly first. */
export function blobPath(dir: string, digest: Digest | string): string {
  const d = toDigest(digest);
  return join(dir, 'blobs', d.algorithm, d.hex);
}

/** Writes `data` as `dirOfFile/name` with util/durable.ts's guarantees (mode 0644). */
async function writeLayoutFile(dirOfFile: string, name: string, data: Uint8Array | string): Promise<void> {
  await writeFileAtomic(join(dirOfFile, name), data, 0o644);
}

/** Canonical JSON for layout files: the object's own key order, no spaces. */
function json(value: unknown): string {
  return JSON.stringify(value);
}

/** Creates `dir` as an empty layout (or leaves an existing one's index alone). */
export async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeLayoutFile(dir, OCI_LAYOUT_FILE, json({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  try {
    await stat(join(dir, OCI_INDEX_FILE));
  } catch {
    await writeIndex(dir, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
  }
}

export interface BlobExpectation {
  digest?: Digest | string;
  size?: number;
}

export interface AddedBlob {
  digest: Digest;
  size: number;
}

/**
 * Streams `source` into the layout as a blob, hashing as it goes. When
 * `expected` is given the digest and size must match, or nothing is stored.
 */
export async function addBlob(
  dir: string,
  source: Readable | AsyncIterable<Uint8Array> | Uint8Array,
  expected: BlobExpectation = {},
  algorithm: DigestAlgorithm = 'sha256',
): Promise<AddedBlob> {
  const want = expected.digest !== undefined ? toDigest(expected.digest) : undefined;
  const alg = want?.algorithm ?? algorithm;
  const algDir = join(dir, 'blobs', alg);
  await mkdir(algDir, { recursive: true });
  const tmp = join(algDir, `.tmp-${randomUUID()}`);
  const digester = new Digester(alg);
  const fh = await open(tmp, 'wx', 0o644);
  let ok = false;
  try {
    const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? [source] : source;
    for await (const chunk of chunks) {
      digester.update(chunk);
      if (expected.size !== undefined && digester.size > expected.size) {
        throw new LayoutError(`blob is larger than the expected ${expected.size} bytes`);
      }
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await fh.sync();
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(tmp, { force: true });
  }
  const digest = digester.digest();
  const size = digester.size;
  if ((expected.size !== undefined && size !== expected.size) || (want !== undefined && want.hex !== digest.hex)) {
    await rm(tmp, { force: true });
    throw new LayoutError(
      `blob mismatch: got ${digest.text} (${size} bytes), expected ${want?.text ?? 'any digest'} (${expected.size ?? 'any'} bytes)`,
    );
  }
  await rename(tmp, join(algDir, digest.hex));
  await fsyncDir(algDir);
  return { digest, size };
}

export async function hasBlob(dir: string, digest: Digest | string): Promise<boolean> {
  try {
    return (await lstat(blobPath(dir, digest))).isFile();
  } catch {
    return false;
  }
}

/** A stream of a blob's bytes (not verified; use `readBlob` for small verified documents). */
export function openBlob(dir: string, digest: Digest | string): Readable {
  return createReadStream(blobPath(dir, digest));
}

/** Reads a small blob (manifest, config) fully, checking its size cap and digest. */
export async function readBlob(dir: string, digest: Digest | string, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
  const d = toDigest(digest);
  const path = blobPath(dir, d);
  const st = await lstat(path);
  if (!st.isFile()) throw new LayoutError(`blob ${d.text} is not a regular file`);
  if (st.size > maxBytes) throw new LayoutError(`blob ${d.text} is ${st.size} bytes, more than ${maxBytes}`);
  const fh = await open(path, 'r');
  let data: Buffer;
  try {
    data = await fh.readFile();
  } finally {
    await fh.close();
  }
  const digester = new Digester(d.algorithm);
  digester.update(data);
  if (digester.digest().hex !== d.hex) throw new LayoutError(`blob ${d.text} does not match its digest`);
  return data;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseStringMap(v: unknown, what: string): Record<string, string> {
  if (!isPlainObject(v)) throw new LayoutError(`${what} must be an object of strings`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw new LayoutError(`${what}.${k} must be a string`);
  }
  return v as Record<string, string>;
}

/** Checks a descriptor strictly (digest grammar, size, media type, annotations). */
export function parseLayoutDescriptor(v: unknown, where = 'descriptor'): LayoutDescriptor {
  if (!isPlainObject(v)) throw new LayoutError(`${where} must be an object`);
  const { mediaType, digest, size, annotations, platform, artifactType, urls } = v;
  if (typeof mediaType !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/.test(mediaType)) {
    throw new LayoutError(`${where}.mediaType is missing or malformed`);
  }
  if (typeof digest !== 'string') throw new LayoutError(`${where}.digest is missing`);
  try {
    parseDigest(digest);
  } catch (err) {
    throw new LayoutError(`${where}.digest: ${(err as Error).message}`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new LayoutError(`${where}.size must be a non-negative integer`);
  const out: LayoutDescriptor = { mediaType, digest, size };
  if (annotations !== undefined) out.annotations = parseStringMap(annotations, `${where}.annotations`);
  if (platform !== undefined) {
    if (!isPlainObject(platform) || typeof platform.architecture !== 'string' || typeof platform.os !== 'string') {
      throw new LayoutError(`${where}.platform needs architecture and os`);
    }
    out.platform = platform as unknown as LayoutPlatform;
  }
  if (artifactType !== undefined) {
    if (typeof artifactType !== 'string') throw new LayoutError(`${where}.artifactType must be a string`);
    out.artifactType = artifactType;
  }
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) throw new LayoutError(`${where}.urls must be strings`);
    out.urls = urls as string[];
  }
  return out;
}

/** Parses index.json text strictly. */
export function parseLayoutIndex(text: string): LayoutIndex {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new LayoutError('index.json is not valid JSON');
  }
  if (!isPlainObject(v)) throw new LayoutError('index.json must be an object');
  if (v.schemaVersion !== 2) throw new LayoutError('index.json schemaVersion must be 2');
  if (v.mediaType !== undefined && v.mediaType !== MediaType.OciIndex) throw new LayoutError(`index.json mediaType must be ${MediaType.OciIndex}`);
  if (!Array.isArray(v.manifests)) throw new LayoutError('index.json manifests must be an array');
  if ('layers' in v) throw new LayoutError('index.json must not have layers');
  const index: LayoutIndex = {
    schemaVersion: 2,
    manifests: v.manifests.map((m, i) => parseLayoutDescriptor(m, `manifests[${i}]`)),
  };
  if (v.mediaType !== undefined) index.mediaType = MediaType.OciIndex;
  if (v.annotations !== undefined) index.annotations = parseStringMap(v.annotations, 'index.json annotations');
  return index;
}

/** Reads and checks `oci-layout` and `index.json`. */
export async function readIndex(dir: string, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<LayoutIndex> {
  const readSmall = async (name: string): Promise<string> => {
    const path = join(dir, name);
    let st;
    try {
      st = await lstat(path);
    } catch {
      throw new LayoutError(`${dir} is not an OCI layout: ${name} is missing`);
    }
    if (!st.isFile()) throw new LayoutError(`${name} is not a regular file`);
    if (st.size > maxBytes) throw new LayoutError(`${name} is larger than ${maxBytes} bytes`);
    const fh = await open(path, 'r');
    try {
      return await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  };
  let layout: unknown;
  try {
    layout = JSON.parse(await readSmall(OCI_LAYOUT_FILE));
  } catch (err) {
    if (err instanceof LayoutError) throw err;
    throw new LayoutError('oci-layout is not valid JSON');
  }
  if (!isPlainObject(layout) || layout.imageLayoutVersion !== OCI_LAYOUT_VERSION) {
    throw new LayoutError(`unsupported imageLayoutVersion in ${dir}/oci-layout`);
  }
  return parseLayoutIndex(await readSmall(OCI_INDEX_FILE));
}

/** Writes index.json atomically (descriptors in the order given). */
export async function writeIndex(dir: string, index: LayoutIndex): Promise<void> {
  const checked = parseLayoutIndex(JSON.stringify(index));
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: checked.manifests.map(canonicalDescriptor) };
  if (checked.annotations !== undefined) doc.annotations = sortedMap(checked.annotations);
  await writeLayoutFile(dir, OCI_INDEX_FILE, json(doc));
}

function sortedMap(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function canonicalDescriptor(d: LayoutDescriptor): LayoutDescriptor {
  const out: LayoutDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  if (d.urls !== undefined) out.urls = d.urls;
  if (d.annotations !== undefined) out.annotations = sortedMap(d.annotations);
  if (d.platform !== undefined) out.platform = d.platform;
  return out;
}

/**
 * Adds `descriptor` to index.json; with `refName` it is tagged by the ref-name
 * annotation, and any other manifest with that name loses it (it is removed).
 */
export async function addManifestToIndex(dir: string, descriptor: LayoutDescriptor, refName?: string): Promise<void> {
  const desc = parseLayoutDescriptor(descriptor);
  if (refName !== undefined && !isValidLayoutRefName(refName)) throw new LayoutError(`invalid layout reference name "${refName}"`);
  const index = await readIndex(dir);
  const manifests = index.manifests.filter((m) => {
    if (refName !== undefined) return m.annotations?.[REF_NAME_ANNOTATION] !== refName;
    return !(m.digest === desc.digest && m.annotations?.[REF_NAME_ANNOTATION] === undefined);
  });
  const annotations = { ...(desc.annotations ?? {}) };
  if (refName !== undefined) annotations[REF_NAME_ANNOTATION] = refName;
  manifests.push({ ...desc, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) });
  await writeIndex(dir, { ...index, manifests });
}

/** The manifest descriptor tagged `refName`; throws `LayoutError` if none or several. */
export async function resolveInLayout(dir: string, refName: string): Promise<LayoutDescriptor> {
  const index = await readIndex(dir);
  const found = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === refName);
  if (found.length === 0) throw new LayoutError(`no manifest named "${refName}" in ${dir}`);
  if (found.length > 1) throw new LayoutError(`several manifests named "${refName}" in ${dir}`);
  return found[0];
}

export type LayoutBlobSource = Uint8Array | { open: () => Readable | AsyncIterable<Uint8Array>; digest?: string; size?: number };

export interface WriteLayoutInput {
  blobs: Iterable<LayoutBlobSource> | AsyncIterable<LayoutBlobSource>;
  manifests: Array<{ descriptor: LayoutDescriptor; refName?: string }>;
}

/**
 * Creates (or adds to) a layout: stores every blob, then adds the manifests to
 * the index. Each manifest's own blob must be among the blobs (or already there).
 */
export async function writeLayout(dir: string, input: WriteLayoutInput): Promise<void> {
  await initLayout(dir);
  for await (const b of input.blobs) {
    if (b instanceof Uint8Array) await addBlob(dir, b);
    else await addBlob(dir, b.open(), { digest: b.digest, size: b.size });
  }
  for (const m of input.manifests) {
    const desc = parseLayoutDescriptor(m.descriptor);
    const st = await lstat(blobPath(dir, desc.digest)).catch(() => undefined);
    if (!st?.isFile()) throw new LayoutError(`manifest blob ${desc.digest} is not in the layout`);
    if (st.size !== desc.size) throw new LayoutError(`manifest blob ${desc.digest} is ${st.size} bytes, descriptor says ${desc.size}`);
    await addManifestToIndex(dir, desc, m.refName);
  }
}

/** Every blob in the layout, by parsed digest; temp files are skipped, anything else is an error. */
export async function listBlobs(dir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  let algs: string[];
  try {
    algs = (await readdir(join(dir, 'blobs'))).sort();
  } catch {
    return out;
  }
  for (const alg of algs) {
    for (const hex of (await readdir(join(dir, 'blobs', alg))).sort()) {
      if (hex.startsWith('.tmp-') || isTempName(hex)) continue;
      let d: Digest;
      try {
        d = parseDigest(`${alg}:${hex}`);
      } catch {
        throw new LayoutError(`unexpected file blobs/${alg}/${hex} in the layout`);
      }
      out.push(d);
    }
  }
  return out;
}

/** Re-hashes every blob; throws `LayoutError` on the first whose bytes do not match its name. */
export async function verifyLayout(dir: string): Promise<{ blobs: number }> {
  await readIndex(dir);
  const blobs = await listBlobs(dir);
  for (const d of blobs) {
    const st = await lstat(blobPath(dir, d));
    if (!st.isFile()) throw new LayoutError(`blob ${d.text} is not a regular file`);
    const digester = new Digester(d.algorithm);
    for await (const chunk of createReadStream(blobPath(dir, d)) as AsyncIterable<Buffer>) digester.update(chunk);
    if (digester.digest().hex !== d.hex) throw new LayoutError(`blob ${d.text} does not match its digest`);
  }
  return { blobs: blobs.length };
}

export interface LayoutTarOptions {
  /** mtime of every entry (SOURCE_DATE_EPOCH); default 0. */
  sourceDateEpoch?: number;
}

/** The layout as a deterministic tar stream (the `.oci.tar` form). */
export function layoutTarStream(dir: string, options: LayoutTarOptions = {}): Readable {
  const mtime = options.sourceDateEpoch ?? 0;
  async function* entries(): AsyncGenerator<TarEntry> {
    await readIndex(dir);
    const blobs = await listBlobs(dir);
    const common = { uid: 0, gid: 0, mtime };
    yield { ...common, type: 'directory', name: 'blobs', mode: 0o755 };
    let alg = '';
    for (const d of blobs) {
      if (d.algorithm !== alg) {
        alg = d.algorithm;
        yield { ...common, type: 'directory', name: `blobs/${alg}`, mode: 0o755 };
      }
      const path = blobPath(dir, d);
      const size = (await lstat(path)).size;
      yield { ...common, type: 'file', name: `blobs/${alg}/${d.hex}`, mode: 0o644, size, source: path };
    }
    for (const name of [OCI_INDEX_FILE, OCI_LAYOUT_FILE]) {
      const path = join(dir, name);
      yield { ...common, type: 'file', name, mode: 0o644, size: (await lstat(path)).size, source: path };
    }
  }
  return createTarStream(entries(), { sourceDateEpoch: mtime });
}

export interface ReadLayoutTarOptions extends Omit<ExtractOptions, 'mode'> {
  /** Re-hash every blob after extraction (default true). */
  verify?: boolean;
}

/**
 * Extracts an `.oci.tar` stream confined into `destDir` (created if missing,
 * removed again on failure when it was created here) and checks it is a layout.
 */
export async function readLayoutTar(source: Readable | AsyncIterable<Buffer>, destDir: string, options: ReadLayoutTarOptions = {}): Promise<LayoutIndex> {
  let created = false;
  try {
    await lstat(destDir);
  } catch {
    created = true;
  }
  try {
    await extractTar(destDir, source, { ...options, mode: 'plain', preserveOwners: options.preserveOwners ?? false });
    if (options.verify ?? true) await verifyLayout(destDir);
    return await readIndex(destDir);
  } catch (err) {
    if (created) await rm(destDir, { recursive: true, force: true });
    throw err;
  }
}
