/**
 * Core benchmark: start time to "tuners loaded", idle RSS and CPU over 60 s,
 * and event-to-handler latency for the sample tuner. Each figure is printed
 * next to its target and to a baseline measured in the same run (a bare
 * Node.js process), since these machines are shared and noisy.
 *
 * Run as root: `make bench` (or node dist/bench/core.js [--idle-seconds N]).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, SAMPLES_LIBDIR, stopAllDaemons } from '../test/support/daemon';
import { cleanupNamespaces, createNamespace, inNamespace, removeStaleNamespaces, setSysctlIn } from '../test/support/netns';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid]) : ((s[mid - 1]) + (s[mid])) / 2;
}

/** CPU time of every thread of pid, in ns (schedstat: clock ticks are too coarse for idle figures). */
function cpuNs(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).reduce(
    (sum, tid) => sum + Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]),
    0,
  );
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function startTimes(runs: number): Promise<{ daemonMs: number[]; internalMs: number[]; nodeMs: number[] }> {
  const daemonMs: number[] = [];
  const internalMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    nodeMs.push(Number(process.hrtime.bigint() - t0) / 1e6);

    const t1 = process.hrtime.bigint();
    const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR]);
    const m = await daemon.waitFor(/tuners loaded \([^)]*\) in (\d+) ms/);
    daemonMs.push(Number(process.hrtime.bigint() - t1) / 1e6);
    internalMs.push(Number(m[1]));
    await daemon.stop();
  }
  return { daemonMs, internalMs, nodeMs };
}

async function idle(seconds: number): Promise<{ rss: number; cpuPct: number; baseRss: number; baseCpuPct: number }> {
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR]);
  await daemon.started();
  const baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  // Idle is what follows start-up: V8 finishes compiling and collecting in the first seconds.
  await new Promise((r) => setTimeout(r, 10_000));
  const basePid = baseline.pid as number;
  const d0 = cpuNs(daemon.pid);
  const b0 = cpuNs(basePid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const result = {
    cpuPct: ((cpuNs(daemon.pid) - d0) / 1e9 / seconds) * 100,
    baseCpuPct: ((cpuNs(basePid) - b0) / 1e9 / seconds) * 100,
    rss: rssBytes(daemon.pid),
    baseRss: rssBytes(basePid),
  };
  baseline.kill();
  await daemon.stop();
  return result;
}

/**
 * Each namespace gets a series of listen() calls whose backlog just exceeds
 * what the tuner set last time, so every call is a real trigger; calls are
 * 30 ms apart, beyond the sample tuner's 10 ms per-namespace rate limit.
 */
async function latency(namespaces: number, perNamespace: number): Promise<{ p50: number; p99: number; samples: number; changes: number }> {
  const nsNames = Array.from({ length: namespaces }, () => createNamespace());
  for (const ns of nsNames) setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR]);
  await daemon.started();
  const script = `
    const net = require('net');
    let somaxconn = 128;
    (async () => {
      for (let i = 0; i < ${perNamespace}; i++) {
        const backlog = somaxconn + 1;
        somaxconn = Math.max(backlog, somaxconn + (somaxconn >> 2));
        await new Promise((r) => { const s = net.createServer(); s.listen({ host: '127.0.0.1', port: 0, backlog }, () => s.close(r)); });
        await new Promise((r) => setTimeout(r, 30));
      }
    })();`;
  for (const ns of nsNames) inNamespace(ns, process.execPath, ['-e', script]);
  await new Promise((r) => setTimeout(r, 500));
  const status = JSON.parse(daemon.query('jstatus').stdout) as {
    changes: number;
    tuners: Array<{ name: string; eventLatencyUs: { p50: number; p99: number; samples: number } }>;
  };
  await daemon.stop();
  cleanupNamespaces();
  const t = status.tuners.find((x) => x.name === 'listen_backlog');
  if (!t) throw new Error('listen_backlog tuner not loaded');
  return { ...t.eventLatencyUs, changes: status.changes };
}

async function main(): Promise<void> {
  const idleSeconds = Number(process.argv[process.argv.indexOf('--idle-seconds') + 1]) || 60;
  removeStaleNamespaces();
  const start = await startTimes(5);
  const idleResult = await idle(idleSeconds);
  const lat = await latency(20, 10);

  const mb = (b: number) => (b / 1048576).toFixed(1);
  const rows: Array<[string, string, string, string]> = [
    ['start to "tuners loaded" (wall, median of 5)', `${median(start.daemonMs).toFixed(0)} ms`, '<= 1000 ms', `bare node start ${median(start.nodeMs).toFixed(0)} ms (ratio ${(median(start.daemonMs) / median(start.nodeMs)).toFixed(1)}x)`],
    ['  of which daemon init (logged)', `${median(start.internalMs).toFixed(0)} ms`, '', ''],
    [`idle RSS after ${idleSeconds} s`, `${mb(idleResult.rss)} MB`, '<= 60 MB', `bare node ${mb(idleResult.baseRss)} MB`],
    [`idle CPU over ${idleSeconds} s`, `${idleResult.cpuPct.toFixed(3)} % of a core`, '<= 0.05 %', `bare node ${idleResult.baseCpuPct.toFixed(3)} %`],
    ['event -> handler latency p50', `${lat.p50} us`, '', `${lat.samples} events, ${lat.changes} sysctl writes`],
    ['event -> handler latency p99', `${lat.p99} us`, '<= 5000 us', ''],
  ];
  const header = `# bpftune core benchmark\n\nkernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}\n\n`;
  const table = ['| metric | value | target | baseline (same run) |', '|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const report = `${header}${table}\n`;
  process.stdout.write(report);
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'core.md'), report);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAllDaemons();
    cleanupNamespaces();
  });
