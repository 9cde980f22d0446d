/**
 * Run time per invocation of the daemon's BPF programs. The kernel counts
 * run_time_ns and run_cnt per program while statistics are enabled.
 * The daemon's programs are found through its own file descriptors
 * (/proc/PID/fdinfo of each bpf-prog fd carries prog_id and both counters),
 * so programs of other daemons running tests on this machine at the same
 * time are never mixed in.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { onCleanup, track } from './cleanup';
import { bpfFdinfos } from '../test/support/bpf-fds';
import { native, type NativeLink, type NativeObject } from '../src/core/native';
import { attachTargetExists, kernelTargetSources } from '../src/core/attach-targets';

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface ProgramCounters {
  id: number;
  runTimeNs: number;
  runCnt: number;
  verifiedInsns: number;
}

export interface ProgramCost {
  id: number;
  name: string;
  type: string;
  avgNs: number;
  perSecond: number;
  invocations: number;
  /** Share of one core spent in this program: run time / wall time. */
  corePercent: number;
  verifiedInsns: number;
}

/** Parses one fdinfo text; undefined when the fd is not a BPF program. */
export function parseProgFdinfo(text: string): ProgramCounters | undefined {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const id = field('prog_id');
  // A link's fdinfo names its program too: only a program fd has run_cnt.
  const runCnt = field('run_cnt');
  if (id === undefined || runCnt === undefined || /^link_type:/m.test(text)) return undefined;
  return { id, runCnt, runTimeNs: field('run_time_ns') ?? 0, verifiedInsns: field('verified_insns') ?? 0 };
}

export function daemonPrograms(pid: number): ProgramCounters[] {
  const byId = new Map<number, ProgramCounters>();
  for (const text of bpfFdinfos(pid, ['bpf-prog'])) {
    const counters = parseProgFdinfo(text);
    if (counters) byId.set(counters.id, counters);
  }
  return [...byId.values()];
}

/** Program names and types by id, from bpftool; ids it does not know are left out. */
export function programNames(): Map<number, { name: string; type: string }> {
  const names = new Map<number, { name: string; type: string }>();
  try {
    const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Array<{
      id: number;
      name?: string;
      type: string;
    }>;
    for (const p of progs) names.set(p.id, { name: p.name ?? `id ${p.id}`, type: p.type });
  } catch {
    // Names are a convenience: the report falls back to program ids.
  }
  return names;
}

export function programCosts(before: ProgramCounters[], after: ProgramCounters[], seconds: number): ProgramCost[] {
  const start = new Map(before.map((p) => [p.id, p]));
  const names = programNames();
  return after
    .map((p) => {
      const b = start.get(p.id);
      const invocations = p.runCnt - (b?.runCnt ?? 0);
      const runNs = p.runTimeNs - (b?.runTimeNs ?? 0);
      const meta = names.get(p.id);
      return {
        id: p.id,
        name: meta?.name ?? `id ${p.id}`,
        type: meta?.type ?? '?',
        avgNs: invocations > 0 ? runNs / invocations : NaN,
        perSecond: invocations / seconds,
        invocations,
        corePercent: (runNs / (seconds * 1e9)) * 100,
        verifiedInsns: p.verifiedInsns,
      };
    })
    .sort((a, b) => b.perSecond - a.perSecond);
}

/** Sums the costs of several runs of the same programs (matched by name: ids change with each daemon). */
export function mergeCosts(runs: ProgramCost[][], secondsPerRun: number[]): ProgramCost[] {
  const totalSeconds = secondsPerRun.reduce((a, b) => a + b, 0);
  const merged = new Map<string, { cost: ProgramCost; runNs: number }>();
  for (const run of runs) {
    for (const c of run) {
      const runNs = Number.isFinite(c.avgNs) ? c.avgNs * c.invocations : 0;
      const m = merged.get(c.name);
      if (m) {
        m.cost.invocations += c.invocations;
        m.runNs += runNs;
      } else {
        merged.set(c.name, { cost: { ...c }, runNs });
      }
    }
  }
  return [...merged.values()]
    .map(({ cost, runNs }) => ({
      ...cost,
      avgNs: cost.invocations > 0 ? runNs / cost.invocations : NaN,
      perSecond: cost.invocations / totalSeconds,
      corePercent: (runNs / (totalSeconds * 1e9)) * 100,
    }))
    .sort((a, b) => b.perSecond - a.perSecond);
}

/*
 * BPF_ENABLE_STATS hands out a file descriptor that keeps run-time statistics
 * on for as long as it is open, counted apart from the kernel.bpf_stats_enabled
 * sysctl. Nothing global needs restoring, other tests that save and restore
 * the sysctl themselves are not confused by ours, and if the suite is killed
 * the holder sees its stdin close (or dies with it) and the kernel drops it.
 * Node.js cannot make the bpf() call itself; python3 (a build dependency) can.
 */
const STATS_HOLDER = `
import ctypes, os, struct, sys
nr = {'x86_64': 321, 'aarch64': 280}.get(os.uname().machine)
if nr is None:
    sys.exit('no bpf() syscall number known for ' + os.uname().machine)
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack('I', 0) + bytes(124))  # BPF_STATS_RUN_TIME
fd = libc.syscall(nr, 32, attr, 128)  # BPF_ENABLE_STATS
if fd < 0:
    sys.exit('BPF_ENABLE_STATS failed: ' + os.strerror(ctypes.get_errno()))
print('ready', flush=True)
sys.stdin.read()
`;

async function holdStatsFd(): Promise<() => void> {
  const holder = track(spawn('python3', ['-c', STATS_HOLDER], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let err = '';
  holder.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(err.trim() || `stats holder exited (${code})`)));
    holder.once('error', reject);
  });
  return () => {
    holder.stdin.end();
    holder.kill();
  };
}

/**
 * Turns BPF run-time statistics on and returns the function that turns them
 * off again (cleanup calls it too should the suite fail first). Prefers a
 * BPF_ENABLE_STATS descriptor; on a kernel without it (before 5.8), sets
 * kernel.bpf_stats_enabled and puts the previous value back.
 */
export async function enableBpfStats(progress: (line: string) => void = () => undefined): Promise<() => void> {
  try {
    const release = await holdStatsFd();
    const unregister = onCleanup(release);
    return () => {
      release();
      unregister();
    };
  } catch (err) {
    progress(`BPF_ENABLE_STATS not available (${err instanceof Error ? err.message : String(err)}); using kernel.bpf_stats_enabled`);
  }
  const previous = readFileSync(STATS_SYSCTL, 'utf8').trim();
  if (previous === '1') return () => undefined;
  writeFileSync(STATS_SYSCTL, '1');
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    writeFileSync(STATS_SYSCTL, previous);
    unregister();
  };
  const unregister = onCleanup(restore);
  return restore;
}

/** tcp_buffer's per-call programs -> the empty program on the same tracepoint (test/fixtures/tp_btf_floor). */
export const FLOOR_PROGRAM_OF: Readonly<Record<string, string>> = { tcp_buffer_snd: 'floor_snd', tcp_buffer_rcv: 'floor_rcv', tcp_buffer_rcv_grow: 'floor_rcv_grow' };

/** Built next to this file's compiled form: dist/test/fixtures/tp_btf_floor. */
export const FLOOR_OBJECT = path.join(__dirname, '..', 'test', 'fixtures', 'tp_btf_floor', 'tp_btf_floor.bpf.o');

/**
 * Empty programs on the tracepoints tcp_buffer hooks per call, attached for a
 * run with statistics on: their run time per call is what measuring costs
 * (the statistics' clock reads), the floor under any program's figure on
 * this machine. Hooks this kernel lacks are left out.
 */
export class MeasurementFloor {
  private readonly object: NativeObject;
  private readonly links: NativeLink[] = [];
  private start = new Map<string, { ns: bigint; calls: bigint }>();

  constructor() {
    this.object = native().openObject(FLOOR_OBJECT);
    const targets = kernelTargetSources();
    const present = new Set<string>();
    for (const p of this.object.programs()) {
      if (attachTargetExists(p.section, targets) === false) this.object.setAutoload(p.name, false);
      else present.add(p.name);
    }
    try {
      this.object.load();
      for (const name of present) this.links.push(this.object.attach(name));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  mark(): void {
    this.start = new Map(this.object.programStats().map((p) => [p.name, { ns: p.runTimeNs, calls: p.runCount }]));
  }

  /** Since mark(): run time per call by program, for those called. */
  perCall(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, p] of this.since()) if (p.calls > 0) out.set(name, p.ns / p.calls);
    return out;
  }

  /** Since mark(): run time per call over all of them (undefined when none was called). */
  overall(): number | undefined {
    let ns = 0;
    let calls = 0;
    for (const p of this.since().values()) {
      ns += p.ns;
      calls += p.calls;
    }
    return calls > 0 ? ns / calls : undefined;
  }

  close(): void {
    for (const l of this.links) l.close();
    this.links.length = 0;
    this.object.close();
  }

  private since(): Map<string, { ns: number; calls: number }> {
    const out = new Map<string, { ns: number; calls: number }>();
    for (const p of this.object.programStats()) {
      const s = this.start.get(p.name) ?? { ns: 0n, calls: 0n };
      out.set(p.name, { ns: Number(p.runTimeNs - s.ns), calls: Number(p.runCount - s.calls) });
    }
    return out;
  }
}
