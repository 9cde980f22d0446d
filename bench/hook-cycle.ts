/**
 * What one sampling cycle of a hook costs the daemon: the CPU of attaching
 * a program and of detaching it again, which a sampled hook pays once per
 * period (src/core/hook-sampling.ts measures the same thing in the daemon
 * and lengthens the period where it exceeds CYCLE_CPU_BUDGET of a core).
 * Each program is loaded alone from its object and attached and detached
 * CYCLES times; the CPU is this process's (the kernel work of the two
 * system calls runs in their caller's context).
 *
 * Run as root: node dist/bench/hook-cycle.js [CYCLES] [--object OBJECT] [PROGRAM...]
 * (default 50 cycles of tcp_buffer's send hook, whichever variant this kernel takes);
 * prints a table and writes bench/results/hook-cycle.md.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/support/daemon';
import { CYCLE_CPU_BUDGET, processCpuMs } from '../src/core/hook-sampling';
import tcpBufferTuner from '../src/tuners/tcp_buffer';
import { native } from '../src/core/native';
import { publishReport } from './core';
import { runBenchmark } from './cleanup';
import { median } from './stats';

const DEFAULT_OBJECT = path.join(REPO_ROOT, 'dist/src/tuners/tcp_buffer/tcp_buffer.bpf.o');
/** tcp_buffer's send hook, every variant it declares. */
const DEFAULT_PROGRAMS = tcpBufferTuner.programAlternatives?.find((a) => a.variants.includes('tcp_buffer_snd'))?.variants ?? ['tcp_buffer_snd'];

interface Cycles {
  program: string;
  attachMs: number[];
  detachMs: number[];
  refused?: string;
}

/** Loads `program` alone from `object` and times its attach and detach `cycles` times. */
function measure(object: string, program: string, cycles: number): Cycles {
  const result: Cycles = { program, attachMs: [], detachMs: [] };
  const obj = native().openObject(object);
  try {
    for (const p of obj.programs()) if (p.name !== program) obj.setAutoload(p.name, false);
    obj.load();
    for (let i = 0; i < cycles; i++) {
      const c0 = processCpuMs();
      const link = obj.attach(program);
      const c1 = processCpuMs();
      link.close();
      result.attachMs.push(c1 - c0);
      result.detachMs.push(processCpuMs() - c1);
    }
  } catch (err) {
    result.refused = err instanceof Error ? err.message : String(err);
  } finally {
    obj.close();
  }
  return result;
}

function report(command: string, object: string, results: Cycles[], cycles: number): string {
  const ms = (v: number) => `${v.toFixed(3)} ms`;
  const rows = results.map((r) => {
    if (r.refused !== undefined && r.attachMs.length === 0) return `| ${r.program} | refused here: ${r.refused.split('\n')[0].replace(/\|/g, '/')} | | | |`;
    const cycle = r.attachMs.map((a, i) => a + r.detachMs[i]);
    const m = median(cycle);
    return `| ${r.program} | ${ms(median(r.attachMs))} | ${ms(median(r.detachMs))} | ${ms(m)} (${ms(Math.min(...cycle))}–${ms(Math.max(...cycle))}) | ${(m / CYCLE_CPU_BUDGET / 1000).toFixed(1)} s |`;
  });
  return [
    '# What attaching and detaching a sampled hook costs the daemon',
    '',
    `Written by \`${command}\` (bench/hook-cycle.ts) on ${os.hostname()}, kernel ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}.`,
    '',
    `Each program loaded alone from ${path.relative(REPO_ROOT, object)}, then attached and detached ${cycles} times; CPU of this process around each call. ` +
      `"Shortest period" is the period at which cycling would take ${CYCLE_CPU_BUDGET * 100} % of a core, the budget below which the daemon keeps a sampled hook's declared period.`,
    '',
    '| program | attach, median | detach, median | cycle, median (min–max) | shortest period |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (require.main === module) {
  // Synchronous work, run inside a promise so that runBenchmark reports its errors and cleans up.
  runBenchmark(() =>
    Promise.resolve().then(() => {
      const args = process.argv.slice(2);
      let object = DEFAULT_OBJECT;
      let cycles = 50;
      const programs: string[] = [];
      for (let i = 0; i < args.length; i++) {
        if (args[i] === '--object') object = path.resolve(args[++i] ?? '');
        else if (/^\d+$/.test(args[i])) cycles = Number(args[i]);
        else programs.push(args[i]);
      }
      const results = (programs.length ? programs : DEFAULT_PROGRAMS).map((p) => measure(object, p, cycles));
      const command = `node dist/bench/hook-cycle.js ${args.join(' ')}`.trim();
      publishReport('hook-cycle.md', report(command, object, results, cycles));
    }),
  );
}
