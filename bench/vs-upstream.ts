/**
 * Ours side by side with the system it re-designs (oracle/bpftune, built from
 * /work/shared/anchors by bench/vs-upstream.sh), in one run, on the same
 * kernel: `make bench-vs-upstream` boots Debian 12's 6.1 in the test VM and
 * runs this there (test/vm/guest/run-tests.sh, part "bench"). Both daemons run
 * with every tuner they have and roll back what they changed when they stop
 * (-R); neither ever runs at the same time as the other.
 *
 * Phase "function", rounds of none / ours / theirs in rotating order, with a
 * fresh daemon each: before it starts, the initial namespace's tcp_rmem is
 * lowered (namespaces created later copy it, so no write inside a namespace
 * looks like an administrator's to either daemon's sysctl tuner), then
 *   - reaction: in a fresh namespace a receiver reads a loopback bulk stream;
 *     its socket's buffer is at tcp_rmem[2] from the first read, which both
 *     daemons' tcp_buffer tuners treat as "limit reached"; the time from that
 *     first read to the namespace's tcp_rmem reading differently (polled);
 *     then the same over an emulated 20 ms path, where growth is warranted
 *     (over loopback ours grows only if its per-round-trip gate passes);
 *   - long RTT: back-to-back iperf3 connections over an emulated long path
 *     (test/support/link-emulator.ts) with the receiver's tcp_rmem[2] low;
 *   - lossy path: iperf3 over an emulated path with random loss, default
 *     congestion control (cubic), to see what congestion-control choice does.
 * Phase "overhead", blocks of none / control / ours / theirs in rotating order
 * (control is no daemon again: its ratio to none is the method's own noise).
 * Each daemon is started, left to settle, measured idle (CPU over a window,
 * RSS and PSS from smaps_rollup), then the three workloads of bench/workloads.ts
 * run on a fresh veth pair per condition, and RSS/PSS are read again.
 *
 * Phase "harm": the harm matrix (bench/harm.ts) with oracle/bpftune as one
 * more condition (VS_HARM_ROUNDS, VS_HARM_SECONDS). Phases "footprint" (the
 * steady state after a warm-up) and "cost" (each daemon's direct cost per unit
 * of work, from BPF run-time statistics): bench/vs-upstream-cost.ts.
 *
 * Every figure is reported as ours/theirs with a bootstrap interval (paired by
 * block where runs are paired), next to each one against none.
 *
 * Environment: BPFTUNE_REFERENCE (the reference's command, default
 * /usr/sbin/bpftune-reference), VS_PHASES (default "function overhead harm
 * footprint cost"), VS_ROUNDS, VS_BLOCKS, VS_SECONDS, VS_IDLE_SECONDS,
 * VS_TRIALS, VS_HARM_ROUNDS, VS_HARM_SECONDS, VS_HARM_WARMUP_SECONDS, VS_HARM_SCENARIOS, VS_HARM_PAUSE_DAEMONS (1: each
 * daemon stopped during the traffic, its BPF programs attached: a diagnostic), VS_HARM_OURS_TUNERS
 * (e.g. "route_table": ours loads only those tuners, a diagnostic), VS_FOOTPRINT_ROUNDS,
 * VS_WARMUP_SECONDS, VS_STEADY_SECONDS, VS_COST_BLOCKS, VS_COST_WARMUP_SECONDS,
 * VS_COST_PRIME_ROUNDS, VS_COST_PRIME_SECONDS, VS_COST_PROFILE (with VS_COST_PROFILE_INTERVAL_US; bench/vs-upstream-cost.ts);
 * VS_OURS_ENV, environment for ours in every phase (bench/vs-upstream-daemons.ts).
 * Prints the report (markdown) on stdout, progress on stderr.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import type { DaemonProcess } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { createNamespace, deleteNamespace, removeStaleNamespaces, sysctlIn } from '../test/support/netns';
import { createEmulatedLink } from '../test/support/link-emulator';
import { runIperfClient, startIperfServer } from '../src/tuners/tcp_buffer/test-net';
import { runBenchmark, throwIfAborted } from './cleanup';
import { builtinDaemonArgs, execInNamespace } from './core';
import { createVethPair } from './iperf';
import { cpuNs } from './proc';
import { pairedRatio, unpairedMedianRatio } from './paired-ratio';
import { WORKLOADS, WORKLOAD_UNITS, type WorkloadName, type WorkloadRun } from './overhead-summary';
import { runWorkload } from './workloads';
import { costPhase, footprintPhase, type Bracket } from './vs-upstream-cost';
import { measureHarm } from './harm';
import { renderHarmTable } from './harm-report';
import { env, fmtRatio, log, REFERENCE, safe, settled, sleep, smapsRollup, spread, startDaemon, type Daemon, type Memory } from './vs-upstream-daemons';

const PHASES = (process.env.VS_PHASES ?? 'function overhead harm footprint cost').split(/\s+/).filter(Boolean);
const ROUNDS = env('VS_ROUNDS', 3);
const BLOCKS = env('VS_BLOCKS', 4);
const SECONDS = env('VS_SECONDS', 3);
const IDLE_SECONDS = env('VS_IDLE_SECONDS', 20);
const TRIALS = env('VS_TRIALS', 3);
const LOW_RMEM = '4096 131072 131072';
const SENDER_WMEM = '4096 16384 33554432';
const LONG_RTT_MS = 80;
const LONG_SECONDS = 12;
const LONG_CONNECTION_SECONDS = 2;
const LOSSY = { rttMs: 30, lossPercent: 2, rateMbit: 10, seconds: 10 };
const REACTION_LIMIT_MS = 20_000;
/**
 * VS_HARM_WARMUP_SECONDS: how long each daemon runs, once settled, before a
 * harm run's traffic. In the TCG guest, 20 s after settling ours still used
 * 0.9-1.5 % of a core and (a)'s throughput dropped even with ours stopped
 * during the traffic and without packet-path programs; at 60 s it used
 * 0.1-0.2 % and (a) was not worse (bench/results/vs-upstream-6.1-harm-a-*.md).
 * The matrix asks what a running daemon does to traffic, not its start-up.
 */
const HARM_WARMUP_SECONDS = env('VS_HARM_WARMUP_SECONDS', 60);
/** VS_HARM_SCENARIOS: the harm phase's scenarios, e.g. "b,d" (all when unset). */
const HARM_SCENARIOS = process.env.VS_HARM_SCENARIOS?.split(',').filter(Boolean);

type Condition = 'none' | 'control' | Daemon;

/** Net sysctls of the initial namespace, to put back whatever a daemon left changed. */
function netSysctls(): Map<string, string> {
  const out = spawnSync('sysctl', ['-a'], { encoding: 'utf8' }).stdout ?? '';
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(' = ');
    if (i > 0 && line.startsWith('net.')) m.set(line.slice(0, i), line.slice(i + 3));
  }
  return m;
}

const leftChanged: Record<Daemon, string[]> = { ours: [], theirs: [] };
/** Volatile or not ours to restore. */
const IGNORED = /^net\.netfilter\.nf_conntrack_count|^net\.ipv6\.conf\..*\.stable_secret|\.base_reachable_time|^net\.core\.(netdev_rss_key|bpf_jit)|\.(rt_cache_rebuild_count|gc_.*interval)$/;

/**
 * Puts the snapshot back. What differs between `before` (read just before the daemon started)
 * and now is the daemon's leftover; read-only entries (tcp_available_congestion_control, which
 * grows when a daemon loads a module) cannot be put back and are blamed only on who changed them.
 */
function restore(snapshot: Map<string, string>, who?: Daemon, before?: Map<string, string>): void {
  const now = netSysctls();
  if (who && before) {
    for (const [k, v] of before) {
      const cur = now.get(k);
      if (cur !== undefined && cur !== v && !IGNORED.test(k)) leftChanged[who].push(`${k}: ${v} -> ${cur}`);
    }
  }
  for (const [k, v] of snapshot) {
    const cur = now.get(k);
    if (cur === undefined || cur === v || IGNORED.test(k)) continue;
    spawnSync('sysctl', ['-q', '-w', `${k}=${v}`], { stdio: 'ignore' });
  }
}

function setInit(name: string, value: string): void {
  execFileSync('sysctl', ['-q', '-w', `${name}=${value}`]);
}

function rotation<T>(items: readonly T[], k: number): T[] {
  return items.map((_, i) => items[(i + k) % items.length]);
}

// ---------------------------------------------------------------- function phase

/*
 * The reaction scripts (node -e), built from two parts. REACTION_TIMER: from
 * the first byte timedReader() sees, polls the namespace's tcp_rmem every
 * millisecond and prints [ms from that read to tcp_rmem reading differently
 * (-1: not within argv[1] ms), ms of the last poll that still saw the old
 * value]. REACTION_PUMP: pumpInto() writes to a connection as fast as it takes.
 */
const REACTION_TIMER = `
const net = require('net');
const fs = require('fs');
const read = () => fs.readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim();
const before = read();
const limitMs = Number(process.argv[1]);
let t0 = 0n;
let lastOld = 0;
const finish = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
function poll() {
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (read() !== before) return finish([ms, lastOld]);
  lastOld = ms;
  if (ms > limitMs) return finish([-1, lastOld]);
  setTimeout(poll, 1);
}
const timedReader = (s) => s.on('data', () => { if (!t0) { t0 = process.hrtime.bigint(); poll(); } });`;
const REACTION_PUMP = `
const chunk = Buffer.alloc(1 << 20);
function pumpInto(c) {
  c.on('error', () => {});
  const pump = () => { while (c.write(chunk)) {} };
  c.on('connect', pump);
  c.on('drain', pump);
}`;

/** In a fresh namespace, a receiver reading a loopback stream (args: limit ms). */
const REACTION_SCRIPT = `${REACTION_TIMER}${REACTION_PUMP}
const server = net.createServer(timedReader);
server.listen(0, '127.0.0.1', () => pumpInto(net.connect(server.address().port, '127.0.0.1')));`;

/*
 * The same reaction over an emulated path (REACTION_PATH_RTT_MS), where the
 * path, not loopback, carries what the buffer limits: REACTION_RECEIVER in the
 * link's server namespace (args: limit ms, listen address), REACTION_SENDER in
 * the client namespace (args: address). On loopback ours grows a limit only
 * when its bytes-per-round-trip gate passes, which is scheduling noise there;
 * here growth is what both daemons are meant to do.
 */
const REACTION_PATH_RTT_MS = 20;
const REACTION_PORT = 5401;
const REACTION_RECEIVER = `${REACTION_TIMER}
net.createServer(timedReader).listen(${REACTION_PORT}, process.argv[2], () => process.stderr.write('ready\\n'));`;
const REACTION_SENDER = `${REACTION_PUMP}
pumpInto(require('net').connect(${REACTION_PORT}, process.argv[1]));`;

/** One reaction trial over a fresh emulated path: [ms, lower bound] as REACTION_SCRIPT gives them. */
async function pathReaction(limitMs: number): Promise<[number, number]> {
  const link = await createEmulatedLink({ rttMs: REACTION_PATH_RTT_MS });
  const receiver = spawn('ip', ['netns', 'exec', link.server, process.execPath, '-e', REACTION_RECEIVER, String(limitMs), link.serverAddr4], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sender: ReturnType<typeof spawn> | undefined;
  try {
    let out = '';
    let err = '';
    receiver.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => receiver.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reaction receiver in ${link.server} did not start: ${err}`)), 30_000);
      receiver.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (err.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      receiver.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`reaction receiver in ${link.server} exited (${code}): ${err}`));
      });
    });
    sender = spawn('ip', ['netns', 'exec', link.client, process.execPath, '-e', REACTION_SENDER, link.serverAddr4], { stdio: 'ignore' });
    await exited;
    return JSON.parse(out) as [number, number];
  } finally {
    receiver.kill('SIGKILL');
    sender?.kill('SIGKILL');
    await link.close();
  }
}

interface FunctionRun {
  condition: 'none' | Daemon;
  settleSeconds?: number;
  /** ms, per trial; -1 when no change was seen. */
  reactionMs: number[];
  reactionLowerMs: number[];
  /** The same over an emulated REACTION_PATH_RTT_MS path. */
  pathReactionMs: number[];
  longRttMbit: number;
  longRttPerSecond: number[];
  /** Each long-RTT connection's congestion control, as iperf3 saw it just after connecting (tcp_conn's choice shows there). */
  longRttCongestion: string[];
  longRttFinalRmem: number;
  lossyMbit: number;
  lossyCongestion: string;
  log?: string;
  /** Ours only, after the reaction trials (its -q jstatus): tcp_buffer events from BPF posting to the handler starting, and each step of its changes. */
  split?: ReactionSplit;
}

type Percentiles = { p50: number | null; p99: number | null; samples: number };
interface ReactionSplit {
  eventToHandlerUs?: Percentiles;
  changeStepsUs?: Record<'read' | 'state' | 'write', Percentiles>;
}

/** Our daemon's own timings (-q jstatus), to split a reaction into its parts. */
function reactionSplit(daemon: DaemonProcess): ReactionSplit | undefined {
  try {
    const status = JSON.parse(daemon.query('jstatus').stdout) as {
      tuners: Array<{ name: string; eventLatencyUs: Percentiles }>;
      changeStepsUs?: ReactionSplit['changeStepsUs'];
    };
    return { eventToHandlerUs: status.tuners.find((t) => t.name === 'tcp_buffer')?.eventLatencyUs, changeStepsUs: status.changeStepsUs };
  } catch {
    return undefined;
  }
}

/** "23.8 24.0 cubic; 72.2 145.6 reno; ...": each 2 s connection's seconds and its congestion control (runs recorded before it was kept: seconds only). */
function longRttByConnection(r: FunctionRun): string {
  const seconds = r.longRttPerSecond.map((v) => v.toFixed(1));
  if (!r.longRttCongestion?.length) return seconds.join(' ');
  return r.longRttCongestion.map((cc, i) => `${seconds.slice(i * LONG_CONNECTION_SECONDS, (i + 1) * LONG_CONNECTION_SECONDS).join(' ')} ${cc}`).join('; ');
}

async function longRtt(): Promise<{ mbit: number; perSecond: number[]; congestion: string[]; finalRmem: number }> {
  const link = await createEmulatedLink({ rttMs: LONG_RTT_MS });
  try {
    const perSecond: number[] = [];
    const congestion: string[] = [];
    for (let t = 0; t < LONG_SECONDS; t += LONG_CONNECTION_SECONDS) {
      const server = startIperfServer(link.server);
      try {
        const r = await runIperfClient(link.client, link.serverAddr4, LONG_CONNECTION_SECONDS);
        perSecond.push(...r.intervals.slice(0, LONG_CONNECTION_SECONDS).map((b) => b / 1e6));
        congestion.push(r.senderCongestion ?? '?');
      } finally {
        server.stop();
      }
    }
    const finalRmem = Number(sysctlIn(link.server, 'net.ipv4.tcp_rmem').split(' ')[2]);
    return { mbit: perSecond.reduce((a, b) => a + b, 0) / Math.max(1, perSecond.length), perSecond, congestion, finalRmem };
  } finally {
    await link.close();
  }
}

async function lossy(): Promise<{ mbit: number; congestion: string }> {
  const link = await createEmulatedLink({ rttMs: LOSSY.rttMs, lossPercent: LOSSY.lossPercent, rateMbit: LOSSY.rateMbit, seed: 1234 });
  try {
    const server = startIperfServer(link.server, 5202);
    try {
      const out = await execInNamespace(link.client, 'iperf3', ['-J', '-c', link.serverAddr4, '-p', '5202', '-t', String(LOSSY.seconds)], (LOSSY.seconds + 60) * 1000);
      const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number }; sender_tcp_congestion?: string } };
      return { mbit: j.end.sum_received.bits_per_second / 1e6, congestion: j.end.sender_tcp_congestion ?? '?' };
    } finally {
      server.stop();
    }
  } finally {
    await link.close();
  }
}

async function functionRun(condition: 'none' | Daemon, snapshot: Map<string, string>, trials: number): Promise<FunctionRun> {
  setInit('net.ipv4.tcp_rmem', LOW_RMEM);
  setInit('net.ipv4.tcp_wmem', SENDER_WMEM);
  const before = netSysctls();
  const daemon = condition === 'none' ? undefined : startDaemon(condition);
  const run: Partial<FunctionRun> = { condition, reactionMs: [], reactionLowerMs: [], pathReactionMs: [] };
  try {
    if (daemon && condition !== 'none') {
      run.settleSeconds = await settled(daemon, condition);
      log(`  ${condition} settled in ${run.settleSeconds.toFixed(0)} s`);
    }
    // Without a daemon nothing changes tcp_rmem: one trial shows it, the rest would only wait.
    for (let i = 0; i < (daemon ? trials : 1); i++) {
      throwIfAborted();
      const ns = createNamespace();
      try {
        const limit = daemon ? REACTION_LIMIT_MS : 3000;
        const out = await execInNamespace(ns, process.execPath, ['-e', REACTION_SCRIPT, String(limit)], limit + 120_000);
        const [ms, lower] = JSON.parse(out) as [number, number];
        run.reactionMs?.push(ms);
        run.reactionLowerMs?.push(lower);
      } finally {
        deleteNamespace(ns);
      }
    }
    log(`  ${condition} reaction ms: ${run.reactionMs?.map((v) => v.toFixed(1)).join(', ')}`);
    for (let i = 0; i < (daemon ? trials : 1); i++) {
      throwIfAborted();
      const [ms] = await pathReaction(daemon ? REACTION_LIMIT_MS : 3000);
      run.pathReactionMs?.push(ms);
    }
    log(`  ${condition} reaction over a ${REACTION_PATH_RTT_MS} ms path, ms: ${run.pathReactionMs?.map((v) => v.toFixed(1)).join(', ')}`);
    if (daemon && condition === 'ours') run.split = reactionSplit(daemon);
    const l = await longRtt();
    Object.assign(run, { longRttMbit: l.mbit, longRttPerSecond: l.perSecond, longRttCongestion: l.congestion, longRttFinalRmem: l.finalRmem });
    log(`  ${condition} long RTT ${l.mbit.toFixed(1)} Mbit/s (${l.congestion.join(', ')}), receiver tcp_rmem[2] at the end ${l.finalRmem}`);
    // What ours' learner saw on that path (each algorithm's cost, lowest min RTT and highest rate): why it chose as it did.
    if (daemon && condition === 'ours') {
      for (const line of daemon.query('report tcp_conn').stdout.split('\n').filter(Boolean)) log(`  ours learner: ${line}`);
    }
    const y = await lossy();
    Object.assign(run, { lossyMbit: y.mbit, lossyCongestion: y.congestion });
    log(`  ${condition} lossy ${y.mbit.toFixed(2)} Mbit/s (${y.congestion})`);
  } finally {
    if (daemon) {
      await daemon.stop();
      run.log = daemon.log;
    }
    restore(snapshot, condition === 'none' ? undefined : condition, before);
  }
  return run as FunctionRun;
}

// ---------------------------------------------------------------- overhead phase

interface DaemonSample {
  settleSeconds: number;
  idleCpuPercent: number;
  idle: Memory;
  loaded: Memory;
  /** The daemon's own CPU over the workload runs, % of a core. */
  busyCpuPercent: number;
}

type Runs = Record<WorkloadName, Record<Condition, WorkloadRun[]>>;

async function overheadBlock(order: Condition[], runs: Runs, samples: Record<Daemon, DaemonSample[]>, snapshot: Map<string, string>): Promise<void> {
  for (const condition of order) {
    throwIfAborted();
    const before = netSysctls();
    const daemon = condition === 'ours' || condition === 'theirs' ? startDaemon(condition) : undefined;
    const cgroup = new TestCgroup();
    try {
      let sample: Partial<DaemonSample> | undefined;
      if (daemon && (condition === 'ours' || condition === 'theirs')) {
        sample = { settleSeconds: await settled(daemon, condition) };
        const c0 = cpuNs(daemon.pid);
        const t0 = process.hrtime.bigint();
        await sleep(IDLE_SECONDS * 1000);
        sample.idleCpuPercent = ((cpuNs(daemon.pid) - c0) / Number(process.hrtime.bigint() - t0)) * 100;
        sample.idle = smapsRollup(daemon.pid);
      }
      const pair = createVethPair();
      try {
        const c0 = daemon ? cpuNs(daemon.pid) : 0;
        const t0 = process.hrtime.bigint();
        for (const w of WORKLOADS) runs[w][condition].push(await runWorkload(w, pair, cgroup, SECONDS, daemon?.pid));
        if (daemon && sample) {
          sample.busyCpuPercent = ((cpuNs(daemon.pid) - c0) / Number(process.hrtime.bigint() - t0)) * 100;
          sample.loaded = smapsRollup(daemon.pid);
          samples[condition as Daemon].push(sample as DaemonSample);
        }
      } finally {
        pair.close();
      }
      const mb = (b?: number) => (b === undefined ? '-' : (b / 1048576).toFixed(1));
      log(
        `  ${condition}: ` +
          WORKLOADS.map((w) => {
            const r = runs[w][condition].at(-1) as WorkloadRun;
            return `${w} ${(r.work / r.seconds).toPrecision(3)}/s`;
          }).join(', ') +
          (sample ? `; settle ${sample.settleSeconds?.toFixed(0)} s, idle CPU ${sample.idleCpuPercent?.toFixed(3)} %, RSS ${mb(sample.idle?.rss)} MB PSS ${mb(sample.idle?.pss)} MB idle, RSS ${mb(sample.loaded?.rss)} MB after load` : ''),
      );
    } finally {
      cgroup.remove();
      if (daemon) await daemon.stop();
      restore(snapshot, daemon ? (condition as Daemon) : undefined, before);
    }
  }
}

// ---------------------------------------------------------------- report




/** tcp_rmem changes a daemon logged, as "from -> to" maxima. */
function rmemChanges(text: string): string {
  const m = [...text.matchAll(/change net\.ipv4\.tcp_rmem[^\n]*? from \((\d+) (\d+) (\d+)\) -> \((\d+) (\d+) (\d+)\)/g)];
  return m.length ? `${m.length}: ${m.map((x) => `${x[3]}->${x[6]}`).slice(0, 6).join(', ')}${m.length > 6 ? ', ...' : ''}` : '0';
}

/** Congestion-control algorithms a daemon said it chose, counted. */
function ccChoices(text: string): string {
  const counts = new Map<string, number>();
  for (const x of text.matchAll(/specify '(\w+)' congestion control/g)) counts.set(x[1], (counts.get(x[1]) ?? 0) + 1);
  return counts.size ? [...counts].map(([k, v]) => `${k} x${v}`).join(', ') : '0';
}

function reportFunction(runs: FunctionRun[]): string[] {
  const by = (c: FunctionRun['condition']) => runs.filter((r) => r.condition === c);
  const ours = by('ours');
  const theirs = by('theirs');
  const none = by('none');
  type Trials = 'reactionMs' | 'pathReactionMs';
  const reacted = (rs: FunctionRun[], key: Trials = 'reactionMs') => rs.flatMap((r) => r[key]).filter((v) => v >= 0);
  const missed = (rs: FunctionRun[], key: Trials = 'reactionMs') => rs.flatMap((r) => r[key]).filter((v) => v < 0).length;
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const mbit = (v: number) => `${v.toFixed(1)} Mbit/s`;
  const rounds = Math.min(ours.length, theirs.length, none.length);
  const paired = (f: (r: FunctionRun) => number, a: FunctionRun[], b: FunctionRun[]) => safe(() => pairedRatio(b.slice(0, rounds).map(f), a.slice(0, rounds).map(f)));
  const lines = [
    '## Reaction and effects (phase "function")',
    '',
    `${rounds} rounds; each round runs none, ours and theirs (order rotating), a fresh daemon each. Spread: median (min–max, n). Ratios: ours/theirs, 95% bootstrap interval in brackets.`,
    '',
    '| figure | ours | theirs | ours/theirs | none (no daemon) |',
    '|---|---|---|---|---|',
    `| start to settled (BPF loaded, CPU quiet 3 s) | ${spread(ours.map((r) => r.settleSeconds ?? NaN), (v) => `${v.toFixed(0)} s`)} | ${spread(theirs.map((r) => r.settleSeconds ?? NaN), (v) => `${v.toFixed(0)} s`)} | ${fmtRatio(safe(() => unpairedMedianRatio(theirs.map((r) => r.settleSeconds ?? NaN), ours.map((r) => r.settleSeconds ?? NaN))), 2)} | |`,
    `| reaction: receiver's first read at tcp_rmem[2] -> namespace's tcp_rmem changed (upper bound) | ${spread(reacted(ours), ms)}; ${missed(ours)} missed | ${spread(reacted(theirs), ms)}; ${missed(theirs)} missed | ${fmtRatio(safe(() => unpairedMedianRatio(reacted(theirs), reacted(ours))), 2)} | ${reacted(none).length} of ${none.flatMap((r) => r.reactionMs).length} trials saw a change (3 s each) |`,
    `| reaction over an emulated ${REACTION_PATH_RTT_MS} ms path: receiver's first read at tcp_rmem[2] -> namespace's tcp_rmem changed (upper bound) | ${spread(reacted(ours, 'pathReactionMs'), ms)}; ${missed(ours, 'pathReactionMs')} missed | ${spread(reacted(theirs, 'pathReactionMs'), ms)}; ${missed(theirs, 'pathReactionMs')} missed | ${fmtRatio(safe(() => unpairedMedianRatio(reacted(theirs, 'pathReactionMs'), reacted(ours, 'pathReactionMs'))), 2)} | ${reacted(none, 'pathReactionMs').length} of ${none.flatMap((r) => r.pathReactionMs).length} trials saw a change (3 s each) |`,
    `| reaction, ours split (its own measures, p50 / p99 in us per round): tcp_buffer events, BPF posting -> handler starting; then each change's steps: read the old value, record it in the state file, write | ${ours
      .map((r) => r.split)
      .filter((x): x is ReactionSplit => x !== undefined)
      .map((x) => {
        const pp = (p?: Percentiles) => (p && p.samples ? `${p.p50}/${p.p99}` : '-');
        return `event->handler ${pp(x.eventToHandlerUs)}, read ${pp(x.changeStepsUs?.read)}, state ${pp(x.changeStepsUs?.state)}, write ${pp(x.changeStepsUs?.write)}`;
      })
      .join('; ') || 'n/a'} | | | |`,
    `| reaction, lower bound (last poll that still saw the old value) | ${spread(ours.flatMap((r) => r.reactionLowerMs.filter((_, i) => r.reactionMs[i] >= 0)), ms)} | ${spread(theirs.flatMap((r) => r.reactionLowerMs.filter((_, i) => r.reactionMs[i] >= 0)), ms)} | | |`,
    `| long RTT (${LONG_RTT_MS} ms), ${LONG_SECONDS} s of ${LONG_CONNECTION_SECONDS} s iperf3 connections, receiver tcp_rmem[2] from 131072: mean throughput | ${spread(ours.map((r) => r.longRttMbit), mbit)} | ${spread(theirs.map((r) => r.longRttMbit), mbit)} | ${fmtRatio(paired((r) => r.longRttMbit, ours, theirs), 2)} | ${spread(none.map((r) => r.longRttMbit), mbit)} |`,
    `| long RTT: vs none (paired by round) | ${fmtRatio(paired((r) => r.longRttMbit, ours, none), 2)} | ${fmtRatio(paired((r) => r.longRttMbit, theirs, none), 2)} | | 1 |`,
    `| long RTT: receiver tcp_rmem[2] at the end | ${spread(ours.map((r) => r.longRttFinalRmem), (v) => v.toFixed(0))} | ${spread(theirs.map((r) => r.longRttFinalRmem), (v) => v.toFixed(0))} | | ${spread(none.map((r) => r.longRttFinalRmem), (v) => v.toFixed(0))} |`,
    `| lossy path (${LOSSY.rttMs} ms RTT, ${LOSSY.lossPercent}% loss each way, ${LOSSY.rateMbit} Mbit/s), ${LOSSY.seconds} s iperf3: throughput | ${spread(ours.map((r) => r.lossyMbit), (v) => `${v.toFixed(2)} Mbit/s`)} | ${spread(theirs.map((r) => r.lossyMbit), (v) => `${v.toFixed(2)} Mbit/s`)} | ${fmtRatio(paired((r) => r.lossyMbit, ours, theirs), 2)} | ${spread(none.map((r) => r.lossyMbit), (v) => `${v.toFixed(2)} Mbit/s`)} |`,
    `| lossy: vs none (paired by round) | ${fmtRatio(paired((r) => r.lossyMbit, ours, none), 2)} | ${fmtRatio(paired((r) => r.lossyMbit, theirs, none), 2)} | | 1 |`,
    `| lossy: congestion control iperf3 saw on its socket at connect, per round | ${ours.map((r) => r.lossyCongestion).join(', ')} | ${theirs.map((r) => r.lossyCongestion).join(', ')} | | ${none.map((r) => r.lossyCongestion).join(', ')} |`,
    '',
    'Per round (in run order):',
    '',
    `| round | condition | reaction ms (per trial) | reaction over the ${REACTION_PATH_RTT_MS} ms path, ms | long RTT Mbit/s per second, and each connection's congestion control | lossy Mbit/s | tcp_rmem changes logged | congestion-control choices logged |`,
    '|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (r, i) =>
        `| ${Math.floor(i / 3) + 1} | ${r.condition} | ${r.reactionMs.map((v) => v.toFixed(1)).join(', ')} | ${r.pathReactionMs.map((v) => v.toFixed(1)).join(', ')} | ${longRttByConnection(r)} | ${r.lossyMbit.toFixed(2)} | ` +
        `${r.log === undefined ? '' : rmemChanges(r.log)} | ${r.log === undefined ? '' : ccChoices(r.log)} |`,
    ),
  ];
  return lines;
}

function reportOverhead(runs: Runs, samples: Record<Daemon, DaemonSample[]>, orders: Condition[][]): string[] {
  const lines = [
    '## Overhead, footprint (phase "overhead")',
    '',
    `${orders.length} blocks, orders: ${orders.map((o) => o.join('/')).join('; ')}. Each workload ${SECONDS} s per condition; a fresh veth pair per condition. ` +
      'Ratios are of means over blocks, paired by block, 95% bootstrap interval (bench/paired-ratio.ts). control/none is the same ratio where there is nothing to find: the resolution of this run.',
    '',
    '| workload | measure | ours/theirs | ours/none | theirs/none | control/none |',
    '|---|---|---|---|---|---|',
  ];
  for (const w of WORKLOADS) {
    const r = runs[w];
    for (const [name, f] of [
      [`${WORKLOAD_UNITS[w].unit}s per second`, (x: WorkloadRun) => x.work / x.seconds],
      [`${WORKLOAD_UNITS[w].unit}s per CPU-second (workload + daemon)`, (x: WorkloadRun) => x.work / x.cpuNs],
    ] as const) {
      const p = (a: Condition, b: Condition) => safe(() => pairedRatio(r[b].map(f), r[a].map(f)));
      lines.push(`| ${WORKLOAD_UNITS[w].what} | ${name} | ${fmtRatio(p('ours', 'theirs'))} | ${fmtRatio(p('ours', 'none'))} | ${fmtRatio(p('theirs', 'none'))} | ${fmtRatio(p('control', 'none'))} |`);
    }
  }
  const mb = (v: number) => `${(v / 1048576).toFixed(1)} MB`;
  const pct = (v: number) => `${v.toFixed(3)} %`;
  const row = (what: string, f: (s: DaemonSample) => number, fmt: (v: number) => string) => {
    const o = samples.ours.map(f);
    const t = samples.theirs.map(f);
    const ratio = safe(() => unpairedMedianRatio(t, o));
    return `| ${what} | ${spread(o, fmt)} | ${spread(t, fmt)} | ${fmtRatio(ratio, 2)} |`;
  };
  lines.push(
    '',
    `Daemon footprint, one sample per block (settled, then ${IDLE_SECONDS} s idle, then the workloads). Spread: median (min–max, n); ratio of medians, 95% bootstrap interval.`,
    '',
    '| figure | ours | theirs | ours/theirs |',
    '|---|---|---|---|',
    row('start to settled', (s) => s.settleSeconds, (v) => `${v.toFixed(0)} s`),
    row(`idle CPU over ${IDLE_SECONDS} s (% of a core)`, (s) => s.idleCpuPercent, pct),
    row('RSS idle (smaps_rollup)', (s) => s.idle.rss, mb),
    row('PSS idle (smaps_rollup)', (s) => s.idle.pss, mb),
    row('RSS after the workloads', (s) => s.loaded.rss, mb),
    row('PSS after the workloads', (s) => s.loaded.pss, mb),
    row('daemon CPU during the workloads (% of a core)', (s) => s.busyCpuPercent, pct),
    '',
    'Raw rate per run (work/s; in block order):',
    '',
    '| workload | none | control | ours | theirs |',
    '|---|---|---|---|---|',
    ...WORKLOADS.map((w) => `| ${w} | ${(['none', 'control', 'ours', 'theirs'] as const).map((c) => runs[w][c].map((x) => (x.work / x.seconds).toPrecision(3)).join(', ')).join(' | ')} |`),
  );
  return lines;
}

function daemonNotes(functionRuns: FunctionRun[]): string[] {
  const notes: string[] = [];
  for (const which of ['ours', 'theirs'] as const) {
    const first = functionRuns.find((r) => r.condition === which)?.log ?? '';
    const problems = first.split('\n').filter((l) => /\b(failed|error|could not|cannot|not supported|refused|denied)\b/i.test(l)).slice(0, 15);
    if (problems.length) notes.push(`- ${which}: log lines that say something failed (first function round):`, '', '```', ...problems, '```', '');
    const changes = first.split('\n').filter((l) => /tcp_rmem|congestion|bbr/i.test(l) && !/Scenario '/.test(l)).slice(0, 25);
    if (changes.length) notes.push(`- ${which}: what it logged about tcp_rmem / congestion control (first function round):`, '', '```', ...changes, '```', '');
  }
  for (const which of ['ours', 'theirs'] as const) {
    const uniq = [...new Set(leftChanged[which].map((l) => l.split(':')[0]))];
    notes.push(`- ${which}: sysctls of the initial namespace that differed after it stopped with -R from just before it started (the harness puts them back where it can): ${uniq.length ? uniq.join(', ') : 'none'}`);
  }
  return notes;
}

async function main(): Promise<void> {
  removeStaleNamespaces();
  const snapshot = netSysctls();
  const started = Date.now();
  const virt = spawnSync('systemd-detect-virt', { encoding: 'utf8' }).stdout?.trim() || 'none';
  const refVersion = spawnSync(REFERENCE, ['-V'], { encoding: 'utf8' });
  const support = spawnSync(REFERENCE, ['-S'], { encoding: 'utf8' });
  log(`reference: ${refVersion.stdout?.trim() || refVersion.stderr?.trim()}`);
  const out: string[] = [
    '# bpftune (ours) side by side with oracle/bpftune (theirs)',
    '',
    `kernel ${os.release()}, ${os.cpus().length} vCPUs, virtualisation ${virt}, node ${process.version}, ${new Date().toISOString()}; reference: \`${REFERENCE} -V\`: ${(refVersion.stdout || refVersion.stderr).trim().split('\n')[0]}`,
    '',
    `Ours: \`bpftune -s ${builtinDaemonArgs().join(' ')}\` (every built-in tuner). Theirs: \`bpftune -s -R\` (every tuner it ships). Both roll back on exit; never both at once.`,
    '',
    'Reference `-S`:',
    '```',
    ...`${support.stdout ?? ''}${support.stderr ?? ''}`.trim().split('\n').slice(0, 20),
    '```',
    '',
  ];
  let functionRuns: FunctionRun[] = [];
  if (PHASES.includes('function')) {
    for (let round = 0; round < ROUNDS; round++) {
      const order = rotation(['none', 'ours', 'theirs'] as const, round);
      log(`function round ${round + 1}/${ROUNDS}: ${order.join(', ')}`);
      for (const c of order) {
        try {
          functionRuns.push(await functionRun(c, snapshot, TRIALS));
        } catch (err) {
          log(`  ${c} failed: ${err instanceof Error ? err.message : String(err)}`);
          out.push(`Function round ${round + 1}, ${c} failed:`, '```', (err instanceof Error ? err.message : String(err)).slice(0, 3000), '```', '');
          throw err;
        }
      }
    }
    functionRuns = functionRuns.filter((r) => r.longRttPerSecond);
    // The first round's daemon logs, whole, for the raw results (not the report).
    for (const which of ['ours', 'theirs'] as const) {
      const text = functionRuns.find((r) => r.condition === which)?.log ?? '';
      for (const line of text.split('\n').slice(0, 400)) log(`DAEMONLOG ${which} ${line}`);
    }
    out.push(...reportFunction(functionRuns), '');
    process.stdout.write(`${out.join('\n')}\n`);
    out.length = 0;
  }
  if (PHASES.includes('overhead')) {
    const runs = Object.fromEntries(WORKLOADS.map((w) => [w, { none: [], control: [], ours: [], theirs: [] }])) as unknown as Runs;
    const samples: Record<Daemon, DaemonSample[]> = { ours: [], theirs: [] };
    const orders: Condition[][] = [];
    // Cold first runs (stress-ng's and node's first start, page cache): not counted.
    const warm = createVethPair();
    const cg = new TestCgroup();
    try {
      for (const w of WORKLOADS) await runWorkload(w, warm, cg, 1);
    } finally {
      cg.remove();
      warm.close();
    }
    for (let block = 0; block < BLOCKS; block++) {
      const order = rotation(['none', 'theirs', 'control', 'ours'] as const, block);
      orders.push(order);
      log(`overhead block ${block + 1}/${BLOCKS}: ${order.join(', ')}`);
      await overheadBlock(order, runs, samples, snapshot);
    }
    out.push(...reportOverhead(runs, samples, orders), '');
  }
  // A fresh daemon for `run`, stopped after it, and what it left changed put back.
  const bracket: Bracket = async (which, run, daemonEnv) => {
    const before = netSysctls();
    const daemon = startDaemon(which, daemonEnv);
    try {
      return await run(daemon);
    } finally {
      await daemon.stop();
      restore(snapshot, which, before);
    }
  };
  if (PHASES.includes('harm')) {
    const results = await measureHarm({
      seconds: env('VS_HARM_SECONDS', 8),
      rounds: env('VS_HARM_ROUNDS', 2),
      warmupSeconds: HARM_WARMUP_SECONDS,
      quick: false,
      pauseDaemons: process.env.VS_HARM_PAUSE_DAEMONS === '1',
      // VS_HARM_OURS_TUNERS (a diagnostic): ours loads only these tuners (-a each; netns and sysctl always load).
      daemonArgs: [...builtinDaemonArgs(), ...(process.env.VS_HARM_OURS_TUNERS ?? '').split(',').filter(Boolean).flatMap((t) => ['-a', t])],
      referenceCommand: [REFERENCE],
      progress: log,
    }, HARM_SCENARIOS);
    out.push(
      '## Harm matrix with oracle/bpftune (phase "harm")',
      '',
      `bench/harm.ts on this kernel, ${env('VS_HARM_ROUNDS', 2)} rounds of ${env('VS_HARM_SECONDS', 8)} s runs, with oracle/bpftune as one more condition; a fresh daemon for each run, settled and then left ${HARM_WARMUP_SECONDS} s before the traffic. ` +
        '"Worse" means that the runs rank on the harmful side of all the no-daemon runs (first and control) at 5 % in a one-sided rank test, or with too few runs for that every run worse than every no-daemon run, and by more than 10 % (bench/harm-report.ts compare()).',
      '',
      renderHarmTable(results),
      '',
    );
  }
  if (PHASES.includes('footprint')) out.push(...(await footprintPhase(bracket)));
  if (PHASES.includes('cost')) out.push(...(await costPhase(bracket)));
  out.push('## Notes', '', ...daemonNotes(functionRuns), '');
  out.push(`Whole run inside the VM: ${((Date.now() - started) / 60000).toFixed(1)} min.`, '');
  process.stdout.write(`${out.join('\n')}\n`);
  log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min`);
}

if (require.main === module) runBenchmark(main);
