/**
 * Traffic for tcp_conn's tests (and the advisory-mode test): iperf3 between
 * the two ends of an emulated link, run inside a test cgroup so the daemon's
 * sockops program sees it, with `ss -ti` polled from outside to see which
 * congestion control each connection really runs.
 */
import { spawnSync } from 'node:child_process';
import type { EmulatedLink } from '../../../test/support/link-emulator';
import type { TestCgroup } from '../../../test/support/cgroup';

export const PORT = 5201;

/** Congestion control of each of the client's connections to the server, as `ss -ti` shows it. */
export function algorithmsOnSockets(link: EmulatedLink, server: string): string[] {
  const r = spawnSync('ip', ['netns', 'exec', link.client, 'ss', '-tinH', 'dst', server.includes(':') ? `[${server}]` : server, 'dport', `= :${PORT}`], { encoding: 'utf8' });
  return [...(r.stdout ?? '').matchAll(/^\s+(reno|cubic|bbr)\s/gm)].map((m) => m[1]);
}

/** One iperf3 transfer from client to server; returns every algorithm seen on its sockets while it ran. */
export async function transfer(
  cg: TestCgroup,
  link: EmulatedLink,
  seconds: number,
  extra: string[] = [],
  server = link.serverAddr4,
): Promise<Set<string>> {
  const listener = cg.run('ip', ['netns', 'exec', link.server, 'iperf3', '-s', '-1', '-p', String(PORT)]);
  for (let i = 0; i < 50; i++) {
    const listening = spawnSync('ip', ['netns', 'exec', link.server, 'ss', '-tlnH', 'sport', `= :${PORT}`], { encoding: 'utf8' }).stdout;
    if (listening?.trim()) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = cg.run('ip', ['netns', 'exec', link.client, 'iperf3', '-c', server, '-p', String(PORT), '-t', String(seconds), ...extra]);
  const seen = new Set<string>();
  const poll = setInterval(() => algorithmsOnSockets(link, server).forEach((a) => seen.add(a)), 150);
  try {
    await client.done;
    await listener.done;
  } finally {
    clearInterval(poll);
  }
  return seen;
}
