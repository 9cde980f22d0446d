/**
 * Two phases of the side-by-side benchmark (bench/vs-upstream.ts) that say
 * where each daemon's cost comes from, not only how large it is:
 *
 *  - "footprint": each daemon alone, settled, then left idle for a warm-up
 *    (VS_WARMUP_SECONDS, default 90) before its CPU is counted over
 *    VS_STEADY_SECONDS (default 60) and its memory read. An always-on
 *    daemon's cost is its steady state; the overhead phase's idle window
 *    starts right after settling, while ours still runs its start-up timers.
 *    A bare Node.js process, started with the flags our daemon runs under,
 *    is measured too: the part of our memory that any Node.js program has.
 *  - "cost": the direct cost of each daemon on each workload. With BPF
 *    run-time statistics on, the run time of the daemon's own programs (its
 *    fds' run_time_ns), the daemon's CPU and the workload's CPU per unit of
 *    work. Work per CPU-second with the daemon over work per CPU-second
 *    without it would then be (C - b) / (C + d), C the workload's CPU (it
 *    includes the hooks, which run in its context), b the hooks' run time,
 *    d the daemon's CPU. It counts what each daemon adds directly, not what
 *    it might cost indirectly (caches, locks); the end-to-end ratios of the
 *    overhead phase are the check on that, within their resolution. The
 *    statistics' own clock reads are inside b, so b is an upper bound; a
 *    floor run per block (no daemon, empty programs on the same per-call
 *    tracepoints) measures them per call, and the ratio is given again with
 *    them taken off: what the daemon costs with statistics off.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DaemonProcess } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { monotonicUs, profilerEnv, readProfile, summariseProfile, type ProfileSummary } from './cpu-profile';
import { daemonPrograms, enableBpfStats, MeasurementFloor, programNames, type ProgramCounters } from './bpf-stats';
import { runBenchmark, throwIfAborted, track } from './cleanup';
import { createVethPair } from './iperf';
import { cpuNs, threadCpu, threadCpuDelta } from './proc';
import { pairedRatio, unpairedMedianRatio, type PairedRatio } from './paired-ratio';
import { WORKLOADS, WORKLOAD_UNITS, type WorkloadName } from './overhead-summary';
import { env, fmtRatio, log, safe, settled, sleep, smapsRollup, spread, startDaemon, type Daemon, type Memory } from './vs-upstream-daemons';
import { runWorkload } from './workloads';

const FOOTPRINT_ROUNDS = env('VS_FOOTPRINT_ROUNDS', 2);
const WARMUP_SECONDS = env('VS_WARMUP_SECONDS', 90);
const STEADY_SECONDS = env('VS_STEADY_SECONDS', 60);
const COST_BLOCKS = env('VS_COST_BLOCKS', 3);
const COST_SECONDS = env('VS_SECONDS', 3);
/** Before the cost runs: ours runs its start-up timers for a while after settling, which is not a workload's cost. */
const COST_WARMUP_SECONDS = env('VS_COST_WARMUP_SECONDS', 30);
/**
 * Before the warm-up, the workloads run VS_COST_PRIME_ROUNDS times (default 3; 0: not at all) for
 * VS_COST_PRIME_SECONDS each, unmeasured, so that what a daemon does once is done before its cost
 * per unit of work is counted: the first time ours handles a kind of event, V8 compiles the code
 * that handles it (a function is compiled at its first call), and on a path it measures its tcp_conn
 * learner makes its first choices for a remote host (a logged action, the state file written) over
 * that host's first connections. Both happen once in a daemon's life; with a fresh daemon per block they
 * otherwise land in whichever measured run comes first (seen under VS_COST_PROFILE: most of
 * ours' CPU in the bulk runs primed once, when tcp_conn still measured these sub-millisecond veth
 * paths). Three rounds give each workload's remote hosts three connections.
 */
const COST_PRIME_ROUNDS = Number(process.env.VS_COST_PRIME_ROUNDS ?? 3);
const COST_PRIME_SECONDS = env('VS_COST_PRIME_SECONDS', 1);

/** How the cost phase runs: from the environment (VS_COST_*) in the VM and standalone; the suite passes its own. */
export interface CostSettings {
  blocks: number;
  /** Each measured workload run. */
  seconds: number;
  warmupSeconds: number;
  primeRounds: number;
  primeSeconds: number;
}

export const COST_SETTINGS: CostSettings = {
  blocks: COST_BLOCKS,
  seconds: COST_SECONDS,
  warmupSeconds: COST_WARMUP_SECONDS,
  primeRounds: COST_PRIME_ROUNDS,
  primeSeconds: COST_PRIME_SECONDS,
};
/**
 * VS_COST_PROFILE=1: ours runs under the V8 profiler (bench/profile-preload.ts,
 * started once its programs are loaded) and the report adds where its CPU went
 * in each workload's window. A diagnostic run: sampling costs the daemon CPU,
 * so its d figures are not comparable with an unprofiled run's.
 */
const COST_PROFILE = process.env.VS_COST_PROFILE === '1';
const PROFILE_INTERVAL_US = env('VS_COST_PROFILE_INTERVAL_US', 1000);

/** Runs `run` with a fresh daemon of the kind (`env`: more environment for ours), puts back what it left changed (the caller's bracket). */
export type Bracket = <T>(which: Daemon, run: (daemon: DaemonProcess) => Promise<T>, env?: NodeJS.ProcessEnv) => Promise<T>;

/** The bracket where nothing else needs putting back: a fresh daemon, stopped (ours' -R rolls its changes back). */
export const freshDaemon: Bracket = async (which, run, daemonEnv) => {
  const daemon = startDaemon(which, daemonEnv);
  try {
    return await run(daemon);
  } finally {
    await daemon.stop();
  }
};

const mb = (v: number) => `${(v / 1048576).toFixed(1)} MB`;



// ---------------------------------------------------------------- footprint

interface SteadySample {
  cpuPercent: number;
  memory: Memory;
  /** Ours only: what its log says of its sampled hooks (their period, and a period lengthened for the CPU of cycling). */
  sampling?: string[];
}

/** Ours' lines on sampled hooks: the idle CPU of a sampled hook depends on its period. */
export function samplingLines(log: string): string[] {
  return log.split('\n').filter((l) => /runs on every call of its hook|of CPU a cycle|stays attached \(BPFTUNE_HOOK_SAMPLING=off\)/.test(l));
}

/** A bare Node.js process under the flags our daemon re-executes itself with: what any Node.js program holds. */
async function bareNode(): Promise<Memory> {
  const child = track(spawn(process.execPath, ['--lite-mode', '--no-expose-wasm', '-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' }));
  try {
    await sleep(5000);
    return smapsRollup(child.pid as number);
  } finally {
    child.kill('SIGKILL');
  }
}

export async function footprintPhase(bracket: Bracket): Promise<string[]> {
  const samples: Record<Daemon, SteadySample[]> = { ours: [], theirs: [] };
  for (let round = 0; round < FOOTPRINT_ROUNDS; round++) {
    for (const which of round % 2 ? (['theirs', 'ours'] as const) : (['ours', 'theirs'] as const)) {
      throwIfAborted();
      log(`footprint round ${round + 1}/${FOOTPRINT_ROUNDS}: ${which}, ${WARMUP_SECONDS} s warm-up, ${STEADY_SECONDS} s counted`);
      samples[which].push(
        await bracket(which, async (daemon) => {
          await settled(daemon, which);
          await sleep(WARMUP_SECONDS * 1000);
          const c0 = cpuNs(daemon.pid);
          const t0 = process.hrtime.bigint();
          await sleep(STEADY_SECONDS * 1000);
          const cpuPercent = ((cpuNs(daemon.pid) - c0) / Number(process.hrtime.bigint() - t0)) * 100;
          return { cpuPercent, memory: smapsRollup(daemon.pid), sampling: which === 'ours' ? samplingLines(daemon.log) : undefined };
        }),
      );
      const s = samples[which].at(-1) as SteadySample;
      log(`  ${which}: idle CPU ${s.cpuPercent.toFixed(4)} %, RSS ${mb(s.memory.rss)}, PSS ${mb(s.memory.pss)}`);
    }
  }
  const node = await bareNode();
  const row = (what: string, f: (s: SteadySample) => number, fmt: (v: number) => string, extra = '') =>
    `| ${what} | ${spread(samples.ours.map(f), fmt)} | ${spread(samples.theirs.map(f), fmt)} | ${fmtRatio(
      safe(() => unpairedMedianRatio(samples.theirs.map(f), samples.ours.map(f))),
      2,
    )} | ${extra} |`;
  const pct = (v: number) => `${v.toFixed(4)} %`;
  return [
    '## Steady-state footprint (phase "footprint")',
    '',
    `${FOOTPRINT_ROUNDS} rounds, each daemon alone with no traffic: settled, then ${WARMUP_SECONDS} s of warm-up, then CPU counted over ${STEADY_SECONDS} s and memory read (smaps_rollup). ` +
      'Spread: median (min–max, n); ratio of medians, 95% bootstrap interval. "Bare Node.js" is `node --lite-mode --no-expose-wasm` running an empty timer: what any Node.js program holds before it does anything.',
    '',
    '| figure | ours | theirs | ours/theirs | bare Node.js |',
    '|---|---|---|---|---|',
    row(`idle CPU, steady state (% of a core)`, (s) => s.cpuPercent, pct),
    row('RSS', (s) => s.memory.rss, mb, mb(node.rss)),
    row('PSS', (s) => s.memory.pss, mb, mb(node.pss)),
    row('anonymous (heaps)', (s) => s.memory.anon, mb, mb(node.anon)),
    row('file-backed (binary, libraries)', (s) => s.memory.rss - s.memory.anon, mb, mb(node.rss - node.anon)),
    row('RSS above a bare Node.js process', (s) => s.memory.rss - node.rss, mb),
    '',
    ...samples.ours.flatMap((s, i) =>
      s.sampling?.length ? [`Ours' sampled hooks in round ${i + 1} (its log, to the end of the count):`, '```', ...s.sampling, '```', ''] : [],
    ),
  ];
}

// ---------------------------------------------------------------- direct cost

interface CostRun {
  workload: WorkloadName;
  work: number;
  /** The workload's processes (their cgroup); includes the hooks, which run in their context. */
  workloadCpuNs: number;
  daemonCpuNs: number;
  /** Run time of the daemon's BPF programs over the run, and their calls, by program name. */
  programs: Map<string, { ns: number; calls: number }>;
  /** The daemon's CPU by thread name over the run, and what it logged meanwhile: where d went. */
  threads: Array<{ comm: string; ns: number }>;
  logged: string[];
  /** Ours only: BPF events delivered to each tuner over the run (its status query), the work behind d. */
  events?: Map<string, number>;
  /** VS_COST_PROFILE: the run's window on the profiler's clock (CLOCK_MONOTONIC, us), then what was sampled in it. */
  window?: { fromUs: number; toUs: number };
  profile?: ProfileSummary;
}

/** Longer than ours' heap check waits after a query (CHECK_DELAY_MS in src/core/heap.ts), with room for the collection. */
const QUERY_SETTLE_MS = 2_500;

/** Each run's share of the profile ours wrote into `dir` as it exited (logged and left out when it wrote none). */
function attachProfiles(dir: string, runs: CostRun[]): void {
  const profile = readProfile(dir);
  if (!profile) {
    log(`ours wrote no CPU profile into ${dir}: was it still loading when the profiler was due to start?`);
    return;
  }
  for (const r of runs) if (r.window) r.profile = summariseProfile(profile, r.window.fromUs, r.window.toUs);
}

/**
 * Events delivered so far to each of ours' tuners, from `bpftune -q jstatus`;
 * undefined for the reference, or when the query fails (logged). Asked
 * outside the measured window: the answer costs the daemon CPU.
 */
function tunerEvents(daemon: DaemonProcess, which: Daemon): Map<string, number> | undefined {
  if (which !== 'ours') return undefined;
  const r = daemon.query('jstatus');
  try {
    const status = JSON.parse(r.stdout) as { tuners: Array<{ name: string; events: number }> };
    return new Map(status.tuners.map((t) => [t.name, t.events]));
  } catch {
    log(`ours' status query failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.slice(0, 200)}`);
    return undefined;
  }
}

function eventsDelta(before: Map<string, number> | undefined, after: Map<string, number> | undefined): Map<string, number> | undefined {
  if (!before || !after) return undefined;
  return new Map([...after].map(([name, n]) => [name, n - (before.get(name) ?? 0)]));
}

function sumPrograms(before: ProgramCounters[], after: ProgramCounters[], names: Map<number, { name: string }>): Map<string, { ns: number; calls: number }> {
  const start = new Map(before.map((p) => [p.id, p]));
  const out = new Map<string, { ns: number; calls: number }>();
  for (const p of after) {
    const b = start.get(p.id);
    const name = names.get(p.id)?.name ?? `id ${p.id}`;
    const cur = out.get(name) ?? { ns: 0, calls: 0 };
    cur.ns += p.runTimeNs - (b?.runTimeNs ?? 0);
    cur.calls += p.runCnt - (b?.runCnt ?? 0);
    out.set(name, cur);
  }
  return out;
}

const bpfNs = (r: CostRun) => [...r.programs.values()].reduce((a, p) => a + p.ns, 0);

/** A run of one workload with no daemon and only empty programs on the per-call hooks: what measuring costs per call. */
interface FloorRun {
  workload: WorkloadName;
  nsPerCall: number;
}

/**
 * The hooks' run time above the measurement floor: each program's calls
 * cost at least what an empty program's do with statistics on (the clock
 * reads), which the daemon would not cost with them off.
 */
function bpfNsAboveFloor(r: CostRun, floorNs: number): number {
  return [...r.programs.values()].reduce((a, p) => a + Math.max(0, p.ns - p.calls * floorNs), 0);
}

/** One floor run per workload, statistics on, no daemon (skipped with a log line where the fixture cannot load). */
async function floorRuns(seconds: number): Promise<FloorRun[]> {
  let floor: MeasurementFloor;
  try {
    floor = new MeasurementFloor();
  } catch (err) {
    log(`measurement floor not measured: ${(err as Error).message}`);
    return [];
  }
  const stop = await enableBpfStats(log);
  const pair = createVethPair();
  const cgroup = new TestCgroup();
  const out: FloorRun[] = [];
  try {
    for (const w of WORKLOADS) {
      floor.mark();
      await runWorkload(w, pair, cgroup, seconds);
      const nsPerCall = floor.overall();
      if (nsPerCall !== undefined) out.push({ workload: w, nsPerCall });
      log(`  floor ${w}: ${nsPerCall === undefined ? 'no calls' : `${nsPerCall.toFixed(1)} ns per call`}`);
    }
  } finally {
    cgroup.remove();
    pair.close();
    stop();
    floor.close();
  }
  return out;
}

/** Every run of the cost phase, with the settings it ran under. */
export interface CostMeasurement {
  settings: CostSettings;
  runs: Record<Daemon, CostRun[]>;
  floors: FloorRun[];
}

/** `daemons`: both in the VM; ours alone where the reference cannot start (this host: the suite, and the standalone run below). */
export async function costPhase(bracket: Bracket, daemons: readonly Daemon[] = ['ours', 'theirs']): Promise<string[]> {
  return reportCost(await measureCost(bracket, daemons));
}

export async function measureCost(bracket: Bracket, daemons: readonly Daemon[], settings: CostSettings = COST_SETTINGS): Promise<CostMeasurement> {
  const { blocks, seconds, warmupSeconds, primeRounds, primeSeconds } = settings;
  const runs: Record<Daemon, CostRun[]> = { ours: [], theirs: [] };
  const floors: FloorRun[] = [];
  for (let block = 0; block < blocks; block++) {
    throwIfAborted();
    log(`cost block ${block + 1}/${blocks}: measurement floor (no daemon, empty programs)`);
    floors.push(...(await floorRuns(seconds)));
    for (const which of block % 2 ? [...daemons].reverse() : daemons) {
      throwIfAborted();
      log(`cost block ${block + 1}/${blocks}: ${which}`);
      const profileDir = COST_PROFILE && which === 'ours' ? mkdtempSync(path.join(os.tmpdir(), 'bpftune-cost-prof-')) : undefined;
      const blockRuns: CostRun[] = [];
      try {
        await bracket(which, async (daemon) => {
          await settled(daemon, which);
          // The workloads' namespaces exist before the warm-up: what a daemon does when namespaces
          // appear (ours reads their counters on its fast ticks until they settle) is not a cost per unit of work.
          const pair = createVethPair();
          const cgroup = new TestCgroup();
          let stop: (() => void) | undefined;
          try {
            for (let round = 0; round < primeRounds; round++) for (const w of WORKLOADS) await runWorkload(w, pair, cgroup, primeSeconds);
            await sleep(warmupSeconds * 1000);
            const names = programNames();
            stop = await enableBpfStats(log);
            for (const w of WORKLOADS) {
              const e0 = tunerEvents(daemon, which);
              // Answering a query sets ours' heap check going 1 s later (src/core/heap.ts), which may collect: not
              // the workload's cost. The pause is for both daemons, so that their runs are spaced alike.
              await sleep(QUERY_SETTLE_MS);
              const p0 = daemonPrograms(daemon.pid);
              const d0 = cpuNs(daemon.pid);
              const t0 = threadCpu(daemon.pid);
              const logAt = daemon.log.length;
              const fromUs = monotonicUs();
              const r = await runWorkload(w, pair, cgroup, seconds);
              const toUs = monotonicUs();
              const run: CostRun = {
                workload: w,
                work: r.work,
                workloadCpuNs: r.cpuNs,
                daemonCpuNs: cpuNs(daemon.pid) - d0,
                programs: sumPrograms(p0, daemonPrograms(daemon.pid), names),
                threads: threadCpuDelta(t0, threadCpu(daemon.pid)),
                logged: daemon.log.slice(logAt).split('\n').filter(Boolean),
              };
              run.events = eventsDelta(e0, tunerEvents(daemon, which));
              if (profileDir) run.window = { fromUs, toUs };
              runs[which].push(run);
              blockRuns.push(run);
              log(
                `  ${which} ${w}: BPF ${(bpfNs(run) / run.work).toPrecision(3)} ns/unit, daemon ${(run.daemonCpuNs / run.work).toPrecision(3)} ns/unit ` +
                  `(${run.threads.slice(0, 3).map((t) => `${t.comm} ${(t.ns / 1e6).toFixed(0)} ms`).join(', ')}), workload ${(run.workloadCpuNs / run.work).toPrecision(3)} ns/unit, ` +
                  `${run.logged.length} log lines${run.events ? `, events ${eventText(run.events)}` : ''}`,
              );
              for (const line of run.logged.slice(0, 12)) log(`DAEMONLOG-COST ${which} ${w} ${line}`);
            }
          } finally {
            cgroup.remove();
            pair.close();
            stop?.();
          }
        },
          // The profiler starts after "tuners loaded" (the verifier gives up on a pending SIGPROF) and before the warm-up ends.
          profileDir ? profilerEnv(profileDir, Math.max(5, warmupSeconds - 5) * 1000, PROFILE_INTERVAL_US) : undefined,
        );
        // Written as ours exited, which the bracket waits for.
        if (profileDir) attachProfiles(profileDir, blockRuns);
      } finally {
        if (profileDir) rmSync(profileDir, { recursive: true, force: true });
      }
    }
  }
  return { settings, runs, floors };
}

/** "tcp_buffer 4, tcp_conn 2": tuners that received any, busiest first. */
function eventText(events: Map<string, number>): string {
  const busy = [...events].filter(([, n]) => n > 0).sort((x, y) => y[1] - x[1]);
  return busy.length ? busy.map(([name, n]) => `${name} ${n}`).join(', ') : 'none';
}

/** One daemon's direct cost on one workload, over all its runs. */
export interface DirectCost {
  workload: WorkloadName;
  runs: number;
  /** Per unit of work: the hooks' run time (b), the daemon's CPU (d), the workload's CPU (C). */
  bpfNs: number[];
  daemonNs: number[];
  workloadNs: number[];
  /** (C - b) / (C + d), statistics' clock reads inside b; undefined where the bootstrap refused. */
  asMeasured?: PairedRatio;
  /** The statistics' clock reads per call (floor runs), and the ratio with them taken off; undefined where no floor ran. */
  floorNs: number[];
  aboveFloor?: PairedRatio;
}

export function directCost(m: CostMeasurement, which: Daemon, w: WorkloadName): DirectCost | undefined {
  const rs = m.runs[which].filter((r) => r.workload === w);
  if (!rs.length) return undefined;
  const per = (f: (r: CostRun) => number) => rs.map((r) => f(r) / r.work);
  const floorNs = m.floors.filter((f) => f.workload === w).map((f) => f.nsPerCall);
  const f = floorNs.length ? floorNs.reduce((a, v) => a + v, 0) / floorNs.length : undefined;
  const without = rs.map((r) => Math.max(1, r.workloadCpuNs - bpfNs(r)) / r.work);
  return {
    workload: w,
    runs: rs.length,
    bpfNs: per(bpfNs),
    daemonNs: per((r) => r.daemonCpuNs),
    workloadNs: per((r) => r.workloadCpuNs),
    asMeasured: safe(() => pairedRatio(per((r) => r.workloadCpuNs + r.daemonCpuNs), without)),
    floorNs,
    aboveFloor:
      f === undefined ? undefined : safe(() => pairedRatio(per((r) => Math.max(1, r.workloadCpuNs - bpfNs(r)) + bpfNsAboveFloor(r, f) + r.daemonCpuNs), without)),
  };
}

export function reportCost(m: CostMeasurement): string[] {
  const { runs } = m;
  const { blocks, seconds, warmupSeconds, primeRounds, primeSeconds } = m.settings;
  const lines = [
    '## Direct cost per unit of work (phase "cost")',
    '',
    `${blocks} blocks, each daemon once per block (order alternating), settled, then the workloads' namespaces created${primeRounds > 0 ? `, the workloads run ${primeRounds} times ${primeSeconds} s each unmeasured (what a daemon does once is not a cost per unit of work: ours compiles the code that handles a kind of event at the first one, and its learner makes its first choices for a remote host over the host's first connections)` : ''} and left idle ${warmupSeconds} s (what a daemon does when namespaces appear is not a cost per unit of work), then each workload ${seconds} s with BPF run-time statistics on. ` +
      "Per unit of work: the run time of the daemon's own BPF programs (b), the daemon's CPU (d) and the workload's CPU (C, its cgroup, which includes the hooks). " +
      '"Direct-cost ratio" is (C - b) / (C + d): work per CPU-second with the daemon over without it, counting only what the daemon adds directly; ' +
      "mean over runs with a 95% bootstrap interval. b includes the statistics' own clock reads (an upper bound, alike for both daemons per call). " +
      'In each block a floor run (no daemon; empty programs on the per-call tracepoints this kernel has, test/fixtures/tp_btf_floor) measures what those clock reads cost per call (f). ' +
      '"Above the floor" is then (C - b) / (C - b + b\' + d), with b\' each program\'s run time less f per call: the daemon\'s cost with statistics off. ' +
      "Neither ratio counts the tracepoint's own dispatch around a program (the kernel does not time it).",
    '',
    '| workload | daemon | BPF ns per unit (b) | daemon ns per unit (d) | workload ns per unit (C) | (b + d) / C | direct-cost ratio | measurement floor f (ns per call) | direct-cost ratio above the floor | hook calls per unit | busiest programs (ns per call, calls per unit) | daemon CPU by thread (ms, all runs); lines it logged; events its tuners received (ours) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const w of WORKLOADS) {
    for (const which of ['ours', 'theirs'] as const) {
      const cost = directCost(m, which, w);
      if (!cost) continue;
      const rs = runs[which].filter((r) => r.workload === w);
      const per = (f: (r: CostRun) => number) => rs.map((r) => f(r) / r.work);
      const { bpfNs: b, daemonNs: d, workloadNs: c, asMeasured: ratio, floorNs, aboveFloor } = cost;
      const share = rs.map((r) => (bpfNs(r) + r.daemonCpuNs) / r.workloadCpuNs);
      const calls = per((r) => [...r.programs.values()].reduce((a, p) => a + p.calls, 0));
      const byProgram = new Map<string, { ns: number; calls: number }>();
      for (const r of rs) {
        for (const [name, p] of r.programs) {
          const cur = byProgram.get(name) ?? { ns: 0, calls: 0 };
          cur.ns += p.ns;
          cur.calls += p.calls;
          byProgram.set(name, cur);
        }
      }
      const work = rs.reduce((a, r) => a + r.work, 0);
      const busiest = [...byProgram]
        .filter(([, p]) => p.calls > 0)
        .sort((x, y) => y[1].ns - x[1].ns)
        .slice(0, 3)
        .map(([name, p]) => `${name} ${(p.ns / p.calls).toFixed(0)} ns, ${(p.calls / work).toPrecision(2)}`)
        .join('; ');
      const g = (v: number) => v.toPrecision(3);
      const threads = new Map<string, number>();
      for (const r of rs) for (const t of r.threads) threads.set(t.comm, (threads.get(t.comm) ?? 0) + t.ns);
      const busyThreads = [...threads]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 3)
        .map(([comm, ns]) => `${comm} ${(ns / 1e6).toFixed(0)}`)
        .join(', ');
      const logged = rs.reduce((a, r) => a + r.logged.length, 0);
      const events = new Map<string, number>();
      for (const r of rs) for (const [name, n] of r.events ?? []) events.set(name, (events.get(name) ?? 0) + n);
      const eventsNote = rs.some((r) => r.events) ? `; events: ${eventText(events)}` : '';
      lines.push(
        `| ${WORKLOAD_UNITS[w].what} (${WORKLOAD_UNITS[w].unit}) | ${which} | ${spread(b, g)} | ${spread(d, g)} | ${spread(c, g)} | ${spread(share, (v) => `${(v * 100).toFixed(3)} %`)} | ${fmtRatio(ratio, 4)} | ${floorNs.length ? spread(floorNs, (v) => v.toFixed(1)) : 'not measured'} | ${aboveFloor === undefined ? '—' : fmtRatio(aboveFloor, 4)} | ${spread(calls, g)} | ${busiest || 'no calls'} | ${busyThreads}; ${logged} lines${eventsNote} |`,
      );
    }
  }
  lines.push('', ...profileLines(runs.ours));
  return lines;
}

/** VS_COST_PROFILE: where ours' CPU went in each workload's windows, summed over the blocks (self time). */
function profileLines(runs: readonly CostRun[]): string[] {
  const profiled = runs.filter((r) => r.profile);
  if (!profiled.length) return [];
  const lines = [
    `Ours under the V8 profiler (VS_COST_PROFILE=1, one sample per ${PROFILE_INTERVAL_US} us; its d above includes the sampling): self time in each workload's windows, all blocks.`,
    '',
    '| workload | sampled busy / window | busiest functions (ms) | busiest files (ms) |',
    '|---|---|---|---|',
  ];
  const ms = (us: number) => (us / 1000).toFixed(1);
  for (const w of WORKLOADS) {
    const rs = profiled.filter((r) => r.workload === w);
    if (!rs.length) continue;
    const byFunction = new Map<string, number>();
    const byFile = new Map<string, number>();
    for (const r of rs) {
      for (const f of r.profile?.byFunction ?? []) byFunction.set(f.name, (byFunction.get(f.name) ?? 0) + f.us);
      for (const f of r.profile?.byFile ?? []) byFile.set(f.file, (byFile.get(f.file) ?? 0) + f.us);
    }
    const top = (m: Map<string, number>) =>
      [...m]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 8)
        .map(([name, us]) => `${name} ${ms(us)}`)
        .join('; ');
    const busy = rs.reduce((a, r) => a + (r.profile?.busyUs ?? 0), 0);
    const window = rs.reduce((a, r) => a + (r.profile?.windowUs ?? 0), 0);
    lines.push(`| ${WORKLOAD_UNITS[w].what} | ${ms(busy)} / ${ms(window)} ms | ${top(byFunction)} | ${top(byFile)} |`);
  }
  lines.push('');
  return lines;
}

/**
 * Standalone, ours alone on this machine (root, after make): node
 * dist/bench/vs-upstream-cost.js prints the direct-cost table (VS_COST_BLOCKS,
 * VS_SECONDS, VS_COST_WARMUP_SECONDS as above).
 */
if (require.main === module) {
  runBenchmark(async () => {
    const lines = await costPhase(freshDaemon, ['ours']);
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
