/**
 * The build cache: one entry per executed step, keyed by everything that can
 * change its result, holding a snapshot of the stage's root filesystem after
 * the step and the stage's config at that point; plus packaged images keyed by
 * the final rootfs key and the run config.
 *
 * Layout (under the cache dir):
 *   blobs/sha256/<hex>          layers, configs, manifests (BlobDir)
 *   states/<key>/state.json     { config, fsKey }: fsKey names the state whose
 *                               rootfs/ holds this state's files (config-only
 *                               steps point at their parent's snapshot)
 *   states/<key>/rootfs/        a full copy of the stage rootfs after the step
 *   images/<key>.json           a packaged image: manifest/config/layer digests
 *   tmp/                        in-flight entries, renamed into place
 *
 * Invariant: a states/<key> directory appears only complete (built in tmp/ and
 * renamed), so a crash mid-snapshot leaves a stray tmp/ entry, never a broken hit.
 *
 * Keys: sha256 over a canonical JSON array of the parent key, the step text
 * after expansion, the digest of the step's inputs (COPY sources' content and
 * modes, archives) and the build args that reach it (see stepKey).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobDir } from '../package/blobs.js';
import { parseDigest, type Digest } from '../../oci/index.js';
import { copyTree } from './copytree.js';
import { removeTree, writeFileAtomic } from '../../util/index.js';

export interface StepKeyInput {
  parent: string;
  /** The instruction as it will run, after variable expansion. */
  text: string;
  /** Digest of the content the step reads (files to copy, archives), if any. */
  inputs?: string;
  /** Build args visible to the step, as K=V (sorted by the caller or here). */
  args?: string[];
}

export function stepKey(input: StepKeyInput): string {
  const doc = JSON.stringify(['ukc-step-v1', input.parent, input.text, input.inputs ?? '', [...(input.args ?? [])].sort()]);
  return createHash('sha256').update(doc).digest('hex');
}

export function hashOf(...parts: string[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export interface CachedState<C> {
  key: string;
  config: C;
  /** Key of the state whose snapshot holds the files. */
  fsKey: string;
}

export interface CachedImage {
  manifest: string;
  config: string;
  layers: string[];
  initrd: string;
}

const KEY_RE = /^[a-f0-9]{64}$/;

function checkKey(key: string): string {
  if (!KEY_RE.test(key)) throw new Error(`invalid cache key "${key}"`);
  return key;
}

export class BuildCache {
  readonly blobs: BlobDir;
  /** States this instance (one build) recorded: a failed build takes them back (`discardCreated`). */
  private readonly created = new Set<string>();

  constructor(readonly root: string) {
    this.blobs = new BlobDir(join(root, 'blobs'));
  }

  stateDir(key: string): string {
    return join(this.root, 'states', checkKey(key));
  }

  rootfsOf(fsKey: string): string {
    return join(this.stateDir(fsKey), 'rootfs');
  }

  async getState<C>(key: string): Promise<CachedState<C> | undefined> {
    try {
      const doc = JSON.parse(await readFile(join(this.stateDir(key), 'state.json'), 'utf8')) as { config: C; fsKey: string };
      checkKey(doc.fsKey);
      await stat(this.rootfsOf(doc.fsKey));
      return { key, config: doc.config, fsKey: doc.fsKey };
    } catch {
      return undefined;
    }
  }

  private async tmpDir(): Promise<string> {
    const dir = join(this.root, 'tmp', randomUUID());
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Records a state. With `rootfs`, a copy of that directory becomes its snapshot; without, it shares `fsKey`'s. */
  async putState<C>(key: string, config: C, fs: { rootfs: string } | { fsKey: string }, opts: { replace?: boolean } = {}): Promise<CachedState<C>> {
    const final = this.stateDir(key);
    const existing = opts.replace ? undefined : await this.getState<C>(key);
    if (existing) return existing;
    const tmp = await this.tmpDir();
    try {
      const fsKey = 'rootfs' in fs ? key : checkKey(fs.fsKey);
      if ('rootfs' in fs) await copyTree(fs.rootfs, join(tmp, 'rootfs'));
      await writeAtomic(join(tmp, 'state.json'), JSON.stringify({ config, fsKey }));
      await mkdir(join(this.root, 'states'), { recursive: true });
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      this.created.add(key);
      return { key, config, fsKey };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Removes what this build added (states with their snapshots, blobs) and its leftovers in
   * tmp/: a build that fails leaves the cache as it found it (a 4 MB gzip that inflated to
   * 4 GiB used to leave its snapshot behind on every attempt). Answers what it removed.
   */
  async discardCreated(): Promise<{ states: number; blobs: number }> {
    let states = 0;
    for (const key of this.created) {
      await removeTree(this.stateDir(key));
      states++;
    }
    this.created.clear();
    const blobs = await this.blobs.discardCreated();
    return { states, blobs };
  }

  async getImage(key: string): Promise<CachedImage | undefined> {
    try {
      const doc = JSON.parse(await readFile(join(this.root, 'images', `${checkKey(key)}.json`), 'utf8')) as CachedImage;
      for (const d of [doc.manifest, doc.config, doc.initrd, ...doc.layers]) {
        if (!(await this.blobs.has(parseBlob(d)))) return undefined;
      }
      return doc;
    } catch {
      return undefined;
    }
  }

  async putImage(key: string, image: CachedImage): Promise<void> {
    await mkdir(join(this.root, 'images'), { recursive: true });
    await writeAtomic(join(this.root, 'images', `${checkKey(key)}.json`), JSON.stringify(image));
  }
}


function parseBlob(text: string): Digest {
  return parseDigest(text);
}

/**
 * Writes a cache document with util/durable.ts's guarantees (temp sibling, fsync,
 * rename, fsync dir; the temp file removed on failure). Mode as `writeFile`'s default.
 */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomic(path, data, 0o666);
}
