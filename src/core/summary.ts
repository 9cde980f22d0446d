/**
 * The summary printed on exit and by `-q summary`, and the rollback commands
 * (`-R`, `-q rollback`), in the reference's format (shared/compat.md). Values
 * in summary lines are each followed by a space, as the reference prints them.
 */
import type { ChangeRecord, ScenarioRecord } from './tunables';
import type { Namespace } from './netns';
import { spacedValues as spaced } from './sysctl-values';
import type { TunerReport } from './tuner';

/** How to run a command inside the namespace, for namespaces other than the global one. */
function inNamespace(ns: Namespace): string {
  if (ns.global) return '';
  if (ns.name !== undefined) return `ip netns exec ${ns.name} `;
  return `nsenter --net=${ns.path} `;
}

export interface NamedReport {
  tuner: string;
  report: TunerReport;
}

/**
 * Tuner reports in the summary: each line prefixed "# Summary: <tuner>_tuner: ",
 * the reference's name for the tuner, as it prefixes its tuners' own summary
 * lines (e.g. "# Summary: tcp_conn_tuner: ..."), so greps for those match.
 */
function reportLines(reports: readonly NamedReport[]): string[] {
  return reports.flatMap(({ tuner, report }) =>
    report.text ? report.text.split('\n').map((line) => `# Summary: ${tuner}_tuner: ${line}`) : [],
  );
}

export function summaryText(
  scenarios: readonly ScenarioRecord[],
  changes: readonly ChangeRecord[],
  reports: readonly NamedReport[] = [],
): string {
  const lines: string[] = [];
  for (const s of scenarios) {
    lines.push(
      `# Summary: scenario '${s.scenario.name}' occurred ${s.count} times for tunable '${s.tunable}' in ` +
        `${s.global ? 'global ns' : 'non-global ns'}. ${s.scenario.description}`,
    );
  }
  for (const c of changes) {
    lines.push(`# ${c.command ? 'tunable' : 'sysctl'} '${c.tunable}' changed from (${spaced(c.original)}) -> (${spaced(c.current)})`);
    if (!c.ns.global) lines.push(`# (in network namespace cookie ${c.ns.cookie})`);
    lines.push('# To replicate this change on another system, run the following as a privileged user in a terminal:');
    lines.push(`${inNamespace(c.ns)}${c.command ? c.command(c.current) : `sysctl -w ${c.tunable}="${spaced(c.current)}"`}`);
  }
  if (!lines.length) lines.push('# Summary: bpftune made no changes');
  lines.push(...reportLines(reports));
  return `${lines.join('\n')}\n`;
}

export function rollbackText(changes: readonly ChangeRecord[]): string {
  const lines: string[] = [];
  for (const c of changes) {
    lines.push(`# To roll back changes to '${c.tunable}', run the following as a privileged user in a terminal:`);
    lines.push(`${inNamespace(c.ns)}${c.command ? c.command(c.original) : `sysctl -w ${c.tunable}="${c.original.join(' ')}"`}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '# Nothing to roll back: bpftune made no changes\n';
}
