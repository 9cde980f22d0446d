/**
 * Overhead measured so that noise cannot hide it (issue 16, item 4). Each
 * block runs the three workloads (bench/workloads.ts) under three
 * conditions, in an order that rotates through all six permutations:
 *
 *   none     no daemon
 *   control  no daemon again: its ratio to `none` is what the method finds
 *            where there is nothing to find (the machine is shared and noisy)
 *   daemon   bpftune with every built-in tuner, started before the block's
 *            runs and settled (DAEMON_SETTLE_SECONDS: what is measured is a
 *            running daemon's cost, not its start's)
 *
 * For each workload two ratios, daemon/none and control/none, each with a
 * paired bootstrap interval (bench/paired-ratio.ts): work per second, and
 * work per CPU-second (the workload's processes plus the daemon). CPU per
 * unit of work is the figure noise hides least: a run that lost its CPU to
 * someone else's test loses time, not CPU per byte.
 */
import { DaemonProcess } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { runBenchmark, throwIfAborted } from './cleanup';
import { builtinDaemonArgs, loadedTuners, stopDaemon } from './core';
import { createVethPair, type VethPair } from './iperf';
import { cpuNs } from './proc';
import type { PairedRatio } from './paired-ratio';
import { blockOrder, summariseWorkload, WORKLOADS, type Condition, type OverheadCpuResult, type WorkloadName, type WorkloadRun } from './overhead-summary';
import { runWorkload } from './workloads';
import { median } from './stats';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/*
 * How long a daemon runs after "tuners loaded" before its block. Its start
 * ends with V8's memory reducer: compacting collections about 8 s after the
 * last collection of start-up, which heap.ts makes 2 s after loading
 * (node --trace-gc: "Mark-Compact (reduce)" at 10.5 and 11.1 s; 20 ms of CPU
 * in the second after loading, 26 ms in the eleventh, 0-3 ms a second
 * otherwise). Before that collection moved it, the reducer ran at 8.4-9.6 s,
 * and a daemon settled 2 s had it in its block: 0.92 % of a core over the
 * block, where one settled 15 s used 0.08 %. An always-on daemon is past it
 * long before any workload it is measured against; the start's cost is the
 * footprint's row.
 */
export const DAEMON_SETTLE_SECONDS = 15;

export interface OverheadCpuOptions {
  pairs: number;
  seconds: number;
  /** Pause after the daemon logs "tuners loaded", so its start-up work is not counted (DAEMON_SETTLE_SECONDS). */
  settleSeconds: number;
  daemonArgs: string[];
  progress: (line: string) => void;
}

export async function measureOverheadCpu(options: OverheadCpuOptions, existingPair?: VethPair): Promise<OverheadCpuResult> {
  const pair = existingPair ?? createVethPair();
  const cgroup = new TestCgroup();
  const runs = {} as Record<WorkloadName, Record<Condition, WorkloadRun[]>>;
  for (const w of WORKLOADS) runs[w] = { none: [], control: [], daemon: [] };
  const daemonCpuPercent: number[] = [];
  const orders: Condition[][] = [];
  let tuners: string[] = [];
  const runAll = async (condition: Condition, daemonPid?: number) => {
    for (const w of WORKLOADS) {
      throwIfAborted();
      runs[w][condition].push(await runWorkload(w, pair, cgroup, options.seconds, daemonPid));
    }
  };
  try {
    // The first runs on a fresh pair are cold (route, socket and page caches, stress-ng's start): not counted.
    for (const w of WORKLOADS) await runWorkload(w, pair, cgroup, 1);
    for (let block = 0; block < options.pairs; block++) {
      const order = blockOrder(block);
      orders.push(order);
      options.progress(`overhead block ${block + 1}/${options.pairs}: ${order.join(', ')}`);
      for (const condition of order) {
        if (condition !== 'daemon') {
          await runAll(condition);
          continue;
        }
        const daemon = new DaemonProcess(options.daemonArgs);
        try {
          await daemon.started();
          tuners = loadedTuners(daemon);
          await sleep(options.settleSeconds * 1000);
          const t0 = process.hrtime.bigint();
          const cpu0 = cpuNs(daemon.pid);
          await runAll('daemon', daemon.pid);
          daemonCpuPercent.push(((cpuNs(daemon.pid) - cpu0) / Number(process.hrtime.bigint() - t0)) * 100);
        } finally {
          await stopDaemon(daemon);
        }
      }
      const last = (w: WorkloadName, c: Condition) => runs[w][c][runs[w][c].length - 1];
      options.progress(
        '  ' +
          WORKLOADS.map((w) => {
            const per = (c: Condition) => (last(w, c).cpuNs / last(w, c).work).toPrecision(3);
            return `${w}: CPU ns/${w === 'bulk' ? 'byte' : 'op'} none ${per('none')} control ${per('control')} daemon ${per('daemon')}`;
          }).join('; '),
      );
    }
    return {
      seconds: options.seconds,
      pairs: options.pairs,
      settleSeconds: options.settleSeconds,
      workloads: WORKLOADS.map((w) => summariseWorkload(w, runs[w])),
      daemonCpuPercent,
      tuners,
      orders,
    };
  } finally {
    cgroup.remove();
    if (!existingPair) pair.close();
  }
}

/** Standalone: node dist/bench/overhead-cpu.js [PAIRS] [SECONDS] [SETTLE_SECONDS] (root); prints a line per workload. */
if (require.main === module) {
  runBenchmark(async () => {
    const [pairs, seconds, settleSeconds] = process.argv.slice(2).map(Number);
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const r = await measureOverheadCpu({ pairs: pairs || 3, seconds: seconds || 2, settleSeconds: Number.isFinite(settleSeconds) ? settleSeconds : DAEMON_SETTLE_SECONDS, daemonArgs: builtinDaemonArgs(), progress });
    const fmt = (p: PairedRatio) => `${p.ratio.toFixed(4)} [${p.low.toFixed(4)}, ${p.high.toFixed(4)}]`;
    process.stdout.write(`daemon CPU during its blocks, median: ${median(r.daemonCpuPercent).toFixed(3)} % of a core (settled ${r.settleSeconds} s)\n`);
    for (const w of r.workloads) {
      process.stdout.write(`${w.workload}: throughput ${fmt(w.throughput.effect)} control ${fmt(w.throughput.control)}; per CPU ${fmt(w.efficiency.effect)} control ${fmt(w.efficiency.control)} (${w.efficiency.verdict}); machine ${fmt(w.machineEfficiency.effect)} control ${fmt(w.machineEfficiency.control)}\n`);
    }
  });
}
