/**
 * bpftune's metrics, by Prometheus conventions: prefix bpftune_, base units
 * (seconds, bytes), _total for counters, and labels whose values are
 * bounded by what is loaded and by the namespaces alive now: a namespace's
 * series go when it does. Everything but the change, action and event
 * counts is read from the daemon when a scrape asks, so an unscraped
 * registry costs nothing.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Namespace } from '../core/netns';
import type { RecordedEvent } from '../core/tunables';
import type { MetricsSource, TunableReading } from './source';

/** Event-to-handler-done latencies: tens of microseconds when idle, up to seconds for a handler that writes in many namespaces. */
const HANDLING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5];
/*
 * Tunable values change only when bpftune or an administrator writes them.
 * bpftune's own changes (and namespaces going) drop the cached readings at
 * once; otherwise each one is read at most once a minute, so scrapes and the
 * 15 s textfile do not turn into ~30 sysctl reads each (worker-thread hops
 * that were most of an idle daemon's CPU with metrics on). A value an
 * administrator writes shows within a minute.
 */
const TUNABLE_READ_MIN_AGE_MS = 60_000;

/** "global", the namespace's name under /var/run/netns, or its cookie. */
export function netnsLabel(ns: Namespace): string {
  return ns.global ? 'global' : (ns.name ?? String(ns.cookie));
}

interface ChangeCount {
  tuner: string;
  tunable: string;
  scenario: string;
  count: number;
}

/**
 * prom-client's default collectors (process CPU, memory, fds, heap, GC,
 * version) but its event-loop lag: that one keeps monitorEventLoopDelay's
 * timer running, a wake-up every `eventLoopMonitoringPrecision` ms whether
 * or not anyone scrapes, which was most of the idle daemon's CPU with
 * metrics on. The others compute their values only when a scrape or the
 * textfile asks. lib/metrics/<name> is where collectDefaultMetrics itself
 * loads them from (prom-client 15; the metrics test fails if that moves).
 */
function collectDefaultMetricsWithoutTimers(registry: Registry, prefix: string): void {
  type DefaultCollector = (registry: Registry, config: { prefix: string }) => void;
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === 'eventLoopLag') continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const collector = require(`prom-client/lib/metrics/${name}`) as DefaultCollector;
    collector(registry, { prefix });
  }
}

export class BpftuneMetrics {
  readonly registry = new Registry();
  /** cookie -> label key -> count; a namespace's entry is dropped when it goes. */
  private readonly changeCounts = new Map<bigint, Map<string, ChangeCount>>();
  private readonly actionCounts = new Map<string, { tuner: string; scenario: string; count: number }>();
  private tunableCache: { at: number; readings: Promise<TunableReading[]> } | undefined;
  /** Grows with every change, action and event handled: whether anything but the process metrics moved. */
  activity = 0;
  private readonly activityListeners: Array<() => void> = [];

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    // Prefixed, so that in a node_exporter textfile they do not collide with node_exporter's own process_* series.
    collectDefaultMetricsWithoutTimers(this.registry, 'bpftune_');
    // Gauges named like counters (promtool flags them); the same counts remain without the suffix.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(`bpftune_${name}`);
    }
    const info = new Gauge({ name: 'bpftune_info', help: 'bpftune version, kernel release and mode (full or legacy); always 1', labelNames: ['version', 'kernel', 'mode'], registers });
    info.set({ version: source.version, kernel: source.kernel, mode: source.mode }, 1);

    new Gauge({
      name: 'bpftune_tuner_info',
      help: 'Each loaded tuner and the attach modes of its BPF programs; always 1',
      labelNames: ['tuner', 'attach_modes'],
      registers,
      collect() {
        this.reset();
        for (const t of source.tuners()) this.set({ tuner: t.name, attach_modes: t.attachModes.join(',') || 'none' }, 1);
      },
    });
    new Gauge({
      name: 'bpftune_tuner_state',
      help: 'Tuner state per namespace: 1 for the state it is in (active, manual: an administrator took over, failed: did not load), 0 for the others; namespaces appear where a tuner is not active',
      labelNames: ['tuner', 'netns', 'state'],
      registers,
      collect() {
        this.reset();
        const states = ['active', 'manual', 'failed'];
        const put = (tuner: string, netns: string, current: string) => {
          for (const state of states) this.set({ tuner, netns, state }, state === current ? 1 : 0);
        };
        for (const t of source.tuners()) {
          const manual = new Set(t.manualNamespaces);
          put(t.name, 'global', manual.has(source.global.cookie) ? 'manual' : 'active');
          for (const cookie of manual) {
            const ns = source.namespace(cookie);
            if (ns && !ns.global) put(t.name, netnsLabel(ns), 'manual');
          }
        }
        for (const name of source.failedTuners()) put(name, 'global', 'failed');
      },
    });
    new Gauge({
      name: 'bpftune_namespaces',
      help: 'Network namespaces the daemon knows of, the global one included',
      registers,
      collect() {
        this.set(source.namespaceCount());
      },
    });
    const tunableValue: Gauge = new Gauge({
      name: 'bpftune_tunable_value',
      help: 'Current value of each managed numeric tunable, globally and in each namespace bpftune changed it in; index names the value of a multi-value sysctl (tcp_rmem: min, default, max)',
      labelNames: ['tunable', 'netns', 'index'],
      registers,
      collect: async () => {
        const readings = await this.tunableReadings();
        tunableValue.reset();
        for (const r of readings) {
          r.values.forEach((value, i) => {
            if (typeof value !== 'number') return;
            tunableValue.set({ tunable: r.tunable, netns: netnsLabel(r.ns), index: r.labels?.[i] ?? String(i) }, value);
          });
        }
      },
    });
    const changes: Counter = new Counter({
      name: 'bpftune_changes_total',
      help: 'Tunable changes bpftune made, by tuner, tunable, scenario and namespace',
      labelNames: ['tuner', 'tunable', 'scenario', 'netns'],
      registers,
      collect: () => {
        changes.reset();
        for (const [cookie, counts] of this.changeCounts) {
          const ns = cookie === source.global.cookie ? source.global : source.namespace(cookie);
          if (!ns) continue;
          for (const c of counts.values()) changes.inc({ tuner: c.tuner, tunable: c.tunable, scenario: c.scenario, netns: netnsLabel(ns) }, c.count);
        }
      },
    });
    const actions: Counter = new Counter({
      name: 'bpftune_actions_total',
      help: 'Actions tuners took themselves, outside sysctl writes (e.g. a congestion control set on one socket), by tuner and scenario',
      labelNames: ['tuner', 'scenario'],
      registers,
      collect: () => {
        actions.reset();
        for (const a of this.actionCounts.values()) actions.inc({ tuner: a.tuner, scenario: a.scenario }, a.count);
      },
    });
    new Counter({
      name: 'bpftune_events_total',
      help: 'BPF events delivered to each tuner',
      labelNames: ['tuner'],
      registers,
      collect() {
        this.reset();
        for (const t of source.tuners()) this.inc({ tuner: t.name }, t.events);
      },
    });
    new Counter({
      name: 'bpftune_event_errors_total',
      help: 'BPF events whose tuner handler failed (logged; the event is dropped and the tuner keeps running)',
      labelNames: ['tuner'],
      registers,
      collect() {
        this.reset();
        for (const t of source.tuners()) this.inc({ tuner: t.name }, t.eventErrors);
      },
    });
    const handling = new Histogram({
      name: 'bpftune_event_handling_seconds',
      help: 'Time from a BPF program posting an event to its tuner handler finishing',
      labelNames: ['tuner'],
      buckets: HANDLING_BUCKETS,
      registers,
    });
    const programRuns = new Counter({
      name: 'bpftune_bpf_program_runs_total',
      help: 'Runs of each BPF program, counted by the kernel only while BPF run-time statistics are enabled (kernel.bpf_stats_enabled or a BPF_ENABLE_STATS descriptor); 0 otherwise',
      labelNames: ['tuner', 'program'],
      registers,
    });
    new Counter({
      name: 'bpftune_bpf_program_run_seconds_total',
      help: 'Time spent running each BPF program, counted by the kernel only while BPF run-time statistics are enabled; 0 otherwise',
      labelNames: ['tuner', 'program'],
      registers,
      collect() {
        this.reset();
        programRuns.reset();
        for (const t of source.tuners()) {
          let stats;
          try {
            stats = t.programStats();
          } catch {
            continue; // The tuner is being unloaded.
          }
          for (const p of stats) {
            const labels = { tuner: t.name, program: p.name };
            this.inc(labels, Number(p.runTimeNs) / 1e9);
            programRuns.inc(labels, Number(p.runCount));
          }
        }
      },
    });

    source.onRecord((event) => {
      this.count(event);
      this.noteActivity();
    });
    source.onEventHandled((tuner, seconds) => {
      handling.observe({ tuner }, seconds);
      this.noteActivity();
    });
    source.onNamespaceRemoved((ns) => {
      this.changeCounts.delete(ns.cookie);
      this.tunableCache = undefined;
    });
  }

  private count(event: RecordedEvent): void {
    if (event.kind === 'action') {
      const key = `${event.tuner}|${event.scenario.id}`;
      const a = this.actionCounts.get(key);
      if (a) a.count++;
      else this.actionCounts.set(key, { tuner: event.tuner, scenario: event.scenario.name, count: 1 });
      return;
    }
    const cookie = event.ns.cookie;
    let counts = this.changeCounts.get(cookie);
    if (!counts) {
      counts = new Map<string, ChangeCount>();
      this.changeCounts.set(cookie, counts);
    }
    const key = `${event.tuner}|${event.tunable}|${event.scenario.id}`;
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { tuner: event.tuner, tunable: event.tunable, scenario: event.scenario.name, count: 1 });
    this.tunableCache = undefined;
  }

  /** Hears every change, action and event handled (the textfile writer, to write soon again). */
  onActivity(listener: () => void): void {
    this.activityListeners.push(listener);
  }

  private noteActivity(): void {
    this.activity++;
    for (const listener of this.activityListeners) listener();
  }

  private tunableReadings(): Promise<TunableReading[]> {
    const now = Date.now();
    if (!this.tunableCache || now - this.tunableCache.at >= TUNABLE_READ_MIN_AGE_MS) {
      this.tunableCache = { at: now, readings: this.source.readTunables() };
    }
    return this.tunableCache.readings;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
