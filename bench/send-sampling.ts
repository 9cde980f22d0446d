/**
 * What sampling tcp_buffer's send hook (attached for a window of each period,
 * see src/tuners/tcp_buffer/index.ts) saves and what it costs, against the same
 * daemon with the hook attached all the time (BPFTUNE_HOOK_SAMPLING=off):
 *
 *  - cost: the send-heavy workloads of the overhead section (stress-ng
 *    --sock, 64-byte request/response) in blocks of no daemon / sampled /
 *    always attached / no daemon again (the control: the method's own
 *    spread), in rotating order; work per CPU-second of the workload's
 *    cgroup, ratio of means with a 95 % paired-bootstrap interval. Each
 *    daemon runs tcp_buffer only and settles DAEMON_SETTLE_SECONDS first.
 *  - reaction: a sender held back by tcp_wmem[2] (65536 on a 20 ms path),
 *    from iperf3's start to the daemon's "change net.ipv4.tcp_wmem" line,
 *    each mode on a fresh link in every round, the traffic started at a
 *    random point of the sampling period.
 *
 * Run as root: node dist/bench/send-sampling.js [BLOCKS] [ROUNDS] (default
 * 10 and 8; 0 blocks: the reaction only); prints a table and writes
 * bench/results/send-sampling.md.
 */
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonProcess } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { setSysctlIn } from '../test/support/netns';
import { createEmulatedLink } from '../test/support/link-emulator';
import { runIperfClient, startIperfServer } from '../src/tuners/tcp_buffer/test-net';
import tcpBufferTuner from '../src/tuners/tcp_buffer';
import { builtinDaemonArgs, publishReport, stopDaemon } from './core';
import { runBenchmark, throwIfAborted } from './cleanup';
import { createVethPair } from './iperf';
import { DAEMON_SETTLE_SECONDS } from './overhead-cpu';
import { WORKLOAD_UNITS, type WorkloadName, type WorkloadRun } from './overhead-summary';
import { pairedRatio, seededRandom, verdict, type PairedRatio } from './paired-ratio';
import { runWorkload } from './workloads';

const SECONDS = 2;
const WORKLOADS: readonly WorkloadName[] = ['sock', 'rr'];
const MODES = ['sampled', 'always'] as const;
type Mode = (typeof MODES)[number];
const CONDITIONS = ['none', 'sampled', 'always', 'control'] as const;
type Condition = (typeof CONDITIONS)[number];

/** The four conditions rotated, so each runs in each position equally often over four blocks. */
function blockOrder(block: number): Condition[] {
  return CONDITIONS.map((_, i) => CONDITIONS[(i + block) % CONDITIONS.length]);
}
const SEND_HOOK = tcpBufferTuner.sampledHooks?.[0];
if (!SEND_HOOK) throw new Error('tcp_buffer declares no sampled hook');
const PERIOD_MS = SEND_HOOK.periodMs;
/** Long enough for a window to come and the change to follow it. */
const TRAFFIC_SECONDS = Math.ceil(PERIOD_MS / 1000) + 5;
const SAMPLED_LABEL = `sampled (${SEND_HOOK.windowMs} ms of every ${PERIOD_MS / 1000} s)`;
const LOW_WMEM = '4096 16384 65536';
const WMEM_CHANGED = /change net\.ipv4\.tcp_wmem\(min default max\) from \(4096 16384 65536\) -> \(4096 16384 \d+\)/;

function daemonFor(mode: Mode, extraEnv: Record<string, string> = {}): DaemonProcess {
  return new DaemonProcess(['-a', 'tcp_buffer', ...builtinDaemonArgs()], {
    env: { BPFTUNE_HOOK_SAMPLING: mode === 'always' ? 'off' : 'on', ...extraEnv },
  });
}

interface CostResult {
  workload: WorkloadName;
  sampled: PairedRatio;
  always: PairedRatio;
  control: PairedRatio;
  sampledOverAlways: PairedRatio;
  cpuPerUnitNone: number;
}

async function measureCost(blocks: number, progress: (line: string) => void): Promise<CostResult[]> {
  const pair = createVethPair();
  const cgroup = new TestCgroup();
  const runs = {} as Record<WorkloadName, Record<Condition, WorkloadRun[]>>;
  for (const w of WORKLOADS) runs[w] = { none: [], sampled: [], always: [], control: [] };
  try {
    for (const w of WORKLOADS) await runWorkload(w, pair, cgroup, 1);
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
          for (const w of WORKLOADS) {
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
  return WORKLOADS.map((w, i) => {
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

async function reactionTrial(mode: Mode, phaseMs: number): Promise<ReactionTrial> {
  const link = await createEmulatedLink({ rttMs: 20 });
  try {
    setSysctlIn(link.client, 'net.ipv4.tcp_wmem', LOW_WMEM);
    // The verifier's verdict is put off: this measures the first change, not whether it is kept.
    const daemon = daemonFor(mode, { BPFTUNE_VERIFY_SETTLE_MS: '600000' });
    try {
      await daemon.started();
      await sleep(phaseMs);
      const from = daemon.log.length;
      const server = startIperfServer(link.server);
      try {
        const started = performance.now();
        const traffic = runIperfClient(link.client, link.serverAddr4, TRAFFIC_SECONDS).catch((err: unknown) => err);
        const ms = await daemon.waitFor(WMEM_CHANGED, TRAFFIC_SECONDS * 1000, from).then(
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

async function measureReaction(rounds: number, progress: (line: string) => void): Promise<ReactionTrial[]> {
  const random = seededRandom(16);
  const trials: ReactionTrial[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? MODES : [...MODES].reverse();
    for (const mode of order) {
      throwIfAborted();
      const trial = await reactionTrial(mode, Math.floor(random() * PERIOD_MS));
      progress(`reaction round ${round + 1}/${rounds}, ${mode}: ${trial.ms === undefined ? `none within ${TRAFFIC_SECONDS} s` : `${trial.ms.toFixed(0)} ms`}`);
      trials.push(trial);
    }
  }
  return trials;
}

const fmt = (p: PairedRatio) => `${p.ratio.toFixed(3)} [${p.low.toFixed(3)}, ${p.high.toFixed(3)}]`;

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function report(command: string, blocks: number, rounds: number, cost: CostResult[] | undefined, trials: ReactionTrial[]): string {
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
    return `| ${mode === 'sampled' ? SAMPLED_LABEL : 'always attached (BPFTUNE_HOOK_SAMPLING=off)'} | ${seen.length} of ${mine.length} | ${cell(quantile(seen, 0))} | ${cell(quantile(seen, 0.5))} | ${cell(quantile(seen, 1))} |`;
  });
  return [
    "# tcp_buffer's send hook: sampled against always attached",
    '',
    `Written by \`${command}\` (bench/send-sampling.ts) on ${os.hostname()}, kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}.`,
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
    `## Reaction: ${rounds} rounds, each mode once per round on a fresh 20 ms link`,
    '',
    `A sender held back by tcp_wmem[2] = 65536: from iperf3's start to the daemon's line changing tcp_wmem, the traffic started at a random point (seeded) of the ${PERIOD_MS / 1000} s period after the daemon's start, ${TRAFFIC_SECONDS} s of traffic.`,
    '',
    '| send hook | changed within the run | fastest | median | slowest |',
    '|---|---|---|---|---|',
    ...reactionRows,
    '',
  ].join('\n');
}

if (require.main === module) {
  runBenchmark(async () => {
    const [blocksArg, roundsArg] = process.argv.slice(2).map(Number);
    const blocks = blocksArg ?? 10;
    const rounds = roundsArg || 8;
    if (!Number.isInteger(blocks) || blocks === 1 || blocks < 0 || !Number.isInteger(rounds) || rounds < 1) {
      throw new Error(`usage: node dist/bench/send-sampling.js [BLOCKS: 0 or >= 2] [ROUNDS >= 1] (got ${blocks} and ${rounds})`);
    }
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const trials = await measureReaction(rounds, progress);
    const cost = blocks ? await measureCost(blocks, progress) : undefined;
    const text = report(`node dist/bench/send-sampling.js ${blocks} ${rounds}`, blocks, rounds, cost, trials);
    publishReport('send-sampling.md', text);
  });
}
