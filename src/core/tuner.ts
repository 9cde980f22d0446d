/**
 * The tuner contract. Built-in tuners (src/tuners/<name>/) and third-party
 * plugins (a directory holding index.js and <name>.bpf.o) implement the same
 * interface: they declare tunables and scenarios as data, and make every
 * change through ctx.set(), never by writing /proc/sys themselves.
 */
import type { NativeMap } from './native';
import type { Logger } from './log';
import type { SysctlValue } from './sysctl-values';
import type { TunerEvent } from './event';
import type { Namespace } from './netns';

export type { TunerEvent } from './event';
export type { SysctlValue } from './sysctl-values';
export type { Namespace } from './netns';

export interface TunableDeclaration {
  /** Dotted sysctl name, e.g. "net.ipv4.tcp_rmem". */
  name: string;
  /** Whether the kernel keeps a value per network namespace. */
  namespaced: boolean;
  /** How many values the sysctl holds (tcp_rmem: 3). */
  values: number;
  /** A string tunable (tcp_congestion_control) rather than numbers. */
  string?: boolean;
  /** Missing on some kernels; the tuner still loads without it. */
  optional?: boolean;
  /** Labels printed in change lines, e.g. ["min", "default", "max"]. */
  labels?: string[];
  /** For a tunable that is not a file under /proc/sys; see TunableAccess. */
  access?: TunableAccess;
}

/**
 * How to read and write a tunable that is not a /proc/sys file (a neighbour
 * table's thresholds, set over netlink). Changes still go through ctx.set():
 * the core checks, logs, records and rolls back as for a sysctl, and prints
 * command() where it would print `sysctl -w`.
 */
export interface TunableAccess {
  read(ns: Namespace): Promise<SysctlValue[]>;
  write(ns: Namespace, values: readonly SysctlValue[]): Promise<void>;
  /** The shell command that sets these values, for the summary and rollback. */
  command(values: readonly SysctlValue[]): string;
}

export interface ScenarioDeclaration {
  id: number;
  name: string;
  description: string;
}

/**
 * A BPF program with fallbacks: the first variant whose attach kind this
 * kernel supports is loaded, the others are not (e.g. a tp_btf program with
 * an fentry fallback for kernels that lack the tracepoint).
 */
export interface ProgramAlternatives {
  hook: string;
  variants: string[];
}

export interface ChangeRequest {
  tunable: string;
  scenario: number;
  /** Namespace the event happened in; omitted or 0n means the global namespace. */
  netnsCookie?: bigint;
  values: SysctlValue[];
  /** Completes "Due to <reason> change ...". */
  reason: string;
}

/**
 * A change a tuner made itself, not through a sysctl (e.g. a BPF program set
 * one socket's congestion control). It is logged with the same scenario and
 * "Due to" lines as a sysctl change and counted in the summary, but there is
 * nothing to write and nothing to roll back.
 */
export interface ActionRecord {
  /** The declared tunable the action stands in for, named in the scenario line. */
  tunable: string;
  scenario: number;
  /** Namespace the action happened in; omitted or 0n means the global namespace. */
  netnsCookie?: bigint;
  /** The whole text after "Due to ", e.g. "loss events for 198.18.1.2, specify 'bbr' congestion control algorithm". */
  reason: string;
}

/** What a tuner adds to `-q report` and to the summary on exit, beyond its sysctl changes. */
export interface TunerReport {
  /** Text lines, without a trailing newline; empty when there is nothing to say yet. */
  text: string;
  /** The same as data, for `-q jreport`. */
  json?: unknown;
}

export interface TunerBpf {
  /** The object's map by name (its own maps, not another tuner's). */
  map(name: string): NativeMap;
  /** Attach kinds of the programs that were loaded, e.g. ["tracepoint", "cgroup"]. */
  readonly attachModes: readonly string[];
}

export interface NamespaceView {
  readonly global: Namespace;
  byCookie(cookie: bigint): Namespace | undefined;
  all(): Namespace[];
  /** Re-reads which namespaces exist (new ones are added, dead ones dropped). */
  rescan(): Promise<void>;
  /** A BPF event saw this namespace alive: map it (evicting a dead one with the same inode). */
  seen(cookie: bigint, inum: number): Promise<Namespace | undefined>;
  /** Cheap check that known namespaces still exist (rescans only if one is gone). */
  verify(): Promise<void>;
}

export interface ExternalWrite {
  /** Sysctl path below /proc/sys ("net/ipv4/tcp_rmem"). */
  sysctl: string;
  netnsCookie: bigint;
  pid: number;
  /** Command line of the writer, or its comm when the process is gone. */
  command: string;
}

/** Learning-rate arithmetic with this daemon's shift (-r), as the BPF side does it. */
export interface LearningRate {
  /** limit >> shift. */
  delta(limit: number): number;
  grow(limit: number): number;
  shrink(limit: number): number;
  nearlyFull(value: number, limit: number): boolean;
}

/**
 * What a tuner gets from the daemon. Plugins need nothing else at run time
 * (they may `import type` from here, but no runtime path into bpftune).
 */
export interface TunerContext {
  readonly name: string;
  readonly log: Logger;
  /** 0..4 (-r). */
  readonly learningRate: number;
  /** 6 - learningRate: grow and "nearly full" are limit >> shift. */
  readonly learningShift: number;
  readonly learning: LearningRate;
  readonly bpf: TunerBpf;
  readonly namespaces: NamespaceView;
  /** Current values of a declared tunable in a namespace (default global). */
  get(tunable: string, netnsCookie?: bigint): Promise<SysctlValue[]>;
  /** The one write path: checks, writes in the namespace, logs, records. */
  set(change: ChangeRequest): Promise<boolean>;
  /**
   * Text of /proc/net/<file> ("netstat", "snmp") as seen inside a namespace
   * (default global): counters a tuner can poll instead of probing.
   */
  readProcNet(file: string, netnsCookie?: bigint): Promise<string>;
  /**
   * Logs and counts an action the tuner took outside the write path (see
   * ActionRecord). Returns false, logging why, when the tunable or scenario is
   * not declared or the namespace is gone.
   */
  recordAction(action: ActionRecord): Promise<boolean>;
  /**
   * Namespaces where an administrator wrote one of this tuner's sysctls, so
   * the tuner must leave them alone; for tuners whose BPF side acts on its
   * own (it has to be told, e.g. through a map).
   */
  manualNamespaces(): bigint[];
  /** Tells the core someone else wrote a sysctl (the sysctl tuner's job). */
  reportExternalWrite(write: ExternalWrite): void;
  /**
   * A timer owned by this tuner: cleared when it is unloaded, never keeps the
   * process alive, and never runs a task again while its last run is unfinished.
   */
  every(intervalMs: number, task: () => Promise<void> | void): void;
}

export interface TunerDefinition {
  name: string;
  description: string;
  /** Object file next to the module; default "<name>.bpf.o". */
  bpfObject?: string;
  tunables: TunableDeclaration[];
  scenarios: ScenarioDeclaration[];
  programAlternatives?: ProgramAlternatives[];
  init?(ctx: TunerContext): Promise<void> | void;
  event?(event: TunerEvent, ctx: TunerContext): Promise<void> | void;
  fini?(ctx: TunerContext): Promise<void> | void;
  /**
   * An administrator wrote one of this tuner's sysctls in that namespace, so
   * the core no longer makes its changes there. For tuners whose BPF side
   * acts by itself (per-socket decisions) and must be told to stand down.
   */
  manual?(netnsCookie: bigint, ctx: TunerContext): Promise<void> | void;
  /** State worth showing an operator (e.g. what the tuner has learned): `-q report`, and the summary on exit. */
  report?(ctx: TunerContext): TunerReport;
}
