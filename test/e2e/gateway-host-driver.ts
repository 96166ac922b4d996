/**
 * TEST AND BENCH SUPPORT ONLY — not a product runtime: a RuntimeDriver that
 * runs an instance's command as a plain host process (no isolation) bound to
 * its own loopback address 127.0.0.N, so the node's lifecycle, services and
 * gateway can be exercised end to end with real processes and sockets. The
 * product runtime is the sandbox-based `micro` driver.
 *
 * `{{ip}}` in the args is replaced by the instance's address; the app also gets
 * LISTEN_HOST and INSTANCE_NAME in its environment. `listening` is reported
 * once a TCP connect to `<ip>:<listenPort>` succeeds.
 *
 * Handles can `freeze`/`thaw` (stateful scale-to-zero) with the real cgroup
 * freezer: the process is moved into a freezer group of its own (under
 * `freezerParent`) at its first freeze. A frozen process is thawed before it
 * is signalled, since a frozen v1 task cannot die.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { AdoptRequest, InstanceSpec, RuntimeDriver, RuntimeHandle, RuntimeHooks } from '../../src/node/index.js';
import type { FreezableHandle } from '../../src/node/instances/lifecycle.js';
import { readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupFreezer, detectCgroupLayout, freezerMountPoint } from '../../src/sandbox/index.js';

export interface HostProcessDriverOptions {
  /** Port the apps listen on (probed for `listening`). */
  listenPort: number;
  /** Upper bound of the listening probe. */
  listenProbeMs?: number;
  /** Cgroup parent of the freezer groups (one per frozen process). */
  freezerParent?: string;
}

export class HostProcessDriver implements RuntimeDriver {
  private next = 2;
  private readonly inUse = new Set<string>();
  constructor(private readonly options: HostProcessDriverOptions) {
    this.freezerParent = options.freezerParent ?? `/ukc-host-driver-${randomUUID()}`;
  }

  private allocate(): string {
    for (let i = 0; i < 250; i++) {
      const ip = `127.0.0.${this.next}`;
      this.next = this.next >= 250 ? 2 : this.next + 1;
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip);
        return ip;
      }
    }
    throw new Error('no free loopback address');
  }

  /** Where this driver's freezer groups live; remove with removeFreezerParent after the runs ended. */
  readonly freezerParent: string;

  async start(spec: InstanceSpec, hooks: RuntimeHooks): Promise<FreezableHandle> {
    const ip = this.allocate();
    const [cmd, ...args] = spec.args.map((a) => a.replaceAll('{{ip}}', ip));
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd!, args, {
      env: { ...spec.env, LISTEN_HOST: ip, INSTANCE_NAME: spec.name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c: Buffer) => hooks.onOutput(c));
    child.stderr.on('data', (c: Buffer) => hooks.onOutput(c));
    let exited = false;
    child.once('spawn', () => {
      hooks.onEvent({ type: 'started', bootTimeUs: Number((process.hrtime.bigint() - t0) / 1000n), privateIp: ip });
      void this.probe(ip, () => exited).then((ok) => {
        if (ok && !exited) hooks.onEvent({ type: 'listening', netTimeUs: Number((process.hrtime.bigint() - t0) / 1000n) });
      });
    });
    child.once('error', () => undefined);
    let freezer: CgroupFreezer | undefined;
    const thawed = (): void => freezer?.thaw();
    child.once('close', (code, signal) => {
      exited = true;
      this.inUse.delete(ip);
      void freezer?.remove().catch(() => undefined);
      hooks.onEvent({ type: 'exited', code, signal, oom: false });
    });
    return {
      runtimeRef: `pid:${child.pid ?? 0}`,
      stop: async (graceMs) => {
        thawed();
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('close', () => clearTimeout(t));
      },
      kill: async () => {
        thawed();
        child.kill('SIGKILL');
      },
      stats: async () => ({ rssBytes: 0, cpuTimeUs: 0 }),
      detach: () => {
        thawed();
        child.kill('SIGKILL'); // host processes are not re-adoptable
      },
      freeze: async () => {
        if (exited || child.pid === undefined) throw new Error('process has exited');
        if (freezer === undefined) {
          freezer = CgroupFreezer.create(`pid-${child.pid}`, { parent: this.freezerParent });
          freezer.add(child.pid);
        }
        await freezer.freeze();
      },
      thaw: async () => {
        thawed();
      },
    };
  }

  private async probe(ip: string, gone: () => boolean): Promise<boolean> {
    const deadline = Date.now() + (this.options.listenProbeMs ?? 10_000);
    while (Date.now() < deadline && !gone()) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.options.listenPort, ip);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return true;
      await new Promise((r) => setTimeout(r, 2));
    }
    return false;
  }

  /** Removes the (empty) parent of this driver's freezer groups; call once every run has ended. */
  removeFreezerParent(): void {
    const layout = detectCgroupLayout();
    const root = layout.version === 2 ? layout.mountPoint : freezerMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'));
    if (root === undefined) return;
    try {
      rmdirSync(join(root, this.freezerParent));
    } catch {
      // never made (no freeze happened) or already removed
    }
  }

  async adopt(_request: AdoptRequest): Promise<RuntimeHandle | undefined> {
    return undefined;
  }
}

/** A small HTTP app for instances: answers `<INSTANCE_NAME> <path>` on LISTEN_HOST:PORT, exits cleanly on SIGTERM. */
export const HELLO_APP = `
const http = require('node:http');
const name = process.env.INSTANCE_NAME;
const server = http.createServer((req, res) => {
  const delay = Number(new URL(req.url, 'http://x').searchParams.get('delay') || 0);
  setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain', 'x-instance': name }); res.end(name + ' ' + req.url); }, delay);
});
server.keepAliveTimeout = 65000;
server.listen(Number(process.env.PORT || 8080), process.env.LISTEN_HOST);
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeIdleConnections(); setTimeout(() => process.exit(0), 2000).unref(); });
`;
