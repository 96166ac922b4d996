// Cgroups for sandboxes, on either layout:
//   v2 (unified): one directory; memory.max, cpu.max, pids.max; OOM kills counted in memory.events.
//   v1: one directory per controller (memory, cpu, cpuacct, pids); memory.limit_in_bytes (+memsw
//       so swap cannot dodge the limit), cpu.cfs_quota_us/cfs_period_us, pids.max; OOM kills
//       counted in memory.oom_control (`oom_kill N`).
// The layout is detected at run time: v2 when its hierarchy offers the memory controller, else v1
// (hybrid machines mount an empty v2 beside v1 — that one cannot limit anything).
//
// Every sandbox cgroup lives under one parent (default "/ukc") so a node can find and clean them.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const DEFAULT_CGROUP_PARENT = '/ukc';
export const DEFAULT_CPU_PERIOD_US = 100_000;
/** Bound on how long destroy() waits for processes to disappear before giving up. */
export const DEFAULT_DESTROY_TIMEOUT_MS = 5_000;

export type CgroupV1Controller = 'memory' | 'cpu' | 'cpuacct' | 'pids';
const V1_CONTROLLERS: CgroupV1Controller[] = ['memory', 'cpu', 'cpuacct', 'pids'];

export type CgroupLayout =
  | { version: 2; mountPoint: string }
  /** `devices`: the v1 devices hierarchy when mounted (every group made here then allows only DEVICE_ALLOW_LIST). */
  | { version: 1; mountPoints: Record<CgroupV1Controller, string>; devices?: string };

/**
 * The devices a sandbox may create or open (v1 devices controller): null, zero,
 * full, random, urandom, tty, console, ptmx and the pts of its own devpts.
 * Everything else (kvm, kmsg, loop and block devices, fuse, tun) is EPERM even
 * for a node that was pushed in an image. On cgroup v2 the same list would be a
 * BPF device program; this node runs v1 (not done for v2 yet).
 */
export const DEVICE_ALLOW_LIST: readonly string[] = [
  'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm',
];

interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function cgroupMounts(mountinfo: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fsType = right[0] ?? '';
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    out.push({ mountPoint: unescapeMountPath(left[4] ?? ''), fsType, superOptions: (right[2] ?? '').split(',') });
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Decide the layout from mountinfo text and the v2 root's cgroup.controllers (pure, for tests). */
export function chooseCgroupLayout(mountinfo: string, v2Controllers: (mountPoint: string) => string): CgroupLayout {
  const mounts = cgroupMounts(mountinfo);
  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  if (v2 && v2Controllers(v2.mountPoint).split(/\s+/).includes('memory')) return { version: 2, mountPoint: v2.mountPoint };
  const mountPoints: Partial<Record<CgroupV1Controller, string>> = {};
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    for (const c of V1_CONTROLLERS) if (m.superOptions.includes(c) && !mountPoints[c]) mountPoints[c] = m.mountPoint;
  }
  const missing = V1_CONTROLLERS.filter((c) => !mountPoints[c]);
  if (missing.length > 0) throw new Error(`no usable cgroup layout: v2 lacks memory and v1 lacks ${missing.join(', ')}`);
  const devices = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('devices'))?.mountPoint;
  return { version: 1, mountPoints: mountPoints as Record<CgroupV1Controller, string>, ...(devices ? { devices } : {}) };
}

let cachedLayout: CgroupLayout | undefined;

export function detectCgroupLayout(): CgroupLayout {
  cachedLayout ??= chooseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'), (mp) => {
    try {
      return readFileSync(join(mp, 'cgroup.controllers'), 'utf8');
    } catch {
      return '';
    }
  });
  return cachedLayout;
}

export interface CgroupLimits {
  memoryBytes?: number;
  /** CPU quota in vCPUs (1 = one full core; fractions allowed). */
  vcpus?: number;
  pidsMax?: number;
}

export interface CgroupStats {
  memoryBytes: number;
  cpuUsageUs: number;
  pids: number;
}

export interface CgroupOptions {
  layout?: CgroupLayout;
  /** Parent cgroup path inside each hierarchy (default "/ukc"); created when missing. */
  parent?: string;
  cpuPeriodUs?: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Returns `name` if it is a cgroup's own name (one path component, `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`); throws TypeError. */
export function checkCgroupName(name: string): string {
  if (!NAME_RE.test(name)) throw new TypeError(`invalid cgroup name: ${name}`);
  return name;
}

/** Returns `parent` if it is an absolute cgroup path without `..`; throws TypeError. */
export function checkCgroupParent(parent: string): string {
  if (!parent.startsWith('/') || parent.split('/').some((s) => s === '..')) throw new TypeError(`invalid cgroup parent: ${parent}`);
  return parent;
}

function readTrim(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

function keyedValue(text: string, key: string): number {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) return Number(v);
  }
  return 0;
}

export class Cgroup {
  private constructor(
    readonly name: string,
    readonly layout: CgroupLayout,
    /** v2: one dir; v1: memory, cpu, cpuacct, pids dirs (in that order), then devices when that hierarchy is mounted. */
    readonly joinDirs: string[],
    private readonly cpuPeriodUs: number,
  ) {}

  static create(name: string, limits: CgroupLimits = {}, opts: CgroupOptions = {}): Cgroup {
    checkCgroupName(name);
    const layout = opts.layout ?? detectCgroupLayout();
    const parent = checkCgroupParent(opts.parent ?? DEFAULT_CGROUP_PARENT);
    let dirs: string[];
    if (layout.version === 2) {
      // Controllers must be enabled in every ancestor's subtree_control on the way down.
      const wanted = ['memory', 'cpu', 'pids'];
      let dir = layout.mountPoint;
      for (const seg of parent.split('/').filter(Boolean)) {
        enableControllers(dir, wanted);
        dir = join(dir, seg);
        mkdirSync(dir, { recursive: true });
      }
      enableControllers(dir, wanted);
      dirs = [join(dir, name)];
    } else {
      dirs = V1_CONTROLLERS.map((c) => join(layout.mountPoints[c], parent, name));
    }
    for (const d of dirs) mkdirSync(d, { recursive: true });
    if (layout.version === 1 && layout.devices) {
      const d = join(layout.devices, parent, name);
      // Only a group made now gets the list: rewriting it under a running (adopted) sandbox would open a window of "deny all".
      if (mkdirSync(d, { recursive: true }) !== undefined) {
        writeFileSync(join(d, 'devices.deny'), 'a');
        for (const rule of DEVICE_ALLOW_LIST) writeFileSync(join(d, 'devices.allow'), rule);
      }
      dirs.push(d);
    }
    const cg = new Cgroup(name, layout, dirs, opts.cpuPeriodUs ?? DEFAULT_CPU_PERIOD_US);
    cg.setLimits(limits);
    return cg;
  }

  private dir(controller: CgroupV1Controller): string {
    if (this.layout.version === 2) return this.joinDirs[0] as string;
    return this.joinDirs[V1_CONTROLLERS.indexOf(controller)] as string; // devices, when present, comes last
  }

  setLimits(limits: CgroupLimits): void {
    if (limits.memoryBytes !== undefined) {
      const bytes = Math.floor(limits.memoryBytes);
      if (!(bytes > 0)) throw new RangeError('memoryBytes must be positive');
      if (this.layout.version === 2) {
        writeFileSync(join(this.dir('memory'), 'memory.max'), String(bytes));
        // No swap beyond the limit either.
        const swap = join(this.dir('memory'), 'memory.swap.max');
        if (existsSync(swap)) writeFileSync(swap, '0');
      } else {
        const d = this.dir('memory');
        const memsw = join(d, 'memory.memsw.limit_in_bytes');
        // memsw must stay >= limit: raise memsw first when growing, lower limit first when shrinking.
        const current = Number(readTrim(join(d, 'memory.limit_in_bytes')));
        if (existsSync(memsw) && bytes > current) writeFileSync(memsw, String(bytes));
        writeFileSync(join(d, 'memory.limit_in_bytes'), String(bytes));
        if (existsSync(memsw)) writeFileSync(memsw, String(bytes));
      }
    }
    if (limits.vcpus !== undefined) {
      if (!(limits.vcpus > 0)) throw new RangeError('vcpus must be positive');
      const quota = Math.max(1000, Math.round(limits.vcpus * this.cpuPeriodUs));
      if (this.layout.version === 2) {
        writeFileSync(join(this.dir('cpu'), 'cpu.max'), `${quota} ${this.cpuPeriodUs}`);
      } else {
        writeFileSync(join(this.dir('cpu'), 'cpu.cfs_period_us'), String(this.cpuPeriodUs));
        writeFileSync(join(this.dir('cpu'), 'cpu.cfs_quota_us'), String(quota));
      }
    }
    if (limits.pidsMax !== undefined) {
      if (!(Number.isInteger(limits.pidsMax) && limits.pidsMax > 0)) throw new RangeError('pidsMax must be a positive integer');
      writeFileSync(join(this.dir('pids'), 'pids.max'), String(limits.pidsMax));
    }
  }

  /** The limits as the kernel holds them (undefined = unlimited). */
  readLimits(): CgroupLimits {
    const out: CgroupLimits = {};
    const num = (s: string): number | undefined => (s === 'max' || s === '' ? undefined : Number(s));
    if (this.layout.version === 2) {
      out.memoryBytes = num(readTrim(join(this.dir('memory'), 'memory.max')));
      const [q, p] = readTrim(join(this.dir('cpu'), 'cpu.max')).split(' ');
      const quota = num(q ?? 'max');
      if (quota !== undefined) out.vcpus = quota / Number(p);
    } else {
      const mem = Number(readTrim(join(this.dir('memory'), 'memory.limit_in_bytes')));
      if (mem < 2 ** 62) out.memoryBytes = mem;
      const quota = Number(readTrim(join(this.dir('cpu'), 'cpu.cfs_quota_us')));
      if (quota > 0) out.vcpus = quota / Number(readTrim(join(this.dir('cpu'), 'cpu.cfs_period_us')));
    }
    out.pidsMax = num(readTrim(join(this.dir('pids'), 'pids.max')));
    return out;
  }

  stats(): CgroupStats {
    if (this.layout.version === 2) {
      const d = this.dir('memory');
      return {
        memoryBytes: Number(readTrim(join(d, 'memory.current'))),
        cpuUsageUs: keyedValue(readFileSync(join(d, 'cpu.stat'), 'utf8'), 'usage_usec'),
        pids: Number(readTrim(join(d, 'pids.current'))),
      };
    }
    return {
      memoryBytes: Number(readTrim(join(this.dir('memory'), 'memory.usage_in_bytes'))),
      cpuUsageUs: Math.floor(Number(readTrim(join(this.dir('cpuacct'), 'cpuacct.usage'))) / 1000),
      pids: Number(readTrim(join(this.dir('pids'), 'pids.current'))),
    };
  }

  /** How many processes the kernel OOM-killed in this cgroup so far. */
  oomKillCount(): number {
    try {
      if (this.layout.version === 2) return keyedValue(readFileSync(join(this.dir('memory'), 'memory.events'), 'utf8'), 'oom_kill');
      return keyedValue(readFileSync(join(this.dir('memory'), 'memory.oom_control'), 'utf8'), 'oom_kill');
    } catch {
      return 0;
    }
  }

  /** Host pids of every process in the cgroup. */
  procs(): number[] {
    const pids = new Set<number>();
    for (const d of this.joinDirs) {
      try {
        for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l));
      } catch {
        // already removed
      }
    }
    return [...pids];
  }

  /** Kill every process left, then remove the directories. Idempotent. */
  async destroy(timeoutMs = DEFAULT_DESTROY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = this.procs();
      if (left.length === 0) break;
      if (Date.now() > deadline) throw new Error(`cgroup ${this.name}: processes remain: ${left.join(' ')}`);
      const killFile = join(this.joinDirs[0] as string, 'cgroup.kill');
      if (this.layout.version === 2 && existsSync(killFile)) writeFileSync(killFile, '1');
      else
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      await sleep(10);
    }
    for (const d of this.joinDirs) {
      for (;;) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          // EBUSY: the kernel may still be tearing down the last exited tasks.
          if (code !== 'EBUSY' || Date.now() > deadline) throw e;
          await sleep(10);
        }
      }
    }
  }
}

function enableControllers(dir: string, wanted: string[]): void {
  const available = readTrim(join(dir, 'cgroup.controllers')).split(/\s+/);
  const enabled = readTrim(join(dir, 'cgroup.subtree_control')).split(/\s+/);
  const add = wanted.filter((c) => available.includes(c) && !enabled.includes(c));
  if (add.length > 0) writeFileSync(join(dir, 'cgroup.subtree_control'), add.map((c) => `+${c}`).join(' '));
}

export function createCgroup(name: string, limits: CgroupLimits = {}, opts: CgroupOptions = {}): Cgroup {
  return Cgroup.create(name, limits, opts);
}

/**
 * Names of the cgroups directly under `parent`, in any hierarchy this layout uses (v1: the union
 * over memory, cpu, cpuacct and pids). A node's recovery sweeps those no live run owns.
 */
export function cgroupChildren(parent: string, layout: CgroupLayout = detectCgroupLayout()): string[] {
  const roots = layout.version === 2 ? [layout.mountPoint] : V1_CONTROLLERS.map((c) => layout.mountPoints[c]);
  const names = new Set<string>();
  for (const r of roots) {
    try {
      for (const d of readdirSync(join(r, parent), { withFileTypes: true })) if (d.isDirectory() && NAME_RE.test(d.name)) names.add(d.name);
    } catch {
      // no such parent in this hierarchy yet
    }
  }
  return [...names].sort();
}

/** Remove a parent cgroup (e.g. a test's) once its children are gone; missing dirs are fine. */
export function removeCgroupParent(parent: string, layout: CgroupLayout = detectCgroupLayout()): void {
  const roots = layout.version === 2 ? [layout.mountPoint] : [...V1_CONTROLLERS.map((c) => layout.mountPoints[c]), ...(layout.devices ? [layout.devices] : [])];
  for (const r of roots) {
    const d = join(r, parent);
    if (!existsSync(d)) continue;
    for (const child of readdirSync(d, { withFileTypes: true })) if (child.isDirectory()) rmdirSync(join(d, child.name));
    rmdirSync(d);
  }
}
