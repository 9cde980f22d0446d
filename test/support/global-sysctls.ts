/**
 * Global sysctls a test may cause bpftune to change (or changes itself):
 * saved before, and put back after every test and on process exit, so the
 * host ends as it was found even when a test or a daemon dies half way.
 */
import { execFileSync } from 'node:child_process';
import { sysctlIn } from './netns';

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
