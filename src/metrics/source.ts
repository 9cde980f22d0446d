/**
 * The read-only view of the daemon that metrics are made from, so the
 * metrics module knows nothing of how the core is built: what is loaded,
 * what failed, where an administrator took over, and notifications of
 * changes, actions, handled events and namespaces that are gone.
 */
import * as os from 'node:os';
import type { Daemon } from '../core/daemon';
import type { Namespace } from '../core/netns';
import type { ProgramStats } from '../core/native';
import type { RecordedEvent } from '../core/tunables';
import type { SysctlValue } from '../core/sysctl-values';
import { VERSION } from '../core/paths';

export interface TunerView {
  name: string;
  attachModes: readonly string[];
  events: number;
  eventErrors: number;
  /** Cookies of namespaces where an administrator took over. */
  manualNamespaces: bigint[];
  /** Kernel run-time counters of the tuner's programs (they only advance while BPF statistics are enabled). */
  programStats(): ProgramStats[];
}

export interface TunableReading {
  tunable: string;
  ns: Namespace;
  values: SysctlValue[];
  /** Names of the values (tcp_rmem: min, default, max), when declared. */
  labels?: readonly string[];
}

export interface MetricsSource {
  readonly version: string;
  readonly kernel: string;
  /** "legacy" with -L, else "full". */
  readonly mode: string;
  readonly global: Namespace;
  namespace(cookie: bigint): Namespace | undefined;
  namespaceCount(): number;
  tuners(): TunerView[];
  failedTuners(): string[];
  /** Every managed numeric tunable's current value: globally, and in each live namespace bpftune changed it in. */
  readTunables(): Promise<TunableReading[]>;
  onRecord(listener: (event: RecordedEvent) => void): void;
  onEventHandled(listener: (tuner: string, seconds: number) => void): void;
  onNamespaceRemoved(listener: (ns: Namespace) => void): void;
}

export function daemonMetricsSource(daemon: Daemon): MetricsSource {
  const { host, tunables, namespaces, log } = daemon;
  const read = async (tuner: string, tunable: string, ns: Namespace): Promise<SysctlValue[] | undefined> => {
    try {
      return await tunables.get(tuner, tunable, ns.global ? undefined : ns.cookie);
    } catch (err) {
      // An optional sysctl this kernel lacks, or a namespace that just went away.
      log.debug(`metrics: cannot read '${tunable}' (cookie ${ns.cookie}): ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  };
  return {
    version: VERSION,
    kernel: os.release(),
    mode: daemon.options.legacy ? 'legacy' : 'full',
    get global() {
      return namespaces.global;
    },
    namespace: (cookie) => namespaces.byCookie(cookie),
    namespaceCount: () => namespaces.all().length,
    tuners: () =>
      host.tuners().map((t) => ({
        name: t.definition.name,
        attachModes: t.attachModes,
        events: t.events,
        eventErrors: t.eventErrors,
        manualNamespaces: tunables.manualNamespaces(t.definition.name),
        programStats: () => t.object.programStats(),
      })),
    failedTuners: () => host.failures().map((f) => f.tuner),
    async readTunables() {
      const declared = tunables.declarations().filter(({ tunable }) => tunable.string !== true);
      const byName = new Map(declared.map((d) => [d.tunable.name, d]));
      const wanted: Array<{ tuner: string; tunable: string; ns: Namespace; labels?: readonly string[] }> = declared.map((d) => ({
        tuner: d.tuner,
        tunable: d.tunable.name,
        ns: namespaces.global,
        labels: d.tunable.labels,
      }));
      const readings: TunableReading[] = [];
      for (const rec of tunables.changes()) {
        const d = byName.get(rec.tunable);
        // Dead namespaces are left out: their series must disappear.
        if (!d || rec.ns.global || !d.tunable.namespaced || !namespaces.byCookie(rec.ns.cookie)) continue;
        /*
         * Where the tuner is still active nobody else has written the value
         * (the sysctl tuner would have seen it), so it is what bpftune set:
         * no setns per namespace per scrape. Where an administrator took
         * over, it is read.
         */
        if (tunables.state(d.tuner, rec.ns.cookie) === 'active') readings.push({ tunable: rec.tunable, ns: rec.ns, values: rec.current, labels: d.tunable.labels });
        else wanted.push({ tuner: d.tuner, tunable: rec.tunable, ns: rec.ns, labels: d.tunable.labels });
      }
      await Promise.all(
        wanted.map(async (w) => {
          const values = await read(w.tuner, w.tunable, w.ns);
          if (values) readings.push({ tunable: w.tunable, ns: w.ns, values, labels: w.labels });
        }),
      );
      return readings;
    },
    onRecord: (listener) => tunables.onRecord(listener),
    onEventHandled: (listener) => host.onEventHandled(listener),
    onNamespaceRemoved: (listener) =>
      namespaces.onChange((ns, change) => {
        if (change === 'removed') listener(ns);
      }),
  };
}
