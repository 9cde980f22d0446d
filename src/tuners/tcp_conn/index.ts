/**
 * tcp_conn tuner: per-connection congestion control (see README.md here).
 * The BPF side switches lossy connections to bbr on its own and measures
 * every connection that carried data; this side logs the switches, feeds the
 * measurements to a learner per remote host, and writes each learned host's
 * next algorithm into the map the BPF side reads at connection setup.
 * Three strategies (the core's, see src/core/strategy.ts) take turns and are
 * scored by the delivery rate of the connections each steered: the learner,
 * the loss rule alone, and the kernel's default as the baseline.
 */
import { promises as fs } from 'node:fs';
import { errorText } from '../../core/log';
import type {
  ContextWith,
  StrategyDeclaration,
  StrategyHandle,
  TickResult,
  TunableDeclaration,
  TunerDefinition,
  TunerEvent,
  TunerReport,
  TypedMap,
} from '../../core/tuner';
import { ALGORITHMS, COST_SCALE, RemoteLearner, type Algorithm } from './learner';
import { formatAddress } from './address';
import { StrategySamples } from './strategy-score';
import {
  TcpConnAlg,
  TcpConnCount,
  TcpConnEventData,
  TcpConnScenario,
  TcpConnStrategy,
  maps,
  type TcpConnChoice,
  type TcpConnRemote,
} from './tcp_conn.contract';

const CONGESTION_CONTROL = 'net.ipv4.tcp_congestion_control';
const ALLOWED = { name: 'net.ipv4.tcp_allowed_congestion_control', namespaced: false, values: 1, string: true } satisfies TunableDeclaration;
const THIN_LINEAR_TIMEOUTS = 'net.ipv4.tcp_thin_linear_timeouts';
const AVAILABLE_PATH = '/proc/sys/net/ipv4/tcp_available_congestion_control';
/** Algorithm ids on the BPF side; any other algorithm is TcpConnAlg.OTHER. */
const ALGORITHM_IDS: Record<Algorithm, number> = { reno: TcpConnAlg.RENO, cubic: TcpConnAlg.CUBIC, bbr: TcpConnAlg.BBR };

function algorithmOf(id: number): Algorithm | undefined {
  return ALGORITHMS.find((a) => ALGORITHM_IDS[a] === id);
}

const SPECIFY = 0;
const ALLOW = 1;
const THIN = 2;
/** As many as the BPF choice map holds; the least recently measured host is forgotten first. */
const MAX_REMOTES = 4096;
const EPERM = 1;
/**
 * Takeovers reach the BPF side at once (the manual() hook); this slow sweep
 * only drops namespaces that are gone, whose cookies are never reused.
 */
const MANUAL_SWEEP_MS = 30_000;
/** Connections given thin linear timeouts are logged per namespace this often, however many there were. */
const THIN_LTO_LOG_MS = 5_000;
/** The one program every strategy shares (see tcp_conn_mode in tcp_conn.bpf.c). */
const SOCKOPS_PROGRAM = 'tcp_conn_sockops';
const LEARNED = 'learned-per-host';
/**
 * Scores closer than this (5 % of the best delivery rate per host) are the
 * same: a connection's rate varies more than that from run to run.
 */
const STRATEGY_MARGIN = 0.05;
const MINUTE = 60_000;
/** ... and this often once none was given them for 30 s, until an event from the BPF side (close() logs the rest). */
const QUIET_THIN_LTO_LOG_MS = 30_000;

interface RemoteEntry {
  remote: TcpConnRemote;
  label: string;
  learner: RemoteLearner;
  /** The lowest-cost algorithm last logged for this host. */
  announced: Algorithm | undefined;
}

interface TcpConnState {
  algorithms: Algorithm[];
  choices: TypedMap<TcpConnRemote, TcpConnChoice>;
  manual: TypedMap<bigint, number>;
  /** Cookies in the manual map, as last written. */
  manualCookies: Set<bigint>;
  /** Insertion order is recency order: a measured host is moved to the end. */
  remotes: Map<string, RemoteEntry>;
  counts: TypedMap<number, bigint>;
  thinLto: TypedMap<bigint, bigint>;
  /** Per namespace cookie, the tcp_conn_thin_lto count already logged. */
  thinLtoLogged: Map<bigint, bigint>;
  /** Measured connections by the strategy they were established under. */
  scores: StrategySamples;
  strategy: StrategyHandle;
}

type Context = ContextWith<'recordAction' | 'strategies'>;

function remoteKey(remote: TcpConnRemote): string {
  return `${remote.netnsCookie}|${remote.family}|${remote.addr.join(',')}`;
}

function mbit(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined ? '-' : `${((bytesPerSecond * 8) / 1e6).toFixed(1)} Mbit/s`;
}

function cost(value: number | undefined): string {
  return value === undefined ? '-' : (value / COST_SCALE).toFixed(3);
}

/** Adds an algorithm to the global allowed list: only needed if the kernel refuses bpf_setsockopt for it. */
async function allow(ctx: Context, algorithm: Algorithm): Promise<void> {
  const [current = ''] = await ctx.tunable(ALLOWED).get();
  const allowed = current.split(/\s+/).filter(Boolean);
  if (allowed.includes(algorithm)) return;
  await ctx.set({
    tunable: ALLOWED.name,
    scenario: ALLOW,
    values: [[...allowed, algorithm].join(' ')],
    reason: `the kernel refusing to set '${algorithm}' on connections (EPERM)`,
  });
}

async function onSample(ctx: Context, state: TcpConnState, event: TcpConnEventData): Promise<void> {
  if (event.durationUs === 0n) return;
  const key = remoteKey(event.remote);
  // A connection the learner cannot rate (an algorithm it does not choose among) still scores its strategy.
  const deliveryRate = (Number(event.bytesAcked) * 1e6) / Number(event.durationUs);
  state.scores.record(event.strategy, key, deliveryRate);
  const algorithm = algorithmOf(event.alg);
  if (!algorithm || !state.algorithms.includes(algorithm)) return;
  let entry = state.remotes.get(key);
  if (entry) {
    state.remotes.delete(key);
  } else {
    entry = {
      remote: event.remote,
      label: formatAddress(event.remote.family, event.remote.addr),
      learner: new RemoteLearner(state.algorithms, ctx.learning.shift),
      announced: undefined,
    };
    if (state.remotes.size >= MAX_REMOTES) forgetOldest(state);
  }
  state.remotes.set(key, entry);
  // A connection switched to bbr by the loss rule ran mostly on bbr: the switch comes within a few RTTs of the losses.
  if (!entry.learner.record({ algorithm, minRttUs: event.minRttUs, deliveryRate })) return;
  ctx.log.debug(
    `${entry.label} (netns cookie ${event.remote.netnsCookie}): ${algorithm} min RTT ${event.minRttUs} us, ` +
      `delivery rate ${mbit(deliveryRate)}, ${event.totalRetrans}/${event.segsOut} retransmitted`,
  );
  // The learner learns under every strategy, but chooses only while its own runs.
  if (!entry.learner.ready || state.strategy.current !== LEARNED) return;
  const selection = entry.learner.select();
  state.choices.update(entry.remote, { alg: ALGORITHM_IDS[selection.algorithm] });
  const best = entry.learner.best();
  // Until every algorithm has been tried here the lead is no comparison: a greedy choice says it is one.
  if (best !== undefined && best !== entry.announced && selection.greedy) {
    entry.announced = best;
    const bestCost = entry.learner.rows().find((r) => r.algorithm === best)?.cost;
    await ctx.recordAction({
      tunable: CONGESTION_CONTROL,
      scenario: SPECIFY,
      netnsCookie: event.remote.netnsCookie,
      reason: `lowest learned cost (${cost(bestCost)}) for ${entry.label}, specify '${best}' congestion control algorithm`,
    });
  }
}

/**
 * The BPF side switches connections on its own, so the namespaces where an
 * administrator took over (wrote tcp_congestion_control there) are pushed
 * to it, and it leaves their connections alone.
 */
function syncManual(ctx: Context, state: TcpConnState): void {
  const now = new Set(ctx.manualNamespaces());
  for (const cookie of now) {
    if (state.manualCookies.has(cookie)) continue;
    state.manual.update(cookie, 1);
    state.manualCookies.add(cookie);
    ctx.log.debug(`leaving connections in netns cookie ${cookie} alone: an administrator set their congestion control`);
  }
  for (const cookie of state.manualCookies) {
    if (now.has(cookie)) continue;
    state.manual.delete(cookie);
    state.manualCookies.delete(cookie);
  }
}

/**
 * The BPF side sets TCP_THIN_LINEAR_TIMEOUTS on connections by itself and
 * counts them per namespace; each namespace whose count grew gets one line.
 */
async function logThinLinearTimeouts(ctx: Context, state: TcpConnState): Promise<TickResult> {
  const seen = new Set<bigint>();
  let logged = false;
  for (const cookie of state.thinLto.keys()) {
    const total = state.thinLto.lookup(cookie);
    if (total === undefined) continue;
    seen.add(cookie);
    const grown = total - (state.thinLtoLogged.get(cookie) ?? 0n);
    if (grown <= 0n) continue;
    state.thinLtoLogged.set(cookie, total);
    logged = true;
    await ctx.recordAction({
      tunable: THIN_LINEAR_TIMEOUTS,
      scenario: THIN,
      netnsCookie: cookie,
      reason:
        `retransmissions on ${grown} connection(s), set TCP_THIN_LINEAR_TIMEOUTS on them, ` +
        'so that while they are thin their retransmission timeouts stay linear instead of doubling',
    });
  }
  // Entries the LRU map evicted (namespaces long quiet or gone) start again from 0.
  for (const cookie of state.thinLtoLogged.keys()) if (!seen.has(cookie)) state.thinLtoLogged.delete(cookie);
  return logged ? undefined : 'quiet';
}

/** A tcp_conn_counts slot (enum tcp_conn_count); 0 if it cannot be read. */
function countOf(counts: TypedMap<number, bigint>, slot: number): bigint {
  return counts.lookup(slot) ?? 0n;
}

/**
 * The reference's summary lines, in its format: the thin linear timeouts
 * line (its words, typo included, so greps match) and the CongAlg/Count
 * table ("%20s %20s"), here with the algorithms this kernel offers.
 */
function referenceLines(state: TcpConnState): string[] {
  const lines: string[] = [];
  const thin = countOf(state.counts, TcpConnCount.TCP_CONN_COUNT_THIN_LTO);
  if (thin > 0n) {
    lines.push(
      `set '${THIN_LINEAR_TIMEOUTS}' for ${thin} connections to improve responsiveness of thin flows durning retransmission`,
    );
  }
  lines.push(`${'CongAlg'.padStart(20)} ${'Count'.padStart(20)}`);
  for (const algorithm of state.algorithms) {
    lines.push(`${algorithm.padStart(20)} ${String(countOf(state.counts, ALGORITHM_IDS[algorithm])).padStart(20)}`);
  }
  return lines;
}

function forgetOldest(state: TcpConnState): void {
  const [oldestKey, oldest] = state.remotes.entries().next().value ?? [];
  if (oldestKey === undefined || !oldest) return;
  state.remotes.delete(oldestKey);
  state.choices.delete(oldest.remote);
}

function report(state: TcpConnState): TunerReport {
  const rows = [...state.remotes.values()].flatMap((entry) =>
    entry.learner.rows().map((row) => ({
      address: entry.label,
      netnsCookie: String(entry.remote.netnsCookie),
      algorithm: row.algorithm,
      cost: row.cost === undefined ? null : row.cost / COST_SCALE,
      count: row.selections,
      greedyCount: row.greedy,
      samples: row.samples,
      minRttUs: row.minRttUs ?? null,
      maxDeliveryRateBytesPerSecond: row.maxDeliveryRate === undefined ? null : Math.round(row.maxDeliveryRate),
      text: [
        entry.label.padEnd(26),
        String(entry.remote.netnsCookie).padEnd(12),
        row.algorithm.padEnd(9),
        cost(row.cost).padStart(7),
        String(row.selections).padStart(6),
        String(row.greedy).padStart(7),
        String(row.samples).padStart(8),
        (row.minRttUs === undefined ? '-' : String(row.minRttUs)).padStart(13),
        mbit(row.maxDeliveryRate).padStart(18),
      ].join(' '),
    })),
  );
  const reference = referenceLines(state);
  if (!rows.length) return { text: reference.join('\n'), json: [] };
  const header = [
    'remote host'.padEnd(26),
    'netns cookie'.padEnd(12),
    'algorithm',
    'cost'.padStart(7),
    'count'.padStart(6),
    'greedy'.padStart(7),
    'samples'.padStart(8),
    'min RTT (us)'.padStart(13),
    'max delivery rate'.padStart(18),
  ].join(' ');
  return {
    text: [...reference, header, ...rows.map((r) => r.text)].join('\n'),
    json: rows.map(({ text: _text, ...row }) => row),
  };
}

/**
 * tcp_conn's strategies: one sockops program serves all three (each needs
 * its connections measured at close), so the BPF side reads which runs from
 * tcp_conn_mode at establishment rather than the core swapping programs.
 * The learner runs first (bpftune's default behaviour), the baseline last
 * and shortest, since it costs most where the others help.
 */
function strategies(mode: TypedMap<number, number>, scores: StrategySamples): StrategyDeclaration[] {
  const declare = (id: TcpConnStrategy, name: string, timeoutMs: number, description: string): StrategyDeclaration => ({
    name,
    description,
    timeoutMs,
    programs: [SOCKOPS_PROGRAM],
    evaluate: () => scores.score(id),
    start: () => mode.update(0, id),
  });
  return [
    declare(
      TcpConnStrategy.LEARNED,
      LEARNED,
      20 * MINUTE,
      "Each measured remote host gets the congestion control the per-host learner rates best, after one try of each (5% of choices explore, and one out of the lead is retried at doubling intervals); other hosts' connections switch to bbr on loss",
    ),
    declare(
      TcpConnStrategy.BBR_ON_LOSS,
      'bbr-on-loss',
      10 * MINUTE,
      'Every connection starts on the namespace default and switches to bbr once its retransmissions exceed 1/64 of the segments it sent (the reference rule)',
    ),
    declare(
      TcpConnStrategy.DEFAULT,
      'kernel-default',
      5 * MINUTE,
      'Every connection keeps the namespace default congestion control, measured as the baseline the other strategies must beat',
    ),
  ];
}

async function onEvent(ctx: Context, state: TcpConnState, event: TunerEvent): Promise<void> {
  const conn = TcpConnEventData.decode(event.data);
  const peer = formatAddress(conn.remote.family, conn.peer);
  const algorithm = algorithmOf(conn.alg) ?? 'bbr';
  switch (event.scenarioId) {
    case TcpConnScenario.SAMPLE:
      await onSample(ctx, state, conn);
      return;
    case TcpConnScenario.LOSS:
      if (conn.setsockoptErr === 0) {
        await ctx.recordAction({
          tunable: CONGESTION_CONTROL,
          scenario: SPECIFY,
          netnsCookie: event.netnsCookie,
          reason: `loss events for ${peer}, specify 'bbr' congestion control algorithm`,
        });
        return;
      }
      break;
    case TcpConnScenario.SET_FAILED:
      break;
    default:
      return;
  }
  if (conn.setsockoptErr === -EPERM) {
    await allow(ctx, algorithm);
  } else {
    ctx.log.warn(`could not set '${algorithm}' on a connection to ${peer}: error ${conn.setsockoptErr}; the connection keeps its algorithm`);
  }
}

const tcpConnTuner: TunerDefinition<'recordAction' | 'strategies'> = {
  name: 'tcp_conn',
  description: 'Switches lossy connections to bbr and learns the best congestion control per remote host',
  tunables: [
    // Named in the log line for a per-connection choice; bpftune never writes the namespace default.
    { name: CONGESTION_CONTROL, namespaced: true, values: 1, string: true },
    ALLOWED,
    // Set per connection, never written; declared (as the reference does) so an administrator's write to it is a takeover.
    { name: THIN_LINEAR_TIMEOUTS, namespaced: true, values: 1 },
  ],
  scenarios: [
    {
      id: SPECIFY,
      name: 'specify TCP congestion control algorithm',
      description: 'To optimize TCP performance, a TCP congestion control algorithm was chosen to minimize round-trip time and maximize delivery rate',
    },
    {
      id: ALLOW,
      name: 'allow TCP congestion control algorithm',
      description: 'The kernel refused to set a congestion control algorithm on connections because it is not in the allowed list',
    },
    {
      id: THIN,
      name: 'set TCP thin linear timeouts',
      description:
        'Connections are retransmitting; while one is thin (too few packets in flight for fast retransmit) linear retransmission timeouts recover its losses sooner than doubling ones',
    },
  ],
  abilities: ['recordAction', 'strategies'],

  async create(ctx) {
    const available = (await fs.readFile(AVAILABLE_PATH, 'utf8')).trim().split(/\s+/);
    const algorithms = ALGORITHMS.filter((a) => available.includes(a));
    if (algorithms.length === 0) {
      throw new Error(`none of ${ALGORITHMS.join(', ')} is in ${AVAILABLE_PATH} ('${available.join(' ')}'); build the kernel with one of them`);
    }
    const scores = new StrategySamples();
    const strategy = await ctx.strategies(strategies(ctx.map(maps.tcpConnMode), scores), { margin: STRATEGY_MARGIN });
    const state: TcpConnState = {
      algorithms,
      choices: ctx.map(maps.tcpConnChoices),
      manual: ctx.map(maps.tcpConnManual),
      manualCookies: new Set(),
      remotes: new Map(),
      counts: ctx.map(maps.tcpConnCounts),
      thinLto: ctx.map(maps.tcpConnThinLto),
      thinLtoLogged: new Map(),
      scores,
      strategy,
    };
    syncManual(ctx, state);
    ctx.every(MANUAL_SWEEP_MS, () => syncManual(ctx, state));
    const thinLtoTimer = ctx.every(THIN_LTO_LOG_MS, () => logThinLinearTimeouts(ctx, state), { quietIntervalMs: QUIET_THIN_LTO_LOG_MS });
    ctx.log.debug(`choosing among ${algorithms.join(', ')}`);
    return {
      event: (event) => {
        // Connections are retransmitting or closing: thin ones may be getting linear timeouts.
        thinLtoTimer.wake();
        return onEvent(ctx, state, event);
      },
      report: () => report(state),
      manual: () => syncManual(ctx, state),
      // What the last few seconds set is logged before the maps go.
      close: async () => {
        await logThinLinearTimeouts(ctx, state).catch((err) => ctx.log.warn(`logging thin linear timeouts failed: ${errorText(err)}`));
      },
    };
  },
};

export default tcpConnTuner;
