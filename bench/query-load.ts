/**
 * The daemon's memory under query and scrape load: a daemon with every
 * built-in tuner and --metrics answers a Prometheus-style scrape (HTTP,
 * keep-alive) and a status/jstatus query (Unix socket, a connection each)
 * ten times a second each, for ten minutes; RSS is sampled every second.
 * Then the burst from the issue: 40,000 status/jstatus queries in a row.
 * Target: RSS <= 60 MB throughout (the suite's footprint target, TARGETS.rssBytes;
 * MB here is 2^20 bytes, as in bench/results/report.md).
 *
 * Usage (root): node dist/bench/query-load.js [--seconds 600] [--burst 40000] [--quick]
 * --quick: 60 s and 10,000 queries, written to bench/results/quick/.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT } from '../test/support/daemon';
import { builtinDaemonArgs, stopDaemon } from './core';
import { runBenchmark, throwIfAborted } from './cleanup';
import { cpuNs, memoryStatus, processSmaps } from './proc';
import { TARGETS } from './report';
import { formatBytes, median } from './stats';

const RATE_PER_SECOND = 10;
const TARGET_RSS = TARGETS.rssBytes;
/** Where the resident memory is, by mapping ([heap] is glibc's main heap, [anon] mostly V8's). */
type Mappings = Array<{ mapping: string; bytes: number }>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ask(socketPath: string, query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let reply = '';
    socket.on('connect', () => socket.write(`${query}\n`));
    socket.on('data', (c: Buffer) => (reply += c.toString('utf8')));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

function scrape(agent: http.Agent, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`scrape answered ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

interface LoadResult {
  seconds: number;
  startRss: number;
  maxRss: number;
  medianRss: number;
  endRss: number;
  scrapes: number;
  queries: number;
  failures: number;
  scrapeBytes: number;
  /** Daemon CPU over the load, % of a core. */
  cpuPercent: number;
  settledMappings: Mappings;
  endMappings: Mappings;
  burst: { queries: number; seconds: number; rssBefore: number; maxRss: number; rssAfter: number; mappings: Mappings };
  /** The daemon's node flags as it runs (after its relaunch), from /proc/PID/cmdline. */
  nodeFlags: string[];
}

function nodeFlagsOf(pid: number): string[] {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.slice(1).filter((a, i, all) => a.startsWith('--') && all.slice(0, i).every((b) => b.startsWith('--')));
  } catch {
    return [];
  }
}

async function run(seconds: number, burst: number): Promise<LoadResult> {
  const daemon = new DaemonProcess([...builtinDaemonArgs(), '--metrics', '127.0.0.1:0']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await daemon.started();
    const port = Number((await daemon.waitFor(/metrics: serving http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    const socketPath = path.join(daemon.runDir, 'bpftune.sock');
    await sleep(10_000); // settled, as the idle footprint is measured
    const startRss = memoryStatus(daemon.pid).rss;
    const nodeFlags = nodeFlagsOf(daemon.pid);
    const settledMappings = processSmaps(daemon.pid);
    const cpu0 = cpuNs(daemon.pid);
    const samples: number[] = [];
    let scrapes = 0;
    let queries = 0;
    let failures = 0;
    let scrapeBytes = 0;
    const started = Date.now();
    let next = started;
    let nextSample = started;
    for (let i = 0; Date.now() - started < seconds * 1000; i++) {
      throwIfAborted();
      const [s, q] = await Promise.allSettled([scrape(agent, port), ask(socketPath, i % 2 ? 'status' : 'jstatus')]);
      if (s.status === 'fulfilled') {
        scrapes++;
        scrapeBytes = s.value;
      } else failures++;
      if (q.status === 'fulfilled') queries++;
      else failures++;
      if (Date.now() >= nextSample) {
        samples.push(memoryStatus(daemon.pid).rss);
        nextSample += 1000;
      }
      next += 1000 / RATE_PER_SECOND;
      await sleep(Math.max(0, next - Date.now()));
    }
    const cpuPercent = ((cpuNs(daemon.pid) - cpu0) / 1e9 / ((Date.now() - started) / 1000)) * 100;
    const endRss = memoryStatus(daemon.pid).rss;
    const endMappings = processSmaps(daemon.pid);
    samples.push(endRss);

    const rssBefore = endRss;
    let burstMax = rssBefore;
    const burstStart = Date.now();
    for (let i = 0; i < burst; i++) {
      if (i % 1000 === 0) throwIfAborted();
      await ask(socketPath, i % 2 ? 'status' : 'jstatus');
      if (i % 500 === 0) burstMax = Math.max(burstMax, memoryStatus(daemon.pid).rss);
    }
    const burstSeconds = (Date.now() - burstStart) / 1000;
    const rssAfter = memoryStatus(daemon.pid).rss;
    const burstMappings = processSmaps(daemon.pid);
    return {
      seconds,
      startRss,
      maxRss: Math.max(...samples),
      medianRss: median(samples),
      endRss,
      scrapes,
      queries,
      failures,
      scrapeBytes,
      cpuPercent,
      settledMappings,
      endMappings,
      burst: { queries: burst, seconds: burstSeconds, rssBefore, maxRss: Math.max(burstMax, rssAfter), rssAfter, mappings: burstMappings },
      nodeFlags,
    };
  } finally {
    agent.destroy();
    await stopDaemon(daemon);
  }
}

function report(r: LoadResult): string {
  const mb = formatBytes;
  const top = (m: Mappings) => m.slice(0, 6).map((x) => `${x.mapping} ${mb(x.bytes)}`).join(', ');
  const status = (b: number) => (b <= TARGET_RSS ? 'met' : '**MISSED**');
  const rows = [
    [`RSS, highest 1 s sample over ${r.seconds} s of ${RATE_PER_SECOND} scrapes + ${RATE_PER_SECOND} queries/s`, mb(r.maxRss), '<= 60.0 MB', status(r.maxRss), `settled before the load ${mb(r.startRss)}; median ${mb(r.medianRss)}; at the end ${mb(r.endRss)}`],
    ['scrapes / queries answered', `${r.scrapes} / ${r.queries}`, '', '', `${r.failures} failed; a scrape is ${(r.scrapeBytes / 1024).toFixed(1)} KiB`],
    ['daemon CPU during the load', `${r.cpuPercent.toFixed(2)} % of a core`, '', '', 'collections included'],
    [`RSS, ${r.burst.queries} status/jstatus queries in a row`, mb(r.burst.maxRss), '<= 60.0 MB', status(r.burst.maxRss), `before ${mb(r.burst.rssBefore)}, after ${mb(r.burst.rssAfter)}; ${(r.burst.queries / r.burst.seconds).toFixed(0)} queries/s`],
  ];
  return [
    '# bpftune memory under query and scrape load',
    '',
    `- kernel ${os.release()}, ${os.cpus().length} CPUs, Node.js ${process.version}, ${new Date().toISOString()}`,
    '- daemon: every built-in tuner, -R, --metrics 127.0.0.1:0; RSS is VmRSS from /proc (MB = 2^20 bytes, as in report.md)',
    `- node flags of the running daemon (its command line after the relaunch): ${r.nodeFlags.join(' ') || 'none'}`,
    '',
    '| metric | value | target | status | context |',
    '|---|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    'Largest resident mappings (/proc/PID/smaps; [heap] is glibc\'s main heap, [anon] mostly the V8 heap, node the binary\'s pages):',
    '',
    `- settled, before the load: ${top(r.settledMappings)}`,
    `- at the end of the load: ${top(r.endMappings)}`,
    `- after the burst: ${top(r.burst.mappings)}`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const value = (flag: string, fallback: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const seconds = value('--seconds', quick ? 60 : 600);
  const burst = value('--burst', quick ? 10_000 : 40_000);
  if (process.getuid?.() !== 0) throw new Error('the benchmark loads BPF programs: run it as root');
  const text = report(await run(seconds, burst));
  const dir = path.join(REPO_ROOT, 'bench', 'results', ...(quick ? ['quick'] : []));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'query-load.md'), text);
  process.stdout.write(text);
}

if (require.main === module) runBenchmark(main);
