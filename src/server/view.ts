/**
 * What the query server may see of the daemon: a narrow, read-only view
 * (plus the one privileged action, release), declared here and implemented
 * by the core (daemon.ts). The server imports no daemon internals, so core
 * and server do not import each other (test/import-cycles.test.ts).
 */
import type { Advice } from '../core/advice';
import type { Namespace } from '../core/netns';
import type { SysctlValue } from '../core/sysctl-values';
import type { ChangeRecord, ChangeStep } from '../core/tunables';
import type { TunerReport } from '../core/tuner';
import type { StrategyStatus } from '../core/strategy';

export interface TunerView {
  name: string;
  description: string;
  /** Cookies of the namespaces an administrator took over from it. */
  manualNamespaces: bigint[];
  attachModes: readonly string[];
  /** Sections of the programs loaded. */
  programs: string[];
  events: number;
  eventErrors: number;
  /** ns from BPF posting an event to its handler starting. */
  latency: { p50: number | undefined; p99: number | undefined; samples: number };
  /** The tuner's directory. */
  source: string;
  /** For a tuner that runs strategies: which runs, and each one's last score. */
  strategies?: StrategyStatus;
}

export interface TunableView {
  tuner: string;
  name: string;
  namespaced: boolean;
}

export interface DaemonView {
  readonly startedAt: number;
  readonly learningRate: number;
  readonly cgroupPath: string;
  libdirs(): string[];
  readonly namespaces: {
    readonly global: Namespace;
    all(): Namespace[];
    byCookie(cookie: bigint): Namespace | undefined;
  };
  tuners(): TunerView[];
  /** Each loaded tuner's report, for those that make one. */
  reports(): Array<{ tuner: string; report: TunerReport }>;
  tunables(): TunableView[];
  /** Current global values of a declared tunable. */
  tunableValues(tuner: string, tunable: string): Promise<SysctlValue[]>;
  writeCount(): number;
  /** ns each step of the recent changes took (see TunableRegistry.changeTimings). */
  changeTimings(): Record<ChangeStep, { p50: number | undefined; p99: number | undefined; samples: number }>;
  summary(): string;
  rollbackCommands(): string;
  changes(): ChangeRecord[];
  /** undefined unless in advisory mode. */
  advice(): Advice[] | undefined;
  stateSnapshot(): unknown;
  /**
   * An administrator hands a tuner or tunable back in a namespace: the tuners
   * that tune there again, and the tuners whose stored takeovers were dropped.
   */
  release(what: string, ns: Namespace): Promise<{ tuners: string[]; removed: string[] }>;
  log(line: string): void;
}
