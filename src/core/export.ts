/**
 * `-q sysctl.d` and `-q jexport`: what bpftune set in the global namespace
 * (or, in advisory mode, would set), as a drop-in for /etc/sysctl.d that
 * configuration management can review and push to other hosts. Each value is
 * preceded by why: scenarios, reason, how often and when. A tunable that is
 * not a sysctl (a neighbour table's thresholds) has no sysctl.d syntax: its
 * command is given, commented out.
 */
import type { Advice } from './advice';
import { formatSysctlValues, type SysctlValue } from './sysctl-values';
import type { ChangeRecord } from './tunables';

export interface ExportEntry {
  tunable: string;
  tuner: string;
  values: SysctlValue[];
  /** A sysctl, written as `key = value`; else `command` applies it. */
  sysctl: boolean;
  command?: string;
  original?: SysctlValue[];
  /** Scenario name -> occurrences. */
  scenarios: Record<string, number>;
  reason: string;
  count: number;
  first: string;
  last: string;
  /** Advice from advisory mode, not a value bpftune set. */
  advised: boolean;
}

export function exportEntries(changes: readonly ChangeRecord[], advice: readonly Advice[]): ExportEntry[] {
  const entries = new Map<string, ExportEntry>();
  for (const c of changes) {
    if (!c.ns.global) continue;
    entries.set(c.tunable, {
      tunable: c.tunable,
      tuner: c.tuner,
      values: [...c.current],
      sysctl: !c.command,
      ...(c.command ? { command: c.command(c.current) } : {}),
      original: [...c.original],
      scenarios: { ...c.scenarios },
      reason: c.reason,
      count: c.changes,
      first: new Date(c.first).toISOString(),
      last: new Date(c.last).toISOString(),
      advised: false,
    });
  }
  // Advice is newer than anything set before advisory mode began, so it wins.
  for (const a of advice) {
    if (!a.namespace.global || !a.to) continue;
    const existing = entries.get(a.tunable);
    entries.set(a.tunable, {
      tunable: a.tunable,
      tuner: a.tuner,
      values: [...a.to],
      sysctl: a.command === undefined,
      ...(a.command !== undefined ? { command: a.command } : {}),
      original: existing?.original ?? a.from,
      scenarios: { ...(existing?.advised ? existing.scenarios : {}), [a.scenario.name]: a.count },
      reason: a.reason,
      count: a.count + (existing?.advised ? existing.count : 0),
      first: existing?.advised && existing.first < a.firstSeen ? existing.first : a.firstSeen,
      last: a.lastSeen,
      advised: true,
    });
  }
  return [...entries.values()].sort((x, y) => x.tunable.localeCompare(y.tunable));
}

export function sysctlDropIn(entries: readonly ExportEntry[], host: string, at: Date): string {
  const lines = [
    `# bpftune: what it ${entries.some((e) => e.advised) ? 'would set (advisory mode)' : 'set'} in the global network namespace of ${host}, exported ${at.toISOString()}.`,
    '# Review, then install as /etc/sysctl.d/90-bpftune.conf and apply with: sysctl -p /etc/sysctl.d/90-bpftune.conf',
  ];
  if (!entries.length) lines.push('# Nothing to export: bpftune has changed nothing in the global namespace.');
  for (const e of entries) {
    const scenarios = Object.entries(e.scenarios).map(([name, n]) => `'${name}' (${n} times)`).join(', ');
    lines.push('');
    lines.push(`# ${e.tunable} (tuner ${e.tuner}): ${e.advised ? 'advised' : 'changed'} ${e.count} times, first ${e.first}, last ${e.last}`);
    lines.push(`# scenario: ${scenarios}`);
    lines.push(`# reason: ${e.reason}`);
    if (e.original) lines.push(`# original value: ${formatSysctlValues(e.original)}`);
    if (e.sysctl) {
      lines.push(`${e.tunable} = ${formatSysctlValues(e.values)}`);
    } else {
      lines.push('# not a sysctl: apply it with this command (e.g. from a systemd unit or your configuration management):');
      lines.push(`# ${e.command}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
