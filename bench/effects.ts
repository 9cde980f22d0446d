/**
 * The tuning-effect scenarios. Each tuner's benchmark lives in its own
 * module (bench/<tuner>.ts, written with the tuner) and is picked up when it
 * has been built; until then the report says "not built yet". Each runs in
 * a child process (effect-runner) with a time limit, so one that hangs or
 * crashes costs its own row and nothing else.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { track, wasAborted } from './cleanup';
import type { EffectResult } from './effect';

export interface EffectSpec {
  /** Tuner the scenario belongs to. */
  tuner: string;
  scenario: string;
  /** Compiled module next to this file. */
  file: string;
  exportName: string;
  /** Whether its series is the one the report plots. */
  plotted: boolean;
}

export const EFFECT_SPECS: EffectSpec[] = [
  { tuner: 'tcp_buffer', scenario: 'long-RTT buffer sizing', file: 'tcp_buffer.js', exportName: 'runTcpBufferEffect', plotted: true },
  { tuner: 'tcp_conn', scenario: 'lossy-path congestion control', file: 'tcp_conn.js', exportName: 'runTcpConnEffect', plotted: false },
  { tuner: 'net_buffer', scenario: 'backlog drops under a UDP flood', file: 'net_buffer.js', exportName: 'netBufferEffect', plotted: false },
  { tuner: 'neigh_table', scenario: 'neighbour table filling up', file: 'neigh_table.js', exportName: 'neighTableEffect', plotted: false },
  { tuner: 'route_table', scenario: 'IPv6 route table poll cost and reaction', file: 'route_table.js', exportName: 'routeTableEffect', plotted: false },
  { tuner: 'udp_buffer', scenario: 'UDP receive-buffer drops at a slow receiver', file: 'udp_buffer.js', exportName: 'udpBufferEffect', plotted: false },
  { tuner: 'ip_frag', scenario: 'fragmented pings through a small reassembly threshold', file: 'ip_frag.js', exportName: 'ipFragEffect', plotted: false },
];

export type EffectStatus = 'ok' | 'not built yet' | 'failed' | 'timed out';

export interface EffectOutcome {
  spec: EffectSpec;
  status: EffectStatus;
  result?: EffectResult;
  error?: string;
  seconds: number;
}

export function effectModulePath(spec: EffectSpec, dir = __dirname): string | undefined {
  const p = path.resolve(dir, spec.file);
  return existsSync(p) ? p : undefined;
}

export async function runEffect(spec: EffectSpec, timeoutMs: number, quick: boolean, progress: (line: string) => void): Promise<EffectOutcome> {
  const started = Date.now();
  const modulePath = effectModulePath(spec);
  if (!modulePath) return { spec, status: 'not built yet', seconds: 0 };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bpftune-bench-effect-'));
  const outFile = path.join(tmp, 'result.json');
  try {
    const child = track(
      spawn(process.execPath, [path.join(__dirname, 'effect-runner.js'), modulePath, spec.exportName, outFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...(quick ? { BPFTUNE_BENCH_QUICK: '1' } : {}) },
      }),
    );
    let stderrText = '';
    const forward = (chunk: Buffer, keep: boolean) => {
      const text = chunk.toString('utf8');
      if (keep) stderrText = (stderrText + text).slice(-65536);
      for (const line of text.split('\n')) if (line.trim()) progress(`  [${spec.tuner}] ${line}`);
    };
    child.stdout.on('data', (c: Buffer) => forward(c, false));
    child.stderr.on('data', (c: Buffer) => forward(c, true));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    const seconds = (Date.now() - started) / 1000;
    if (timedOut) return { spec, status: 'timed out', seconds, error: `stopped after ${(timeoutMs / 1000).toFixed(0)} s (the suite's time budget)` };
    if (code !== 0 || !existsSync(outFile)) {
      const reason = /effect benchmark failed: (.*)/.exec(stderrText)?.[1] ?? stderrText.trim().split('\n').slice(-3).join(' / ');
      const why = wasAborted() ? 'interrupted' : `exited with ${code}: ${reason}`;
      return { spec, status: 'failed', seconds, error: why };
    }
    return { spec, status: 'ok', seconds, result: JSON.parse(readFileSync(outFile, 'utf8')) as EffectResult };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
