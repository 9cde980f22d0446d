/**
 * Hot-path cost under bulk traffic: iperf3 over a veth pair with a settled
 * daemon (every built-in tuner) and BPF run-time statistics on, giving each
 * program's run time per call and share of a core. Kept apart from the
 * overhead ratios (bench/overhead-cpu.ts): the statistics add a clock read
 * around each program run, which would count against the daemon there.
 * Empty programs on the per-call hooks' tracepoints run beside them, so that
 * what those reads cost can be taken off each figure (MeasurementFloor).
 */
import { DaemonProcess } from '../test/support/daemon';
import { daemonPrograms, enableBpfStats, FLOOR_PROGRAM_OF, MeasurementFloor, mergeCosts, programCosts, type ProgramCost } from './bpf-stats';
import { throwIfAborted } from './cleanup';
import { loadedTuners, stopDaemon } from './core';
import { createVethPair, runIperf, type VethPair } from './iperf';
import { memoryStatus, threadCpu, threadCpuDelta, type MemoryStatus } from './proc';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface HotPathOptions {
  seconds: number;
  runs: number;
  /** The daemon runs this long before the first transfer, so it is past start-up, like a deployed one. */
  settleSeconds: number;
  daemonArgs: string[];
  /**
   * BPFTUNE_HOOK_SAMPLING=off: a sampled hook's run time per call is the same
   * whenever it is attached, but sampled it is attached 2 % of the time and
   * would fall below the hot-hook threshold, unjudged.
   */
  keepSampledHooksAttached?: boolean;
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

export interface HotPathResult {
  seconds: number;
  throughput: number[];
  programs: ProgramCost[];
  /** The one settled daemon's RSS and CPU over all hot-path runs. */
  daemon: DaemonDuringRun[];
  /** By the daemon's program name: run time per call of an empty program on the same tracepoint, over the same runs. */
  floorNs?: Record<string, number>;
  keptSampledHooksAttached?: boolean;
}

function eventCount(daemon: DaemonProcess): number {
  try {
    return (JSON.parse(daemon.query('jstatus').stdout) as { tuners: Array<{ events: number }> }).tuners.reduce((a, t) => a + t.events, 0);
  } catch {
    return NaN;
  }
}

async function withDaemon<T>(options: HotPathOptions, run: (daemon: DaemonProcess) => Promise<T>): Promise<{ value: T; during: DaemonDuringRun; tuners: string[] }> {
  const daemon = new DaemonProcess(options.daemonArgs, options.keepSampledHooksAttached ? { env: { BPFTUNE_HOOK_SAMPLING: 'off' } } : {});
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

export async function measureHotPath(options: HotPathOptions, pair?: VethPair): Promise<HotPathResult> {
  const veth = pair ?? createVethPair();
  const restoreStats = await enableBpfStats(options.progress);
  let floor: MeasurementFloor | undefined;
  try {
    try {
      floor = new MeasurementFloor();
    } catch (err) {
      options.progress(`hot path: no empty programs to measure the statistics' own cost (${(err as Error).message}); figures as measured`);
    }
    const runs: ProgramCost[][] = [];
    const seconds: number[] = [];
    const throughput: number[] = [];
    const daemon: DaemonDuringRun[] = [];
    // One daemon for all runs, settled like the idle one: its RSS and CPU here are a long-running daemon's under load.
    let floorPerCall = new Map<string, number>();
    const r = await withDaemon(options, async (d) => {
      floor?.mark();
      for (let i = 0; i < options.runs; i++) {
        throwIfAborted();
        options.progress(`hot-path run ${i + 1}/${options.runs} (BPF run-time statistics on)`);
        const before = daemonPrograms(d.pid);
        const t0 = process.hrtime.bigint();
        const iperf = await runIperf(veth, options.seconds);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        runs.push(programCosts(before, daemonPrograms(d.pid), wall));
        seconds.push(wall);
        throughput.push(iperf.bitsPerSecond);
      }
      floorPerCall = floor?.perCall() ?? floorPerCall;
    });
    daemon.push(r.during);
    const floorNs: Record<string, number> = {};
    for (const [program, empty] of Object.entries(FLOOR_PROGRAM_OF)) {
      const ns = floorPerCall.get(empty);
      if (ns !== undefined) floorNs[program] = ns;
    }
    return { seconds: options.seconds, throughput, programs: mergeCosts(runs, seconds), daemon, floorNs, keptSampledHooksAttached: options.keepSampledHooksAttached };
  } finally {
    floor?.close();
    restoreStats();
    if (!pair) veth.close();
  }
}
