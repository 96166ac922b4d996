// src/sandbox — the Linux primitives shared by the builder (RUN steps) and the node (micro instances).
//
// Processes (launcher.ts + native/ukc-sandbox/):
//   spawnSandbox(spec: SandboxSpec): SandboxProcess
//     spec: { rootfs, overlay?: {lower[], upper, work}, argv, env?: ['K=V'], cwd?, uid?, gid?, groups?,
//             hostname?, network?: 'host' | 'new' | {netnsPath}, readonlyRoot?, proc? (true), dev? (true),
//             devpts?, tmpfs?: [dir], binds?: [{source, target, readonly?}], cgroup?: Cgroup,
//             removeStubs?, graceMs?, stdin?: 'ignore'|'pipe', stdout?/stderr?: 'pipe'|'inherit'|'ignore'|fd }
//     SandboxProcess: events 'started' {pid, execAtNs, bootNs} and 'exit' {code, signal, oomKilled, error?, stubs};
//       promises .started / .exited; .stdout/.stderr (with 'pipe'); .stop(graceMs) → SIGTERM to all inside,
//       kill after grace; .kill() → kill now. .pid is the host pid of the sandbox's init (PID 1 inside).
//     Each sandbox: own mount, pid, uts, ipc, cgroup namespaces (+ net unless 'host'), pivot_root into rootfs
//     (no host path visible), /proc with /proc/sys read-only, tmpfs /dev, no_new_privs, a reduced capability
//     set for uid 0, explicit env only. The app runs as PID 2 under a tiny init; when it exits the sandbox ends.
//     Pre-started launchers (a node's warm pool): spawn with warmLauncherArgs({cgroup, graceMs, trace}) and
//     stdin 'pipe'; it reports a `ready` event line once in its cgroup; write specPayload(spec) to its stdin.
//     With specFd: SPEC_FD the spec goes to that fd instead (spawnSandbox and the node's cold starts do so:
//     env and argv, which may hold secrets, are never on a launcher's command line).
//     boot time for boot_time_us: started.bootNs (launcher spawn → right before the app's execve).
//     Exit codes: 127 not found (error.stage 'exec', code ENOENT), 126 not executable, 125 setup failed.
//     Logs for many instances: pass stdout/stderr as an open file descriptor so Node holds no pipes.
//
// Cgroups (cgroups.ts): createCgroup(name, {memoryBytes?, vcpus?, pidsMax?}, {parent?='/ukc', layout?}): Cgroup
//   v2 when the unified hierarchy offers memory, else v1 (detectCgroupLayout()). Cgroup: setLimits, readLimits,
//   stats() {memoryBytes, cpuUsageUs, pids}, oomKillCount(), procs(), destroy() (kills what is left, rmdir).
//
// Mounts (mounts.ts): mountOverlay({lower, upper?, work?, target}), mountErofs(image, target),
//   unmount(target, {retries, retryDelayMs, lazyFallback}), listMounts(), isMountPoint(p), mountsUnder(p).
//
// Network (network.ts): ensureBridge({name='ukc0', address: '10.88.0.1/16', inNetns?}),
//   createInstanceNetwork({name, bridge?, address: '10.88.0.5/16', gateway: '10.88.0.1', inNetns?}) →
//   {netnsPath, hostInterface, ...} (give netnsPath to spawnSandbox's network), removeInstanceNetwork(name),
//   both over rtnetlink through the long-lived native helper ukc-netns (NetnsHelper; failures are NetlinkError
//   {netns, operation, errno}),
//   addressInSubnet(cidr, index), parseCidr, parseIpv4.
//
// Builds (run-step.ts): runStep({rootfs, argv, env, uid?, gid?, cwd?, network?: 'host'|'none', resolvConf?, hosts?,
//   timeoutMs?, outputLimitBytes?, cgroup?}) → {exitCode, signal, stdout, stderr, *Truncated, timedOut,
//   oomKilled, commandNotFound, error?, failure?}. Leaves no mount stubs in rootfs (or throws).
export {
  spawnSandbox,
  SandboxProcess,
  launcherArgs,
  warmLauncherArgs,
  specPayload,
  SPEC_FD,
  applyEventLine,
  DEFAULT_LAUNCHER_PATH,
  DEFAULT_STOP_GRACE_MS,
  type SandboxSpec,
  type SandboxStarted,
  type SandboxExit,
  type SandboxError,
  type SandboxNetwork,
  type SandboxOutput,
  type BindMount,
  type LauncherEvents,
  type WarmLauncherOptions,
} from './launcher.js';
export {
  Cgroup,
  createCgroup,
  detectCgroupLayout,
  chooseCgroupLayout,
  removeCgroupParent,
  cgroupChildren,
  DEFAULT_CGROUP_PARENT,
  DEFAULT_CPU_PERIOD_US,
  type CgroupLayout,
  type CgroupLimits,
  type CgroupStats,
  type CgroupOptions,
} from './cgroups.js';
export {
  mountOverlay,
  mountErofs,
  unmount,
  listMounts,
  isMountPoint,
  mountsUnder,
  parseMountInfo,
  type MountInfo,
  type OverlaySpec,
  type UnmountOptions,
} from './mounts.js';
export {
  ensureBridge,
  removeBridge,
  createInstanceNetwork,
  removeInstanceNetwork,
  createNetns,
  removeNetns,
  addressInSubnet,
  parseCidr,
  parseIpv4,
  hostVethName,
  NetnsHelper,
  NetlinkError,
  netnsAddRequest,
  netnsDelRequest,
  parseNetnsReply,
  DEFAULT_BRIDGE,
  DEFAULT_NETNS_HELPER_PATH,
  DEFAULT_NETNS_REQUEST_TIMEOUT_MS,
  type NetnsHelperOptions,
  type NetnsHelperReply,
  type BridgeSpec,
  type InstanceNetworkSpec,
  type InstanceNetwork,
} from './network.js';
export { runStep, DEFAULT_STEP_TIMEOUT_MS, DEFAULT_STEP_OUTPUT_LIMIT_BYTES, type RunStepOptions, type RunStepResult } from './run-step.js';
export {
  CgroupFreezer,
  freezerMountPoint,
  DEFAULT_FREEZE_TIMEOUT_MS,
  DEFAULT_FREEZER_REMOVE_TIMEOUT_MS,
  type FreezerOptions,
  type FreezerState,
} from './cgroup-freezer.js';
