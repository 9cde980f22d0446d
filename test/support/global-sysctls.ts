/**
 * Global sysctls a test may cause bpftune to change (or changes itself):
 * saved before, and put back after every test and on process exit, so the
 * host ends as it was found even when a test or a daemon dies half way.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TunerDefinition } from '../../src/core/tuner';
import { sysctlIn } from './netns';

/**
 * A tuner's global sysctls (one value for the system, files under /proc/sys)
 * that this kernel has: what its tests and benchmarks save before they run
 * and put back after, named once, where the tuner declares them. An optional
 * one is left out where the kernel lacks it (net_buffer's
 * flow_limit_cpu_bitmap without CONFIG_NET_FLOW_LIMIT).
 */
export function globalTunables(tuner: Pick<TunerDefinition, 'tunables'>): string[] {
  return tuner.tunables
    .filter((t) => !t.namespaced && !t.access && (!t.optional || existsSync(`/proc/sys/${t.name.replace(/\./g, '/')}`)))
    .map((t) => t.name);
}

const saved = new Map<string, string>();

export function saveGlobalSysctls(names: readonly string[]): void {
  for (const name of names) if (!saved.has(name)) saved.set(name, sysctlIn(null, name));
}

export function restoreGlobalSysctls(): void {
  for (const [name, value] of saved) {
    try {
      if (sysctlIn(null, name) !== value) execFileSync('sysctl', ['-q', '-w', `${name}=${value}`]);
    } catch (err) {
      process.stderr.write(`could not restore ${name}=${value}: ${String(err)}\n`);
    }
  }
}

process.on('exit', restoreGlobalSysctls);
