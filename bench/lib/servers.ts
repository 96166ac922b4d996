/**
 * Starting registries as child processes for benchmarks and end-to-end tests:
 * the CNCF distribution registry (Debian `docker-registry`, with a temporary
 * config — never the packaged /etc one, which enables htpasswd auth) and
 * ukc's own (`node bin/ukcd.js registry`). Also: free ports and peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DOCKER_REGISTRY_BIN = '/usr/bin/docker-registry';
/** How long a registry may take to answer GET /v2/ after it starts. */
export const DEFAULT_START_TIMEOUT_MS = 15_000;

export interface RunningRegistry {
  name: string;
  baseUrl: string;
  host: string;
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

async function waitReady(child: ChildProcess, baseUrl: string, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}: ${stderr().slice(-2000)}`);
    const status = await getStatus(`${baseUrl}/v2/`);
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`registry at ${baseUrl} not ready after ${timeoutMs} ms: ${stderr().slice(-2000)}`);
}

function stopper(child: ChildProcess, cleanup: () => Promise<void>): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await cleanup();
  };
}

export function dockerRegistryAvailable(): boolean {
  return existsSync(DOCKER_REGISTRY_BIN);
}

/** Starts the CNCF distribution registry on a free loopback port with a temporary config and storage. */
export async function startDockerRegistry(options: { timeoutMs?: number } = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-distribution-'));
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, config);
  const child = spawn(DOCKER_REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-8000);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await waitReady(child, baseUrl, options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS, () => err);
  } catch (e) {
    await stopper(child, cleanup)();
    throw e;
  }
  return { name: 'distribution', baseUrl, host: `127.0.0.1:${port}`, pid: child.pid as number, dataDir, stop: stopper(child, cleanup) };
}

/** Starts `node bin/ukcd.js registry` from the repository root `root`. */
export async function startUkcRegistry(root: string, options: { timeoutMs?: number } = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-registry-'));
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bin', 'ukcd.js'), 'registry', '--listen', `127.0.0.1:${port}`, '--data', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: root,
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-8000);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await waitReady(child, baseUrl, options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS, () => err);
  } catch (e) {
    await stopper(child, cleanup)();
    throw e;
  }
  return { name: 'ukc', baseUrl, host: `127.0.0.1:${port}`, pid: child.pid as number, dataDir: dir, stop: stopper(child, cleanup) };
}

/** Reads a /proc/<pid>/status field in KiB (VmHWM = peak RSS, VmRSS = current). */
export async function procStatusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Polls VmRSS of `pid` every `intervalMs` until stopped; answers the highest seen, in KiB. */
export function rssSampler(pid: number, intervalMs = 50): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const v = await procStatusKiB(pid, 'VmRSS');
      if (v !== undefined && v > max) max = v;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return max;
    },
  };
}
