/**
 * The image config and manifest of the Unikraft layout, written as bytes with a
 * fixed key order (objects are built in that order; labels and annotations are
 * sorted bytewise) so the same inputs always give the same digests.
 *
 * Also the rules that merge the command, environment and labels from the CLI,
 * the Kraftfile, the runtime image and the Dockerfile (see mergeRunConfig).
 */
import type { Digest } from '../../oci/index.js';
import { MediaType } from '../../oci/index.js';
import { INITRD_PATH, KERNEL_PATH } from './layer.js';

export const ANNOTATION_KERNEL = 'org.unikraft.kernel.image';
export const ANNOTATION_INITRD = 'org.unikraft.kernel.initrd';
export const ANNOTATION_IMAGE_NAME = 'org.unikraft.image.name';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

export interface RunConfig {
  cmd: string[];
  env: string[];
  labels: Record<string, string>;
  workingDir?: string;
  user?: string;
}

export interface LayerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

export interface UnikraftImageInput {
  run: RunConfig;
  kernel?: { digest: Digest; size: number };
  initrd: { digest: Digest; size: number };
  /** Seconds since the epoch (SOURCE_DATE_EPOCH); never the clock. */
  epoch: number;
  /** Image name (Kraftfile name or dir name), for org.unikraft.image.name. */
  name: string;
  /** Tag or ref name for org.opencontainers.image.ref.name. */
  refName?: string;
  architecture?: string;
  os?: string;
}

export function sortedRecord(rec: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(rec).sort(compareBytes)) out[k] = rec[k] as string;
  return out;
}

export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function isoFromEpoch(epoch: number): string {
  return new Date(Math.floor(epoch) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export function layerDescriptors(input: UnikraftImageInput): LayerDescriptor[] {
  const layers: LayerDescriptor[] = [];
  if (input.kernel) {
    layers.push({
      mediaType: MediaType.OciLayerTar,
      digest: input.kernel.digest,
      size: input.kernel.size,
      annotations: { [ANNOTATION_KERNEL]: `/${KERNEL_PATH}` },
    });
  }
  layers.push({
    mediaType: MediaType.OciLayerTar,
    digest: input.initrd.digest,
    size: input.initrd.size,
    annotations: { [ANNOTATION_INITRD]: `/${INITRD_PATH}` },
  });
  return layers;
}

/** The config document's bytes. */
export function renderConfig(input: UnikraftImageInput): string {
  const config: Record<string, unknown> = {};
  if (input.run.user) config.User = input.run.user;
  config.Env = input.run.env;
  config.Cmd = input.run.cmd;
  if (input.run.workingDir) config.WorkingDir = input.run.workingDir;
  config.Labels = sortedRecord(input.run.labels);
  const doc = {
    created: isoFromEpoch(input.epoch),
    architecture: input.architecture ?? 'x86_64',
    os: input.os ?? 'kraftcloud',
    config,
    rootfs: { type: 'layers', diff_ids: layerDescriptors(input).map((l) => l.digest.text) },
  };
  return JSON.stringify(doc);
}

/** The manifest document's bytes, given the stored config's digest and size. */
export function renderManifest(input: UnikraftImageInput, config: { digest: Digest; size: number }): string {
  const annotations: Record<string, string> = {
    [ANNOTATION_CREATED]: isoFromEpoch(input.epoch),
    [ANNOTATION_IMAGE_NAME]: input.name,
  };
  if (input.refName) annotations[ANNOTATION_REF_NAME] = input.refName;
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: config.digest.text, size: config.size },
    layers: layerDescriptors(input).map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest.text,
      size: l.size,
      ...(l.annotations ? { annotations: sortedRecord(l.annotations) } : {}),
    })),
    annotations: sortedRecord(annotations),
  };
  return JSON.stringify(doc);
}

/** The parts of the run configuration each source may give. */
export interface RunConfigSources {
  cliArgs?: string[];
  kraftfile?: { cmd?: string[]; env?: string[]; labels?: Record<string, string> };
  /** A runtime's Entrypoint (e.g. a python runtime's interpreter) prefixes the final command. */
  runtime?: { cmd?: string[]; env?: string[]; entrypoint?: string[] };
  dockerfile?: {
    entrypoint?: string[];
    cmd?: string[];
    env?: string[];
    labels?: Record<string, string>;
    workingDir?: string;
    user?: string;
  };
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/**
 * Command precedence: CLI args, then the Kraftfile's cmd, then the runtime's,
 * then the Dockerfile's ENTRYPOINT + CMD (Entrypoint folded into Cmd: the
 * Unikraft layout has no Entrypoint).
 * Env: the Kraftfile's entries first, then the runtime's and Dockerfile's whose
 * names the Kraftfile did not set (glibc's getenv takes the first duplicate, so
 * duplicates are removed rather than left for the loader to pick).
 * Labels: when the Kraftfile has labels they replace the Dockerfile's.
 */
export function mergeRunConfig(src: RunConfigSources): RunConfig {
  const df = src.dockerfile ?? {};
  const dockerCmd = [...(df.entrypoint ?? []), ...(df.cmd ?? [])];
  let cmd: string[] = dockerCmd;
  if (src.cliArgs && src.cliArgs.length > 0) cmd = src.cliArgs;
  else if (src.kraftfile?.cmd && src.kraftfile.cmd.length > 0) cmd = src.kraftfile.cmd;
  else if (src.runtime?.cmd && src.runtime.cmd.length > 0) cmd = src.runtime.cmd;
  if (src.runtime?.entrypoint && src.runtime.entrypoint.length > 0) cmd = [...src.runtime.entrypoint, ...cmd];

  const env: string[] = [];
  const seen = new Set<string>();
  for (const list of [src.kraftfile?.env ?? [], df.env ?? [], src.runtime?.env ?? []]) {
    for (const entry of list) {
      const key = envKey(entry);
      if (seen.has(key)) continue;
      seen.add(key);
      env.push(entry);
    }
  }
  const labels = src.kraftfile?.labels && Object.keys(src.kraftfile.labels).length > 0 ? { ...src.kraftfile.labels } : { ...(df.labels ?? {}) };
  const out: RunConfig = { cmd, env, labels };
  if (df.workingDir) out.workingDir = df.workingDir;
  if (df.user) out.user = df.user;
  return out;
}
