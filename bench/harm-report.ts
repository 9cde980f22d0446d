/**
 * The harm matrix's figures, verdicts and Markdown (pure; unit-tested in
 * harm-report.test.ts). A scenario is run without bpftune, with it, under a
 * static throughput profile, and without it again (the control), every
 * round; a figure with bpftune counts as worse only when its runs rank
 * consistently on the harmful side of all the no-daemon runs and by more
 * than MIN_SPREAD (see compare()).
 */

import { median } from './stats';

/** 'reference' (oracle/bpftune) runs only where it can start: in the 6.1 VM of the side-by-side benchmark. */
export const HARM_CONDITIONS = ['none', 'bpftune', 'reference', 'profile', 'control'] as const;
export type HarmCondition = (typeof HARM_CONDITIONS)[number];

export const CONDITION_LABELS: Record<HarmCondition, string> = {
  none: 'no daemon',
  bpftune: 'bpftune',
  reference: 'oracle/bpftune',
  profile: 'tuned network-throughput',
  control: 'no daemon (control)',
};

/** The conditions whose daemon's changes the matrix lists. */
const DAEMON_CONDITIONS: ReadonlySet<HarmCondition> = new Set(['bpftune', 'reference']);

export interface TunableChange {
  tunable: string;
  from: string;
  to: string;
  count: number;
}

export interface HarmRun {
  /** Work per second in the scenario's unit (bits/s for bulk, flows/s for short flows). */
  throughput: number;
  retransmits: number;
  /** The concurrent request/response probe's latency, microseconds (null: no sample). */
  p50Us: number | null;
  p99Us: number | null;
  probeTransactions: number;
  /** Highest TCP memory seen during the run above its value at the start (sockstat's mem, all namespaces), bytes. */
  tcpMemBytes: number;
  /** What the daemon (bpftune or the reference) changed during the run (empty for the other conditions). */
  changes: TunableChange[];
  /** Scenario-specific extras, e.g. backlog drops, connections held. */
  extra: Record<string, number | string>;
}

export interface HarmScenarioResult {
  id: string;
  title: string;
  throughputUnit: 'bit/s' | 'flows/s';
  /** Every run of each condition, in the order they ran (rounds alternate the order of conditions). */
  runs: Partial<Record<HarmCondition, HarmRun[]>>;
  error?: string;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function meanOrNull(xs: Array<number | null>): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return known.length ? mean(known) : null;
}

/**
 * One condition's runs as one: means of the figures, the highest TCP memory,
 * the changes of the run that made the most, and each extra figure listed
 * per run.
 */
export function combineRuns(runs: HarmRun[]): HarmRun | undefined {
  if (!runs.length) return undefined;
  const extra: Record<string, string> = {};
  for (const key of new Set(runs.flatMap((r) => Object.keys(r.extra)))) extra[key] = runs.map((r) => String(r.extra[key] ?? '-')).join(' / ');
  return {
    throughput: mean(runs.map((r) => r.throughput)),
    retransmits: Math.round(mean(runs.map((r) => r.retransmits))),
    p50Us: meanOrNull(runs.map((r) => r.p50Us)),
    p99Us: meanOrNull(runs.map((r) => r.p99Us)),
    probeTransactions: mean(runs.map((r) => r.probeTransactions)),
    tcpMemBytes: Math.max(...runs.map((r) => r.tcpMemBytes)),
    changes: runs.reduce((a, r) => (r.changes.length > a.length ? r.changes : a), [] as TunableChange[]),
    extra,
  };
}

function combined(s: HarmScenarioResult, c: HarmCondition): HarmRun | undefined {
  return combineRuns(s.runs[c] ?? []);
}

export type Direction = 'higher is better' | 'lower is better';

/** The smallest difference counted as worse, however consistent (a p99 from a few hundred probes moves by this much alone). */
export const MIN_SPREAD = 0.1;
/** The rank test's level: worse only if chance ranks the runs this badly at most this often. */
export const ALPHA = 0.05;

export interface Comparison {
  metric: string;
  /** The condition's median over the no-daemon runs' median. */
  ratio: number;
  /** The furthest any no-daemon run (first or control) lies from their median, as a fraction. */
  controlSpread: number;
  /** One-sided rank test: how often chance puts the condition's runs this far on the harmful side of the no-daemon runs. */
  p: number;
  worse: boolean;
}

/** Ways of choosing k of n. */
function choose(n: number, k: number): number {
  let ways = 1;
  for (let i = 0; i < k; i++) ways = (ways * (n - i)) / (i + 1);
  return ways;
}

/** Pairs (condition run, no-daemon run) where the condition's is worse; a tie counts half. */
function worsePairs(noDaemon: number[], runs: number[], direction: Direction): number {
  let u = 0;
  for (const y of runs)
    for (const x of noDaemon) {
      if (y === x) u += 0.5;
      else if (direction === 'higher is better' ? y < x : y > x) u++;
    }
  return u;
}

/** Every way of choosing k of n indices (n small), or a fixed-seed sample of them when there are too many. */
function* labelings(n: number, k: number): Generator<number[]> {
  if (choose(n, k) <= 50_000) {
    const pick = Array.from({ length: k }, (_, i) => i);
    for (;;) {
      yield pick;
      let i = k - 1;
      while (i >= 0 && pick[i] === n - k + i) i--;
      if (i < 0) return;
      pick[i]++;
      for (let j = i + 1; j < k; j++) pick[j] = pick[j - 1] + 1;
    }
  }
  let seed = 0x9e3779b9;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let draw = 0; draw < 20_000; draw++) {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(random() * (n - i));
      [order[i], order[j]] = [order[j], order[i]];
    }
    yield order.slice(0, k);
  }
}

/**
 * One-sided Mann-Whitney test by permutation: of all ways to label the
 * pooled runs, the share whose "condition" runs are at least as worse as
 * the observed ones. Exact (ties included) for the round counts used here.
 */
export function rankTestP(noDaemon: number[], runs: number[], direction: Direction): number {
  const pooled = [...noDaemon, ...runs];
  const observed = worsePairs(noDaemon, runs, direction);
  let atLeast = 0;
  let all = 0;
  for (const pick of labelings(pooled.length, runs.length)) {
    const chosen = new Set(pick);
    const y = pick.map((i) => pooled[i]);
    const x = pooled.filter((_, i) => !chosen.has(i));
    if (worsePairs(x, y, direction) >= observed - 1e-9) atLeast++;
    all++;
  }
  return atLeast / all;
}

/**
 * A condition's runs against the no-daemon runs (the first and the control,
 * pooled: both are no daemon, so together they show the method's own
 * spread). Worse only when both hold:
 * - the runs rank on the harmful side of the no-daemon runs more
 *   consistently than chance would put them, at ALPHA; with too few runs to
 *   reach it, only when every run is worse than every no-daemon run;
 * - the medians differ by more than MIN_SPREAD.
 * A single pooled figure against a single control moved p99 verdicts by
 * 40-57 % with nothing changed (bench/results/harm.md, 2026-12-02); ranks
 * over runs do not let one outlying run decide. Counts (retransmits) get
 * `smoothing` added on both sides, so 0 -> 3 is not an infinite ratio.
 */
export function compare(metric: string, noDaemon: number[], runs: number[], direction: Direction, smoothing = 0): Comparison {
  const base = median(noDaemon) + smoothing;
  const ratio = (median(runs) + smoothing) / base;
  const controlSpread = Math.max(...noDaemon.map((x) => Math.abs((x + smoothing) / base - 1)));
  const p = rankTestP(noDaemon, runs, direction);
  // The smallest p any ranking can give: every run worse than every no-daemon run.
  const fewest = 1 / choose(noDaemon.length + runs.length, runs.length);
  const consistent = p <= Math.max(ALPHA, fewest) + 1e-12;
  const beyondFloor = direction === 'higher is better' ? ratio < 1 - MIN_SPREAD : ratio > 1 + MIN_SPREAD;
  return { metric, ratio, controlSpread, p, worse: consistent && beyondFloor };
}

/** The three figures the issue judges harm by: throughput, p99 RTT under load, retransmits. */
export function harmComparisons(s: HarmScenarioResult, condition: HarmCondition = 'bpftune'): Comparison[] {
  const noDaemon = [...(s.runs.none ?? []), ...(s.runs.control ?? [])];
  const runs = s.runs[condition] ?? [];
  if (!(s.runs.none ?? []).length || !(s.runs.control ?? []).length || !runs.length) return [];
  const out = [
    compare('throughput', noDaemon.map((r) => r.throughput), runs.map((r) => r.throughput), 'higher is better'),
    compare('retransmits', noDaemon.map((r) => r.retransmits), runs.map((r) => r.retransmits), 'lower is better', 1),
  ];
  const p99 = (rs: HarmRun[]) => rs.map((r) => r.p99Us).filter((v): v is number => v !== null);
  if (p99(noDaemon).length && p99(runs).length) out.push(compare('p99 RTT', p99(noDaemon), p99(runs), 'lower is better'));
  return out;
}

/** How a worse figure reads in the table and the findings. */
function describeWorse(c: Comparison): string {
  return `${c.metric} x${c.ratio.toFixed(2)} (p ${c.p.toFixed(3)}; no-daemon runs within ${(c.controlSpread * 100).toFixed(0)} %)`;
}

function formatThroughput(value: number, unit: HarmScenarioResult['throughputUnit']): string {
  return unit === 'bit/s' ? `${(value / 1e6).toFixed(0)} Mbit/s` : `${value.toFixed(0)} flows/s`;
}

const us = (v: number | null) => (v === null ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} us`);
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

export function formatChanges(changes: TunableChange[]): string {
  if (!changes.length) return 'none';
  return changes.map((c) => `${c.tunable} ${c.from} -> ${c.to}${c.count > 1 ? ` (${c.count} steps)` : ''}`).join('; ');
}

function verdictCell(s: HarmScenarioResult, condition: HarmCondition): string {
  if (condition === 'none' || condition === 'control') return '';
  const worse = harmComparisons(s, condition).filter((c) => c.worse);
  if (!worse.length) return 'not worse';
  return `**worse**: ${worse.map(describeWorse).join(', ')}`;
}

function escape(cell: string): string {
  return cell.replace(/\|/g, '\\|');
}

/** One table for the whole matrix: a row per scenario and condition (means over its runs; throughput, retransmits and p99 of each run in brackets). */
export function renderHarmTable(scenarios: HarmScenarioResult[]): string {
  const header = ['scenario', 'condition', 'throughput', 'retransmits', 'probe RTT p50', 'probe RTT p99', 'TCP memory added (max)', 'verdict vs no daemon', 'changes made', 'other'];
  const rows: string[][] = [];
  for (const s of scenarios) {
    if (s.error) rows.push([s.title, '-', 'failed', '', '', '', '', '', '', s.error]);
    for (const c of HARM_CONDITIONS) {
      const all = s.runs[c] ?? [];
      const r = combineRuns(all);
      if (!r) continue;
      const each = (f: (x: HarmRun) => string) => (all.length > 1 ? ` (${all.map(f).join(', ')})` : '');
      rows.push([
        s.title,
        CONDITION_LABELS[c],
        formatThroughput(r.throughput, s.throughputUnit) + each((x) => formatThroughput(x.throughput, s.throughputUnit).split(' ')[0]),
        String(r.retransmits) + each((x) => String(x.retransmits)),
        us(r.p50Us),
        // Per run too: the verdict ranks the runs, not the mean.
        us(r.p99Us) + each((x) => us(x.p99Us)),
        mb(r.tcpMemBytes),
        verdictCell(s, c),
        DAEMON_CONDITIONS.has(c) ? formatChanges(r.changes) : c === 'profile' ? 'tcp_rmem 4096 87380 16777216, tcp_wmem 4096 16384 16777216' : '',
        Object.entries(r.extra)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ]);
    }
  }
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(escape).join(' | ')} |`)].join('\n');
}

/** A sentence per scenario where bpftune did worse than no daemon beyond the control's spread. */
export function harmFindings(scenarios: HarmScenarioResult[]): string[] {
  const out: string[] = [];
  for (const s of scenarios) {
    const worse = harmComparisons(s).filter((c) => c.worse);
    if (!worse.length) continue;
    const changes = formatChanges(combined(s, 'bpftune')?.changes ?? []);
    out.push(
      `**${s.title}**: with bpftune, against no daemon: ${worse.map(describeWorse).join(', ')}; bpftune changed: ${changes}.`,
    );
  }
  return out;
}

/** What the daemon logged as changed: per tunable (and label), the first old and last new value. */
export function parseChanges(log: string): TunableChange[] {
  const byTunable = new Map<string, TunableChange>();
  // "Due to REASON change net.ipv4.tcp_wmem(min default max) from (a b c) -> (d e f)"
  for (const m of log.matchAll(/Due to .*? change ([^\s(]+)(\([^)]*\))? from \(([^)]*)\) -> \(([^)]*)\)/g)) {
    const key = m[1];
    const seen = byTunable.get(key);
    if (seen) {
      seen.to = m[4];
      seen.count++;
    } else byTunable.set(key, { tunable: key, from: m[3], to: m[4], count: 1 });
  }
  return [...byTunable.values()];
}

/** Backlog drops and budget squeezes summed over CPUs, from /proc/net/softnet_stat (hex columns 2 and 3). */
export function parseSoftnet(text: string): { dropped: number; squeezed: number } {
  let dropped = 0;
  let squeezed = 0;
  for (const line of text.trim().split('\n')) {
    const cols = line.trim().split(/\s+/).map((h) => parseInt(h, 16));
    dropped += cols[1] ?? 0;
    squeezed += cols[2] ?? 0;
  }
  return { dropped, squeezed };
}

/** TCP memory in use in bytes, from /proc/net/sockstat's "TCP: ... mem PAGES" (a global counter, not per namespace). */
export function parseSockstatTcpMemory(text: string): number {
  const m = /^TCP:.*\bmem (\d+)/m.exec(text);
  return m ? Number(m[1]) * 4096 : NaN;
}
