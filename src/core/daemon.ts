/**
 * The daemon: the one context that owns the registries, the tuner host and
 * the query server, and the order things start and stop in.
 */
import { promises as fs } from 'node:fs';
import { probeAttachKinds, type KindProbe } from './attach-kinds';
import { Mounts, TRACEFS_DIR } from './mounts';
import { TunerHost } from './host';
import { errorText, type Logger } from './log';
import { learningShift } from './learning-rate';
import type { NativeBinding } from './native';
import { NetnsRegistry, procNamespaceSource } from './netns';
import { AdviceBook, adviceText } from './advice';
import { builtinLibdir, probeObjectPath, runDirectory, stateFilePath } from './paths';
import { StateStore } from './state';
import { readBootId } from './state-file';
import { openState } from './state-restore';
import { nativeSysctlAccess } from './sysctl-access';
import { rollbackText, summaryText, type NamedReport } from './summary';
import { supportLevel } from './support-level';
import { strategyTimeoutOverride } from './strategy';
import { samplingSettings } from './hook-sampling';
import { disabledProgramsSetting } from './program-selection';
import { TunableRegistry } from './tunables';
import type { LatencyWindow } from './latency';
import { QueryServer } from '../server/query-server';
import { createQueries } from '../server/queries';
import type { DaemonView } from '../server/view';
import type { MetricsExposition, MetricsOptions } from '../metrics/exposition';

export interface DaemonOptions {
  learningRate: number;
  cgroupPath: string;
  legacy: boolean;
  allow: string[];
  /** Plugin directory (-l); the built-in tuners always load first. */
  libdir: string;
  /** TCP port for queries; 0 picks a free one. */
  port: number;
  rollback: boolean;
  /** --advise: tuners run, and every change becomes advice; nothing is written. */
  advisory?: boolean;
  /** --metrics / --metrics-textfile; absent (the default) loads nothing for metrics. */
  metrics?: MetricsOptions;
}

export class Daemon {
  readonly namespaces: NetnsRegistry;
  readonly tunables: TunableRegistry;
  readonly host: TunerHost;
  readonly state: StateStore;
  /** Set in advisory mode. */
  readonly advice: AdviceBook | undefined;
  readonly startedAt = Date.now();
  private server: QueryServer | undefined;
  private metrics: MetricsExposition | undefined;
  private readonly mounts: Mounts;
  /** sysctls in any namespace: the registry's writes and the start-up restore share it. */
  private readonly sysctl: ReturnType<typeof nativeSysctlAccess>;
  private kindProbes: KindProbe[] | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    readonly nativeBinding: NativeBinding,
    readonly log: Logger,
    readonly options: DaemonOptions,
  ) {
    this.mounts = new Mounts(nativeBinding);
    this.namespaces = new NetnsRegistry(procNamespaceSource(nativeBinding), log);
    this.state = new StateStore(stateFilePath(), { bootId: readBootId(), rollback: options.rollback, advisory: options.advisory === true }, log);
    this.advice = options.advisory ? new AdviceBook(log) : undefined;
    this.sysctl = nativeSysctlAccess(nativeBinding, this.namespaces);
    this.tunables = new TunableRegistry(this.sysctl, this.namespaces, log, {
      state: this.state,
      advice: this.advice,
    });
    this.namespaces.onChange((ns, change) => {
      if (change !== 'removed') return;
      this.tunables.forgetNamespace(ns.cookie);
      this.state.forgetNamespace(ns.cookie);
    });
    this.host = new TunerHost(nativeBinding, this.tunables, this.namespaces, log, {
      learningRate: options.learningRate,
      learningShift: learningShift(options.learningRate),
      cgroupPath: options.cgroupPath,
      legacy: options.legacy,
      allow: options.allow,
      builtinDir: builtinLibdir(),
      probeKinds: () => this.attachKinds(),
      advisory: options.advisory,
      strategyTimeoutMs: strategyTimeoutOverride(),
      hookSampling: samplingSettings(),
      disabledPrograms: disabledProgramsSetting(),
    });
  }

  attachKinds(): KindProbe[] {
    this.kindProbes ??= probeAttachKinds(this.nativeBinding, probeObjectPath(), this.options.cgroupPath);
    return this.kindProbes;
  }

  libdirs(): string[] {
    return [builtinLibdir(), this.options.libdir];
  }

  async start(): Promise<void> {
    const started = process.hrtime.bigint();
    await fs.mkdir(runDirectory(), { recursive: true, mode: 0o755 });
    await this.mounts.ensure('cgroup2', this.options.cgroupPath, 'pass an existing cgroup v2 mount with -c DIR');
    await this.mounts.ensure('tracefs', TRACEFS_DIR, 'tracepoint programs cannot attach without it');
    await this.namespaces.init();
    await openState({
      store: this.state,
      registry: this.tunables,
      namespaces: this.namespaces,
      sysctl: this.sysctl,
      log: this.log,
    });
    if (this.advice) this.log.info('bpftune: advisory mode (--advise): tuners run, nothing is changed; see -q advice');
    this.host.start();
    await this.host.loadDirectories(this.libdirs());
    this.checkAllowList();
    for (const line of (await supportLevel(this.nativeBinding, this.attachKinds(), this.options.legacy)).lines) this.log.info(line);
    this.host.watch(this.libdirs());
    this.server = new QueryServer(createQueries(this.view()), this.log);
    await this.server.listen(this.options.port);
    if (this.options.metrics) {
      // Loaded only when asked for: prom-client costs memory a daemon without metrics should not pay.
      const { startMetrics } = await import('../metrics/exposition');
      const { daemonMetricsSource } = await import('../metrics/source');
      this.metrics = await startMetrics(daemonMetricsSource(this), this.options.metrics, this.log);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const names = this.host.tuners().map((t) => t.definition.name);
    this.log.info(`bpftune: ${names.length} tuners loaded (${names.join(', ')}) in ${ms.toFixed(0)} ms`);
  }

  /**
   * An -a naming no tuner used to load nothing and run on, silently tuning
   * nothing: a script written for another tuner set must fail loudly.
   */
  private checkAllowList(): void {
    const known = this.host.discoveredNames();
    const unknown = this.options.allow.filter((name) => !known.includes(name));
    if (unknown.length) {
      throw new Error(
        `no tuner named ${unknown.map((n) => `'${n}'`).join(', ')} (-a); known tuners: ${known.join(', ')}`,
      );
    }
  }

  /** What the query server sees: read-only, and release. */
  private view(): DaemonView {
    const { host, tunables, namespaces, state } = this;
    return {
      startedAt: this.startedAt,
      learningRate: this.options.learningRate,
      cgroupPath: this.options.cgroupPath,
      libdirs: () => this.libdirs(),
      namespaces: {
        get global() {
          return namespaces.global;
        },
        all: () => namespaces.all(),
        byCookie: (cookie) => namespaces.byCookie(cookie),
      },
      tuners: () =>
        host.tuners().map((t) => ({
          name: t.definition.name,
          description: t.definition.description,
          manualNamespaces: tunables.manualNamespaces(t.definition.name),
          attachModes: t.attachModes,
          programs: t.programs.map((p) => p.section),
          events: t.events,
          eventErrors: t.eventErrors,
          latency: { p50: t.latency.percentile(50), p99: t.latency.percentile(99), samples: t.latency.count },
          source: t.module.dir,
          strategies: t.strategies(),
        })),
      reports: () => host.reports(),
      tunables: () => tunables.declarations().map(({ tuner, tunable }) => ({ tuner, name: tunable.name, namespaced: tunable.namespaced })),
      tunableValues: (tuner, tunable) => tunables.get(tuner, tunable),
      writeCount: () => tunables.writeCount,
      changeTimings: () => {
        const t = tunables.changeTimings;
        const of = (w: LatencyWindow) => ({ p50: w.percentile(50), p99: w.percentile(99), samples: w.count });
        return { read: of(t.read), state: of(t.state), write: of(t.write) };
      },
      summary: () => this.summary(),
      rollbackCommands: () => this.rollbackCommands(),
      changes: () => tunables.changes(),
      advice: () => this.advice?.list(),
      stateSnapshot: () => state.snapshot,
      release: async (what, ns) => {
        const tuners = tunables.release(what, ns.cookie);
        const removed = await state.release(ns, [...new Set([...tuners, what])]);
        for (const tuner of tuners) host.tellManual(tuner, ns.cookie);
        return { tuners, removed: removed.map((t) => t.tuner) };
      },
      log: (line) => this.log.info(line),
    };
  }

  /** reports: the tuners' own reports, taken before they were unloaded (at exit); default now. */
  summary(reports: NamedReport[] = this.host.reports()): string {
    const text = summaryText(this.tunables.scenarios(), this.tunables.changes(), reports);
    // In advisory mode the advice is what there is to summarise.
    return this.advice ? text + adviceText(this.advice.list()) : text;
  }

  rollbackCommands(): string {
    return rollbackText(this.tunables.changes());
  }

  /** Idempotent: the first call does the work, later ones wait for it. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    await this.server?.close().catch((err) => this.log.error(`closing query server: ${errorText(err)}`));
    await this.metrics?.close().catch((err) => this.log.error(`closing metrics: ${errorText(err)}`));
    // Tuners' reports come from their state, which unloading them drops.
    const reports = this.host.reports();
    await this.host.stop();
    if (this.options.rollback) {
      await this.tunables.rollback();
    }
    await this.state.finish();
    for (const line of this.summary(reports).trimEnd().split('\n')) this.log.info(line);
    if (this.options.rollback) {
      for (const line of this.rollbackCommands().trimEnd().split('\n')) this.log.info(line);
    }
    for (const failure of await this.mounts.release()) this.log.warn(`could not unmount ${failure}`);
    this.log.info('bpftune: stopped');
  }
}
