/**
 * Turns a stage's root filesystem directory into the image's initrd: EROFS (via
 * Debian's `mkfs.erofs`) or CPIO newc (via src/oci's writer).
 *
 * Reproducibility: EROFS gets `--all-root`, a fixed timestamp (`-T`, from
 * SOURCE_DATE_EPOCH) and a fixed filesystem UUID (`-U`) so the same tree always
 * gives the same bytes (checked by a test building twice).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createCpioStream } from '../../oci/index.js';

export type RootfsFormat = 'erofs' | 'cpio';

export const ROOTFS_FORMATS: readonly RootfsFormat[] = ['erofs', 'cpio'];

export function parseRootfsFormat(text: string): RootfsFormat {
  if (text === 'erofs' || text === 'cpio') return text;
  throw new Error(`unknown rootfs format "${text}" (want cpio or erofs)`);
}

export interface InitrdOptions {
  format: RootfsFormat;
  /** Seconds since the epoch stamped on every entry (SOURCE_DATE_EPOCH, default 0). */
  epoch: number;
  /** Called for entries that cannot go into the initrd (device nodes, sockets). */
  warn?: (message: string) => void;
}

/** The UUID stamped into every EROFS image we make: fixed so builds are reproducible. */
export const EROFS_UUID = '00000000-0000-0000-0000-000000000000';

export async function makeInitrd(rootDir: string, outFile: string, opts: InitrdOptions): Promise<void> {
  if (opts.format === 'erofs') {
    await runTool('mkfs.erofs', ['--quiet', '--all-root', `-T${Math.floor(opts.epoch)}`, `-U${EROFS_UUID}`, outFile, rootDir]);
    return;
  }
  await pipeline(
    createCpioStream(rootDir, { sourceDateEpoch: Math.floor(opts.epoch), ...(opts.warn ? { onWarning: opts.warn } : {}) }),
    createWriteStream(outFile),
  );
}

/** Runs a helper tool, collecting stderr for the error message. */
export function runTool(cmd: string, args: string[], timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < 65536) out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 65536) err += d.toString();
    });
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim()}`));
    });
  });
}
