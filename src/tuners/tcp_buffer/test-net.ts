/**
 * Test plumbing for tcp_buffer's tests and benchmark: two namespaces joined
 * by a veth pair (198.18.0.1/2 and fd00:0:b0::1/2), and iperf3 between them.
 * Everything made here is removed by the namespace helpers' cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createNamespace, inNamespace } from '../../../test/support/netns';

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
  for (const [ns, dev, a4, a6] of [
    [client, 'veth0', pair.clientAddr4, pair.clientAddr6],
    [server, 'veth1', pair.serverAddr4, pair.serverAddr6],
  ] as const) {
    inNamespace(ns, 'ip', ['addr', 'add', `${a4}/24`, 'dev', dev]);
    inNamespace(ns, 'ip', ['addr', 'add', `${a6}/64`, 'dev', dev, 'nodad']);
    inNamespace(ns, 'ip', ['link', 'set', dev, 'up']);
  }
  return pair;
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

export interface IperfResult {
  /** Receiver-side throughput per interval, bits/s. */
  intervals: number[];
  /** Whole-run receiver throughput, bits/s. */
  bitsPerSecond: number;
}

interface IperfJson {
  intervals?: Array<{ sum?: { bits_per_second?: number } }>;
  end?: { sum_received?: { bits_per_second?: number } };
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
      };
    }
    if (attempt >= 20 || !/connect|refused/i.test(parsed.error)) throw new Error(`iperf3 -c ${server} in ${ns} failed: ${parsed.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
