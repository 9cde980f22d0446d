/**
 * The tuner contract. Built-in tuners (src/tuners/<name>/) and third-party
 * plugins (a directory holding index.js and <name>.bpf.o) implement the same
 * interface: they declare tunables and scenarios as data, and make every
 * change through ctx.set(), never by writing /proc/sys themselves.
 */
import type { MapSpec, TypedMap } from './typed-map';
import type { Logger } from './log';
import type { SysctlValue } from './sysctl-values';
import type { TunerEvent } from './event';
import type { Namespace } from './netns';
import type { StrategyDeclaration, StrategyHandle, StrategyOptions } from './strategy';
import type { Outcome, ProposedChange } from './change-verifier';
import type { SampledHook } from './hook-sampling';

export type { TunerEvent } from './event';
export type { StrategyDeclaration, StrategyHandle, StrategyOptions, StrategyScore } from './strategy';
export type { SysctlValue } from './sysctl-values';
export type { Namespace } from './netns';
export type { Measure, Outcome, ProposedChange, Reading, UndoVerdict } from './change-verifier';
export type { Codec, MapSpec, TypedMap } from './typed-map';

export interface TunableDeclaration {
  /** Dotted sysctl name, e.g. "net.ipv4.tcp_rmem". */
  readonly name: string;
  /** Whether the kernel keeps a value per network namespace. */
  readonly namespaced: boolean;
  /** How many values the sysctl holds (tcp_rmem: 3). */
  readonly values: number;
  /** A string tunable (tcp_congestion_control) rather than numbers. */
  readonly string?: boolean;
  /** Missing on some kernels; the tuner still loads without it. */
  readonly optional?: boolean;
  /** Labels printed in change lines, e.g. ["min", "default", "max"]. */
  readonly labels?: readonly string[];
  /** For a tunable that is not a file under /proc/sys; see TunableAccess. */
  readonly access?: TunableAccess;
}

/** What ctx.tunable(declaration).get() gives: numbers, or strings for a string tunable. */
export type TunableValues<T extends TunableDeclaration> = T extends { string: true } ? string[] : number[];

/** A declared tunable's current values, typed by its declaration. */
export interface TunableHandle<V> {
  readonly name: string;
  /** In a namespace (default the global one). */
  get(netnsCookie?: bigint): Promise<V>;
}

/**
 * One netlink request/response exchange in a namespace (the addon enters it
 * on a worker thread): the reply's messages up to NLMSG_DONE or the ACK.
 */
export type NetlinkRequest = (ns: Namespace, protocol: number, message: Buffer) => Promise<Buffer[]>;

/**
 * How to read and write a tunable that is not a /proc/sys file (a neighbour
 * table's thresholds, set over netlink). Changes still go through ctx.set():
 * the core checks, logs, records and rolls back as for a sysctl, and prints
 * command() where it would print `sysctl -w`. The core passes what it needs
 * to reach the kernel, so a tuner imports nothing at run time.
 */
export interface TunableAccess {
  read(ns: Namespace, kernel: KernelIo): Promise<SysctlValue[]>;
  write(ns: Namespace, values: readonly SysctlValue[], kernel: KernelIo): Promise<void>;
  /** The shell command that sets these values, for the summary and rollback. */
  command(values: readonly SysctlValue[]): string;
}

/** What the core lends a TunableAccess. */
export interface KernelIo {
  netlink: NetlinkRequest;
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

/** What a conditional program's test may ask about the running kernel. */
export interface KernelFacts {
  /** uname -r, e.g. "6.1.0-57-cloud-amd64". */
  release: string;
  /** Major and minor from the release ([6, 1]); [0, 0] when it cannot be parsed. */
  version: readonly [number, number];
}

/**
 * A BPF program this kernel needs only sometimes: for what its hooks exist
 * but do not do here (6.1's IPv6 UDP receive path never calls the tracepoint
 * 6.18's does). Decided before load; a program not needed is not loaded.
 */
export interface ConditionalProgram {
  program: string;
  /** Why this kernel needs the program (logged when it loads), or undefined when it does not. */
  neededBecause(kernel: KernelFacts): string | undefined;
  /**
   * A `const volatile` in the object set to 1 when the program is loaded, so
   * the programs it stands in for can leave their share to it.
   */
  flag?: string;
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

export interface NamespaceView {
  readonly global: Namespace;
  byCookie(cookie: bigint): Namespace | undefined;
  all(): Namespace[];
  /** A BPF event saw this namespace alive: its Namespace (mapped now if it was new), or undefined if it is already gone. */
  seen(cookie: bigint, inum: number): Promise<Namespace | undefined>;
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
  /** 6 - learning rate (-r): grow and "nearly full" are limit >> shift. */
  readonly shift: number;
  /** limit >> shift. */
  delta(limit: number): number;
  grow(limit: number): number;
  shrink(limit: number): number;
  nearlyFull(value: number, limit: number): boolean;
}

/**
 * What every tuner gets from the daemon. Plugins need nothing else at run
 * time (they may `import type` from here, but no runtime path into bpftune).
 */
/** What a ctx.every() task returns: 'quiet' when it found nothing worth watching closely. */
export type TickResult = void | 'quiet';

export interface TickerOptions {
  /** The interval once the task has been quiet for a while (a multiple of 30 s lets slowed timers share wake-ups). */
  quietIntervalMs?: number;
  /** How long the task must return 'quiet' in a row before it slows down; default 30 s. */
  quietAfterMs?: number;
}

/** A timer from ctx.every(). */
export interface Ticker {
  /** Back to the task's own interval from the next grid point (no-op when not slowed). */
  wake(): void;
  /** The interval the next run is scheduled at. */
  readonly intervalMs: number;
}

export interface TunerContext {
  readonly name: string;
  /** Lines are prefixed with the tuner's name. */
  readonly log: Logger;
  readonly learning: LearningRate;
  readonly namespaces: NamespaceView;
  /** A declared tunable, with values typed by its declaration: `ctx.tunable(TCP_RMEM).get(cookie)` is number[]. */
  tunable<T extends TunableDeclaration>(declaration: T): TunableHandle<TunableValues<T>>;
  /** The one write path: checks, writes in the namespace, logs, records. */
  set(change: ChangeRequest): Promise<boolean>;
  /** One of the object's own maps, through its generated codecs (`maps.<name>` in <tuner>.contract.ts). */
  map<K, V>(spec: MapSpec<K, V>): TypedMap<K, V>;
  /** Attach kinds of the programs that were loaded, e.g. ["tracepoint", "cgroup"]. */
  readonly attachModes: readonly string[];
  /**
   * A timer owned by this tuner: cleared when it is unloaded, never keeps the
   * process alive, and never runs a task again while its last run is unfinished.
   * Runs land on a grid of the interval shared by all tuners, so timers share
   * wake-ups. With `quietIntervalMs`, a task that returns 'quiet' (nothing to
   * watch) for `quietAfterMs` (30 s) in a row runs at that slower interval until it returns
   * anything else or the returned ticker's wake() is called (say, on a BPF event).
   */
  every(intervalMs: number, task: () => Promise<TickResult> | TickResult, options?: TickerOptions): Ticker;
  /**
   * Namespaces where an administrator wrote one of this tuner's sysctls, so
   * the tuner must leave them alone; for tuners whose BPF side acts on its
   * own (it has to be told, e.g. through a map).
   */
  manualNamespaces(): bigint[];
}

/**
 * Rarer abilities: a definition lists the ones it needs in `abilities`, and
 * only those are in the context its create() gets (the type says so, and
 * the core refuses the others at run time).
 */
export interface Abilities {
  /**
   * Text of /proc/net/<file> ("netstat", "snmp") as seen inside a namespace
   * (default global): counters a tuner can poll instead of probing.
   */
  readProcNet(file: string, netnsCookie?: bigint): Promise<string>;
  /** A netlink request in a namespace (rtnetlink: protocol 0). */
  netlink: NetlinkRequest;
  /**
   * Logs and counts an action the tuner took outside the write path (see
   * ActionRecord). Returns false, logging why, when the tunable or scenario is
   * not declared or the namespace is gone.
   */
  recordAction(action: ActionRecord): Promise<boolean>;
  /**
   * Several ways of tuning, one running at a time (see src/core/strategy.ts):
   * the first runs now; when the running one's timeout expires the core
   * evaluates them all and runs the untried one, else the best scoring.
   * Called once, in create(); the core attaches each one's programs, logs
   * every switch and shows them in `-q status`.
   */
  strategies(declarations: readonly StrategyDeclaration[], options?: StrategyOptions): Promise<StrategyHandle>;
  /**
   * No change without a measured benefit: measures the change's benefit and
   * guards over a window, applies it, lets it settle, measures again, and
   * keeps it only if the benefit improved and no guard got worse; otherwise
   * undoes it and holds its key off for a period that doubles with each undo
   * (see change-verifier.ts). Resolves when that is decided; `apply` and
   * `undo` must still change things through ctx.set(). One verifier per
   * tuner; windows from BPFTUNE_VERIFY_* (see verifierTimings()).
   */
  verifyChange(change: ProposedChange): Promise<Outcome>;
  /** Core services only: tells the core someone else wrote a sysctl, so its tuners stand down there. */
  reportExternalWrite(write: ExternalWrite): void;
  /** Core services only: checks that known namespaces still exist (rescans only if one is gone). */
  verifyNamespaces(): Promise<void>;
}
export type Ability = keyof Abilities;
/** The context of a tuner that requested abilities A. */
export type ContextWith<A extends Ability> = TunerContext & Pick<Abilities, A>;

/** A loaded tuner: what create() returns. Its state lives in create()'s closure. */
export interface TunerInstance {
  /** A ring buffer event from this tuner's BPF side. */
  event?(event: TunerEvent): Promise<void> | void;
  /**
   * An administrator wrote one of this tuner's sysctls in that namespace (or
   * handed it back), so the core no longer makes its changes there. For
   * tuners whose BPF side acts by itself and must be told to stand down.
   */
  manual?(netnsCookie: bigint): Promise<void> | void;
  /** State worth showing an operator (e.g. what the tuner has learned): `-q report`, and the summary on exit. */
  report?(): TunerReport;
  /** Unloading: release what the closure holds (timers from ctx.every() are cleared by the core). */
  close?(): Promise<void> | void;
}

export interface TunerDefinition<A extends Ability = never> {
  name: string;
  description: string;
  /** Object file next to the module; default "<name>.bpf.o". */
  bpfObject?: string;
  tunables: readonly TunableDeclaration[];
  scenarios: readonly ScenarioDeclaration[];
  programAlternatives?: readonly ProgramAlternatives[];
  /** Programs loaded only on kernels that need them (see ConditionalProgram). */
  conditionalPrograms?: readonly ConditionalProgram[];
  /** Per-call programs attached only part of the time (see hook-sampling.ts). */
  sampledHooks?: readonly SampledHook[];
  /** The rarer abilities create() needs (see Abilities). */
  abilities?: readonly A[];
  /**
   * A core service (built-in only): loaded whatever -a says, because the
   * daemon depends on it (namespace tracking, takeover detection).
   */
  service?: boolean;
  /** Called once the BPF side is loaded and attached; throwing unloads the tuner. */
  create(ctx: TunerContext & Pick<Abilities, A>): TunerInstance | Promise<TunerInstance>;
}
