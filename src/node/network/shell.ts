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

export class CommandShell {
  private child: ChildProcess | undefined;
  private marker = '';
  private readonly pending: Pending[] = [];
  private partial = '';
  private collected = '';

  /** Runs `script` (shell text) and resolves with its combined output and exit status. */
  run(script: string): Promise<ShellResult> {
    const child = this.child ?? this.start();
    return new Promise<ShellResult>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      if (this.pending.length === 1) this.setRef(child, true);
      child.stdin?.write(`{\n${script}\n} 2>&1 </dev/null\necho "${this.marker} $?"\n`);
    });
  }

  /** Ends the shell (EOF on its stdin; pending requests still get their answers first). */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private start(): ChildProcess {
    const child = spawn('/bin/sh', [], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
    this.child = child;
    this.marker = `__ukc_done_${randomBytes(8).toString('hex')}__`;
    this.partial = '';
    this.collected = '';
    child.stdin?.on('error', () => undefined); // a dead shell shows up as its exit
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.onOutput(chunk));
    child.stderr?.resume();
    const ended = (why: string): void => {
      if (this.child === child) this.child = undefined;
      for (const p of this.pending.splice(0)) p.reject(new Error(`the network command shell ended (${why})`));
    };
    child.on('error', (err) => ended(err.message));
    child.on('exit', (code, signal) => ended(signal ?? `code ${String(code)}`));
    this.setRef(child, false);
    return child;
  }

  private onOutput(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith(`${this.marker} `)) {
        this.collected += line + '\n';
        continue;
      }
      const p = this.pending.shift();
      const output = this.collected;
      this.collected = '';
      if (this.pending.length === 0 && this.child) this.setRef(this.child, false);
      p?.resolve({ code: Number(line.slice(this.marker.length + 1)), output });
    }
  }

  private setRef(child: ChildProcess, ref: boolean): void {
    for (const h of [child, child.stdin as unknown as Socket | null, child.stdout as unknown as Socket | null, child.stderr as unknown as Socket | null]) {
      if (h && ref) h.ref();
      else if (h) h.unref();
    }
  }
}

/** Shell text running `nft -f -` on `rules` (a quoted here-document: nothing in it is expanded). */
export function nftScript(nft: string, rules: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(nft)) throw new TypeError(`invalid nft path: ${nft}`);
  const eof = 'UKC_NFT_RULES_END';
  if (rules.split('\n').includes(eof)) throw new TypeError('rules contain the here-document delimiter');
  return `${nft} -f - <<'${eof}'\n${rules}${rules.endsWith('\n') ? '' : '\n'}${eof}`;
}
