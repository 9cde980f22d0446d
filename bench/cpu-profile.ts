/**
 * Where an "idle" daemon's CPU goes: a V8 CPU profile (node --cpu-prof)
 * restricted to a time window, summed by function and by file (self time).
 * Used to explain a missed idle-CPU target; the profiled daemon is a
 * separate run, since sampling itself costs CPU.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BPFTUNE, REPO_ROOT } from '../test/support/daemon';
import { throwIfAborted, track } from './cleanup';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds, V8's monotonic clock (CLOCK_MONOTONIC on Linux, like process.hrtime). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time in the window when JavaScript or native code ran (not idle), in us. */
  busyUs: number;
  windowUs: number;
  byFunction: Array<{ name: string; us: number }>;
  byFile: Array<{ file: string; us: number }>;
}

function fileOf(url: string): string {
  if (!url) return '(native or VM)';
  const p = url.replace(/^file:\/\//, '');
  return p.startsWith(REPO_ROOT) ? path.relative(REPO_ROOT, p) : p.startsWith('node:') ? p : path.basename(p);
}

/**
 * Self time per function and per file for samples taken in [fromUs, toUs].
 * A sample's time is the delta to the next one (what the profiler spent in
 * that frame); "(idle)" is left out, "(garbage collector)" and "(program)"
 * (native code, the addon included) are kept.
 */
export function summariseProfile(profile: CpuProfile, fromUs: number, toUs: number): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busyUs = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const spent = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs || spent <= 0) continue;
    const frame = nodes.get(profile.samples[i])?.callFrame;
    if (!frame || frame.functionName === '(idle)') continue;
    busyUs += spent;
    const file = fileOf(frame.url);
    const name = `${frame.functionName || '(anonymous)'}${frame.url ? ` ${file}:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + spent);
    byFile.set(file, (byFile.get(file) ?? 0) + spent);
  }
  const sorted = <K extends string>(m: Map<string, number>, key: K) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, us]) => ({ [key]: k, us }) as Record<K, string> & { us: number });
  return { busyUs, windowUs: toUs - fromUs, byFunction: sorted(byFunction, 'name'), byFile: sorted(byFile, 'file') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The environment that puts a daemon under the V8 profiler from `afterMs`
 * after its start (bench/profile-preload.ts), sampling every `intervalUs`
 * (default 250), writing its .cpuprofile into `dir` when it exits. Not
 * `node --cpu-prof`: its sampling signals make the verifier refuse the larger
 * programs, so the profiler must start once they are loaded.
 */
export function profilerEnv(dir: string, afterMs: number, intervalUs?: number): NodeJS.ProcessEnv {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'profile-preload.js')}`.trim(),
    BPFTUNE_BENCH_PROFILE_DIR: dir,
    BPFTUNE_BENCH_PROFILE_AFTER_MS: String(afterMs),
    ...(intervalUs ? { BPFTUNE_BENCH_PROFILE_INTERVAL_US: String(intervalUs) } : {}),
  };
}

/** The profile a daemon started with profilerEnv(dir) wrote as it exited, if it wrote one. */
export function readProfile(dir: string): CpuProfile | undefined {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  return file ? (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile) : undefined;
}

/** The clock V8's profile timestamps are on (CLOCK_MONOTONIC), in us. */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Runs a daemon under the V8 profiler, idle for `seconds` after `settleSeconds`, and summarises that window. */
export async function profileIdleDaemon(seconds: number, settleSeconds: number, daemonArgs: string[]): Promise<ProfileSummary> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-bench-prof-'));
  const runDir = path.join(dir, 'run');
  const profDir = path.join(dir, 'profile');
  mkdirSync(profDir);
  const child = track(
    spawn(process.execPath, [BPFTUNE, '-s', ...daemonArgs], {
      env: {
        ...process.env,
        ...profilerEnv(profDir, settleSeconds * 1000),
        BPFTUNE_RUNDIR: runDir,
        BPFTUNE_STATEDIR: path.join(runDir, 'state'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  try {
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (c: Buffer) => {
        log += c.toString('utf8');
        if (/tuners loaded/.test(log)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`profiled daemon exited (${code}) before "tuners loaded": ${log.slice(-500)}`)));
    });
    await sleep(settleSeconds * 1000);
    throwIfAborted();
    const fromUs = monotonicUs();
    await sleep(seconds * 1000);
    const toUs = monotonicUs();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    const profile = readProfile(profDir);
    if (!profile) throw new Error('the profiled daemon wrote no .cpuprofile');
    return summariseProfile(profile, fromUs, toUs);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // A daemon killed hard leaves its cgroup2 mount in the run directory: never delete through a mount.
    const cgroupDir = path.join(runDir, 'cgroupv2');
    const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${cgroupDir} `);
    if (mounted()) spawnSync('umount', ['-l', cgroupDir], { stdio: 'ignore' });
    if (!mounted()) rmSync(dir, { recursive: true, force: true });
  }
}
