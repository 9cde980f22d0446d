/**
 * Runs bin/bpftune -s as a child process with its own run directory and state
 * directory (a test daemon must never read or write /var/lib/bpftune), collects
 * what it logs, and waits for lines. stop() sends SIGTERM and waits for exit;
 * cleanup paths kill it regardless, so no daemon outlives a failed test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OutputWaiters } from './waiters';
import { trustedCopy } from './trusted-dir';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const BPFTUNE = path.join(REPO_ROOT, 'bin', 'bpftune');
/** The sample plugins, copied where the daemon's plugin path checks accept them (see trusted-dir). */
export const SAMPLES_LIBDIR = trustedCopy(path.join(REPO_ROOT, 'dist', 'samples'), 'samples');

/*
 * How much longer than here waits may take: the VM matrix sets it under TCG (test/vm), where
 * loading and verifying every tuner's BPF takes tens of seconds. Only widens timeouts.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.BPFTUNE_TEST_TIME_SCALE) || 1);

const running = new Set<DaemonProcess>();

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bpftune to completion (for -S, -q, bad flags). */
export function runBpftune(args: string[], runDir?: string, env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(BPFTUNE, args, {
    encoding: 'utf8',
    timeout: 60_000 * TIME_SCALE,
    env: { ...process.env, ...(runDir ? { BPFTUNE_RUNDIR: runDir } : {}), ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface DaemonProcessOptions {
  /**
   * State directory (BPFTUNE_STATEDIR) to share between runs; it is not
   * removed by stop(). Default: a directory of this daemon's own, removed with it.
   */
  stateDir?: string;
  /** What runs bpftune (default bin/bpftune), e.g. a packaged one under another node. */
  command?: string[];
  env?: NodeJS.ProcessEnv;
}

export class DaemonProcess {
  readonly runDir: string;
  readonly stateDir: string;
  private readonly child: ChildProcess;
  private output = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;
  private readonly waiters = new OutputWaiters();

  constructor(args: string[], options: DaemonProcessOptions = {}) {
    this.runDir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-run-'));
    this.stateDir = options.stateDir ?? path.join(this.runDir, 'state');
    const [command, ...commandArgs] = options.command ?? [BPFTUNE];
    this.child = spawn(command, [...commandArgs, '-s', ...args], {
      env: { ...process.env, ...options.env, BPFTUNE_RUNDIR: this.runDir, BPFTUNE_STATEDIR: this.stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      this.waiters.poke();
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        this.exitCode = code;
        running.delete(this);
        this.waiters.poke();
        resolve(code);
      }),
    );
  }

  get log(): string {
    return this.output;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves with the first match of `pattern` in the log (searching from `from`). */
  waitFor(pattern: RegExp, timeoutMs = 15_000, from = 0): Promise<RegExpExecArray> {
    timeoutMs *= TIME_SCALE;
    return this.waiters.wait(
      () => pattern.exec(this.output.slice(from)) ?? undefined,
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; log:\n${this.output}`),
      () => (this.exitCode !== undefined ? new Error(`bpftune exited (${this.exitCode}) before logging ${pattern}; log:\n${this.output}`) : undefined),
    );
  }

  started(): Promise<RegExpExecArray> {
    return this.waitFor(/tuners loaded/);
  }

  query(q: string): RunResult {
    return runBpftune(['-q', q], this.runDir);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.exitCode === undefined) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs * TIME_SCALE);
    const code = await this.exited;
    clearTimeout(timer);
    this.removeRunDir();
    return code;
  }

  removeRunDir(): void {
    // A daemon killed hard leaves its cgroup2 mount in the run directory.
    const cgroupDir = path.join(this.runDir, 'cgroupv2');
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${cgroupDir} `)) {
      spawnSync('umount', ['-l', cgroupDir], { stdio: 'ignore' });
    }
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()));
}

process.on('exit', () => {
  for (const d of running) {
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    d.removeRunDir();
  }
});
