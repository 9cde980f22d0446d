/**
 * The two daemons of the side-by-side benchmark (bench/vs-upstream.ts), started and
 * judged the same way: ours with every built-in tuner, theirs (oracle/bpftune) with
 * every tuner it ships, both with -R so that they roll back what they changed.
 */
import { readFileSync } from 'node:fs';
import { DaemonProcess } from '../test/support/daemon';
import { bpfFdinfos } from '../test/support/bpf-fds';
import { throwIfAborted } from './cleanup';
import { builtinDaemonArgs } from './core';
import type { PairedRatio } from './paired-ratio';
import { cpuNs } from './proc';
import { median } from './stats';

export type Daemon = 'ours' | 'theirs';

export const REFERENCE = process.env.BPFTUNE_REFERENCE ?? '/usr/sbin/bpftune-reference';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A positive number from the environment, else the fallback. */
export const env = (name: string, fallback: number) => Number(process.env[name]) || fallback;
export const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/**
 * VS_OURS_ENV: NAME=VALUE pairs (space-separated) for ours in every phase, e.g.
 * "BPFTUNE_HOOK_SAMPLING=off" to weigh a setting in the guest (only VS_*
 * variables reach it).
 */
export function oursEnv(text = process.env.VS_OURS_ENV ?? ''): NodeJS.ProcessEnv {
  return Object.fromEntries(text.split(/\s+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`VS_OURS_ENV: '${pair}' is not NAME=VALUE`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

/** `extraEnv`: more environment for ours (the reference is not a Node.js program). */
export function startDaemon(which: Daemon, extraEnv?: NodeJS.ProcessEnv): DaemonProcess {
  return which === 'ours' ? new DaemonProcess(builtinDaemonArgs(), { env: { ...oursEnv(), ...extraEnv } }) : new DaemonProcess(['-R'], { command: [REFERENCE] });
}

/** BPF programs and links the process holds. */
function bpfFds(pid: number): number {
  return bpfFdinfos(pid, ['bpf-prog', 'bpf_link']).length;
}

/**
 * Settled: holds BPF programs, their number unchanged and its CPU below 5% of
 * a core for 3 s in a row. The same test for both daemons (the reference logs
 * nothing at its default level once it has loaded); ours also says "tuners loaded".
 */
export async function settled(daemon: DaemonProcess, which: Daemon): Promise<number> {
  const t0 = Date.now();
  if (which === 'ours') await daemon.waitFor(/tuners loaded/, 600_000);
  let last = -1;
  let quiet = 0;
  let cpu = cpuNs(daemon.pid);
  while (quiet < 3) {
    await sleep(1000);
    throwIfAborted();
    if (Date.now() - t0 > 900_000) throw new Error(`${which} did not settle in 900 s; log:\n${daemon.log.slice(-2000)}`);
    let n: number;
    let c: number;
    try {
      n = bpfFds(daemon.pid);
      c = cpuNs(daemon.pid);
    } catch {
      throw new Error(`${which} exited while starting; log:\n${daemon.log.slice(-3000)}`);
    }
    quiet = n > 0 && n === last && c - cpu < 0.05e9 ? quiet + 1 : 0;
    last = n;
    cpu = c;
  }
  return (Date.now() - t0 - 3000) / 1000;
}

export interface Memory {
  rss: number;
  pss: number;
  /** Anonymous pages (heaps, stacks): the rest of RSS is file-backed (the binary and its libraries). */
  anon: number;
}

export function smapsRollup(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss'), anon: kb('Anonymous') };
}

// ---------------------------------------------------------------- report cells, shared by every phase

/** "0.983 [0.979, 0.989]", or n/a when the interval could not be computed. */
export const fmtRatio = (p: PairedRatio | undefined, digits = 3) => (p ? `${p.ratio.toFixed(digits)} [${p.low.toFixed(digits)}, ${p.high.toFixed(digits)}]` : 'n/a');

/** median (min–max, n), or the one value. */
export function spread(xs: number[], f: (v: number) => string): string {
  if (!xs.length) return 'none';
  if (xs.length === 1) return f(xs[0]);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))}, n=${xs.length})`;
}

/** A ratio the bootstrap refuses (too few or non-positive samples) is left out of the report, not fatal. */
export function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
