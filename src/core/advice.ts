/**
 * Advisory mode (--advise): every decision a tuner makes becomes advice
 * instead of a change. Advice is keyed by a stable id (tuner, tunable,
 * scenario, namespace) and deduplicated: a decision made again only bumps its
 * count and last-seen time, and is logged again only when what it advises
 * changes. Since nothing is written, tuners keep computing from the kernel's
 * real, unchanged value, so a limit that stays low keeps producing the same
 * advice rather than ever larger advice.
 */
import type { Logger } from './log';
import { nsDescription, type Namespace } from './netns';
import { namespaceKey } from './state';
import { formatSysctlValues, sameValues, type SysctlValue } from './sysctl-values';
import type { ScenarioDeclaration, TunableDeclaration } from './tuner';

/** Namespaces come and go (containers); the least recently seen advice goes first beyond this. */
const MAX_ADVICE = 4096;

export interface Advice {
  id: string;
  tuner: string;
  tunable: string;
  scenario: { id: number; name: string; description: string };
  namespace: { key: string; global: boolean; name?: string; cookie: string };
  /** The last reason given (the evidence behind it, e.g. a buffer size). */
  reason: string;
  /** Current and advised values; absent for a per-connection action, which has no value. */
  from?: SysctlValue[];
  to?: SysctlValue[];
  /** For a tunable that is not a sysctl: the command that would apply the advice. */
  command?: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

interface Decision {
  tuner: string;
  decl: TunableDeclaration;
  scenario: ScenarioDeclaration;
  ns: Namespace;
  reason: string;
}

export class AdviceBook {
  private readonly entries = new Map<string, Advice>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A change the tuner would have made. */
  change(d: Decision & { from: SysctlValue[]; to: SysctlValue[] }): void {
    const labels = d.decl.labels ? `(${d.decl.labels.join(' ')})` : '';
    const text = `Due to ${d.reason} would change ${d.decl.name}${labels} from (${formatSysctlValues(d.from)}) -> (${formatSysctlValues(d.to)})`;
    this.record(d, text, (a) => {
      const changed = !a.to || !a.from || !sameValues(a.to, d.to) || !sameValues(a.from, d.from);
      a.from = [...d.from];
      a.to = [...d.to];
      if (d.decl.access) a.command = d.decl.access.command(d.to);
      return changed;
    });
  }

  /** An action (e.g. one connection's congestion control) the tuner would have taken. */
  action(d: Decision): void {
    // Its reason carries per-event evidence (an address, a cost): logged once, counted after.
    this.record(d, `Due to ${d.reason} (advice only: not applied)`, () => false);
  }

  list(): Advice[] {
    return [...this.entries.values()];
  }

  private record(d: Decision, text: string, update: (a: Advice) => boolean): void {
    const key = namespaceKey(d.ns);
    const id = `${d.tuner}/${d.decl.name}/${d.scenario.id}/${key}`;
    const at = this.now().toISOString();
    let advice = this.entries.get(id);
    const fresh = !advice;
    if (!advice) {
      advice = {
        id,
        tuner: d.tuner,
        tunable: d.decl.name,
        scenario: { id: d.scenario.id, name: d.scenario.name, description: d.scenario.description },
        namespace: { key, global: d.ns.global, ...(d.ns.name !== undefined ? { name: d.ns.name } : {}), cookie: String(d.ns.cookie) },
        reason: d.reason,
        count: 0,
        firstSeen: at,
        lastSeen: at,
      };
      if (this.entries.size >= MAX_ADVICE) this.evictOldest();
    } else {
      // Re-inserted so that insertion order is recency order.
      this.entries.delete(id);
    }
    this.entries.set(id, advice);
    const changed = update(advice);
    advice.reason = d.reason;
    advice.count++;
    advice.lastSeen = at;
    if (fresh || changed) {
      this.log.info(`Scenario '${d.scenario.name}' occurred for tunable '${d.decl.name}' in ${nsDescription(d.ns)}. ${d.scenario.description}`);
      this.log.info(`${text} [advice ${id}]`);
    } else {
      this.log.debug(`advice ${id} seen again (${advice.count} times): ${text}`);
    }
  }

  private evictOldest(): void {
    const oldest = this.entries.keys().next().value;
    if (oldest !== undefined) this.entries.delete(oldest);
  }
}

/** `-q advice`: one block per piece of advice. */
export function adviceText(advice: readonly Advice[]): string {
  if (!advice.length) return '# No advice yet: no tuner has found anything to change\n';
  const lines: string[] = [];
  for (const a of advice) {
    lines.push(`advice ${a.id}: seen ${a.count} times, first ${a.firstSeen}, last ${a.lastSeen}`);
    lines.push(`  scenario '${a.scenario.name}' for '${a.tunable}' in ${a.namespace.global ? 'global ns' : a.namespace.key}: ${a.scenario.description}`);
    if (a.from && a.to) lines.push(`  would change ${a.tunable} from (${formatSysctlValues(a.from)}) -> (${formatSysctlValues(a.to)})`);
    lines.push(`  due to ${a.reason}`);
    if (a.command) lines.push(`  command: ${a.command}`);
  }
  return `${lines.join('\n')}\n`;
}
