/**
 * Bulk TCP traffic for the overhead runs: iperf3 over a veth pair between
 * two namespaces this process creates (addresses from 198.18.0.0/15 only).
 * Each run starts a one-off server (-1), and both ends are killed in
 * cleanup should the run not finish by itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createNamespace, deleteNamespace } from '../test/support/netns';
import { track } from './cleanup';

const CLIENT_ADDR = '198.18.6.1';
const SERVER_ADDR = '198.18.6.2';
const PORT = '5201';

export interface VethPair {
  client: string;
  server: string;
  serverAddr: string;
  close(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createVethPair(): VethPair {
  const client = createNamespace();
  const server = createNamespace();
  try {
    // Both ends are created inside the namespaces, so names cannot clash with other tests' devices.
    ip(['-n', client, 'link', 'add', 'vb0', 'type', 'veth', 'peer', 'name', 'vb1', 'netns', server]);
    ip(['-n', client, 'addr', 'add', `${CLIENT_ADDR}/30`, 'dev', 'vb0']);
    ip(['-n', server, 'addr', 'add', `${SERVER_ADDR}/30`, 'dev', 'vb1']);
    ip(['-n', client, 'link', 'set', 'vb0', 'up']);
    ip(['-n', server, 'link', 'set', 'vb1', 'up']);
  } catch (err) {
    deleteNamespace(client);
    deleteNamespace(server);
    throw new Error(`could not set up the veth pair for iperf3 (is iproute2 installed, are we root?): ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    client,
    server,
    serverAddr: SERVER_ADDR,
    close: () => {
      deleteNamespace(client);
      deleteNamespace(server);
    },
  };
}

export interface IperfResult {
  bitsPerSecond: number;
  /** Bytes the receiver got. */
  bytes: number;
  /** Per-second receiver throughput, for spotting a disturbed second. */
  intervalBits: number[];
  retransmits: number;
  /** iperf3's own CPU use (% of a core, user+system) at each end. */
  clientCpuPercent: number;
  serverCpuPercent: number;
  wallSeconds: number;
}

interface IperfJson {
  error?: string;
  intervals?: Array<{ sum?: { bits_per_second?: number } }>;
  end?: {
    sum_received?: { bits_per_second?: number; bytes?: number };
    sum_sent?: { retransmits?: number };
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
  };
}

function waitForOutput(child: ReturnType<typeof spawn>, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms; output: ${text}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (pattern.test(text)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready; output: ${text}`));
    });
  });
}

/** How a command is started: as it is, or wrapped (e.g. to run it in a cgroup whose CPU time is counted). */
export type CommandWrapper = (command: string, args: string[]) => [string, string[]];
const asIs: CommandWrapper = (command, args) => [command, args];

/**
 * One iperf3 transfer from the client namespace to the server's; `onStart`
 * runs once the server listens, just before the client starts (where a
 * caller takes its "before" readings).
 */
export async function runIperf(pair: VethPair, seconds: number, wrap: CommandWrapper = asIs, onStart?: () => void): Promise<IperfResult> {
  const server = track(
    spawn(...wrap('ip', ['netns', 'exec', pair.server, 'iperf3', '-s', '-1', '--forceflush', '-B', pair.serverAddr, '-p', PORT]), {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  try {
    await waitForOutput(server, /Server listening/, 5000, 'iperf3 server');
    onStart?.();
    const started = process.hrtime.bigint();
    const client = track(
      spawn(...wrap('ip', ['netns', 'exec', pair.client, 'iperf3', '-c', pair.serverAddr, '-p', PORT, '-t', String(seconds), '-J']), {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    client.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    client.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    // 'close', not 'exit': a process can exit before its output is read (seen under TCG: exit 0, no JSON).
    const code = await new Promise<number | null>((resolve) => client.on('close', resolve));
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    let json: IperfJson;
    try {
      json = JSON.parse(out) as IperfJson;
    } catch {
      throw new Error(`iperf3 client exited (${code}) without a JSON result: ${err || out.slice(0, 500)}`);
    }
    if (code !== 0 || json.error) throw new Error(`iperf3 client failed (${code}): ${json.error ?? err}`);
    const bits = json.end?.sum_received?.bits_per_second;
    if (!bits) throw new Error('iperf3 reported no received throughput');
    return {
      bitsPerSecond: bits,
      bytes: json.end?.sum_received?.bytes ?? (bits * seconds) / 8,
      intervalBits: (json.intervals ?? []).map((i) => i.sum?.bits_per_second ?? NaN),
      retransmits: json.end?.sum_sent?.retransmits ?? 0,
      clientCpuPercent: json.end?.cpu_utilization_percent?.host_total ?? NaN,
      serverCpuPercent: json.end?.cpu_utilization_percent?.remote_total ?? NaN,
      wallSeconds,
    };
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}
