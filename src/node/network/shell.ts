/**
 * One long-lived `/bin/sh` that runs the network's small commands (`nft -f`,
 * `ip -n NS link show`) for the node. Why: a spawn from the node process forks
 * a large address space and holds the event loop for milliseconds; a start or
 * a stop that spawned `nft` measurably slowed its own and its neighbours' boot
 * and net readiness on a loaded 2-core machine. The shell forks its commands
 * instead (a small process), and the node writes one request per command.
 *
 * Protocol (the model is sandbox/network.ts's NetnsHelper): requests are
 * answered in the order they were written. Each request is shell text the
 * callers build from validated names only; its output (stdout and stderr
 * together) is followed by a line `<marker> <exit status>`, the marker being
 * random per shell. A shell that ends fails its pending requests; the next
 * request starts a new one. An idle shell does not keep the Node process alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

export interface ShellResult {
  code: number;
  output: string;
}

interface Pending {
  resolve: (r: ShellResult) => void;
  reject: (err: Error) => void;
}

/** One shell process and what is waiting on it (a closed shell still answers its own requests). */
interface Running {
  child: ChildProcess;
  marker: string;
  pending: Pending[];
  partial: string;
  collected: string;
}

export class CommandShell {
  private current: Running | undefined;

  /** Runs `script` (shell text) and resolves with its combined output and exit status. */
  run(script: string): Promise<ShellResult> {
    const sh = this.current ?? this.start();
    return new Promise<ShellResult>((resolve, reject) => {
      sh.pending.push({ resolve, reject });
      if (sh.pending.length === 1) setRef(sh.child, true);
      sh.child.stdin?.write(`{\n${script}\n} 2>&1 </dev/null\necho "${sh.marker} $?"\n`);
    });
  }

  /** Ends the shell (EOF on its stdin; pending requests still get their answers first). */
  close(): void {
    this.current?.child.stdin?.end();
    this.current = undefined;
  }

  private start(): Running {
    const child = spawn('/bin/sh', [], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
    const sh: Running = { child, marker: `__ukc_done_${randomBytes(8).toString('hex')}__`, pending: [], partial: '', collected: '' };
    this.current = sh;
    child.stdin?.on('error', () => undefined); // a dead shell shows up as its exit
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => onOutput(sh, chunk));
    child.stderr?.resume();
    const ended = (why: string): void => {
      if (this.current === sh) this.current = undefined;
      for (const p of sh.pending.splice(0)) p.reject(new Error(`the network command shell ended (${why})`));
    };
    child.on('error', (err) => ended(err.message));
    child.on('exit', (code, signal) => ended(signal ?? `code ${String(code)}`));
    setRef(child, false);
    return sh;
  }
}

function onOutput(sh: Running, chunk: string): void {
  const lines = (sh.partial + chunk).split('\n');
  sh.partial = lines.pop() ?? '';
  for (const line of lines) {
    if (!line.startsWith(`${sh.marker} `)) {
      sh.collected += line + '\n';
      continue;
    }
    const p = sh.pending.shift();
    const output = sh.collected;
    sh.collected = '';
    if (sh.pending.length === 0) setRef(sh.child, false);
    p?.resolve({ code: Number(line.slice(sh.marker.length + 1)), output });
  }
}

/** An idle shell must not keep the Node process alive. */
function setRef(child: ChildProcess, ref: boolean): void {
  for (const h of [child, child.stdin as unknown as Socket | null, child.stdout as unknown as Socket | null, child.stderr as unknown as Socket | null]) {
    if (h && ref) h.ref();
    else if (h) h.unref();
  }
}

/** Shell text running `nft -f -` on `rules` (a quoted here-document: nothing in it is expanded). */
export function nftScript(nft: string, rules: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(nft)) throw new TypeError(`invalid nft path: ${nft}`);
  const eof = 'UKC_NFT_RULES_END';
  if (rules.split('\n').includes(eof)) throw new TypeError('rules contain the here-document delimiter');
  return `${nft} -f - <<'${eof}'\n${rules}${rules.endsWith('\n') ? '' : '\n'}${eof}`;
}
