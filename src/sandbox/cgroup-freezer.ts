// Cgroup freezer: stops every process of a group from being scheduled, with its memory, sockets and
// open files kept, and lets it run on again — the mechanism of stateful scale-to-zero (standby = frozen,
// wake = thawed, well under a millisecond instead of a process start).
//
//   v2: the group's own directory; `cgroup.freeze` 1/0, done when `cgroup.events` says `frozen 1`.
//   v1: the freezer is its own hierarchy, so the group gets a directory there too
//       (<freezer mount>/<parent>/<name>) and its processes are moved into it; `freezer.state`
//       FROZEN/THAWED, done when it reads FROZEN (FREEZING meanwhile).
//
// INVARIANTS
//  - freeze() resolves only once the kernel reports the whole group frozen, and only after every
//    process of the source group is inside the freezer group (a process forked during the move is
//    moved too; one moved into an already frozen v1 group is frozen on attach). It rejects, leaving
//    the group thawed, when that does not happen within `freezeTimeoutMs`.
//  - thaw() is synchronous and idempotent.
//  - A frozen v1 task cannot die (SIGKILL stays pending until thawed): remove() thaws first, and
//    anyone killing a frozen group must thaw it (Cgroup.destroy does not know about the freezer).
//  - remove() deletes only the v1 freezer directory (v2: nothing, the group's own directory is the
//    Cgroup's), waiting a bounded time for its processes to be gone.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkCgroupName, checkCgroupParent, DEFAULT_CGROUP_PARENT, detectCgroupLayout, unescapeMountPath, type Cgroup, type CgroupLayout } from './cgroups.js';

/** Longest freeze() waits for the kernel to report the group frozen. */
export const DEFAULT_FREEZE_TIMEOUT_MS = 2_000;
/** Longest remove() waits for the group's processes to be gone. */
export const DEFAULT_FREEZER_REMOVE_TIMEOUT_MS = 5_000;
/** Pause between reads of the freezer state while it settles. */
const POLL_MS = 1;
/** Rounds of moving processes forked during the move (each round moves what appeared since the last). */
const MOVE_ROUNDS = 16;

export type FreezerState = 'thawed' | 'freezing' | 'frozen';

export interface FreezerOptions {
  layout?: CgroupLayout;
  /** Parent path inside the hierarchy (default "/ukc"). */
  parent?: string;
  freezeTimeoutMs?: number;
}

/** The v1 freezer hierarchy's mount point, from mountinfo text (pure, for tests). */
export function freezerMountPoint(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const right = line.slice(sep + 3).split(' ');
    if (right[0] !== 'cgroup' || !(right[2] ?? '').split(',').includes('freezer')) continue;
    return unescapeMountPath(line.slice(0, sep).split(' ')[4] ?? '');
  }
  return undefined;
}

function readTrim(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

export class CgroupFreezer {
  private constructor(
    readonly layout: CgroupLayout,
    /** Directory holding the freeze control file (v2: the group's; v1: the freezer hierarchy's). */
    readonly dir: string,
    /** Where the processes to freeze live when they are not in `dir` yet (v1 with a source Cgroup). */
    private readonly source: (() => number[]) | undefined,
    private readonly freezeTimeoutMs: number,
    /** The directory was made for the freezer (removed by remove()), not the sandbox cgroup's own. */
    private readonly ownsDir: boolean,
  ) {}

  /** The freezer of a sandbox's cgroup (its processes are the ones frozen). */
  static forCgroup(cgroup: Cgroup, opts: FreezerOptions = {}): CgroupFreezer {
    const timeout = opts.freezeTimeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS;
    if (cgroup.layout.version === 2) return new CgroupFreezer(cgroup.layout, cgroup.joinDirs[0]!, undefined, timeout, false);
    const dir = CgroupFreezer.v1Dir(cgroup.name, opts.parent ?? DEFAULT_CGROUP_PARENT);
    return new CgroupFreezer(cgroup.layout, dir, () => cgroup.procs(), timeout, true);
  }

  /** A freezer group of its own; processes join with `add(pid)` (children they fork later follow). */
  static create(name: string, opts: FreezerOptions = {}): CgroupFreezer {
    checkCgroupName(name);
    const layout = opts.layout ?? detectCgroupLayout();
    const parent = checkCgroupParent(opts.parent ?? DEFAULT_CGROUP_PARENT);
    const timeout = opts.freezeTimeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS;
    if (layout.version === 2) {
      const dir = join(layout.mountPoint, parent, name);
      mkdirSync(dir, { recursive: true });
      return new CgroupFreezer(layout, dir, undefined, timeout, true);
    }
    return new CgroupFreezer(layout, CgroupFreezer.v1Dir(name, parent), undefined, timeout, true);
  }

  private static v1Dir(name: string, parent: string): string {
    checkCgroupName(name);
    const mount = freezerMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'));
    if (mount === undefined) throw new Error('cgroup v1 without a freezer hierarchy: cannot freeze');
    const dir = join(mount, checkCgroupParent(parent), name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Moves a process (and so its future children) into the group. */
  add(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`invalid pid: ${pid}`);
    writeFileSync(join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Host pids in the group. */
  procs(): number[] {
    return pidsIn(this.dir);
  }

  state(): FreezerState {
    if (this.layout.version === 2) {
      const events = readFileSync(join(this.dir, 'cgroup.events'), 'utf8');
      if (/^frozen 1$/m.test(events)) return 'frozen';
      return readTrim(join(this.dir, 'cgroup.freeze')) === '1' ? 'freezing' : 'thawed';
    }
    const s = readTrim(join(this.dir, 'freezer.state'));
    return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
  }

  async freeze(): Promise<void> {
    const deadline = performance.now() + this.freezeTimeoutMs;
    this.gather();
    this.write(true);
    try {
      for (;;) {
        if (this.state() === 'frozen' && this.gather() === 0) return;
        if (performance.now() > deadline) throw new Error(`cgroup freezer ${this.dir}: not frozen within ${this.freezeTimeoutMs} ms`);
        await sleep(POLL_MS);
      }
    } catch (err) {
      this.thaw();
      throw err;
    }
  }

  thaw(): void {
    this.write(false);
  }

  /** Thaws, then deletes the freezer's own directory once its processes are gone (not a sandbox cgroup's). */
  async remove(timeoutMs = DEFAULT_FREEZER_REMOVE_TIMEOUT_MS): Promise<void> {
    if (!existsSync(this.dir)) return;
    this.thaw();
    if (!this.ownsDir) return;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        rmdirSync(this.dir);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || performance.now() > deadline) throw e;
        await sleep(10);
      }
    }
  }

  private write(frozen: boolean): void {
    if (this.layout.version === 2) writeFileSync(join(this.dir, 'cgroup.freeze'), frozen ? '1' : '0');
    else writeFileSync(join(this.dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
  }

  /** v1 with a source group: moves in every process not yet here; returns how many it moved. */
  private gather(): number {
    if (this.source === undefined) return 0;
    let moved = 0;
    for (let round = 0; round < MOVE_ROUNDS; round++) {
      const here = new Set(this.procs());
      const missing = this.source().filter((p) => !here.has(p));
      if (missing.length === 0) return moved;
      for (const pid of missing) {
        try {
          this.add(pid);
          moved++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // exited meanwhile
        }
      }
    }
    return moved;
  }
}
