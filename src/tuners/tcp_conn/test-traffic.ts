/**
 * Traffic for tcp_conn's tests (and the advisory-mode test): iperf3 between
 * the two ends of an emulated link, run inside a test cgroup so the daemon's
 * sockops program sees it, with `ss -ti` polled from outside to see which
 * congestion control each connection really runs.
 */
import { spawnSync } from 'node:child_process';
import type { EmulatedLink } from '../../../test/support/link-emulator';
import type { TestCgroup } from '../../../test/support/cgroup';

/** Two namespaces and the server's address: an emulated link, or a bare veth pair. */
export type Path = Pick<EmulatedLink, 'client' | 'server' | 'serverAddr4'>;

export const PORT = 5201;

/**
 * Congestion control of each of the client's established connections to the
 * server, as `ss -ti` shows it. Established only: on a lossy path the last
 * transfer's socket may still be retransmitting its FIN (with the algorithm it
 * ended with) while the next transfer runs.
 */
export function algorithmsOnSockets(link: Path, server: string): string[] {
  const r = spawnSync('ip', ['netns', 'exec', link.client, 'ss', '-tinH', 'state', 'established', 'dst', server.includes(':') ? `[${server}]` : server, 'dport', `= :${PORT}`], { encoding: 'utf8' });
  return [...(r.stdout ?? '').matchAll(/^\s+(reno|cubic|bbr)\s/gm)].map((m) => m[1]);
}

/**
 * One iperf3 transfer from client to server; returns every algorithm seen on
 * its sockets while it ran. The server listens in the link's server
 * namespace, or in listenerNs (the client's own, for a loopback transfer).
 */
export async function transfer(
  cg: TestCgroup,
  link: Path,
  seconds: number,
  extra: string[] = [],
  server = link.serverAddr4,
  listenerNs = link.server,
): Promise<Set<string>> {
  return (await runTransfer(cg, link, seconds, extra, server, listenerNs)).algorithms;
}

export interface MeasuredTransfer {
  /** Every algorithm `ss -ti` saw on its sockets while it ran. */
  algorithms: Set<string>;
  /** What the receiver got, as iperf3 reports it (its own measurement, not the daemon's). */
  receivedBitsPerSecond: number;
}

/** As transfer(), with iperf3's own figure of the throughput the receiver saw. */
export async function measuredTransfer(cg: TestCgroup, link: EmulatedLink, seconds: number, extra: string[] = []): Promise<MeasuredTransfer> {
  const { algorithms, stdout } = await runTransfer(cg, link, seconds, ['-J', ...extra], link.serverAddr4, link.server);
  const report = JSON.parse(stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  const received = report.end?.sum_received?.bits_per_second;
  if (typeof received !== 'number') throw new Error(`iperf3 -J gave no end.sum_received.bits_per_second: ${stdout.slice(0, 500)}`);
  return { algorithms, receivedBitsPerSecond: received };
}

async function runTransfer(
  cg: TestCgroup,
  link: Path,
  seconds: number,
  extra: string[],
  server: string,
  listenerNs: string,
): Promise<{ algorithms: Set<string>; stdout: string }> {
  const listener = cg.run('ip', ['netns', 'exec', listenerNs, 'iperf3', '-s', '-1', '-p', String(PORT)]);
  for (let i = 0; i < 50; i++) {
    const listening = spawnSync('ip', ['netns', 'exec', listenerNs, 'ss', '-tlnH', 'sport', `= :${PORT}`], { encoding: 'utf8' }).stdout;
    if (listening?.trim()) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = cg.run('ip', ['netns', 'exec', link.client, 'iperf3', '-c', server, '-p', String(PORT), '-t', String(seconds), ...extra]);
  const seen = new Set<string>();
  const poll = setInterval(() => algorithmsOnSockets(link, server).forEach((a) => seen.add(a)), 150);
  try {
    const stdout = await client.done;
    await listener.done;
    return { algorithms: seen, stdout };
  } finally {
    clearInterval(poll);
  }
}

/** One connection at a time, echoing what it reads. */
const ECHO_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
`;

/*
 * A thin flow: 100-byte requests, each waiting for its echo, so at most one
 * packet is in flight and a lost one is recovered only by a retransmission
 * timeout. After each exchange it reads the socket's TCP_THIN_LINEAR_TIMEOUTS
 * (16) and TCP_INFO's tcpi_total_retrans (offset 100); with stop_when_set it
 * ends once the option is on.
 */
const THIN_CLIENT = `
import json, socket, struct, sys, time
host, port, count, seconds, stop_when_set = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == '1'
deadline = time.time() + seconds
c = socket.create_connection((host, port), timeout=30)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sent = thin = 0
while sent < count and time.time() < deadline:
    c.sendall(b'x' * 100)
    got = 0
    while got < 100:
        d = c.recv(100 - got)
        if not d:
            raise SystemExit('the echo server closed the connection')
        got += len(d)
    sent += 1
    thin = c.getsockopt(socket.IPPROTO_TCP, 16)
    if thin and stop_when_set:
        break
retrans = struct.unpack_from('I', c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
c.close()
print(json.dumps({'messages': sent, 'thinLinearTimeouts': thin, 'retransmissions': retrans}))
`;

export interface ThinFlowResult {
  messages: number;
  /** The client socket's TCP_THIN_LINEAR_TIMEOUTS after the last exchange. */
  thinLinearTimeouts: number;
  retransmissions: number;
}

/** A thin request/response flow from client to server inside the cgroup (see THIN_CLIENT). */
export async function thinFlow(
  cg: TestCgroup,
  link: EmulatedLink,
  options: { messages: number; seconds: number; stopWhenSet: boolean },
): Promise<ThinFlowResult> {
  const port = PORT + 1;
  const server = cg.run('ip', ['netns', 'exec', link.server, 'python3', '-c', ECHO_SERVER, String(port)]);
  for (let i = 0; i < 50; i++) {
    const listening = spawnSync('ip', ['netns', 'exec', link.server, 'ss', '-tlnH', 'sport', `= :${port}`], { encoding: 'utf8' }).stdout;
    if (listening?.trim()) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const args = [link.serverAddr4, String(port), String(options.messages), String(options.seconds), options.stopWhenSet ? '1' : '0'];
  const out = await cg.run('ip', ['netns', 'exec', link.client, 'python3', '-c', THIN_CLIENT, ...args]).done;
  await server.done;
  return JSON.parse(out) as ThinFlowResult;
}
