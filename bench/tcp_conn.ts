/**
 * tcp_conn effect benchmark: iperf3 throughput over an emulated lossy path
 * (link emulator: 30 ms RTT, 2% random loss each way, 100 Mbit/s), with
 * the socket's congestion control forced to cubic (iperf3 -C cubic), without
 * bpftune and with it, 3 runs each, interleaved so that drift on this shared
 * machine hits both alike; bbr forced is run alongside as the reference of
 * what the path allows. The daemon attaches to a cgroup of the benchmark's
 * own, so it acts on these connections only.
 *
 * The rate limit keeps the figures about the path, not about how much CPU
 * the emulator's forwarder gets on this shared machine (without it, runs of
 * the same algorithm varied tenfold). The client namespace does not cache
 * per-destination metrics (tcp_no_metrics_save), so a run does not inherit
 * the previous run's ssthresh.
 *
 * Run as root: node dist/bench/tcp_conn.js (prints a table, writes bench/results/tcp_conn.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, stopAllDaemons } from '../test/support/daemon';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn } from '../test/support/netns';
import { createEmulatedLink, type EmulatedLink } from '../test/support/link-emulator';
import { TestCgroup } from '../test/support/cgroup';
import { median } from './stats';
import type { EffectResult } from './effect';

const RTT_MS = 30;
// Above the 1/64 retransmission threshold: at 1.5% a connection hovers around it and may be switched late or not at all.
const LOSS_PERCENT = 2;
const SECONDS = 8;
const RUNS = 3;
const RATE_MBIT = 100;
const PORT = 5201;


/*
 * Short connections on loopback in a namespace: the common case on a busy
 * host, where every connection costs the sockops program its establishment
 * and state-change callbacks (and nothing else). Prints the CPU time per
 * connection (client and server are this one process, and loopback's softirq
 * work runs in it), the baseline the program's cost is compared with.
 */
const CONNECTIONS = 4000;
const CONNECTION_SCRIPT = `
const net = require('net');
const server = net.createServer((s) => s.end('x')).listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const one = () => new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('data', () => {}).on('end', () => { c.end(); resolve(); }).on('error', reject);
  });
  let left = ${CONNECTIONS};
  const worker = async () => { while (left-- > 0) await one(); };
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: 8 }, worker));
  const used = process.cpuUsage(cpu);
  console.log((used.user + used.system) / ${CONNECTIONS});
  server.close();
});`;

/** CPU microseconds per short connection. */
async function shortConnections(cg: TestCgroup, ns: string): Promise<number> {
  return Number((await cg.run('ip', ['netns', 'exec', ns, process.execPath, '-e', CONNECTION_SCRIPT]).done).trim());
}

interface ProgramRunStats {
  id: number;
  runTimeNs: number;
  runCount: number;
}

/**
 * tcp_conn sockops programs loaded now, with run time and count (bpftool;
 * counted only while kernel.bpf_stats_enabled is 1, which this benchmark
 * reads but never sets).
 */
function sockopsPrograms(): ProgramRunStats[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  const programs = JSON.parse(r.stdout || '[]') as Array<{ id: number; type?: string; name?: string; run_time_ns?: number; run_cnt?: number }>;
  // bpftool leaves the counters out while they are 0.
  return programs
    .filter((p) => p.type === 'sock_ops' && p.name === 'tcp_conn_sockops')
    .map((p) => ({ id: p.id, runTimeNs: p.run_time_ns ?? 0, runCount: p.run_cnt ?? 0 }));
}

/** One transfer with the socket's algorithm forced; returns the receiver's throughput in Mbit/s. */
async function transfer(cg: TestCgroup, link: EmulatedLink, algorithm: 'cubic' | 'bbr'): Promise<number> {
  const server = cg.run('ip', ['netns', 'exec', link.server, 'iperf3', '-s', '-1', '-p', String(PORT)]).done;
  await new Promise((r) => setTimeout(r, 300));
  const out = await cg.run('ip', [
    'netns', 'exec', link.client, 'iperf3', '-c', link.serverAddr4, '-p', String(PORT), '-t', String(SECONDS), '-C', algorithm, '-J',
  ]).done;
  await server;
  const result = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return result.end.sum_received.bits_per_second / 1e6;
}

export async function runTcpConnEffect(): Promise<EffectResult> {
  removeStaleNamespaces();
  const cg = new TestCgroup();
  const link = await createEmulatedLink({ rttMs: RTT_MS, lossPercent: LOSS_PERCENT, rateMbit: RATE_MBIT, seed: 1234 });
  const without: number[] = [];
  const withBpftune: number[] = [];
  const bbr: number[] = [];
  const cpuPerConnection: number[] = [];
  const programPerConnection: number[] = [];
  const callbacksPerConnection: number[] = [];
  let switched = 0;
  try {
    setSysctlIn(link.client, 'net.ipv4.tcp_no_metrics_save', '1');
    for (let i = 0; i < RUNS; i++) {
      without.push(await transfer(cg, link, 'cubic'));
      bbr.push(await transfer(cg, link, 'bbr'));
      const loadedBefore = new Set(sockopsPrograms().map((p) => p.id));
      const daemon = new DaemonProcess(['-a', 'tcp_conn', '-c', cg.mountPoint]);
      await daemon.started();
      // The daemon's program is the one that was not there before it started (bpftool here cannot show owners).
      const ours = sockopsPrograms().filter((p) => !loadedBefore.has(p.id));
      const before = ours.length === 1 ? ours[0] : undefined;
      cpuPerConnection.push(await shortConnections(cg, link.server));
      const after = sockopsPrograms().find((p) => p.id === before?.id);
      if (before && after && after.runCount > before.runCount) {
        programPerConnection.push((after.runTimeNs - before.runTimeNs) / 1000 / CONNECTIONS);
        callbacksPerConnection.push((after.runCount - before.runCount) / CONNECTIONS);
      }
      withBpftune.push(await transfer(cg, link, 'cubic'));
      await daemon.stop();
      switched += daemon.log.match(/Due to loss events for /g)?.length ?? 0;
    }
  } finally {
    await link.close();
    cg.remove();
  }
  const base = median(without);
  const tuned = median(withBpftune);
  const mbit = (v: number) => `${v.toFixed(1)} Mbit/s`;
  return {
    scenario:
      `iperf3 -C cubic over an emulated path, ${RTT_MS} ms RTT, ${LOSS_PERCENT}% random loss each way, ` +
      `${RATE_MBIT} Mbit/s, ${SECONDS} s per run`,
    rows: [
      { metric: `throughput, median of ${RUNS}`, value: mbit(tuned), baseline: mbit(base) },
      { metric: 'ratio with / without bpftune', value: `${(tuned / base).toFixed(2)}x` },
      { metric: `reference: bbr forced, no bpftune (median of ${RUNS})`, value: mbit(median(bbr)) },
      ...(programPerConnection.length
        ? [
            {
              metric: `sockops program CPU per short loopback connection (both ends; median of ${RUNS})`,
              value: `${median(programPerConnection).toFixed(2)} us in ${median(callbacksPerConnection).toFixed(1)} callbacks`,
              baseline: `${median(cpuPerConnection).toFixed(0)} us CPU per connection in total`,
            },
            {
              metric: 'share of the connection CPU',
              value: `${((100 * median(programPerConnection)) / median(cpuPerConnection)).toFixed(2)} %`,
            },
          ]
        : []),
      {
        metric: 'each run (Mbit/s, in order)',
        value: withBpftune.map((v) => v.toFixed(1)).join(', '),
        baseline: without.map((v) => v.toFixed(1)).join(', '),
      },
    ],
    notes: [
      ...(programPerConnection.length
        ? []
        : ['No sockops run time: kernel.bpf_stats_enabled is 0, or the program could not be told apart from another daemon\'s.']),
      `Runs interleaved (cubic without bpftune, bbr forced, cubic with bpftune) x ${RUNS}; a fresh daemon per run, so each ` +
        'run shows the loss switch, not a learned choice.',
      `bpftune logged ${switched} loss switch(es) to bbr over the ${RUNS} runs with it.`,
    ],
  };
}

async function main(): Promise<void> {
  const result = await runTcpConnEffect();
  const lines = [
    '# tcp_conn effect benchmark',
    '',
    `kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}`,
    '',
    result.scenario,
    '',
    '| metric | with bpftune | target | without bpftune (same run) |',
    '|---|---|---|---|',
    ...result.rows.map((r) => `| ${r.metric} | ${r.value} | ${r.target ?? ''}${r.met === undefined ? '' : r.met ? ' (met)' : ' (missed)'} | ${r.baseline ?? ''} |`),
    '',
    ...(result.notes ?? []).map((n) => `- ${n}`),
    '',
  ];
  const report = lines.join('\n');
  process.stdout.write(report);
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'tcp_conn.md'), report);
}

if (require.main === module) {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(async () => {
      await stopAllDaemons();
      cleanupNamespaces();
    });
}
