/** Prints an EffectResult as a table (what each bench/<tuner>.ts does when run on its own). */
import type { EffectResult } from './effect';

export function printEffect(result: EffectResult): void {
  const header = ['metric', 'with bpftune', 'without (baseline)', 'target', 'met'];
  const rows = result.rows.map((r) => [r.metric, r.value, r.baseline ?? '', r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'no']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(`## ${result.scenario}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  for (const n of result.notes ?? []) console.log(`\n${n}`);
}
