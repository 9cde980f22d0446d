/**
 * The queries `bpftune -q` answers: the reference's set (help, tuners,
 * tunables, jtunables, summary, status, jstatus, rollback), computed from the
 * daemon's state at the time of asking.
 */
import { errorText } from '../core/log';
import { formatSysctlValues } from '../core/sysctl-values';
import { VERSION } from '../core/paths';
import { stateQueries } from './state-queries';
import type { DaemonView } from './view';
import type { StrategyStatus } from '../core/strategy';

export interface QueryCaller {
  /** Asked over the root-only Unix socket: may change the daemon's state. */
  privileged: boolean;
}

export interface Query {
  description: string;
  /** args: the words after the query's name ("report tcp_conn" -> ["tcp_conn"]). */
  run(args?: string[], caller?: QueryCaller): Promise<string>;
}

export type QueryTable = Map<string, Query>;

function us(ns: number | undefined): number | null {
  return ns === undefined ? null : Math.round(ns / 1000);
}

/** A latency window's percentiles in microseconds, as status and jstatus give them. */
function usPercentiles(w: { p50: number | undefined; p99: number | undefined; samples: number }) {
  return { p50: us(w.p50), p99: us(w.p99), samples: w.samples };
}

/** A tuner's strategies as jstatus gives them: times in seconds, scores from the last evaluation. */
function strategyState(s: StrategyStatus) {
  const now = Date.now();
  const seconds = (ms: number) => Math.round(ms / 1000);
  return {
    current: s.current,
    runningSeconds: seconds(now - s.since),
    nextEvaluationSeconds: Math.max(0, seconds(s.nextEvaluation - now)),
    evaluations: s.evaluations,
    switches: s.switches,
    lastDecision: s.lastDecision ?? null,
    strategies: s.strategies.map((r) => ({
      name: r.name,
      description: r.description,
      timeoutSeconds: r.timeoutMs / 1000,
      programs: r.programs ?? null,
      runs: r.runs,
      score: r.score?.score ?? null,
      samples: r.score?.samples ?? 0,
      basis: r.score?.basis ?? null,
      error: r.error ?? null,
    })),
  };
}

function strategyLines(s: ReturnType<typeof strategyState>): string[] {
  const evaluated = s.evaluations ? `${s.evaluations} evaluations, ${s.switches} switches` : 'not evaluated yet';
  return [
    `  strategy '${s.current}' running ${s.runningSeconds} s, next evaluation in ${s.nextEvaluationSeconds} s (${evaluated})`,
    ...s.strategies.map((r) => {
      const score = r.error ? r.error : r.score === null ? 'not measured' : `score ${r.score.toFixed(3)} from ${r.samples} samples${r.basis ? ` (${r.basis})` : ''}`;
      return `  ${r.name === s.current ? '*' : ' '} ${r.name.padEnd(20)} ${score}; ran ${r.runs} times`;
    }),
  ];
}

export function createQueries(daemon: DaemonView): QueryTable {
  const table: QueryTable = new Map();
  const add = (name: string, description: string, run: (args: string[]) => Promise<string> | string) =>
    table.set(name, { description, run: async (args = []) => run(args) });

  /** Reports of the tuners named in args (all that have one when none is named). */
  const reports = (args: string[]) => {
    const all = daemon.reports();
    const unknown = args.filter((name) => !all.some((r) => r.tuner === name));
    if (unknown.length) {
      const known = all.map((r) => r.tuner).join(', ') || 'none';
      throw new Error(`no report from tuner(s) ${unknown.join(', ')}; tuners with a report: ${known}`);
    }
    return args.length ? all.filter((r) => args.includes(r.tuner)) : all;
  };

  const tunerStates = () =>
    daemon.tuners().map((t) => ({
      name: t.name,
      description: t.description,
      state: t.manualNamespaces.includes(daemon.namespaces.global.cookie) ? 'manual' : 'active',
      manualNamespaces: t.manualNamespaces.map(String),
      attachModes: t.attachModes,
      programs: t.programs,
      events: t.events,
      eventErrors: t.eventErrors,
      eventLatencyUs: usPercentiles(t.latency),
      source: t.source,
      ...(t.strategies ? { strategy: strategyState(t.strategies) } : {}),
    }));

  const tunableRows = async () =>
    Promise.all(
      daemon.tunables().map(async ({ tuner, name, namespaced }) => {
        let values: string;
        try {
          values = formatSysctlValues(await daemon.tunableValues(tuner, name));
        } catch (err) {
          values = `unavailable (${errorText(err)})`;
        }
        return { name, tuner, namespaced, values };
      }),
    );

  const status = () => {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const steps = daemon.changeTimings();
    return {
      version: VERSION,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - daemon.startedAt) / 1000),
      learningRate: daemon.learningRate,
      cgroup: daemon.cgroupPath,
      libdirs: daemon.libdirs(),
      rssBytes: mem.rss,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      changes: daemon.writeCount(),
      changeStepsUs: { read: usPercentiles(steps.read), state: usPercentiles(steps.state), write: usPercentiles(steps.write) },
      namespaces: daemon.namespaces.all().map((n) => ({ cookie: String(n.cookie), global: n.global, path: n.path })),
      tuners: tunerStates(),
    };
  };

  add('help', 'list the queries and what each answers', () =>
    [...table.entries()].map(([name, q]) => `${name.padEnd(10)} ${q.description}`).join('\n') + '\n',
  );
  add('tuners', 'each tuner, its state (active, or manual where an administrator took over) and attach modes', () =>
    tunerStates()
      .map((t) => {
        const manual = t.manualNamespaces.length ? `; manual in netns cookie ${t.manualNamespaces.join(', ')}` : '';
        return `tuner '${t.name}': ${t.state} (${t.attachModes.join(', ') || 'no programs'})${manual} - ${t.description}`;
      })
      .join('\n') + '\n',
  );
  add('tunables', 'each tunable a tuner manages, with its current global value', async () =>
    (await tunableRows())
      .map((r) => `${r.name.padEnd(40)} ${r.tuner.padEnd(14)} ${r.namespaced ? 'per-netns' : 'global   '} ${r.values}`)
      .join('\n') + '\n',
  );
  add('jtunables', 'tunables as JSON', async () => JSON.stringify(await tunableRows()) + '\n');
  add('summary', 'the changes made so far and how to replicate them', () => daemon.summary());
  add('status', 'daemon status: uptime, memory, tuners, namespaces, event latency', () => {
    const s = status();
    const lines = [
      `bpftune ${s.version} pid ${s.pid}, up ${s.uptimeSeconds} s, learning rate ${s.learningRate}`,
      `rss ${(s.rssBytes / 1048576).toFixed(1)} MiB, cpu ${s.cpuSeconds.toFixed(2)} s, ${s.changes} changes made`,
      `change steps p50/p99 us: ${(['read', 'state', 'write'] as const).map((k) => `${k} ${s.changeStepsUs[k].p50 ?? '-'}/${s.changeStepsUs[k].p99 ?? '-'}`).join(', ')}`,
      `namespaces: ${s.namespaces.length} known`,
      ...s.tuners.flatMap((t) => [
        `tuner '${t.name}': ${t.state}, ${t.events} events (${t.eventErrors} failed), ` +
          `event latency p50 ${t.eventLatencyUs.p50 ?? '-'} us p99 ${t.eventLatencyUs.p99 ?? '-'} us`,
        ...(t.strategy ? strategyLines(t.strategy) : []),
      ]),
    ];
    return lines.join('\n') + '\n';
  });
  add('jstatus', 'status as JSON', () => JSON.stringify(status()) + '\n');
  add('report', "what tuners have learned, e.g. tcp_conn's per-host table ('report TUNER' for one)", (args) =>
    reports(args)
      .map((r) => `tuner '${r.tuner}':\n${r.report.text || '(nothing yet)'}\n`)
      .join('') || 'no loaded tuner makes a report\n',
  );
  add('jreport', 'report as JSON, by tuner name', (args) =>
    JSON.stringify(Object.fromEntries(reports(args).map((r) => [r.tuner, r.report.json ?? r.report.text]))) + '\n',
  );
  add('rollback', 'the commands that would roll back every change made so far', () => daemon.rollbackCommands());
  for (const [name, q] of stateQueries(daemon)) table.set(name, q);
  return table;
}
