/**
 * Overhead and hot-path cost under bulk traffic: iperf3 over a veth pair
 * without the daemon and with every built-in tuner loaded, interleaved
 * (ABBA order) so that both conditions see the same background load as
 * nearly as a shared machine allows. The hot-path runs come after, with
 * BPF run-time statistics on: they add a clock read around each
 * program run, which would count against the daemon in the overhead ratio.
 *
 * Some global sysctls shape every namespace's TCP throughput (tcp_mem is
 * not per namespace), and other tests on this machine change them for
 * seconds at a time. Each run records them; a pair of runs during which they
 * moved is marked disturbed and repeated, within limits.
 */
import { readFileSync } from 'node:fs';
import { DaemonProcess } from '../test/support/daemon';
import { daemonPrograms, enableBpfStats, mergeCosts, programCosts, type ProgramCost } from './bpf-stats';
import { throwIfAborted } from './cleanup';
import { loadedTuners, stopDaemon } from './core';
import { createVethPair, runIperf, type IperfResult, type VethPair } from './iperf';
import { memoryStatus, threadCpu, threadCpuDelta, type MemoryStatus } from './proc';
import { ratioSummary, type RatioSummary } from './stats';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Global (not per-namespace) settings that change what a TCP transfer in any namespace can do. */
export const WATCHED_GLOBALS = ['net/ipv4/tcp_mem', 'net/core/netdev_max_backlog', 'net/core/netdev_budget', 'net/core/netdev_budget_usecs'];

export interface OverheadOptions {
  seconds: number;
  repetitions: number;
  /** Pause after the daemon logs "tuners loaded" (and before a run without it) so start-up work is over. */
  settleSeconds: number;
  hotPathRuns: number;
  /** The hot-path daemon runs long enough to be past start-up, like a deployed one. */
  hotPathSettleSeconds: number;
  daemonArgs: string[];
  progress: (line: string) => void;
}

export interface DaemonDuringRun {
  cpuPercent: number;
  /** Highest RSS sampled during the transfer. */
  maxRss: number;
  /** At the end of the transfer; its peakRss (VmHWM) includes start-up. */
  memory: MemoryStatus;
  threads: Array<{ comm: string; ns: number }>;
  events: number;
}

export interface BulkRun {
  iperf: IperfResult;
  /** Distinct values of the watched globals seen during the run ("name=value" joined). */
  globals: string[];
}

export interface OverheadPair {
  without: BulkRun;
  with: BulkRun;
  daemon: DaemonDuringRun;
  /** Set when a watched global setting was not at its usual value during either run. */
  disturbed?: string;
}

export interface OverheadResult {
  seconds: number;
  pairs: OverheadPair[];
  /** Over the undisturbed pairs when there are at least 3 of them, else over all. */
  ratio: RatioSummary;
  ratioOver: 'undisturbed pairs' | 'all pairs';
  without: IperfResult[];
  with: IperfResult[];
  daemon: DaemonDuringRun[];
  tuners: string[];
  /** The usual value of each watched global (the most frequent one seen). */
  usualGlobals: string;
}

export interface HotPathResult {
  seconds: number;
  throughput: number[];
  programs: ProgramCost[];
  /** The one settled daemon's RSS and CPU over all hot-path runs. */
  daemon: DaemonDuringRun[];
}

function readGlobals(): string {
  return WATCHED_GLOBALS.map((name) => {
    try {
      return `${name.replace(/\//g, '.')}=${readFileSync(`/proc/sys/${name}`, 'utf8').trim().replace(/\s+/g, ' ')}`;
    } catch {
      return `${name.replace(/\//g, '.')}=?`;
    }
  }).join(', ');
}

/** Runs iperf3 while sampling the watched globals twice a second. */
async function bulkRun(pair: VethPair, seconds: number): Promise<BulkRun> {
  const seen = new Set<string>([readGlobals()]);
  const timer = setInterval(() => seen.add(readGlobals()), 500);
  try {
    const iperf = await runIperf(pair, seconds);
    seen.add(readGlobals());
    return { iperf, globals: [...seen] };
  } finally {
    clearInterval(timer);
  }
}

function eventCount(daemon: DaemonProcess): number {
  try {
    return (JSON.parse(daemon.query('jstatus').stdout) as { tuners: Array<{ events: number }> }).tuners.reduce((a, t) => a + t.events, 0);
  } catch {
    return NaN;
  }
}

async function withDaemon<T>(options: OverheadOptions, run: (daemon: DaemonProcess) => Promise<T>): Promise<{ value: T; during: DaemonDuringRun; tuners: string[] }> {
  const daemon = new DaemonProcess(options.daemonArgs);
  try {
    await daemon.started();
    await sleep(options.settleSeconds * 1000);
    throwIfAborted();
    const events0 = eventCount(daemon);
    const cpu0 = threadCpu(daemon.pid);
    let maxRss = memoryStatus(daemon.pid).rss;
    const rssTimer = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, memoryStatus(daemon.pid).rss);
      } catch {
        // The daemon exited; the run's own error says why.
      }
    }, 250);
    const t0 = process.hrtime.bigint();
    let value: T;
    try {
      value = await run(daemon);
    } finally {
      clearInterval(rssTimer);
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const threads = threadCpuDelta(cpu0, threadCpu(daemon.pid));
    const memory = memoryStatus(daemon.pid);
    const during: DaemonDuringRun = {
      cpuPercent: (threads.reduce((a, t) => a + t.ns, 0) / 1e9 / wall) * 100,
      maxRss: Math.max(maxRss, memory.rss),
      memory,
      threads: threads.filter((t) => t.ns > 0),
      events: eventCount(daemon) - events0,
    };
    return { value, during, tuners: loadedTuners(daemon) };
  } finally {
    await stopDaemon(daemon);
  }
}

function mostFrequent(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].reduce((a, b) => (b[1] > a[1] ? b : a), ['', 0])[0];
}

/** The settings of `snapshot` that differ from `usual` ("a=1, b=2" strings). */
function differences(usual: string, snapshot: string): string[] {
  const usualSet = new Set(usual.split(', '));
  return snapshot.split(', ').filter((kv) => !usualSet.has(kv));
}

/** Marks each pair whose runs saw a watched global away from its usual value. */
export function markDisturbed(pairs: OverheadPair[]): string {
  const usual = mostFrequent(pairs.flatMap((p) => [...p.without.globals, ...p.with.globals]));
  for (const p of pairs) {
    const odd = [...new Set([...p.without.globals, ...p.with.globals].flatMap((g) => differences(usual, g)))];
    p.disturbed = odd.length ? odd.join(', ') : undefined;
  }
  return usual;
}

export function summarisePairs(pairs: OverheadPair[]): Pick<OverheadResult, 'ratio' | 'ratioOver'> {
  const clean = pairs.filter((p) => !p.disturbed);
  const used = clean.length >= 3 ? clean : pairs;
  return {
    ratio: ratioSummary(
      used.map((p) => p.without.iperf.bitsPerSecond),
      used.map((p) => p.with.iperf.bitsPerSecond),
    ),
    ratioOver: used === clean ? 'undisturbed pairs' : 'all pairs',
  };
}

export async function measureOverhead(options: OverheadOptions, pair?: VethPair): Promise<OverheadResult> {
  const veth = pair ?? createVethPair();
  try {
    // The first transfer on a fresh pair runs cold (route and socket caches): not counted.
    await runIperf(veth, Math.min(2, options.seconds));
    const pairs: OverheadPair[] = [];
    let tuners: string[] = [];
    const runWithout = async () => {
      await sleep(options.settleSeconds * 1000);
      throwIfAborted();
      return bulkRun(veth, options.seconds);
    };
    const runWith = async () => {
      const r = await withDaemon(options, () => bulkRun(veth, options.seconds));
      tuners = r.tuners;
      return r;
    };
    // A disturbed pair is repeated, up to this many attempts in all, so that the time stays bounded.
    const maxAttempts = options.repetitions + Math.ceil(options.repetitions / 2);
    for (let i = 0; i < maxAttempts; i++) {
      throwIfAborted();
      if (i >= options.repetitions) {
        markDisturbed(pairs);
        if (pairs.filter((p) => !p.disturbed).length >= options.repetitions) break;
      }
      options.progress(`overhead pair ${i + 1} (${options.repetitions} wanted, at most ${maxAttempts})`);
      let without: BulkRun;
      let withRun: Awaited<ReturnType<typeof runWith>>;
      // ABBA: a slow drift in background load does not favour either condition.
      if (i % 2 === 0) {
        without = await runWithout();
        withRun = await runWith();
      } else {
        withRun = await runWith();
        without = await runWithout();
      }
      pairs.push({ without, with: withRun.value, daemon: withRun.during });
      options.progress(
        `  without ${(without.iperf.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, with ${(withRun.value.iperf.bitsPerSecond / 1e9).toFixed(2)} Gbit/s` +
          ` (daemon ${withRun.during.cpuPercent.toFixed(2)} % CPU)`,
      );
    }
    const usualGlobals = markDisturbed(pairs);
    return {
      seconds: options.seconds,
      pairs,
      ...summarisePairs(pairs),
      without: pairs.map((p) => p.without.iperf),
      with: pairs.map((p) => p.with.iperf),
      daemon: pairs.map((p) => p.daemon),
      tuners,
      usualGlobals,
    };
  } finally {
    if (!pair) veth.close();
  }
}

export async function measureHotPath(options: OverheadOptions, pair?: VethPair): Promise<HotPathResult> {
  const veth = pair ?? createVethPair();
  const restoreStats = await enableBpfStats(options.progress);
  try {
    const runs: ProgramCost[][] = [];
    const seconds: number[] = [];
    const throughput: number[] = [];
    const daemon: DaemonDuringRun[] = [];
    // One daemon for all runs, settled like the idle one: its RSS and CPU here are a long-running daemon's under load.
    const r = await withDaemon({ ...options, settleSeconds: options.hotPathSettleSeconds }, async (d) => {
      for (let i = 0; i < options.hotPathRuns; i++) {
        throwIfAborted();
        options.progress(`hot-path run ${i + 1}/${options.hotPathRuns} (BPF run-time statistics on)`);
        const before = daemonPrograms(d.pid);
        const t0 = process.hrtime.bigint();
        const iperf = await runIperf(veth, options.seconds);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        runs.push(programCosts(before, daemonPrograms(d.pid), wall));
        seconds.push(wall);
        throughput.push(iperf.bitsPerSecond);
      }
    });
    daemon.push(r.during);
    return { seconds: options.seconds, throughput, programs: mergeCosts(runs, seconds), daemon };
  } finally {
    restoreStats();
    if (!pair) veth.close();
  }
}
