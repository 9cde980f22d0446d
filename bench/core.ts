/**
 * Core benchmark sections, used by the suite (bench/suite.ts) and runnable
 * on their own: start time to "tuners loaded", idle RSS and CPU, and the
 * reaction time from a triggering kernel event to the sysctl written (the
 * sample tuner's listen() path). Each figure comes with a baseline measured
 * in the same run (a bare Node.js process), since these machines are noisy.
 *
 * Standalone: node dist/bench/core.js [--idle-seconds N] (as root).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, SAMPLES_LIBDIR } from '../test/support/daemon';
import { trustedTempDir } from '../test/support/trusted-dir';
import { createNamespace, deleteNamespace, removeStaleNamespaces, setSysctlIn } from '../test/support/netns';
import { runBenchmark, throwIfAborted, track } from './cleanup';
import { memoryStatus, processSmaps, schedWait, threadCpu, threadCpuDelta, type MemoryStatus, type SchedWait } from './proc';
import { median, percentile } from './stats';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let emptyLibdir: string | undefined;

/**
 * Daemon arguments for "every built-in tuner": the built-in directory is
 * always scanned, and an empty plugin directory keeps whatever happens to be
 * in /usr/local/lib64/bpftune out. -R rolls back anything the daemon changed
 * when it stops, so no run leaves a global sysctl changed.
 */
export function builtinDaemonArgs(): string[] {
  // Under /run, not /tmp: the daemon refuses a plugin directory below a world-writable one.
  emptyLibdir ??= trustedTempDir('bench-plugins');
  return ['-R', '-l', emptyLibdir];
}

/** Built-in tuners plus the sample plugin (listen_backlog), for the reaction section. */
export function withSampleDaemonArgs(): string[] {
  return ['-R', '-l', SAMPLES_LIBDIR];
}

const problems = new Set<string>();

/**
 * Stops a daemon, keeping what it logged as failed (a program that did not
 * attach, say, because another daemon on this machine unmounted tracefs as
 * it exited): a figure from a daemon that ran with less than every program
 * must say so in the report.
 */
export async function stopDaemon(daemon: DaemonProcess): Promise<void> {
  for (const line of daemon.log.split('\n')) {
    if (/failed|carries on without|could not/i.test(line) && !/^libbpf: /.test(line)) problems.add(line.trim());
  }
  await daemon.stop();
}

export function daemonProblems(): string[] {
  return [...problems];
}

export function loadedTuners(daemon: DaemonProcess): string[] {
  const m = /tuners loaded \(([^)]*)\)/.exec(daemon.log);
  return m ? m[1].split(', ').filter(Boolean) : [];
}

/** Runs a command to completion without blocking the event loop (so Ctrl-C still works); rejects with `what` and its stderr. */
export function runToEnd(command: string, args: string[], timeoutMs: number, what = command): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': only then has all its output been read.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: out, stderr: err });
      else reject(new Error(`${what} failed (${code ?? signal}): ${err.trim() || out.trim().slice(0, 300)}`));
    });
  });
}

/** Runs a command inside a namespace; resolves with its stdout. */
export async function execInNamespace(ns: string, command: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return (await runToEnd('ip', ['netns', 'exec', ns, command, ...args], timeoutMs, `${command} in ${ns}`)).stdout;
}

export interface StartTimes {
  daemonMs: number[];
  /** What the daemon logs as its own init time (after Node.js and module loading). */
  internalMs: number[];
  /** A bare `node -e 0`, the floor any Node.js daemon pays. */
  nodeMs: number[];
  tuners: string[];
}

export async function startTimes(runs: number, daemonArgs: string[]): Promise<StartTimes> {
  const result: StartTimes = { daemonMs: [], internalMs: [], nodeMs: [], tuners: [] };
  for (let i = 0; i < runs; i++) {
    throwIfAborted();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => track(spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' })).on('exit', r));
    result.nodeMs.push(Number(process.hrtime.bigint() - t0) / 1e6);

    const t1 = process.hrtime.bigint();
    const daemon = new DaemonProcess(daemonArgs);
    const m = await daemon.waitFor(/tuners loaded \([^)]*\) in (\d+) ms/);
    result.daemonMs.push(Number(process.hrtime.bigint() - t1) / 1e6);
    result.internalMs.push(Number(m[1]));
    result.tuners = loadedTuners(daemon);
    await stopDaemon(daemon);
  }
  return result;
}

export interface IdleWindow {
  /** Seconds after "tuners loaded" when the window started. */
  startSeconds: number;
  seconds: number;
  cpuPercent: number;
  baseCpuPercent: number;
  /** CPU by thread name over the window, for explaining a miss. */
  threads: Array<{ comm: string; ns: number }>;
  /** Events each tuner handled during the window: other activity on the machine wakes an "idle" daemon. */
  events: Array<{ tuner: string; count: number }>;
}

/**
 * The idle daemon's steady state (the figure against the target) and, from
 * the same daemon, its warm-up: the first minute after start, before the
 * timers have slowed (see idleFootprint).
 */
export interface IdleFootprint extends IdleWindow {
  memory: MemoryStatus;
  baseRss: number;
  /** The largest resident mappings at the end of the steady window. */
  mappings: Array<{ mapping: string; bytes: number }>;
  tuners: string[];
  warmup?: IdleWindow;
}

interface TunerEvents {
  tuners: Array<{ name: string; events: number }>;
}

/** Events handled so far, per tuner, from the daemon's jstatus. */
export function tunerEvents(daemon: DaemonProcess): Map<string, number> {
  try {
    const status = JSON.parse(daemon.query('jstatus').stdout) as TunerEvents;
    return new Map(status.tuners.map((t) => [t.name, t.events]));
  } catch {
    return new Map();
  }
}

function eventDelta(before: Map<string, number>, after: Map<string, number>): Array<{ tuner: string; count: number }> {
  return [...after.entries()].map(([tuner, n]) => ({ tuner, count: n - (before.get(tuner) ?? 0) })).filter((e) => e.count > 0);
}

/**
 * When the steady-state window starts, in seconds after start: ctx.every()
 * timers that find nothing slow to their quiet interval (30 s) after 30 s of
 * 'quiet' results (src/core/ticker.ts), the metrics textfile to 60 s after a
 * quiet minute; 90 s leaves the last of them a margin to land on its slow grid.
 * An always-on daemon spends nearly all its life in this state.
 */
export const IDLE_STEADY_START_S = 90;

/**
 * Idle CPU and memory of one daemon: a warm-up window from `settleSeconds`
 * after start (V8 finishes compiling and collecting in the first seconds;
 * the timers still run at their base intervals), then the steady window of
 * `seconds` from `steadyStart`, a multiple of the slow timers' 60 s so each
 * periodic task is counted whole. CPU is utime+stime from /proc per thread.
 */
export async function idleFootprint(
  seconds: number,
  daemonArgs: string[],
  settleSeconds = 10,
  warmupSeconds = 60,
  steadyStart = IDLE_STEADY_START_S,
  env: NodeJS.ProcessEnv = {},
): Promise<IdleFootprint> {
  const daemon = new DaemonProcess(daemonArgs, { env });
  const baseline = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' }));
  try {
    await daemon.started();
    const t0 = Date.now();
    const basePid = baseline.pid as number;
    const sum = (ts: Array<{ ns: number }>) => ts.reduce((a, t) => a + t.ns, 0);
    const until = async (s: number) => {
      await sleep(Math.max(0, t0 + s * 1000 - Date.now()));
      throwIfAborted();
    };
    const window = async (start: number, length: number): Promise<IdleWindow> => {
      await until(start);
      const e0 = tunerEvents(daemon);
      const d0 = threadCpu(daemon.pid);
      const b0 = threadCpu(basePid);
      const at = Date.now();
      await until(start + length);
      const d1 = threadCpu(daemon.pid);
      const e1 = tunerEvents(daemon);
      const b1 = threadCpu(basePid);
      const elapsed = (Date.now() - at) / 1000;
      return {
        startSeconds: start,
        seconds: length,
        cpuPercent: ((sum(d1) - sum(d0)) / 1e9 / elapsed) * 100,
        baseCpuPercent: ((sum(b1) - sum(b0)) / 1e9 / elapsed) * 100,
        threads: threadCpuDelta(d0, d1).filter((t) => t.ns > 0),
        events: eventDelta(e0, e1),
      };
    };
    const warmup = warmupSeconds > 0 ? await window(settleSeconds, warmupSeconds) : undefined;
    const steady = await window(Math.max(steadyStart, warmup ? settleSeconds + warmupSeconds : 0), seconds);
    return {
      ...steady,
      memory: memoryStatus(daemon.pid),
      baseRss: memoryStatus(basePid).rss,
      mappings: processSmaps(daemon.pid).slice(0, 6),
      tuners: loadedTuners(daemon),
      warmup,
    };
  } finally {
    baseline.kill();
    await stopDaemon(daemon);
  }
}

/** A daemon's latency window as jstatus gives it, in microseconds. */
export interface LatencyUs {
  p50: number | null;
  p99: number | null;
  samples: number;
}

export interface Reaction {
  /** Trigger (listen() called) to the new value readable in /proc/sys, per trigger, in ns (upper bound: the read that saw it). */
  endToEndNs: number[];
  /**
   * The same, from the last read that still saw the old value: the write was
   * not visible before this. A wide gap to endToEndNs means the observer was
   * itself waiting for a CPU.
   */
  lowerBoundNs: number[];
  /** The first trigger in each namespace: the daemon has not mapped that namespace's cookie yet. */
  firstInNamespaceNs: number[];
  laterNs: number[];
  pollMs: number;
  /** Triggers whose write was not seen within the time limit (in namespaces left in). */
  missed: number;
  /** Namespaces where another process wrote somaxconn too, and their triggers: left out. */
  excludedNamespaces: number;
  excludedTriggers: number;
  triggers: number;
  /** The daemon's own measure: event ktime to the handler starting (its LatencyWindow). */
  eventToHandlerUs: LatencyUs;
  /** The daemon's own measure of each step of its recent changes (reading the old value, the state file, the write). */
  changeStepsUs?: Record<'read' | 'state' | 'write', LatencyUs>;
  writes: number;
  /** The daemon's run-queue wait while the triggers ran: how long it was ready but had no CPU. */
  sched: SchedWait;
  /** 1-minute load average at the end of the triggers (2 CPUs here). */
  loadAverage: number;
  /** Log lines saying another process wrote somaxconn in our namespaces (another daemon on this machine). */
  interference: string[];
}

/**
 * Runs inside a namespace: each listen() asks for a backlog one above the
 * current somaxconn, so it is a real trigger; the script then reads
 * somaxconn until it changes, sleeping 50 us between reads rather than
 * spinning, so that on a 2-core machine it does not take the daemon's core
 * (resolution: the sleep plus timer slack, ~0.1 ms).
 * Triggers are 30 ms apart, beyond the sample tuner's 10 ms per-namespace
 * rate limit.
 */
const POLL_MS = 0.05;
const TRIGGER_SCRIPT = `
const POLL_MS = ${POLL_MS};
const net = require('net');
const fs = require('fs');
const read = () => fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim();
const count = Number(process.argv[1]);
const limitNs = 2_000_000_000n;
const cell = new Int32Array(new SharedArrayBuffer(4));
(async () => {
  const out = [];
  for (let i = 0; i < count; i++) {
    const before = read();
    const server = net.createServer();
    server.on('error', () => {});
    const t0 = process.hrtime.bigint();
    // Without a host, listen() binds and listens synchronously: the syscall is done when this returns.
    server.listen({ port: 0, backlog: Number(before) + 1 });
    // The write became visible after the last read that still saw the old value
    // began, and before the first read that saw the new one ended.
    let took = [-1, -1];
    let lastOld = t0;
    for (;;) {
      const start = process.hrtime.bigint();
      const changed = read() !== before;
      const end = process.hrtime.bigint();
      if (changed) { took = [Number(end - t0), Number(lastOld - t0)]; break; }
      lastOld = start;
      if (end - t0 > limitNs) break;
      Atomics.wait(cell, 0, 0, POLL_MS);
    }
    server.close();
    out.push(took);
    await new Promise((r) => setTimeout(r, 30));
  }
  process.stdout.write(JSON.stringify(out));
})();`;

interface DaemonNamespaces {
  changes: number;
  namespaces: Array<{ cookie: string; path: string }>;
  tuners: Array<{ name: string; eventLatencyUs: LatencyUs }>;
  changeStepsUs?: Reaction['changeStepsUs'];
}

export async function reaction(namespaces: number, perNamespace: number, daemonArgs: string[]): Promise<Reaction> {
  const nsNames = Array.from({ length: namespaces }, () => createNamespace());
  let daemon: DaemonProcess | undefined;
  try {
    // Before the daemon starts: its sysctl tuner would take these writes for an administrator's.
    for (const ns of nsNames) setSysctlIn(ns, 'net.core.somaxconn', '128');
    daemon = new DaemonProcess(daemonArgs);
    await daemon.started();
    if (!loadedTuners(daemon).includes('listen_backlog')) throw new Error(`listen_backlog tuner not loaded; daemon log:\n${daemon.log}`);
    const perNs = new Map<string, Array<[number, number]>>();
    const sched0 = schedWait(daemon.pid);
    // One namespace at a time: the triggers must not compete with each other for the daemon.
    for (const ns of nsNames) {
      throwIfAborted();
      const out = await execInNamespace(ns, process.execPath, ['-e', TRIGGER_SCRIPT, String(perNamespace)]);
      perNs.set(ns, JSON.parse(out) as Array<[number, number]>);
    }
    const sched1 = schedWait(daemon.pid);
    const status = JSON.parse(daemon.query('jstatus').stdout) as DaemonNamespaces;
    /*
     * Other daemons under test on this machine may load the sample tuner too and
     * answer our triggers first; ours then sees an outside write and hands that
     * namespace over. Such namespaces measure the other daemon: left out.
     */
    const interference = daemon.log.split('\n').filter((l) => / modified sysctl /.test(l));
    const disturbedCookies = new Set(interference.map((l) => /namespace cookie (\d+)/.exec(l)?.[1]).filter((c): c is string => Boolean(c)));
    const disturbed = new Set(status.namespaces.filter((n) => disturbedCookies.has(n.cookie)).map((n) => path.basename(n.path)));
    const endToEndNs: number[] = [];
    const lowerBoundNs: number[] = [];
    const firstInNamespaceNs: number[] = [];
    const laterNs: number[] = [];
    let missed = 0;
    let excludedTriggers = 0;
    for (const [ns, samples] of perNs) {
      if (disturbed.has(ns)) {
        excludedTriggers += samples.length;
        continue;
      }
      samples.forEach(([upper, lower], i) => {
        if (upper < 0) missed++;
        else {
          endToEndNs.push(upper);
          lowerBoundNs.push(lower);
          (i === 0 ? firstInNamespaceNs : laterNs).push(upper);
        }
      });
    }
    const tuner = status.tuners.find((x) => x.name === 'listen_backlog');
    return {
      endToEndNs,
      lowerBoundNs,
      firstInNamespaceNs,
      laterNs,
      pollMs: POLL_MS,
      missed,
      triggers: namespaces * perNamespace,
      excludedNamespaces: disturbed.size,
      excludedTriggers,
      eventToHandlerUs: tuner?.eventLatencyUs ?? { p50: null, p99: null, samples: 0 },
      changeStepsUs: status.changeStepsUs,
      writes: status.changes,
      sched: { waitNs: sched1.waitNs - sched0.waitNs, slices: sched1.slices - sched0.slices },
      loadAverage: os.loadavg()[0],
      interference,
    };
  } finally {
    if (daemon) await stopDaemon(daemon);
    for (const ns of nsNames) deleteNamespace(ns);
  }
}

async function main(): Promise<void> {
  const idleSeconds = Number(process.argv[process.argv.indexOf('--idle-seconds') + 1]) || 60;
  removeStaleNamespaces();
  const start = await startTimes(5, builtinDaemonArgs());
  const idle = await idleFootprint(idleSeconds, builtinDaemonArgs());
  const lat = await reaction(10, 20, withSampleDaemonArgs());

  const mb = (b: number) => (b / 1048576).toFixed(1);
  const rows: Array<[string, string, string, string]> = [
    ['start to "tuners loaded" (wall, median of 5)', `${median(start.daemonMs).toFixed(0)} ms`, '<= 1000 ms', `bare node start ${median(start.nodeMs).toFixed(0)} ms`],
    [`idle RSS after ${idle.startSeconds + idleSeconds} s`, `${mb(idle.memory.rss)} MB`, '<= 60 MB', `bare node ${mb(idle.baseRss)} MB`],
    [`idle CPU over ${idleSeconds} s from ${idle.startSeconds} s after start (steady state)`, `${idle.cpuPercent.toFixed(3)} % of a core`, '<= 0.05 %', `bare node ${idle.baseCpuPercent.toFixed(3)} %`],
    ['trigger -> sysctl written p50', `${(percentile(lat.endToEndNs, 50) / 1e3).toFixed(0)} us`, '', `${lat.endToEndNs.length} triggers, ${lat.missed} missed`],
    ['trigger -> sysctl written p99', `${(percentile(lat.endToEndNs, 99) / 1e3).toFixed(0)} us`, '<= 5000 us', `event -> handler p99 ${lat.eventToHandlerUs.p99} us`],
  ];
  const table = ['| metric | value | target | baseline (same run) |', '|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  process.stdout.write(`kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}\n\n${table}\n`);
}

if (require.main === module) runBenchmark(main);

/** A standalone benchmark's report: printed, and written to bench/results/FILE (named on stderr). */
export function publishReport(file: string, text: string): void {
  process.stdout.write(text);
  const out = path.join(REPO_ROOT, 'bench', 'results', file);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  process.stderr.write(`written to ${path.relative(REPO_ROOT, out)}\n`);
}
