/**
 * Runs one tuner's effect benchmark in a process of its own, so that the
 * suite can bound its time and survive it failing: loads the module, calls
 * the named export, and writes the EffectResult as JSON to a file (stdout is
 * the benchmark's own to print on).
 *
 * Usage: node effect-runner.js MODULE EXPORT OUTFILE
 */
import { writeFileSync } from 'node:fs';
import type { EffectResult } from './effect';

function isEffectResult(value: unknown): value is EffectResult {
  const r = value as Partial<EffectResult> | null;
  return typeof r === 'object' && r !== null && typeof r.scenario === 'string' && Array.isArray(r.rows);
}

async function main(): Promise<void> {
  const [modulePath, exportName, outFile] = process.argv.slice(2);
  if (!modulePath || !exportName || !outFile) throw new Error('usage: effect-runner MODULE EXPORT OUTFILE');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(modulePath) as Record<string, unknown>;
  const run = mod[exportName];
  if (typeof run !== 'function') throw new Error(`${modulePath} does not export a function ${exportName}()`);
  const result: unknown = await (run as () => Promise<unknown>)();
  if (!isEffectResult(result)) throw new Error(`${exportName}() returned something that is not an EffectResult (needs scenario and rows)`);
  writeFileSync(outFile, JSON.stringify(result));
}

// A signal from the suite (timeout or Ctrl-C) becomes an ordinary exit, so the
// benchmark's exit hooks delete its namespaces and stop its daemons.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`effect benchmark failed: ${err instanceof Error ? `${err.message}\n${err.stack}` : String(err)}\n`);
    process.exit(1);
  },
);
