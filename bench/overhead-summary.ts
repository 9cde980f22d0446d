/**
 * The overhead method's bookkeeping (pure; unit-tested in
 * overhead-summary.test.ts): which workloads and conditions there are, the
 * order conditions run in, and the ratios with their intervals. The
 * measuring is in overhead-cpu.ts and workloads.ts.
 */
import { pairedRatio, verdict, type PairedRatio, type Verdict } from './paired-ratio';

export const WORKLOADS = ['bulk', 'sock', 'rr'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export const WORKLOAD_UNITS: Record<WorkloadName, { unit: string; what: string }> = {
  bulk: { unit: 'byte', what: 'iperf3 bulk TCP over veth' },
  sock: { unit: 'bogo op', what: 'stress-ng --sock 1' },
  rr: { unit: 'transaction', what: '64-byte TCP request/response over veth' },
};

export interface WorkloadRun {
  work: number;
  /** CPU time of the workload's processes (cgroup cpu.stat), ns. */
  cpuNs: number;
  /** Busy time of the whole machine over the run (/proc/stat, all CPUs), ns. */
  machineNs: number;
  seconds: number;
  /** TCP segments retransmitted in the client namespace during the run. */
  retransmits: number;
}

export const CONDITIONS = ['none', 'control', 'daemon'] as const;
export type Condition = (typeof CONDITIONS)[number];

export interface RatioPair {
  /** daemon / none */
  effect: PairedRatio;
  /** control / none */
  control: PairedRatio;
  verdict: Verdict;
}

export interface WorkloadOverhead {
  workload: WorkloadName;
  runs: Record<Condition, WorkloadRun[]>;
  throughput: RatioPair;
  /** Work per CPU-second of the workload's processes (plus the daemon's, with it). */
  efficiency: RatioPair;
  /** Work per busy second of the whole machine (everyone's load included: the noisiest view). */
  machineEfficiency: RatioPair;
}

export interface OverheadCpuResult {
  seconds: number;
  pairs: number;
  /** How long each daemon ran after "tuners loaded" before its block's runs. */
  settleSeconds: number;
  workloads: WorkloadOverhead[];
  /** Daemon CPU over each daemon block, % of a core. */
  daemonCpuPercent: number[];
  tuners: string[];
  orders: Condition[][];
}

/** All six orders of the three conditions, so each condition runs first, second and last equally often. */
export function blockOrder(block: number): Condition[] {
  const perms: Condition[][] = [
    ['none', 'control', 'daemon'],
    ['daemon', 'control', 'none'],
    ['control', 'daemon', 'none'],
    ['none', 'daemon', 'control'],
    ['daemon', 'none', 'control'],
    ['control', 'none', 'daemon'],
  ];
  return perms[block % perms.length];
}

function ratios(runs: Record<Condition, WorkloadRun[]>, measure: (r: WorkloadRun) => number, seed: number): RatioPair {
  const base = runs.none.map(measure);
  const effect = pairedRatio(base, runs.daemon.map(measure), { seed });
  const control = pairedRatio(base, runs.control.map(measure), { seed });
  return { effect, control, verdict: verdict(effect, control) };
}

export function summariseWorkload(workload: WorkloadName, runs: Record<Condition, WorkloadRun[]>): WorkloadOverhead {
  return {
    workload,
    runs,
    throughput: ratios(runs, (r) => r.work / r.seconds, 1),
    efficiency: ratios(runs, (r) => r.work / r.cpuNs, 2),
    machineEfficiency: ratios(runs, (r) => r.work / r.machineNs, 3),
  };
}

