/**
 * The contract between the instance lifecycle and whatever actually runs an
 * instance (the sandbox-based `micro` driver, later a QEMU `full` driver).
 *
 * Event rules every driver must keep:
 *  - events for one run arrive in order: `started`, then at most one
 *    `listening`, then exactly one `exited` (which may come without the others
 *    when the app dies early);
 *  - events may fire before `start` resolves, so the listener is given up front;
 *  - `exited` fires exactly once per run, also after `stop` or `kill`.
 */
import type { RootfsHandle } from '../images/resolver.js';

export interface InstanceSpec {
  uuid: string;
  name: string;
  /** The account the instance belongs to: its network and `.internal` names are that account's. */
  owner: string;
  /** Digest-pinned image reference. */
  image: string;
  rootfs: RootfsHandle;
  /** Effective command line (the image's Cmd unless overridden). */
  args: string[];
  /** Effective environment (the image's Env with the instance's over it). */
  env: Record<string, string>;
  memoryMb: number;
  vcpus: number;
  /** Private DNS name (`<name>.internal`). */
  privateFqdn: string;
}

export type RuntimeEvent =
  /** The app's first instruction ran; `privateIp` when the driver assigns addresses. */
  | { type: 'started'; bootTimeUs: number; privateIp?: string }
  /** The app listens on a non-loopback port. */
  | { type: 'listening'; netTimeUs: number }
  /** The run ended: `code` for a normal exit, `signal` when killed; `oom` when the memory limit killed it. */
  | { type: 'exited'; code: number | null; signal: NodeJS.Signals | null; oom: boolean };

export interface RuntimeHooks {
  onEvent(event: RuntimeEvent): void;
  /** Console output of the app (stdout and stderr interleaved). */
  onOutput(chunk: Uint8Array): void;
}

export interface RuntimeStats {
  /** Resident memory in bytes. */
  rssBytes: number;
  /** CPU time consumed, in microseconds. */
  cpuTimeUs: number;
}

export interface RuntimeHandle {
  /** A driver-defined token persisted with the instance so `adopt` can find the run again. */
  readonly runtimeRef: string;
  /** Ask the app to stop; kill it once `graceMs` passed. `exited` reports the outcome. */
  stop(graceMs: number): Promise<void>;
  /** Kill at once. */
  kill(): Promise<void>;
  stats(): Promise<RuntimeStats>;
  /** Stop delivering events and output without touching the run (node shutdown). */
  detach(): void;
  /** The private address the run holds, when the driver assigns addresses (an adopted run's: checked against the kernel). */
  readonly privateIp?: string | undefined;
}

/** What a recovery sweep removed. */
export interface SweepReport {
  cgroups: number;
  networks: number;
  runDirs: number;
}

export interface AdoptRequest {
  uuid: string;
  name: string;
  runtimeRef: string;
}

export interface RuntimeDriver {
  start(spec: InstanceSpec, hooks: RuntimeHooks): Promise<RuntimeHandle>;
  /** Re-attach to a run that survived a restart of the controller; `undefined` when it is gone. */
  adopt(request: AdoptRequest, hooks: RuntimeHooks): Promise<RuntimeHandle | undefined>;
  /**
   * Called once by recovery after every adoptable run was adopted: removes what runs of a
   * previous process left (cgroups, netns and leases, run directories) unless the instance is
   * in `keep` (its run was adopted).
   */
  sweep?(keep: ReadonlySet<string>): Promise<SweepReport>;
}
