/**
 * What sampling one of tcp_buffer's per-call hooks (attached for a window of
 * each period, see src/tuners/tcp_buffer/index.ts) saves and what it costs,
 * against the same daemon with the hook attached all the time
 * (BPFTUNE_HOOK_SAMPLING=off). --hook names it: send, the one sampled now.
 * (The per-read receive hook of kernels before 6.16 was measured here while
 * it was sampled, at commit 50704b8: bench/results/receive-sampling.md.)
 *
 *  - cost: the workloads the hook is hot on (send: stress-ng --sock and
 *    64-byte request/response) in blocks of no daemon /
 *    sampled / always attached / no daemon again (the control: the method's
 *    own spread), in rotating order; work per CPU-second of the workload's
 *    cgroup, ratio of means with a 95 % paired-bootstrap interval. Each
 *    daemon runs tcp_buffer only and settles DAEMON_SETTLE_SECONDS first.
 *  - reaction: a socket held back by its limit (send: tcp_wmem[2] = 65536)
 *    on a 20 ms path, from iperf3's start to
 *    the daemon's line changing it, each mode on a fresh link in every round,
 *    the traffic started at a random point of the sampling period.
 *
 *  - idle (--idle): the daemon's CPU in the two modes, side by side, in the
 *    suite's idle steady state: each attach and detach costs the daemon CPU.
 *
 * Run as root: node dist/bench/hook-sampling.js [--hook send] [--idle]
 * [BLOCKS] [ROUNDS] (default 10 and 8; 0 blocks: no cost blocks); prints a
 * table and writes bench/results/<hook>-sampling.md.
 */
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonProcess } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { setSysctlIn } from '../test/support/netns';
import { createEmulatedLink } from '../test/support/link-emulator';
import { runIperfClient, startIperfServer } from '../src/tuners/tcp_buffer/test-net';
import tcpBufferTuner from '../src/tuners/tcp_buffer';
import type { SampledHook } from '../src/core/hook-sampling';
import { builtinDaemonArgs, IDLE_STEADY_START_S, idleFootprint, publishReport, stopDaemon, type IdleFootprint } from './core';
import { runBenchmark, throwIfAborted } from './cleanup';
import { createVethPair } from './iperf';
import { DAEMON_SETTLE_SECONDS } from './overhead-cpu';
import { WORKLOAD_UNITS, type WorkloadName, type WorkloadRun } from './overhead-summary';
import { pairedRatio, seededRandom, verdict, type PairedRatio } from './paired-ratio';
import { runWorkload } from './workloads';

const SECONDS = 2;
const MODES = ['sampled', 'always'] as const;
type Mode = (typeof MODES)[number];
const CONDITIONS = ['none', 'sampled', 'always', 'control'] as const;
type Condition = (typeof CONDITIONS)[number];

/** The four conditions rotated, so each runs in each position equally often over four blocks. */
function blockOrder(block: number): Condition[] {
  return CONDITIONS.map((_, i) => CONDITIONS[(i + block) % CONDITIONS.length]);
}

/** One sampled hook as this bench drives it. */
interface HookUnderTest {
  name: string;
  hook: SampledHook;
  workloads: readonly WorkloadName[];
  sysctl: 'net.ipv4.tcp_wmem' | 'net.ipv4.tcp_rmem';
  /** The limit set where it holds the traffic back: the sender's namespace (client) or the receiver's (server). */
  low: string;
  side: 'client' | 'server';
  held: string;
}

function sampledHookOf(program: string): SampledHook {
  const hook = tcpBufferTuner.sampledHooks?.find((h) => h.programs.includes(program));
  if (!hook) throw new Error(`tcp_buffer declares no sampled hook with program ${program}`);
  return hook;
}

const HOOKS: Record<string, () => HookUnderTest> = {
  send: () => ({
    name: 'send',
    hook: sampledHookOf('tcp_buffer_snd'),
    workloads: ['sock', 'rr'],
    sysctl: 'net.ipv4.tcp_wmem',
    low: '4096 16384 65536',
    side: 'client',
    held: 'A sender held back by tcp_wmem[2] = 65536',
  }),
};

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The daemon's line changing the limit from its low value. */
function changedLine(h: HookUnderTest): RegExp {
  const [min, def] = h.low.split(' ');
  return new RegExp(`change ${escapeRegExp(h.sysctl)}\\(min default max\\) from \\(${h.low}\\) -> \\(${min} ${def} \\d+\\)`);
}
/** Long enough for a window to come and the change to follow it. */
const trafficSeconds = (h: HookUnderTest) => Math.ceil(h.hook.periodMs / 1000) + 5;
const sampledLabel = (h: HookUnderTest) => `sampled (${h.hook.windowMs} ms of every ${h.hook.periodMs / 1000} s)`;

const daemonEnv = (mode: Mode) => ({ BPFTUNE_HOOK_SAMPLING: mode === 'always' ? 'off' : 'on' });

/** tcp_buffer only, with the core services. */
const daemonArgs = () => ['-a', 'tcp_buffer', ...builtinDaemonArgs()];

function daemonFor(mode: Mode, extraEnv: Record<string, string> = {}): DaemonProcess {
  return new DaemonProcess(daemonArgs(), { env: { ...daemonEnv(mode), ...extraEnv } });
}
/** The suite's idle window length without metrics (bench/suite.ts): whole periods of the daemon's slowest timer. */
const IDLE_SECONDS = 120;

interface CostResult {
  workload: WorkloadName;
  sampled: PairedRatio;
  always: PairedRatio;
  control: PairedRatio;
  sampledOverAlways: PairedRatio;
  cpuPerUnitNone: number;
}

async function measureCost(h: HookUnderTest, blocks: number, progress: (line: string) => void): Promise<CostResult[]> {
  const pair = createVethPair();
  const cgroup = new TestCgroup();
  const runs = {} as Record<WorkloadName, Record<Condition, WorkloadRun[]>>;
  for (const w of h.workloads) runs[w] = { none: [], sampled: [], always: [], control: [] };
  try {
    for (const w of h.workloads) await runWorkload(w, pair, cgroup, 1);
    for (let block = 0; block < blocks; block++) {
      const order = blockOrder(block);
      progress(`cost block ${block + 1}/${blocks}: ${order.join(', ')}`);
      for (const condition of order) {
        const daemon = condition === 'sampled' || condition === 'always' ? daemonFor(condition) : undefined;
        try {
          if (daemon) {
            await daemon.started();
            await sleep(DAEMON_SETTLE_SECONDS * 1000);
          }
          for (const w of h.workloads) {
            throwIfAborted();
            runs[w][condition].push(await runWorkload(w, pair, cgroup, SECONDS, daemon?.pid));
          }
        } finally {
          if (daemon) await stopDaemon(daemon);
        }
      }
    }
  } finally {
    cgroup.remove();
    pair.close();
  }
  const perCpu = (r: WorkloadRun) => r.work / r.cpuNs;
  return h.workloads.map((w, i) => {
    const none = runs[w].none.map(perCpu);
    const sampled = runs[w].sampled.map(perCpu);
    const always = runs[w].always.map(perCpu);
    const units = runs[w].none.map((r) => r.cpuNs / r.work).sort((a, b) => a - b);
    return {
      workload: w,
      sampled: pairedRatio(none, sampled, { seed: 40 + i }),
      always: pairedRatio(none, always, { seed: 40 + i }),
      control: pairedRatio(none, runs[w].control.map(perCpu), { seed: 40 + i }),
      sampledOverAlways: pairedRatio(always, sampled, { seed: 40 + i }),
      cpuPerUnitNone: units[Math.floor(units.length / 2)] ?? NaN,
    };
  });
}

interface ReactionTrial {
  mode: Mode;
  /** ms from iperf3's start to the change line; undefined when none came while it ran. */
  ms: number | undefined;
}

async function reactionTrial(h: HookUnderTest, mode: Mode, phaseMs: number): Promise<ReactionTrial> {
  const link = await createEmulatedLink({ rttMs: 20 });
  try {
    setSysctlIn(h.side === 'client' ? link.client : link.server, h.sysctl, h.low);
    // The verifier's verdict is put off: this measures the first change, not whether it is kept.
    const daemon = daemonFor(mode, { BPFTUNE_VERIFY_SETTLE_MS: '600000' });
    try {
      await daemon.started();
      await sleep(phaseMs);
      const from = daemon.log.length;
      const server = startIperfServer(link.server);
      try {
        const started = performance.now();
        const traffic = runIperfClient(link.client, link.serverAddr4, trafficSeconds(h)).catch((err: unknown) => err);
        const ms = await daemon.waitFor(changedLine(h), trafficSeconds(h) * 1000, from).then(
          () => performance.now() - started,
          () => undefined,
        );
        await traffic;
        return { mode, ms };
      } finally {
        server.stop();
      }
    } finally {
      await stopDaemon(daemon);
    }
  } finally {
    await link.close();
  }
}

async function measureReaction(h: HookUnderTest, rounds: number, progress: (line: string) => void): Promise<ReactionTrial[]> {
  const random = seededRandom(16);
  const trials: ReactionTrial[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? MODES : [...MODES].reverse();
    for (const mode of order) {
      throwIfAborted();
      const trial = await reactionTrial(h, mode, Math.floor(random() * h.hook.periodMs));
      progress(`reaction round ${round + 1}/${rounds}, ${mode}: ${trial.ms === undefined ? `none within ${trafficSeconds(h)} s` : `${trial.ms.toFixed(0)} ms`}`);
      trials.push(trial);
    }
  }
  return trials;
}

/** Idle CPU of the two modes side by side, in the steady state the suite judges (its idle section's window). */
async function measureIdle(progress: (line: string) => void): Promise<Record<Mode, IdleFootprint>> {
  progress(`idle: both modes side by side, ${IDLE_STEADY_START_S + IDLE_SECONDS} s`);
  const [sampled, always] = await Promise.all(
    MODES.map((mode) => idleFootprint(IDLE_SECONDS, daemonArgs(), 10, 60, IDLE_STEADY_START_S, daemonEnv(mode))),
  );
  return { sampled, always };
}

const fmt = (p: PairedRatio) => `${p.ratio.toFixed(3)} [${p.low.toFixed(3)}, ${p.high.toFixed(3)}]`;

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function report(h: HookUnderTest, command: string, blocks: number, rounds: number, cost: CostResult[] | undefined, trials: ReactionTrial[], idle?: Record<Mode, IdleFootprint>): string {
  const costRows = (cost ?? []).map((r) => {
    const unit = WORKLOAD_UNITS[r.workload];
    return (
      `| ${unit.what} | ${fmt(r.sampled)} (${verdict(r.sampled, r.control)}) | ${fmt(r.always)} (${verdict(r.always, r.control)}) | ` +
      `${fmt(r.control)} | ${fmt(r.sampledOverAlways)} | ${r.cpuPerUnitNone.toPrecision(3)} ns per ${unit.unit} |`
    );
  });
  const reactionRows = MODES.map((mode) => {
    const mine = trials.filter((t) => t.mode === mode);
    const seen = mine.flatMap((t) => (t.ms === undefined ? [] : [t.ms])).sort((a, b) => a - b);
    const cell = (v: number) => (Number.isFinite(v) ? `${(v / 1000).toFixed(2)} s` : '-');
    return `| ${mode === 'sampled' ? sampledLabel(h) : 'always attached (BPFTUNE_HOOK_SAMPLING=off)'} | ${seen.length} of ${mine.length} | ${cell(quantile(seen, 0))} | ${cell(quantile(seen, 0.5))} | ${cell(quantile(seen, 1))} |`;
  });
  return [
    `# tcp_buffer's ${h.name} hook: sampled against always attached`,
    '',
    `Written by \`${command}\` (bench/hook-sampling.ts) on ${os.hostname()}, kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}.`,
    '',
    ...(cost ? [
      `## Cost: ${blocks} blocks of no daemon / sampled / always attached / no daemon again (the control)`,
      '',
      `Rotating order; each daemon runs tcp_buffer only (with the core services) and settles ${DAEMON_SETTLE_SECONDS} s before its runs; each workload ${SECONDS} s per condition. Work per CPU-second of the workload's cgroup (where the hook runs), ratio of means with a 95 % paired-bootstrap interval; each verdict against the control's spread.`,
      '',
      '| workload | sampled / none | always attached / none | control: none / none | sampled / always attached | CPU per unit, none (median) |',
      '|---|---|---|---|---|---|',
      ...costRows,
      '',
    ] : ['(Cost not measured in this run: 0 blocks.)', '']),
    ...(idle ? [
      `## Idle: the two modes side by side, CPU over ${IDLE_SECONDS} s from ${IDLE_STEADY_START_S} s after start`,
      '',
      'Each daemon runs tcp_buffer only (with the core services), against its own bare Node.js process; the steady state of the suite\'s idle section.',
      '',
      '| daemon | idle CPU, % of a core | bare Node.js |',
      '|---|---|---|',
      ...MODES.map((mode) => `| ${mode === 'sampled' ? sampledLabel(h) : 'always attached (BPFTUNE_HOOK_SAMPLING=off)'} | ${idle[mode].cpuPercent.toFixed(3)} % | ${idle[mode].baseCpuPercent.toFixed(3)} % |`),
      '',
    ] : []),
    `## Reaction: ${rounds} rounds, each mode once per round on a fresh 20 ms link`,
    '',
    `${h.held}: from iperf3's start to the daemon's line changing ${h.sysctl.split('.').pop()}, the traffic started at a random point (seeded) of the ${h.hook.periodMs / 1000} s period after the daemon's start, ${trafficSeconds(h)} s of traffic.`,
    '',
    `| ${h.name} hook | changed within the run | fastest | median | slowest |`,
    '|---|---|---|---|---|',
    ...reactionRows,
    '',
  ].join('\n');
}

if (require.main === module) {
  runBenchmark(async () => {
    const args = process.argv.slice(2);
    const at = args.indexOf('--hook');
    const name = at >= 0 ? args.splice(at, 2)[1] : 'send';
    const idleAt = args.indexOf('--idle');
    if (idleAt >= 0) args.splice(idleAt, 1);
    const usage = `usage: node dist/bench/hook-sampling.js [--hook ${Object.keys(HOOKS).join('|')}] [--idle] [BLOCKS: 0 or >= 2] [ROUNDS >= 1]`;
    const make = name === undefined ? undefined : HOOKS[name];
    if (!make) throw new Error(`${usage} (got --hook ${String(name)})`);
    const h = make();
    const [blocksArg, roundsArg] = args.map(Number);
    const blocks = blocksArg ?? 10;
    const rounds = roundsArg || 8;
    if (!Number.isInteger(blocks) || blocks === 1 || blocks < 0 || !Number.isInteger(rounds) || rounds < 1) {
      throw new Error(`${usage} (got ${blocks} and ${rounds})`);
    }
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const trials = await measureReaction(h, rounds, progress);
    const cost = blocks ? await measureCost(h, blocks, progress) : undefined;
    const idle = idleAt >= 0 ? await measureIdle(progress) : undefined;
    const command = `node dist/bench/hook-sampling.js --hook ${h.name}${idle ? ' --idle' : ''} ${blocks} ${rounds}`;
    const text = report(h, command, blocks, rounds, cost, trials, idle);
    publishReport(`${h.name}-sampling.md`, text);
  });
}
