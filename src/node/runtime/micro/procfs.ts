/** What the `micro` runtime reads from /proc: process start times (pid reuse) and listeners (net_time_us). */
import { readFileSync } from 'node:fs';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks); undefined when the pid is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** True when /proc/net/tcp(6) text holds a LISTEN socket bound to a non-loopback address. */
export function hasNonLoopbackListener(tcp: string, v6: boolean): boolean {
  for (const line of tcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== '0A') continue;
    const addr = (cols[1] ?? '').split(':')[0] ?? '';
    if (!v6) {
      // Little-endian hex IPv4: 0100007F is 127.0.0.1; the whole 127/8 is loopback.
      if (addr.length === 8 && addr.slice(6, 8) === '7F') continue;
      return true;
    }
    if (addr === '00000000000000000000000001000000') continue; // ::1
    if (addr.startsWith('0000000000000000FFFF0000') && addr.slice(30, 32) === '7F') continue; // ::ffff:127.x
    return true;
  }
  return false;
}
