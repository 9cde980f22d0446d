/**
 * What a per-call hook costs a workload beyond its programs' run time. The
 * direct-cost phase (vs-upstream-cost.ts) counts the daemon's CPU and its
 * programs' run time, which BPF's statistics measure; it cannot see what
 * the kernel spends around a program (the tracepoint's dispatch) or what
 * attaching one changes in the code it sits in. Here no daemon runs: the
 * empty programs of test/fixtures/tp_btf_floor are attached to the
 * tracepoints tcp_buffer hooks on every call, and each workload's work per
 * CPU-second (overhead-cpu.ts's measure, the workload's cgroup) is compared
 * with and without them, in blocks of none / empty programs / none again
 * (the control) in rotating order, with the paired bootstrap of
 * paired-ratio.ts. Whatever an empty program costs, tcp_buffer's programs
 * cost at least as much.
 *
 * With --object OBJECT the programs named are a built object's instead
 * (dist/src/tuners/tcp_buffer/tcp_buffer.bpf.o: the tuner's real programs,
 * attached without a daemon, their maps fresh; what they post nobody reads).
 *
 * Run as root: node dist/bench/hook-presence.js [BLOCKS] [--object OBJECT]
 * [--workload NAME]... [PROGRAM...] (default 10 blocks, all three
 * workloads, every floor program this kernel has a tracepoint for); prints a table and writes bench/results/hook-presence.md
 * (hook-presence-PROGRAM.md when programs are named).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/support/daemon';
import { TestCgroup } from '../test/support/cgroup';
import { attachTargetExists, kernelTargetSources } from '../src/core/attach-targets';
import { native, type NativeLink } from '../src/core/native';
import { FLOOR_OBJECT } from './bpf-stats';
import { publishReport } from './core';
import { runBenchmark, throwIfAborted } from './cleanup';
import { createVethPair } from './iperf';
import { blockOrder, WORKLOAD_UNITS, WORKLOADS, type Condition, type WorkloadName, type WorkloadRun } from './overhead-summary';
import { pairedRatio, verdict, type PairedRatio } from './paired-ratio';
import { runWorkload } from './workloads';

const SECONDS = 2;

/** Attaches an object's programs (those named, or all) whose tracepoint this kernel has; returns their names and a detach. */
function attachPrograms(objectPath: string, only: readonly string[]): { names: string[]; detach: () => void } {
  const object = native().openObject(objectPath);
  const targets = kernelTargetSources();
  const names: string[] = [];
  for (const p of object.programs()) {
    const wanted = attachTargetExists(p.section, targets) !== false && (only.length === 0 || only.includes(p.name));
    object.setAutoload(p.name, wanted);
    if (wanted) names.push(`${p.name} (${p.section})`);
  }
  const links: NativeLink[] = [];
  try {
    object.load();
    for (const p of object.programs()) if (names.some((n) => n.startsWith(`${p.name} `))) links.push(object.attach(p.name));
  } catch (err) {
    for (const l of links) l.close();
    object.close();
    throw err;
  }
  return {
    names,
    detach: () => {
      for (const l of links) l.close();
      object.close();
    },
  };
}

interface WorkloadResult {
  workload: WorkloadName;
  effect: PairedRatio;
  control: PairedRatio;
  cpuPerUnitNone: number;
}

const fmt = (p: PairedRatio) => `${p.ratio.toFixed(3)} [${p.low.toFixed(3)}, ${p.high.toFixed(3)}]`;

async function measure(
  blocks: number,
  objectPath: string,
  only: readonly string[],
  workloads: readonly WorkloadName[],
): Promise<{ results: WorkloadResult[]; programs: string[] }> {
  const pair = createVethPair();
  const cgroup = new TestCgroup();
  const runs = {} as Record<WorkloadName, Record<Condition, WorkloadRun[]>>;
  for (const w of workloads) runs[w] = { none: [], control: [], daemon: [] };
  let programs: string[] = [];
  try {
    // Cold first runs (caches, stress-ng's start) are not counted.
    for (const w of workloads) await runWorkload(w, pair, cgroup, 1);
    for (let block = 0; block < blocks; block++) {
      const order = blockOrder(block);
      process.stderr.write(`block ${block + 1}/${blocks}: ${order.map((c) => (c === 'daemon' ? 'programs' : c)).join(', ')}\n`);
      for (const condition of order) {
        const attached = condition === 'daemon' ? attachPrograms(objectPath, only) : undefined;
        if (attached) programs = attached.names;
        try {
          for (const w of workloads) {
            throwIfAborted();
            runs[w][condition].push(await runWorkload(w, pair, cgroup, SECONDS));
          }
        } finally {
          attached?.detach();
        }
      }
    }
  } finally {
    cgroup.remove();
    pair.close();
  }
  const perCpu = (r: WorkloadRun) => r.work / r.cpuNs;
  const results = workloads.map((w) => {
    const i = WORKLOADS.indexOf(w);
    const base = runs[w].none.map(perCpu);
    const median = [...runs[w].none.map((r) => r.cpuNs / r.work)].sort((a, b) => a - b)[Math.floor(runs[w].none.length / 2)] ?? NaN;
    return {
      workload: w,
      effect: pairedRatio(base, runs[w].daemon.map(perCpu), { seed: 16 + i }),
      control: pairedRatio(base, runs[w].control.map(perCpu), { seed: 16 + i }),
      cpuPerUnitNone: median,
    };
  });
  return { results, programs };
}

function report(command: string, blocks: number, objectPath: string, programs: string[], results: WorkloadResult[]): string {
  const floor = objectPath === FLOOR_OBJECT;
  const rows = results.map((r) => {
    const unit = WORKLOAD_UNITS[r.workload];
    return `| ${unit.what} | ${fmt(r.effect)} | ${fmt(r.control)} | ${verdict(r.effect, r.control)} | ${r.cpuPerUnitNone.toPrecision(3)} ns per ${unit.unit} |`;
  });
  return [
    `# Per-call hooks without a daemon: ${floor ? 'empty programs on the tracepoints tcp_buffer hooks' : `programs of ${path.basename(objectPath)}`}`,
    '',
    `Written by \`${command}\` (bench/hook-presence.ts) on ${os.hostname()}, kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}.`,
    '',
    `Programs attached (${floor ? 'test/fixtures/tp_btf_floor, each returns at once' : `${path.relative(REPO_ROOT, objectPath)}, no daemon: fresh maps, nobody reading what they post`}): ${programs.join(', ') || 'none'}. ${blocks} blocks of none / ${floor ? 'empty programs' : 'programs'} / none again (the control), rotating order, each workload ${SECONDS} s per condition; work per CPU-second of the workload's cgroup, ratio of means with a 95 % paired-bootstrap interval.`,
    '',
    `| workload | work per CPU-second, ${floor ? 'empty programs' : 'programs'} / none | control: none / none | verdict | CPU per unit, none (median) |`,
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (require.main === module) {
  runBenchmark(async () => {
    const args = process.argv.slice(2);
    const blocks = Number(args[0]) || 10;
    if (Number(args[0])) args.shift();
    const at = args.indexOf('--object');
    const objectPath = at >= 0 ? path.resolve(args.splice(at, 2)[1] ?? '') : FLOOR_OBJECT;
    const workloads: WorkloadName[] = [];
    for (let w = args.indexOf('--workload'); w >= 0; w = args.indexOf('--workload')) {
      const name = args.splice(w, 2)[1] as WorkloadName;
      if (!WORKLOADS.includes(name)) throw new Error(`--workload ${String(name)}: not one of ${WORKLOADS.join(', ')}`);
      workloads.push(name);
    }
    const only = args;
    const { results, programs } = await measure(blocks, objectPath, only, workloads.length ? workloads : WORKLOADS);
    const command = [
      'node dist/bench/hook-presence.js',
      String(blocks),
      ...(at >= 0 ? ['--object', path.relative(REPO_ROOT, objectPath)] : []),
      ...workloads.flatMap((w) => ['--workload', w]),
      ...only,
    ].join(' ');
    const text = report(command, blocks, objectPath, programs, results);
    publishReport(only.length ? `hook-presence-${only.join('-')}.md` : 'hook-presence.md', text);
  });
}
