/**
 * The harm matrix (issue 16, item 2): scenarios where tuning could make
 * things worse, each run without bpftune, with it, under tuned's static
 * network-throughput profile, and without it again as the control, each in
 * fresh namespaces (a namespace's tunables start from the host's defaults
 * every time). A paced 64-byte request/response probe shares the path in
 * every run, for RTT under load.
 *
 *   a  bulk TCP over a sub-millisecond veth path
 *   b  bulk plus the probe on a rate-limited 20 ms path (does a larger window build a queue?)
 *   c  10,000 mostly idle connections plus one bulk stream (memory, tcp_mem pressure)
 *   d  many short flows through a veth into a namespace (backlog vs budget, oracle/bpftune#178)
 *
 * tuned 2.20 (Debian 12) network-throughput sets net.ipv4.tcp_rmem
 * "4096 87380 16777216" and tcp_wmem "4096 16384 16777216", and through
 * throughput-performance net.core.somaxconn ">=2048" (already 4096 here) and
 * vm settings that do not touch the network: the profile condition sets the
 * two TCP ones in both namespaces.
 *
 * Standalone: node dist/bench/harm.js [--quick] [--rounds N] [--seconds S] [--warmup S] [a,b,...]
 * (root) prints the table; more rounds let the rank test behind each verdict
 * see a smaller harm, longer runs give the daemons time to act (a fresh daemon starts with
 * each run). In the 6.1 VM, bench/vs-upstream.ts runs it with oracle/bpftune as
 * one more condition (phase "harm").
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DaemonProcess } from '../test/support/daemon';
import { createEmulatedLink } from '../test/support/link-emulator';
import { setSysctlIn } from '../test/support/netns';
import { runBenchmark, throwIfAborted, track } from './cleanup';
import { builtinDaemonArgs, runToEnd, stopDaemon } from './core';
import { HARM_CONDITIONS, parseChanges, parseSockstatTcpMemory, parseSoftnet, renderHarmTable, type HarmCondition, type HarmRun, type HarmScenarioResult } from './harm-report';
import { createVethPair, runIperf, type VethPair } from './iperf';
import { startEchoServer, tcpCounters, TRAFFIC_SCRIPT } from './workloads';
import type { TrafficResult } from './traffic';
import { settled } from './vs-upstream-daemons';
import { cpuNs } from './proc';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ECHO_PORT = 5301;
const PROBE_INTERVAL_MS = 10;

export const THROUGHPUT_PROFILE: Record<string, string> = {
  'net.ipv4.tcp_rmem': '4096 87380 16777216',
  'net.ipv4.tcp_wmem': '4096 16384 16777216',
};

interface Path extends Omit<VethPair, 'close'> {
  close(): Promise<void>;
}

interface Prepared {
  /** Called after the measured window; returns the scenario's extra figures. */
  finish(): Promise<Record<string, number | string>>;
}

interface ScenarioSpec {
  id: string;
  title: string;
  throughputUnit: HarmScenarioResult['throughputUnit'];
  path(): Promise<Path>;
  /** Work that must be in place before the measured window (e.g. connections opened). */
  prepare?(path: Path, quick: boolean): Promise<Prepared>;
  traffic(path: Path, seconds: number, quick: boolean): Promise<{ throughput: number; extra?: Record<string, number | string> }>;
}

function vethPath(): Promise<Path> {
  const pair = createVethPair();
  return Promise.resolve({ ...pair, close: () => Promise.resolve(pair.close()) });
}

async function bulk(path: Path, seconds: number) {
  const r = await runIperf(path, seconds);
  return { throughput: r.bitsPerSecond };
}

/** bench/traffic.js in the client namespace, to completion; its JSON result. */
async function trafficClient(path: Path, args: string[], timeoutMs: number): Promise<TrafficResult> {
  const { stdout } = await runToEnd('ip', ['netns', 'exec', path.client, process.execPath, TRAFFIC_SCRIPT, ...args], timeoutMs, `traffic ${args[0]} in ${path.client}`);
  return JSON.parse(stdout) as TrafficResult;
}

const softnetTotals = () => parseSoftnet(readFileSync('/proc/net/softnet_stat', 'utf8'));
const tcpMemoryBytes = () => parseSockstatTcpMemory(readFileSync('/proc/net/sockstat', 'utf8'));

export const SCENARIOS: ScenarioSpec[] = [
  { id: 'a', title: '(a) bulk over veth (RTT < 0.1 ms)', throughputUnit: 'bit/s', path: vethPath, traffic: bulk },
  {
    id: 'b',
    title: '(b) bulk + RR probe, 50 Mbit/s 20 ms path',
    throughputUnit: 'bit/s',
    path: async () => {
      const link = await createEmulatedLink({ rttMs: 20, rateMbit: 50, mtu: 1500, seed: 16 });
      return { client: link.client, server: link.server, serverAddr: link.serverAddr4, close: async () => void (await link.close()) };
    },
    traffic: bulk,
  },
  {
    id: 'c',
    title: '(c) 10,000 mostly idle connections + one bulk stream',
    throughputUnit: 'bit/s',
    path: vethPath,
    async prepare(path, quick) {
      const connections = quick ? 2000 : 10_000;
      // Held for longer than any measured window: finish() stops it once the bulk stream is done.
      const child = track(
        spawn('ip', ['netns', 'exec', path.client, process.execPath, TRAFFIC_SCRIPT, 'idle', path.serverAddr, String(ECHO_PORT), '600', String(connections), String(connections / 100), '1024'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const deadline = Date.now() + 60_000;
      while (!/connected (\d+)/.test(err)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`idle connections not set up: ${err || out}`);
        await sleep(100);
      }
      const [, held, setup] = /connected (\d+) in ([\d.]+) s/.exec(err) ?? [];
      return {
        async finish() {
          child.kill('SIGTERM');
          await exited;
          return { 'connections held': Number(held), 'set-up': `${Number(setup).toFixed(1)} s` };
        },
      };
    },
    traffic: bulk,
  },
  {
    id: 'd',
    title: '(d) many short flows into a namespace (32 at a time, 16 KB each way)',
    throughputUnit: 'flows/s',
    path: vethPath,
    async traffic(path, seconds) {
      const before = softnetTotals();
      const r = await trafficClient(path, ['flows', path.serverAddr, String(ECHO_PORT), String(seconds), '32', '16384'], (seconds + 60) * 1000);
      const after = softnetTotals();
      return {
        throughput: r.transactions / r.seconds,
        extra: { 'backlog drops': after.dropped - before.dropped, 'budget squeezes': after.squeezed - before.squeezed, 'flow p99': `${((r.p99Us ?? NaN) / 1000).toFixed(1)} ms`, 'failed flows': r.errors },
      };
    },
  },
];

export interface HarmOptions {
  seconds: number;
  /** oracle/bpftune's command: adds the 'reference' condition (only where it can start, e.g. the 6.1 VM). */
  referenceCommand?: string[];
  /** Each round runs every condition once (the profile in the first only); odd rounds in the reverse order. */
  rounds: number;
  /**
   * After a daemon has settled, how long it runs before the traffic starts.
   * The matrix is about what a running daemon does to traffic: in its first
   * ten seconds or so ours still runs start-up work (measured on this host:
   * about 0.6 % of a core in the 10 s after settling, nothing after 20 s,
   * whichever tuners are loaded), and under TCG that alone moved the probe.
   */
  warmupSeconds: number;
  quick: boolean;
  /**
   * Diagnostic: each daemon is stopped (SIGSTOP) from just before the traffic
   * to its end, its BPF programs still attached: what the traffic then still
   * loses is not the daemon's work during it, but its programs' or what its
   * start left behind (a full ring buffer only makes a program's post fail).
   */
  pauseDaemons?: boolean;
  daemonArgs: string[];
  progress: (line: string) => void;
}

async function runCell(spec: ScenarioSpec, condition: HarmCondition, options: HarmOptions): Promise<HarmRun> {
  const path = await spec.path();
  let daemon: DaemonProcess | undefined;
  const echo = startEchoServer(path.server, path.serverAddr, ECHO_PORT);
  let prepared: Prepared | undefined;
  try {
    if (condition === 'profile') {
      for (const ns of [path.client, path.server]) for (const [name, value] of Object.entries(THROUGHPUT_PROFILE)) setSysctlIn(ns, name, value);
    }
    // Both daemons settled the same way (BPF loaded, CPU quiet for 3 s) before the measured run:
    // the matrix is about what a running daemon does to traffic, not about its start-up (under
    // TCG ours's start-up CPU alone moved the probe's p99).
    if (condition === 'bpftune') {
      daemon = new DaemonProcess(options.daemonArgs);
      await settled(daemon, 'ours');
    } else if (condition === 'reference' && options.referenceCommand) {
      daemon = new DaemonProcess(['-R'], { command: options.referenceCommand });
      await settled(daemon, 'theirs');
    }
    /*
     * The warm-up's last stretch, as long as the traffic, is the daemon's CPU
     * without traffic in the same run: set against its CPU during the traffic,
     * it tells work the traffic causes from start-up work still under way.
     */
    let idleShare: number | undefined;
    if (daemon && options.warmupSeconds > 0) {
      const idleSeconds = Math.min(options.warmupSeconds, options.seconds);
      await sleep((options.warmupSeconds - idleSeconds) * 1000);
      const idle0 = cpuNs(daemon.pid);
      const idleT0 = process.hrtime.bigint();
      await sleep(idleSeconds * 1000);
      idleShare = (cpuNs(daemon.pid) - idle0) / Number(process.hrtime.bigint() - idleT0);
    }
    await echo.ready;
    await sleep(500);
    throwIfAborted();
    prepared = await spec.prepare?.(path, options.quick);
    const retrans = () => (tcpCounters(path.client).RetransSegs ?? 0) + (tcpCounters(path.server).RetransSegs ?? 0);
    const retrans0 = retrans();
    // sockstat's figure is global: sockets of namespaces deleted by earlier runs are still being freed, so the run counts what it added.
    const mem0 = tcpMemoryBytes();
    let memMax = mem0;
    const sampler = setInterval(() => (memMax = Math.max(memMax, tcpMemoryBytes())), 250);
    // The daemon's own CPU and log lines while the traffic runs: what it takes from the workload.
    const daemonCpu0 = daemon ? cpuNs(daemon.pid) : 0;
    const logAt = daemon?.log.length ?? 0;
    const t0 = process.hrtime.bigint();
    let result: Awaited<ReturnType<ScenarioSpec['traffic']>>;
    let probe: TrafficResult;
    const paused = daemon && options.pauseDaemons ? daemon.pid : undefined;
    if (paused !== undefined) process.kill(paused, 'SIGSTOP');
    try {
      [result, probe] = await Promise.all([
        spec.traffic(path, options.seconds, options.quick),
        trafficClient(path, ['rr', path.serverAddr, String(ECHO_PORT), String(options.seconds), '64', String(PROBE_INTERVAL_MS)], (options.seconds + 60) * 1000),
      ]);
    } finally {
      clearInterval(sampler);
      if (paused !== undefined) process.kill(paused, 'SIGCONT');
    }
    const daemonExtra: Record<string, string> = {};
    if (daemon) {
      const share = (cpuNs(daemon.pid) - daemonCpu0) / Number(process.hrtime.bigint() - t0);
      if (idleShare !== undefined) daemonExtra['daemon CPU just before'] = `${(idleShare * 100).toFixed(1)} %`;
      daemonExtra['daemon CPU during traffic'] = `${(share * 100).toFixed(1)} %`;
      daemonExtra['lines it logged'] = String(daemon.log.slice(logAt).split('\n').filter(Boolean).length);
      if (paused !== undefined) daemonExtra['daemon'] = 'stopped (SIGSTOP) during the traffic';
    }
    const extra = { ...(result.extra ?? {}), ...((await prepared?.finish()) ?? {}), ...daemonExtra };
    prepared = undefined;
    return {
      throughput: result.throughput,
      retransmits: retrans() - retrans0,
      p50Us: probe.p50Us,
      p99Us: probe.p99Us,
      probeTransactions: probe.transactions,
      tcpMemBytes: Math.max(0, memMax - mem0),
      changes: daemon ? parseChanges(daemon.log) : [],
      extra,
    };
  } finally {
    await prepared?.finish().catch(() => undefined);
    echo.child.kill('SIGKILL');
    if (daemon) await stopDaemon(daemon);
    await path.close();
  }
}

/**
 * Run length and rounds: the full matrix takes about 3.5 minutes, the quick
 * one about 1.5. Three rounds are the fewest whose rank test can reach 5 %
 * (harm-report.ts compare()); with fewer, worse needs every run worse.
 */
export function harmSettings(quick: boolean): Pick<HarmOptions, 'seconds' | 'rounds' | 'warmupSeconds'> {
  return quick ? { seconds: 2, rounds: 1, warmupSeconds: 0 } : { seconds: 2, rounds: 3, warmupSeconds: 15 };
}

export async function measureHarm(options: HarmOptions, only?: string[]): Promise<HarmScenarioResult[]> {
  const results: HarmScenarioResult[] = [];
  for (const spec of SCENARIOS.filter((s) => !only || only.includes(s.id))) {
    const result: HarmScenarioResult = { id: spec.id, title: spec.title, throughputUnit: spec.throughputUnit, runs: {} };
    results.push(result);
    try {
      for (let round = 0; round < options.rounds; round++) {
        // The static profile is a reference, run once; the conditions compared for harm run every round.
        const conditions = HARM_CONDITIONS.filter((c) => (c !== 'profile' || round === 0) && (c !== 'reference' || options.referenceCommand));
        for (const condition of round % 2 ? [...conditions].reverse() : conditions) {
          throwIfAborted();
          options.progress(`harm ${spec.title}: ${condition} (round ${round + 1}/${options.rounds})`);
          const run = await runCell(spec, condition, options);
          (result.runs[condition] ??= []).push(run);
          options.progress(
            `  ${(run.throughput / (spec.throughputUnit === 'bit/s' ? 1e6 : 1)).toFixed(0)} ${spec.throughputUnit === 'bit/s' ? 'Mbit/s' : 'flows/s'}, ` +
              `${run.retransmits} retransmits, probe p99 ${run.p99Us?.toFixed(0)} us, TCP mem ${(run.tcpMemBytes / 1048576).toFixed(1)} MB` +
              (run.changes.length ? `, changed ${run.changes.map((c) => c.tunable).join(', ')}` : ''),
          );
        }
      }
    } catch (err) {
      if (err instanceof Error && /interrupted/.test(err.message)) throw err;
      result.error = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      options.progress(`harm ${spec.title} failed: ${result.error}`);
    }
  }
  return results;
}

if (require.main === module) {
  runBenchmark(async () => {
    const quick = process.argv.includes('--quick');
    const only = process.argv.find((a) => /^[a-d](,[a-d])*$/.test(a))?.split(',');
    /** The number after `flag`, if given; throws naming what it needs when `valid` refuses it. */
    const numberFlag = (flag: string, valid: (v: number) => boolean, needs: string): number | undefined => {
      const at = process.argv.indexOf(flag);
      if (at < 0) return undefined;
      const value = Number(process.argv[at + 1]);
      if (!valid(value)) throw new Error(`${flag} needs ${needs}, not ${process.argv[at + 1]}`);
      return value;
    };
    const rounds = numberFlag('--rounds', (v) => Number.isInteger(v) && v >= 1, 'a whole number of at least 1');
    const seconds = numberFlag('--seconds', (v) => v > 0, 'a positive number');
    const warmupSeconds = numberFlag('--warmup', (v) => v >= 0, 'a number of seconds (0 or more)');
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const settings = {
      ...harmSettings(quick),
      ...(rounds ? { rounds } : {}),
      ...(seconds ? { seconds } : {}),
      ...(warmupSeconds !== undefined ? { warmupSeconds } : {}),
    };
    const results = await measureHarm({ ...settings, quick, daemonArgs: builtinDaemonArgs(), progress }, only);
    process.stdout.write(`${renderHarmTable(results)}\n`);
  });
}
