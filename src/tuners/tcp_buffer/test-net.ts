/**
 * Test plumbing for tcp_buffer's tests and benchmark: two namespaces joined
 * by a veth pair (198.18.0.1/2 and fd00:0:b0::1/2), and iperf3 between them.
 * Everything made here is removed by the namespace helpers' cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createNamespace, inNamespace, setSysctlIn } from '../../../test/support/netns';
import { tcpInfo } from '../../../test/support/tcp-info';
import { createEmulatedLink, type EmulatedLink } from '../../../test/support/link-emulator';
import { attachTargetExists, kernelTargetSources } from '../../core/attach-targets';

/**
 * This kernel has tcp:tcp_sendmsg_locked (6.18): tcp_buffer's send hook is that
 * tracepoint, the one sampled hook; its fentry and kprobe fallbacks stay
 * attached (index.ts says why).
 */
export const SEND_TRACEPOINT_SAMPLED = attachTargetExists('tp_btf/tcp_sendmsg_locked', kernelTargetSources()) !== false;

export interface VethPair {
  client: string;
  server: string;
  clientAddr4: string;
  serverAddr4: string;
  clientAddr6: string;
  serverAddr6: string;
}

export function createVethPair(): VethPair {
  const client = createNamespace();
  const server = createNamespace();
  // The peer is created in the client namespace directly, so no device ever appears in the host's.
  inNamespace(client, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', server]);
  const pair: VethPair = {
    client,
    server,
    clientAddr4: '198.18.0.1',
    serverAddr4: '198.18.0.2',
    clientAddr6: 'fd00:0:b0::1',
    serverAddr6: 'fd00:0:b0::2',
  };
  addressDevices([
    [client, 'veth0', `${pair.clientAddr4}/24`, `${pair.clientAddr6}/64`],
    [server, 'veth1', `${pair.serverAddr4}/24`, `${pair.serverAddr6}/64`],
  ]);
  return pair;
}

/** Each [namespace, device, IPv4/prefix, IPv6/prefix]: addressed (no DAD wait) and up. */
function addressDevices(devices: ReadonlyArray<readonly [string, string, string, string]>): void {
  for (const [ns, dev, a4, a6] of devices) {
    inNamespace(ns, 'ip', ['addr', 'add', a4, 'dev', dev]);
    inNamespace(ns, 'ip', ['addr', 'add', a6, 'dev', dev, 'nodad']);
    inNamespace(ns, 'ip', ['link', 'set', dev, 'up']);
  }
}

export interface IperfServer {
  process: ChildProcess;
  stop(): void;
}

/** A one-off iperf3 server (-1) in `ns`; stop() kills it if it is still running. */
export function startIperfServer(ns: string, port = 5201): IperfServer {
  const child = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  return {
    process: child,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * What `link` carries per round trip at most, in bytes: the best second of a 3 s bulk transfer
 * (after the first, which is start-up) times the RTT, with both ends' limits as the caller set
 * them. Tests of a sender held back by its buffer size its limit from this: a 6.1 guest under
 * software emulation carries a small fraction of what this host does, and a limit the path
 * never fills holds nothing back.
 */
export async function pathBytesPerRtt(link: EmulatedLink, rttMs: number): Promise<number> {
  const server = startIperfServer(link.server);
  try {
    const calibration = await runIperfClient(link.client, link.serverAddr4, 3);
    return (Math.max(...calibration.intervals.slice(1)) / 8) * (rttMs / 1000);
  } finally {
    server.stop();
  }
}

export interface HeldSender {
  link: EmulatedLink;
  /** The sender's tcp_wmem[2] now set (0 if no power of two of at least 64 KiB fits). */
  limit: number;
  bytesPerRtt: number;
}

/**
 * A 40 ms emulated path whose sender its buffer holds back: the receiver's tcp_rmem[2] out of
 * the way (256 MiB), the sender's tcp_wmem[2] the largest power of two up to `share` of what the
 * path carries per round trip (pathBytesPerRtt, with both limits wide), at most `cap`. The caller
 * closes the link.
 */
export async function senderHeldByBuffer(share: number, cap: number): Promise<HeldSender> {
  const rttMs = 40;
  const link = await createEmulatedLink({ rttMs });
  setSysctlIn(link.server, 'net.ipv4.tcp_rmem', '4096 131072 268435456');
  setSysctlIn(link.client, 'net.ipv4.tcp_wmem', '4096 16384 268435456');
  const bytesPerRtt = await pathBytesPerRtt(link, rttMs);
  const fits = 2 ** Math.floor(Math.log2(bytesPerRtt * share));
  const limit = fits >= 65536 ? Math.min(cap, fits) : 0;
  if (limit) setSysctlIn(link.client, 'net.ipv4.tcp_wmem', `4096 16384 ${limit}`);
  return { link, limit, bytesPerRtt };
}

export interface IperfResult {
  /** Receiver-side throughput per interval, bits/s. */
  intervals: number[];
  /** Whole-run receiver throughput, bits/s. */
  bitsPerSecond: number;
  /** The congestion control the sender's socket had just after connecting (iperf3 reads it then). */
  senderCongestion?: string;
}

interface IperfJson {
  intervals?: Array<{ sum?: { bits_per_second?: number } }>;
  end?: { sum_received?: { bits_per_second?: number }; sender_tcp_congestion?: string };
  error?: string;
}

/** Runs an iperf3 client in `ns` to completion (JSON output, 1 s intervals). */
export async function runIperfClient(ns: string, server: string, seconds: number, extra: string[] = [], port = 5201): Promise<IperfResult> {
  // The server may need a moment to listen.
  for (let attempt = 0; ; attempt++) {
    const out = await new Promise<string>((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-J', '-c', server, '-p', String(port), '-t', String(seconds), '-i', '1', ...extra], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
      child.on('close', () => resolve(text));
    });
    let parsed: IperfJson;
    try {
      parsed = JSON.parse(out) as IperfJson;
    } catch {
      parsed = { error: `unparsable iperf3 output: ${out.slice(0, 200)}` };
    }
    if (!parsed.error) {
      return {
        intervals: (parsed.intervals ?? []).map((i) => i.sum?.bits_per_second ?? 0),
        bitsPerSecond: parsed.end?.sum_received?.bits_per_second ?? 0,
        senderCongestion: parsed.end?.sender_tcp_congestion,
      };
    }
    if (attempt >= 20 || !/connect|refused/i.test(parsed.error)) throw new Error(`iperf3 -c ${server} in ${ns} failed: ${parsed.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Whether the kernel counts the sender in `ns` (to `port`) as limited by its
 * send buffer for at least 1/8 of its busy time (tcp_info's chrono stats, what
 * tcp_buffer's send gate reads), `afterMs` into its transfer. The tests of a
 * sender in front of a queue (createQueuedPath) exercise what follows a raise,
 * and need the gate open to get one. 6.18 counts such a sender limited 40-45 %
 * of its busy time; 6.1 not at all: there its send queue held 37-84 KB against
 * a 32 KB buffer and no time was counted limited by it (most likely an unsent
 * tail each time the kernel looked; test/vm/results/6.1-diag-queue.md), and
 * the path reading, which leaves the queue out, is not meant to open the gate
 * there either.
 */
export async function sendBufferGate(ns: string, port = 5201, afterMs = 1500): Promise<{ open: boolean; why: string }> {
  await new Promise((resolve) => setTimeout(resolve, afterMs));
  const info = tcpInfo(ns, port);
  return {
    open: info.busyMs > 0 && info.sndbufLimitedMs * 8 >= info.busyMs,
    why: `sndbuf_limited ${info.sndbufLimitedMs} ms of ${info.busyMs} ms busy over ${info.connections} connection(s)`,
  };
}

/**
 * A sender whose bottleneck queue is one hop away: client -- router -- server,
 * the router's device towards the server a `rateMbit` tbf with a deep queue
 * (16 MB). The queue must not be on the sender's own device: while its own
 * qdisc holds its packets, autocorking keeps the tail of each write in the
 * write queue, and the kernel counts a sender with unsent data as busy, not
 * limited by its send buffer (TCP_CHRONO_SNDBUF_LIMITED starts only once the
 * write queue is empty). Measured with ss -tin on a 32 KB tcp_wmem max: there
 * sndbuf_limited stops growing after about a second (32% of busy time at
 * 0.25 s, 10% at 1.75 s, 4% at 4.5 s), so tcp_buffer's 1/8 gate is open only
 * in the connection's first second; one hop away it stays at 40-45%, under
 * CPU load too. There everything the sender has queued is in flight, the
 * network starves whenever the application waits for send buffer space, and
 * a bigger send buffer only makes the router's queue (and the RTT) longer.
 * Server 198.18.2.2 (fd00:0:b2::2), client 198.18.0.1 (fd00:0:b0::1).
 */
export function createQueuedPath(rateMbit: number): VethPair {
  const client = createNamespace();
  const router = createNamespace();
  const server = createNamespace();
  inNamespace(client, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'r0', 'netns', router]);
  inNamespace(router, 'ip', ['link', 'add', 'r1', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', server]);
  const pair: VethPair = {
    client,
    server,
    clientAddr4: '198.18.0.1',
    serverAddr4: '198.18.2.2',
    clientAddr6: 'fd00:0:b0::1',
    serverAddr6: 'fd00:0:b2::2',
  };
  addressDevices([
    [client, 'veth0', `${pair.clientAddr4}/24`, `${pair.clientAddr6}/64`],
    [router, 'r0', '198.18.0.254/24', 'fd00:0:b0::fe/64'],
    [router, 'r1', '198.18.2.254/24', 'fd00:0:b2::fe/64'],
    [server, 'veth1', `${pair.serverAddr4}/24`, `${pair.serverAddr6}/64`],
  ]);
  for (const [ns, via4, via6] of [
    [client, '198.18.0.254', 'fd00:0:b0::fe'],
    [server, '198.18.2.254', 'fd00:0:b2::fe'],
  ] as const) {
    inNamespace(ns, 'ip', ['route', 'add', 'default', 'via', via4]);
    inNamespace(ns, 'ip', ['-6', 'route', 'add', 'default', 'via', via6]);
  }
  inNamespace(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  inNamespace(router, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
  inNamespace(router, 'tc', ['qdisc', 'add', 'dev', 'r1', 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '32kb', 'limit', '16mb']);
  return pair;
}
