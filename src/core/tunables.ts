/**
 * The one write path. Every change any tuner makes goes through
 * TunableRegistry.set(): it checks the tuner is active in the namespace,
 * writes the value there, logs the scenario and reason lines operators grep
 * for (shared/compat.md), and records the original value for rollback and
 * the scenario for the summary.
 */
import { LatencyWindow } from './latency';
import type { Logger } from './log';
import { errorText } from './log';
import { changeFields } from './journal';
import type { Namespace } from './netns';
import { nsDescription } from './netns';
import {
  formatSysctlValues,
  parseSysctlValues,
  sameValues,
  spacedValues,
  sysctlPath,
  type SysctlValue,
} from './sysctl-values';
import type { ActionRecord, ChangeRequest, ExternalWrite, KernelIo, ScenarioDeclaration, TunableDeclaration } from './tuner';
import type { StateStore, StoredChange } from './state';
import type { AdviceBook } from './advice';

/** Reads a declared tunable: its own access for non-sysctl tunables, else /proc/sys. */
async function readTunable(sysctl: SysctlAccess, decl: TunableDeclaration, ns: Namespace): Promise<SysctlValue[]> {
  if (decl.access) return decl.access.read(ns, sysctl);
  return parseSysctlValues(await sysctl.read(ns, sysctlPath(decl.name)), decl.string === true);
}

async function writeTunable(sysctl: SysctlAccess, decl: TunableDeclaration, ns: Namespace, values: readonly SysctlValue[]): Promise<void> {
  if (decl.access) return decl.access.write(ns, values, sysctl);
  return sysctl.write(ns, sysctlPath(decl.name), formatSysctlValues(values));
}

/** sysctls in any namespace, and the netlink a non-sysctl tunable's access may need (KernelIo). */
export interface SysctlAccess extends KernelIo {
  read(ns: Namespace, path: string): Promise<string>;
  write(ns: Namespace, path: string, value: string): Promise<void>;
}

export interface NamespaceLookup {
  readonly global: Namespace;
  resolve(cookie: bigint): Promise<Namespace | undefined>;
}

export type TunerNsState = 'active' | 'manual';

/** What the summary and rollback need to know about one tunable in one namespace. */
export interface ChangeRecord {
  tuner: string;
  tunable: string;
  ns: Namespace;
  original: SysctlValue[];
  current: SysctlValue[];
  changes: number;
  /** Set for tunables that are not sysctls: the command that sets given values. */
  command?: (values: readonly SysctlValue[]) => string;
  /** The last change's reason, and how many changes each scenario caused (for the sysctl.d export). */
  reason: string;
  scenarios: Record<string, number>;
  /** Times of the first and last change, ms since the epoch. */
  first: number;
  last: number;
  /** Made by an earlier run of this boot (from the state file): someone may have written it while no bpftune watched. */
  inherited?: boolean;
}

/**
 * Optional parts of the write path: the state file every change is recorded
 * in before it is applied, and, in advisory mode, the advice that replaces
 * every change.
 */
export interface RegistryExtensions {
  state?: Pick<StateStore, 'beforeChange' | 'changeFailed' | 'scenarioOccurred' | 'takeover'>;
  advice?: AdviceBook;
}

/** One change written or action recorded, as it happens (for metrics). */
export interface RecordedEvent {
  kind: 'change' | 'action';
  tuner: string;
  tunable: string;
  scenario: ScenarioDeclaration;
  ns: Namespace;
}

export interface ScenarioRecord {
  tuner: string;
  tunable: string;
  scenario: ScenarioDeclaration;
  global: boolean;
  count: number;
}

interface RegisteredTuner {
  name: string;
  tunables: Map<string, TunableDeclaration>;
  scenarios: Map<number, ScenarioDeclaration>;
}

/** A changed sysctl whose tuner is not loaded (unloaded, or the change is inherited from an earlier run). */
function sysctlDeclaration(rec: ChangeRecord): TunableDeclaration {
  return { name: rec.tunable, namespaced: !rec.ns.global, values: rec.original.length, string: typeof rec.original[0] === 'string' };
}

/** The steps of making a change, each timed: read the old value, record it in the state file, write the new one. */
export type ChangeStep = 'read' | 'state' | 'write';

export class TunableRegistry {
  private readonly tuners = new Map<string, RegisteredTuner>();
  /** tuner -> namespace cookies where an administrator took over. */
  private readonly manual = new Map<string, Set<bigint>>();
  private readonly changeRecords = new Map<string, ChangeRecord>();
  /** Declarations of changed non-sysctl tunables, kept after unregister for rollback. */
  private readonly accessors = new Map<string, TunableDeclaration>();
  private readonly scenarioRecords = new Map<string, ScenarioRecord>();
  /** Serialises read-modify-write of one tunable in one namespace. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private writes = 0;
  private readonly stepTimes: Record<ChangeStep, LatencyWindow> = { read: new LatencyWindow(256), state: new LatencyWindow(256), write: new LatencyWindow(256) };
  /** Takeovers from an earlier run of this boot, re-applied whenever their tuner registers. */
  private readonly inheritedManual = new Map<string, Set<bigint>>();
  /** Restores of non-sysctl tunables an earlier run left behind, run once a tuner declares how to write them. */
  private readonly pendingRestores = new Map<string, Array<(decl: TunableDeclaration) => Promise<void>>>();
  private readonly recordListeners: Array<(event: RecordedEvent) => void> = [];

  constructor(
    private readonly sysctl: SysctlAccess,
    private readonly namespaces: NamespaceLookup,
    private readonly log: Logger,
    private readonly ext: RegistryExtensions = {},
  ) {}

  register(tuner: string, tunables: TunableDeclaration[], scenarios: ScenarioDeclaration[]): void {
    this.tuners.set(tuner, {
      name: tuner,
      tunables: new Map(tunables.map((t) => [t.name, t])),
      scenarios: new Map(scenarios.map((s) => [s.id, s])),
    });
    const inherited = this.inheritedManual.get(tuner);
    if (inherited) this.manual.set(tuner, new Set([...(this.manual.get(tuner) ?? []), ...inherited]));
    for (const decl of tunables) {
      if (!decl.access) continue;
      for (const [key, rec] of this.changeRecords) {
        if (rec.tunable === decl.name && !this.accessors.has(key)) this.accessors.set(key, decl);
      }
      for (const restore of this.pendingRestores.get(decl.name) ?? []) {
        // Under the tunable's lock, so the tuner's own first change waits for it.
        void this.withLock(`${decl.name}@restore`, () => restore(decl));
      }
      this.pendingRestores.delete(decl.name);
    }
  }

  /** A change an earlier run of this boot made and left in place: the summary, rollback and export carry on from it. */
  inherit(ns: Namespace, stored: StoredChange): void {
    const commands = stored.commands;
    this.changeRecords.set(`${stored.tunable}@${ns.cookie}`, {
      tuner: stored.tuner,
      tunable: stored.tunable,
      ns,
      original: [...stored.original],
      current: [...stored.lastSet],
      changes: stored.changes,
      command: commands ? (values) => (sameValues(values, stored.original) ? commands.original : commands.lastSet) : undefined,
      reason: stored.reason,
      scenarios: { ...stored.scenarios },
      first: Date.parse(stored.first),
      last: Date.parse(stored.last),
      inherited: true,
    });
  }

  /** An administrator took this over in an earlier run of this boot: the tuner stays away from it. */
  inheritTakeover(tuner: string, cookie: bigint): void {
    const cookies = this.inheritedManual.get(tuner) ?? new Set<bigint>();
    cookies.add(cookie);
    this.inheritedManual.set(tuner, cookies);
    this.manual.get(tuner)?.add(cookie);
  }

  /** Runs restore once a tuner declares the non-sysctl tunable (it knows how to write it). */
  restoreWhenDeclared(tunable: string, restore: (decl: TunableDeclaration) => Promise<void>): void {
    const list = this.pendingRestores.get(tunable) ?? [];
    list.push(restore);
    this.pendingRestores.set(tunable, list);
  }

  /**
   * An administrator hands tunables back: the tuners that manage `tunable`
   * (or the tuner of that name) tune in that namespace again. Returns their names.
   */
  release(tunerOrTunable: string, cookie: bigint): string[] {
    const released: string[] = [];
    for (const [tuner, cookies] of [...this.manual, ...this.inheritedManual]) {
      const manages = tuner === tunerOrTunable || this.tuners.get(tuner)?.tunables.has(tunerOrTunable);
      if (manages && cookies.delete(cookie) && !released.includes(tuner)) released.push(tuner);
    }
    return released;
  }

  /** Forgets a tuner's declarations; its change records stay for the summary and rollback. */
  unregister(tuner: string): void {
    this.tuners.delete(tuner);
    this.manual.delete(tuner);
  }

  declarations(): Array<{ tuner: string; tunable: TunableDeclaration }> {
    return [...this.tuners.values()].flatMap((t) => [...t.tunables.values()].map((tunable) => ({ tuner: t.name, tunable })));
  }

  state(tuner: string, cookie: bigint): TunerNsState {
    return this.manual.get(tuner)?.has(cookie) ? 'manual' : 'active';
  }

  /** Namespaces where the tuner is disabled because someone else wrote its sysctls. */
  manualNamespaces(tuner: string): bigint[] {
    return [...(this.manual.get(tuner) ?? [])];
  }

  /** Drops per-namespace state for a namespace that no longer exists. */
  forgetNamespace(cookie: bigint): void {
    for (const cookies of this.manual.values()) cookies.delete(cookie);
    for (const cookies of this.inheritedManual.values()) cookies.delete(cookie);
  }

  /** Hears every change written and action recorded, after it is logged. */
  onRecord(listener: (event: RecordedEvent) => void): void {
    this.recordListeners.push(listener);
  }

  get writeCount(): number {
    return this.writes;
  }

  /**
   * How long the recent changes took, per step (ns): reading the old value,
   * recording the change in the state file (written atomically before the
   * change, so that a crash cannot lose the original; synced after, off this
   * path, see state.ts) and writing the value.
   * The daemon's part of a reaction, after its handler has decided.
   */
  get changeTimings(): Record<ChangeStep, LatencyWindow> {
    return this.stepTimes;
  }

  changes(): ChangeRecord[] {
    return [...this.changeRecords.values()];
  }

  scenarios(): ScenarioRecord[] {
    return [...this.scenarioRecords.values()];
  }

  async get(tuner: string, tunable: string, cookie?: bigint): Promise<SysctlValue[]> {
    const decl = this.declaration(tuner, tunable);
    const ns = await this.namespaceFor(decl, cookie);
    if (!ns) throw new Error(`network namespace cookie ${cookie} no longer exists`);
    return readTunable(this.sysctl, decl, ns);
  }

  /** Returns true when the value was written. Never throws: failures are logged. */
  async set(tuner: string, change: ChangeRequest): Promise<boolean> {
    let decl: TunableDeclaration;
    let scenario: ScenarioDeclaration;
    try {
      decl = this.declaration(tuner, change.tunable);
      scenario = this.scenario(tuner, change.scenario);
      if (change.values.length !== decl.values) {
        throw new Error(`'${decl.name}' takes ${decl.values} value(s), tuner passed ${change.values.length}`);
      }
    } catch (err) {
      this.log.error(`tuner '${tuner}': rejected change: ${errorText(err)}`);
      return false;
    }
    const ns = await this.namespaceFor(decl, change.netnsCookie);
    if (!ns) {
      this.log.debug(`tuner '${tuner}': not changing '${decl.name}': namespace cookie ${change.netnsCookie} is gone`);
      return false;
    }
    if (this.state(tuner, ns.cookie) === 'manual') {
      this.log.info(`Skipping update of '${decl.name}' ; tuner '${tuner}' is disabled in netns (cookie ${ns.cookie})`);
      return false;
    }
    const key = `${decl.name}@${ns.cookie}`;
    return this.withLock(key, () => this.apply(tuner, decl, scenario, ns, change));
  }

  /**
   * An action a tuner took itself (no sysctl written): logged with the same
   * scenario and reason lines as a change and counted for the summary. It
   * has no original value, so rollback and replication leave it out.
   */
  async action(tuner: string, action: ActionRecord): Promise<boolean> {
    let decl: TunableDeclaration;
    let scenario: ScenarioDeclaration;
    try {
      decl = this.declaration(tuner, action.tunable);
      scenario = this.scenario(tuner, action.scenario);
    } catch (err) {
      this.log.error(`tuner '${tuner}': rejected action: ${errorText(err)}`);
      return false;
    }
    const ns = await this.namespaceFor(decl, action.netnsCookie);
    if (!ns) {
      this.log.debug(`tuner '${tuner}': not recording '${action.reason}': namespace cookie ${action.netnsCookie} is gone`);
      return false;
    }
    if (this.ext.advice) {
      this.ext.advice.action({ tuner, decl, scenario, ns, reason: action.reason });
    } else {
      const fields = changeFields({ tuner, tunable: decl.name, scenario: scenario.name, netnsCookie: ns.cookie });
      this.log.info(`Scenario '${scenario.name}' occurred for tunable '${decl.name}' in ${nsDescription(ns)}. ${scenario.description}`, fields);
      this.log.info(`Due to ${action.reason}`, fields);
    }
    this.countScenario(tuner, decl, scenario, ns);
    this.notify({ kind: 'action', tuner, tunable: decl.name, scenario, ns });
    return true;
  }

  private async apply(
    tuner: string,
    decl: TunableDeclaration,
    scenario: ScenarioDeclaration,
    ns: Namespace,
    change: ChangeRequest,
  ): Promise<boolean> {
    let old: SysctlValue[];
    const t0 = process.hrtime.bigint();
    try {
      old = await readTunable(this.sysctl, decl, ns);
    } catch (err) {
      this.log.error(`tuner '${tuner}': cannot read '${decl.name}' in ${nsDescription(ns)} (cookie ${ns.cookie}): ${errorText(err)}`);
      return false;
    }
    if (sameValues(old, change.values)) return false;
    if (this.ext.advice) {
      // Advisory mode: the current value is left alone, so advice is always relative to what the kernel really has.
      this.ext.advice.change({ tuner, decl, scenario, ns, reason: change.reason, from: old, to: change.values });
      this.countScenario(tuner, decl, scenario, ns);
      return false;
    }
    const t1 = process.hrtime.bigint();
    try {
      await this.ext.state?.beforeChange({
        ns,
        tuner,
        tunable: decl.name,
        scenario,
        reason: change.reason,
        old,
        values: change.values,
        command: decl.access?.command.bind(decl.access),
      });
    } catch (err) {
      this.log.error(`tuner '${tuner}': not changing '${decl.name}' in ${nsDescription(ns)}: ${errorText(err)}`);
      return false;
    }
    const t2 = process.hrtime.bigint();
    try {
      await writeTunable(this.sysctl, decl, ns, change.values);
    } catch (err) {
      this.ext.state?.changeFailed(ns, decl.name);
      this.log.error(
        `tuner '${tuner}': failed to change '${decl.name}' from (${formatSysctlValues(old)}) to ` +
          `(${formatSysctlValues(change.values)}) in ${nsDescription(ns)} (cookie ${ns.cookie}): ${errorText(err)}; ` +
          'the value is unchanged and the tuner carries on',
      );
      return false;
    }
    this.writes++;
    this.stepTimes.read.add(Number(t1 - t0));
    this.stepTimes.state.add(Number(t2 - t1));
    this.stepTimes.write.add(Number(process.hrtime.bigint() - t2));
    const labels = decl.labels ? `(${decl.labels.join(' ')})` : '';
    const fields = changeFields({
      tuner,
      tunable: decl.name,
      scenario: scenario.name,
      netnsCookie: ns.cookie,
      old: formatSysctlValues(old),
      new: formatSysctlValues(change.values),
    });
    this.log.info(`Scenario '${scenario.name}' occurred for tunable '${decl.name}' in ${nsDescription(ns)}. ${scenario.description}`, fields);
    this.log.info(
      `Due to ${change.reason} change ${decl.name}${labels} from (${formatSysctlValues(old)}) -> (${formatSysctlValues(change.values)})`,
      fields,
    );
    this.record(tuner, decl, scenario, ns, old, change.values, change.reason);
    return true;
  }

  private record(
    tuner: string,
    decl: TunableDeclaration,
    scenario: ScenarioDeclaration,
    ns: Namespace,
    old: SysctlValue[],
    values: SysctlValue[],
    reason: string,
  ): void {
    const changeKey = `${decl.name}@${ns.cookie}`;
    const now = Date.now();
    const rec = this.changeRecords.get(changeKey) ?? {
      tuner,
      tunable: decl.name,
      ns,
      original: old,
      current: [],
      changes: 0,
      command: decl.access?.command.bind(decl.access),
      reason,
      scenarios: {},
      first: now,
      last: now,
    };
    rec.current = [...values];
    rec.changes++;
    rec.reason = reason;
    rec.last = now;
    rec.scenarios[scenario.name] = (rec.scenarios[scenario.name] ?? 0) + 1;
    this.changeRecords.set(changeKey, rec);
    this.accessors.set(changeKey, decl);
    this.countScenario(tuner, decl, scenario, ns);
    this.notify({ kind: 'change', tuner, tunable: decl.name, scenario, ns });
  }

  private notify(event: RecordedEvent): void {
    for (const listener of this.recordListeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.error(`record listener failed: ${errorText(err)}; the change itself is made and logged`);
      }
    }
  }

  private countScenario(tuner: string, decl: TunableDeclaration, scenario: ScenarioDeclaration, ns: Namespace): void {
    const scenarioKey = `${tuner}|${scenario.id}|${decl.name}|${ns.global}`;
    const counted = this.scenarioRecords.get(scenarioKey);
    if (counted) counted.count++;
    else this.scenarioRecords.set(scenarioKey, { tuner, tunable: decl.name, scenario, global: ns.global, count: 1 });
    this.ext.state?.scenarioOccurred(ns, tuner, decl.name, scenario);
  }

  /**
   * Someone other than bpftune wrote a sysctl: every tuner that manages it
   * stops tuning in that namespace (and only there).
   */
  externalWrite(write: ExternalWrite): string[] {
    const dotted = write.sysctl.split('/').join('.');
    const disabled: string[] = [];
    for (const t of this.tuners.values()) {
      if (!t.tunables.has(dotted)) continue;
      const cookies = this.manual.get(t.name) ?? new Set<bigint>();
      if (cookies.has(write.netnsCookie)) continue;
      cookies.add(write.netnsCookie);
      this.manual.set(t.name, cookies);
      disabled.push(t.name);
      const state = this.ext.state;
      if (state) {
        const takeover = { tuner: t.name, sysctl: write.sysctl, pid: write.pid, command: write.command, at: new Date().toISOString() };
        // Written at once (a restart must not override the administrator); a failure is logged by the store.
        void this.namespaces.resolve(write.netnsCookie).then((ns) => (ns ? state.takeover(ns, takeover) : undefined));
      }
      const shown = write.sysctl.startsWith('net/') ? write.sysctl.slice('net/'.length) : dotted;
      this.log.info(
        `pid ${write.pid}, cmd '${write.command}' modified sysctl '${shown}' that tuner '${t.name}' uses; ` +
          `disabling '${t.name}' for namespace cookie ${write.netnsCookie}`,
      );
      this.log.debug(`setting state of netns (cookie ${write.netnsCookie}) to manual for '${t.name}'`);
    }
    return disabled;
  }

  /** Restores original values everywhere bpftune changed them, unless an administrator has since taken over. */
  async rollback(): Promise<void> {
    for (const rec of this.changeRecords.values()) {
      if (this.state(rec.tuner, rec.ns.cookie) === 'manual') {
        this.log.info(`Not rolling back '${rec.tunable}' in ${nsDescription(rec.ns)} (cookie ${rec.ns.cookie}): an administrator has changed it since`);
        continue;
      }
      const ns = rec.ns.global ? rec.ns : await this.namespaces.resolve(rec.ns.cookie);
      if (!ns) {
        this.log.info(`Not rolling back '${rec.tunable}': namespace cookie ${rec.ns.cookie} no longer exists`);
        continue;
      }
      const decl = this.accessors.get(`${rec.tunable}@${rec.ns.cookie}`) ?? (rec.command ? undefined : sysctlDeclaration(rec));
      if (!decl) {
        this.log.info(`Not rolling back '${rec.tunable}': no loaded tuner knows how to write it; restore it by hand: ${rec.command?.(rec.original)}`);
        continue;
      }
      try {
        if (decl.access || rec.inherited) {
          // Nothing reports writes to a non-sysctl tunable (e.g. `ip ntable change`), nor writes made while no bpftune ran, so look.
          const now = await readTunable(this.sysctl, decl, ns);
          if (!sameValues(now, rec.current)) {
            this.log.info(
              `Not rolling back '${rec.tunable}' in ${nsDescription(ns)}: it is (${formatSysctlValues(now)}), not the ` +
                `(${formatSysctlValues(rec.current)}) bpftune set, so someone else has changed it since`,
            );
            continue;
          }
        }
        await writeTunable(this.sysctl, decl, ns, rec.original);
        if (!decl.access) {
          // The reference's line (operators grep for it); ours below also names the namespace.
          this.log.info(
            `Rolling back sysctl values for '${rec.tunable}' from (${spacedValues(rec.current)}) to original values (${spacedValues(rec.original)})...`,
          );
        }
        this.log.info(
          `Rolled back '${rec.tunable}' in ${nsDescription(ns)} from (${formatSysctlValues(rec.current)}) -> (${formatSysctlValues(rec.original)})`,
        );
        rec.current = [...rec.original];
      } catch (err) {
        this.log.error(
          `rollback of '${rec.tunable}' in ${nsDescription(ns)} (cookie ${ns.cookie}) failed: ${errorText(err)}; ` +
            `restore it by hand: ${rec.command ? rec.command(rec.original) : `sysctl -w ${rec.tunable}="${formatSysctlValues(rec.original)}"`}`,
        );
      }
    }
  }

  private declaration(tuner: string, tunable: string): TunableDeclaration {
    const t = this.tuners.get(tuner);
    if (!t) throw new Error(`tuner '${tuner}' is not registered`);
    const decl = t.tunables.get(tunable);
    if (!decl) throw new Error(`tuner '${tuner}' did not declare tunable '${tunable}'`);
    return decl;
  }

  private scenario(tuner: string, id: number): ScenarioDeclaration {
    const s = this.tuners.get(tuner)?.scenarios.get(id);
    if (!s) throw new Error(`tuner '${tuner}' did not declare scenario ${id}`);
    return s;
  }

  private async namespaceFor(decl: TunableDeclaration, cookie: bigint | undefined): Promise<Namespace | undefined> {
    if (!decl.namespaced || cookie === undefined || cookie === 0n || cookie === this.namespaces.global.cookie) {
      return this.namespaces.global;
    }
    return this.namespaces.resolve(cookie);
  }

  private async withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}
