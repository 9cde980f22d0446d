/**
 * tcp_buffer effect benchmark. On an emulated 40 ms RTT path (TUN forwarder,
 * no rate limit) with net.ipv4.tcp_rmem[2] = 131072 in the receiver's
 * namespace, 20 s of iperf3 bulk traffic:
 *   - well-sized: tcp_rmem[2] = 256 MiB, no bpftune (the reference throughput);
 *   - without bpftune, and with bpftune (-a tcp_buffer), from 131072;
 * and the time until the run with bpftune first reaches 90% of the
 * well-sized throughput. The sender's tcp_wmem[2] starts at 32 MiB in every
 * run, which holds a sender on this path to about 22 MB in flight (some
 * 4.5 Gbit/s): "well-sized" is so on the receive side only, and the daemon may
 * raise the sender's limit too, so the sender's retransmitted share is
 * reported for every run. During the bpftune run BPF run-time statistics
 * are on (a BPF_ENABLE_STATS descriptor, bench/bpf-stats.ts) and the daemon's
 * programs' run time per call is read from its own fds.
 *
 * The traffic is back-to-back 2 s connections, not one 20 s connection: a
 * connection's window scale is fixed at its SYN from max(tcp_rmem[2],
 * net.core.rmem_max), so a connection opened under a 131072 limit can never
 * advertise more than 65535 << 2 bytes, whatever the limit becomes. Raising
 * tcp_rmem[2] pays off for the connections opened after it, which is what a
 * busy host has. The single 20 s connection with bpftune is measured too.
 *
 * Run standalone: node dist/bench/tcp_buffer.js (prints a table, writes
 * bench/results/tcp_buffer.md).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { EffectResult, EffectRow, EffectSample } from './effect';
import { DaemonProcess, REPO_ROOT, stopAllDaemons } from '../test/support/daemon';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn } from '../test/support/netns';
import { createEmulatedLink, type EmulatedLink } from '../test/support/link-emulator';
import { TestCgroup } from '../test/support/cgroup';
import { runIperfClient, startIperfServer } from '../src/tuners/tcp_buffer/test-net';
import { daemonPrograms, enableBpfStats, FLOOR_PROGRAM_OF, MeasurementFloor, programNames } from './bpf-stats';
import { HOT_RUNS_PER_SECOND } from './report';
import { tcpCounters } from './workloads';

const execFileAsync = promisify(execFile);

const RTT_MS = 40;
const QUICK = process.env.BPFTUNE_BENCH_QUICK === '1';
const SECONDS = QUICK ? 10 : 20;
const CONNECTION_SECONDS = 2;
const LOW_RMEM = '4096 131072 131072';
// Not 32 MiB: on this path the kernel's own receive-buffer auto-tuning asks for ~100 MiB at full rate.
const WELL_SIZED_RMEM = '4096 131072 268435456';
const SENDER_WMEM = '4096 16384 33554432';
const TARGET_FRACTION = 0.9;
const TARGET_SECONDS = 10;
const TARGET_NS_PER_CALL = 50;
/** Whichever receive variant this kernel loads (tcp_buffer_rcv_grow from 6.16, tcp_buffer_rcv before). */
const PROGRAMS = ['tcp_buffer_rcv_grow', 'tcp_buffer_rcv', 'tcp_buffer_snd', 'tcp_buffer_mem'];

interface Run {
  samples: EffectSample[];
  bitsPerSecond: number;
  /** The sender namespace's TCP segments retransmitted per 1000 sent over the run (a fresh namespace: its counters are the run's). */
  retransPerThousand: number;
}

function mbit(bitsPerSecond: number): string {
  return `${(bitsPerSecond / 1e6).toFixed(0)} Mbit/s`;
}

async function rmemMax(ns: string): Promise<number> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.tcp_rmem']);
  return Number(stdout.trim().split(/\s+/)[2]);
}

/** 20 s of transfers on a fresh link, in connections of `perConnection` s; tcp_rmem[2] of the receiver sampled every second. */
async function transfer(rmem: string, perConnection: number, during?: (link: EmulatedLink) => Promise<void>, wmem = SENDER_WMEM): Promise<Run> {
  const link = await createEmulatedLink({ rttMs: RTT_MS });
  try {
    setSysctlIn(link.server, 'net.ipv4.tcp_rmem', rmem);
    setSysctlIn(link.client, 'net.ipv4.tcp_wmem', wmem);
    await during?.(link);
    const intervals: number[] = [];
    const limits: number[] = [];
    for (let t = 0; t < SECONDS; t += perConnection) {
      const server = startIperfServer(link.server);
      try {
        const result = await runIperfClient(link.client, link.serverAddr4, perConnection);
        intervals.push(...result.intervals.slice(0, perConnection));
      } finally {
        server.stop();
      }
      // Sampled between connections too, so the series shows what each new connection starts with.
      while (limits.length < intervals.length) limits.push(await rmemMax(link.server));
    }
    const sent = tcpCounters(link.client);
    return {
      retransPerThousand: ((sent.RetransSegs ?? 0) * 1000) / Math.max(1, sent.OutSegs ?? 0),
      bitsPerSecond: intervals.reduce((a, b) => a + b, 0) / Math.max(1, intervals.length),
      samples: intervals.map((bps, i) => ({ t: i + 1, throughputMbit: bps / 1e6, tunable: limits[i] })),
    };
  } finally {
    await link.close();
  }
}

interface ProgStat {
  name: string;
  runTimeNs: number;
  runCnt: number;
}

/** The daemon's tcp_buffer programs with their cumulative run time (found through the daemon's own fds). */
function programStats(daemonPid: number): ProgStat[] {
  const names = programNames();
  return daemonPrograms(daemonPid)
    .map((p) => ({ name: names.get(p.id)?.name ?? '', runTimeNs: p.runTimeNs, runCnt: p.runCnt }))
    .filter((p) => PROGRAMS.includes(p.name));
}

function secondsToReach(samples: EffectSample[], targetMbit: number): number | undefined {
  return samples.find((s) => s.throughputMbit >= targetMbit)?.t;
}

export async function runTcpBufferEffect(): Promise<EffectResult> {
  removeStaleNamespaces();
  const wellSized = await transfer(WELL_SIZED_RMEM, CONNECTION_SECONDS);
  const without = await transfer(LOW_RMEM, CONNECTION_SECONDS);

  let withTuner: Run;
  let singleConnection: Run;
  let before: ProgStat[] = [];
  let after: ProgStat[] = [];
  // -c: the sysctl service then watches only that (empty) cgroup, so the benchmark's own tcp_rmem
  // writes into each fresh namespace are not an administrator taking tcp_buffer over there.
  const cgroup = new TestCgroup();
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-a', 'netns', '-R', '-c', cgroup.mountPoint]);
  const floor = new MeasurementFloor();
  let floorPerCall = new Map<string, number>();
  let releaseStats: () => void = () => undefined;
  try {
    await daemon.started();
    releaseStats = await enableBpfStats();
    withTuner = await transfer(LOW_RMEM, CONNECTION_SECONDS, async () => {
      before = programStats(daemon.pid);
      floor.mark();
      await Promise.resolve();
    });
    after = programStats(daemon.pid);
    floorPerCall = floor.perCall();
    singleConnection = await transfer(LOW_RMEM, SECONDS);
  } finally {
    releaseStats();
    floor.close();
    await daemon.stop();
    cgroup.remove();
    // What the daemon decided and why (each raise, verdict and undo), for reading the figures.
    if (process.env.BPFTUNE_BENCH_DAEMON_LOG) writeFileSync(process.env.BPFTUNE_BENCH_DAEMON_LOG, daemon.log);
  }

  const reference = wellSized.bitsPerSecond / 1e6;
  const reached = secondsToReach(withTuner.samples, TARGET_FRACTION * reference);
  const changes = (daemon.log.match(/change net\.ipv4\.tcp_rmem/g) ?? []).length;
  const rows: EffectRow[] = [
    {
      metric: `throughput over ${SECONDS} s (${CONNECTION_SECONDS} s connections), tcp_rmem[2] from 131072, with bpftune`,
      value: mbit(withTuner.bitsPerSecond),
      baseline: `${mbit(without.bitsPerSecond)} without bpftune (${(withTuner.bitsPerSecond / without.bitsPerSecond).toFixed(1)}x)`,
    },
    { metric: `throughput over ${SECONDS} s (${CONNECTION_SECONDS} s connections), well-sized (tcp_rmem[2] 256 MiB)`, value: mbit(wellSized.bitsPerSecond), baseline: 'reference' },
    {
      metric: `one ${SECONDS} s connection from 131072, with bpftune`,
      value: mbit(singleConnection.bitsPerSecond),
      baseline: `window scale fixed at SYN; ${(singleConnection.bitsPerSecond / without.bitsPerSecond).toFixed(1)}x without bpftune`,
    },
    {
      metric: 'sender segments retransmitted per 1000 sent: with bpftune (2 s connections / one 20 s connection)',
      value: `${withTuner.retransPerThousand.toFixed(1)} / ${singleConnection.retransPerThousand.toFixed(1)}`,
      baseline: `well-sized ${wellSized.retransPerThousand.toFixed(1)}, without bpftune ${without.retransPerThousand.toFixed(1)}`,
    },
    {
      metric: `time to ${TARGET_FRACTION * 100}% of well-sized throughput`,
      value: reached === undefined ? `not within ${SECONDS} s` : `${reached} s`,
      target: `<= ${TARGET_SECONDS} s`,
      baseline: `without bpftune: ${secondsToReach(without.samples, TARGET_FRACTION * reference) ?? 'never'}`,
      met: reached !== undefined && reached <= TARGET_SECONDS,
    },
    {
      metric: 'tcp_rmem[2] at the end (receiver namespace)',
      value: `${withTuner.samples.at(-1)?.tunable ?? Number.NaN} bytes`,
      baseline: `${changes} increases logged`,
    },
  ];
  /*
   * Judged per call only on hooks called at least HOT_RUNS_PER_SECOND times a second, as the
   * suite's hot-path section does: the send hook is sampled (attached 2 % of the time), so a
   * call-weighted average over all hooks would be the rare receive-growth call's, whose cost is
   * per RTT of a growing reader, not per packet. Their total run time is the cost that counts.
   */
  let hotNs = 0;
  let hotCalls = 0;
  let hotFloorNs = 0;
  let allNs = 0;
  for (const name of PROGRAMS) {
    const b = before.filter((p) => p.name === name);
    const a = after.filter((p) => p.name === name);
    if (!a.length) continue;
    const runNs = a.reduce((s, p) => s + p.runTimeNs, 0) - b.reduce((s, p) => s + p.runTimeNs, 0);
    const calls = a.reduce((s, p) => s + p.runCnt, 0) - b.reduce((s, p) => s + p.runCnt, 0);
    const perCall = calls ? runNs / calls : 0;
    const floorNs = floorPerCall.get(FLOOR_PROGRAM_OF[name] ?? '');
    allNs += runNs;
    if (calls / SECONDS >= HOT_RUNS_PER_SECOND) {
      hotNs += runNs;
      hotCalls += calls;
      hotFloorNs += (floorNs ?? 0) * calls;
    }
    rows.push({
      metric: `BPF run time per call, ${name}`,
      value: calls ? `${perCall.toFixed(1)} ns${floorNs === undefined ? '' : ` (${(perCall - floorNs).toFixed(1)} ns above an empty program)`}` : 'no calls',
      baseline:
        `${calls} calls (${(calls / SECONDS).toFixed(0)}/s)` +
        (floorNs === undefined ? '' : `; an empty program on the same tracepoint: ${floorNs.toFixed(1)} ns (what measuring costs here)`),
    });
  }
  const hot = `tcp_buffer hooks called >= ${HOT_RUNS_PER_SECOND} times a second`;
  rows.push(
    hotCalls
      ? {
          metric: `BPF run time per invocation, ${hot}, above an empty program`,
          value: `${((hotNs - hotFloorNs) / hotCalls).toFixed(1)} ns`,
          target: `<= ${TARGET_NS_PER_CALL} ns`,
          baseline: `${(hotNs / hotCalls).toFixed(1)} ns as measured, over ${hotCalls} calls`,
          met: (hotNs - hotFloorNs) / hotCalls <= TARGET_NS_PER_CALL,
        }
      : { metric: `BPF run time per invocation, ${hot}`, value: 'none', baseline: 'no hook of tcp_buffer ran that often (the send hook is sampled)' },
    {
      metric: 'BPF CPU, all tcp_buffer hooks (run time as measured over the run)',
      value: `${((allNs / (SECONDS * 1e9)) * 100).toFixed(3)} % of a core`,
      baseline: `${(allNs / 1e6).toFixed(2)} ms of run time in ${SECONDS} s`,
    },
  );
  return {
    scenario: `${RTT_MS} ms RTT emulated path, iperf3 ${SECONDS} s bulk, receiver tcp_rmem[2] starting at 131072`,
    rows,
    series: { tunableName: 'net.ipv4.tcp_rmem[2] (bytes)', without: without.samples, with: withTuner.samples },
    notes: [
      `Traffic is back-to-back ${CONNECTION_SECONDS} s iperf3 connections: a connection's window scale is fixed at its SYN from max(tcp_rmem[2], net.core.rmem_max), so only connections opened after an increase can use all of it.`,
      'Each run uses a fresh emulated link (TUN forwarder, test/support/link-emulator.ts) and fresh namespaces, so no cached route metrics carry over.',
      "The sender's tcp_wmem[2] starts at 32 MiB in every run: about 22 MB in flight on this path, so \"well-sized\" is well-sized on the receive side only; the daemon may raise the sender's limit (its retransmitted share is in the table).",
      "BPF run time: statistics on (BPF_ENABLE_STATS descriptor) during the bpftune run only, run_time_ns/run_cnt deltas of the daemon's programs (its own fds). Empty programs attached to the same tracepoints at the same time (test/fixtures/tp_btf_floor) show what the two clock reads of bpf_stats cost per call on this VM; the tuner's own cost is the difference.",
    ],
  };
}

function formatTable(result: EffectResult): string {
  const lines = [
    `# tcp_buffer effect benchmark\n\nkernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}\n\n${result.scenario}\n`,
    '| metric | value | target | baseline (same run) |',
    '|---|---|---|---|',
    ...result.rows.map((r) => `| ${r.metric} | ${r.value} | ${r.target ?? ''}${r.met === undefined ? '' : r.met ? ' (met)' : ' (missed)'} | ${r.baseline ?? ''} |`),
  ];
  if (result.series) {
    lines.push('', `Per second: throughput (Mbit/s) without / with bpftune, and ${result.series.tunableName} with bpftune`, '', '| t (s) | without | with | tcp_rmem[2] |', '|---|---|---|---|');
    result.series.with.forEach((s, i) => {
      lines.push(`| ${s.t} | ${result.series?.without[i]?.throughputMbit.toFixed(0) ?? ''} | ${s.throughputMbit.toFixed(0)} | ${s.tunable ?? ''} |`);
    });
  }
  if (result.notes?.length) lines.push('', ...result.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

/**
 * What the sender's limit alone does on this path, no daemon: the well-sized receiver's 20 s of
 * 2 s connections at each tcp_wmem[2] (MiB), `rounds` times in turn. Where a sender's buffer stops
 * paying and starts costing retransmits is what the send side's growth has to find.
 */
async function senderSweep(mibs: number[], rounds: number): Promise<string> {
  removeStaleNamespaces();
  const lines = [
    `# tcp_wmem[2] of the sender against throughput and retransmits, no daemon\n\nkernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}\n`,
    `${RTT_MS} ms emulated path, receiver tcp_rmem[2] 256 MiB, ${SECONDS} s of ${CONNECTION_SECONDS} s iperf3 connections per run; the sizes in turn, ${rounds} rounds.\n`,
    '| round | sender tcp_wmem[2] | throughput | sender retransmits per 1000 segments |',
    '|---|---|---|---|',
  ];
  for (let round = 1; round <= rounds; round++) {
    for (const mib of mibs) {
      const run = await transfer(WELL_SIZED_RMEM, CONNECTION_SECONDS, undefined, `4096 16384 ${mib * 1024 * 1024}`);
      lines.push(`| ${round} | ${mib} MiB | ${mbit(run.bitsPerSecond)} | ${run.retransPerThousand.toFixed(1)} |`);
      process.stderr.write(`${lines[lines.length - 1]}\n`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `--sender-sweep 32,48,64[,...] [--rounds N]`: the sweep above (printed only); no argument: the effect benchmark. */
function sweepArgs(argv: string[]): { mibs: number[]; rounds: number } | undefined {
  const at = argv.indexOf('--sender-sweep');
  if (at < 0) return undefined;
  const mibs = (argv[at + 1] ?? '').split(',').map(Number);
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt < 0 ? 2 : Number(argv[roundsAt + 1]);
  if (!mibs.length || mibs.some((m) => !Number.isInteger(m) || m <= 0) || !Number.isInteger(rounds) || rounds <= 0) {
    throw new Error('usage: tcp_buffer.js [--sender-sweep MIB[,MIB...] [--rounds N]] (sizes and rounds positive integers)');
  }
  return { mibs, rounds };
}

if (require.main === module) {
  Promise.resolve()
    .then(async () => {
      const sweep = sweepArgs(process.argv.slice(2));
      if (sweep) {
        process.stdout.write(await senderSweep(sweep.mibs, sweep.rounds));
        return;
      }
      const report = formatTable(await runTcpBufferEffect());
      process.stdout.write(report);
      const dir = path.join(REPO_ROOT, 'bench', 'results');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'tcp_buffer.md'), report);
    })
    .catch((err: unknown) => {
      process.stderr.write(`tcp_buffer benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(async () => {
      await stopAllDaemons();
      cleanupNamespaces();
    });
}
