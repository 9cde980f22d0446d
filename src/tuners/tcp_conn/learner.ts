/**
 * The reinforcement learner behind tcp_conn, free of BPF and I/O so it can be
 * tested on its own. One RemoteLearner per remote host (gateway, or the peer
 * when directly connected) learns which congestion control algorithm reaches
 * the best path properties there:
 *
 * - Every measured connection is a sample: the algorithm it used, its min RTT
 *   and its delivery rate.
 * - Each algorithm's estimates of both move towards its samples by the
 *   learning rate: estimate += (sample - estimate) >> shift.
 * - An algorithm's cost is its estimates' relative distance from the best
 *   estimates any algorithm has now on that host (0 = best on both), worked
 *   out when asked. Costed once at record time against the best seen so far,
 *   a sample kept that cost after the path changed: on a long path whose
 *   receive limit tcp_buffer was still raising, every algorithm's first
 *   sample was the best yet and cost 0, and cubic's 20 Mbit/s stood level
 *   with bbr's 180 (the 6.1 VM's long-RTT runs).
 * - Choice is epsilon-greedy: each algorithm is tried once, then the lowest
 *   cost wins, except that 5% of choices explore another algorithm, so a path
 *   that changes is noticed, and an algorithm out of the lead is retried at
 *   growing intervals (RETRY_AFTER), so one unlucky try does not write it off.
 */

export const ALGORITHMS = ['reno', 'cubic', 'bbr'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** Costs are fixed-point (1.000 = COST_SCALE), as in the reference's logs. */
export const COST_SCALE = 1000;
/** Share of choices that explore instead of taking the lowest cost. */
export const EXPLORATION = 0.05;
/**
 * How much lower (COST_SCALE units: 0.1 = 10 % of the best rate or RTT) a
 * challenger's cost must be to take the lead from the algorithm holding it.
 * Where algorithms perform alike, their costs cross with every noisy sample;
 * without a margin the choice (and its log line) would flip with them.
 */
export const LEAD_MARGIN = COST_SCALE / 10;
/**
 * Samples a remote needs before the learner steers it. One: trying each
 * algorithm once is what steering a new host costs, and the sooner it starts,
 * the sooner a host whose best algorithm is not the default gets it (at 3,
 * a 2 s connection over an 80 ms path ran on cubic three times before bbr was
 * tried). A host seen once costs a choice-map entry and no log line: the
 * lead is logged from the first greedy choice, once every algorithm has been
 * tried there.
 */
export const MIN_SAMPLES = 1;

export interface ConnectionSample {
  algorithm: Algorithm;
  minRttUs: number;
  /** Bytes per second. */
  deliveryRate: number;
}

export interface Selection {
  algorithm: Algorithm;
  /** Taken because it had the lowest cost (not to explore). */
  greedy: boolean;
}

export interface AlgorithmRow {
  algorithm: Algorithm;
  /** Fixed-point (COST_SCALE = 1.0); undefined until the first sample. */
  cost: number | undefined;
  samples: number;
  /** How often the learner chose it for this host. */
  selections: number;
  /** How many of those choices were greedy (lowest cost), not exploration. */
  greedy: number;
  minRttUs: number | undefined;
  maxDeliveryRate: number | undefined;
}

interface AlgorithmStats {
  /** Moving estimates of the min RTT and delivery rate its connections reach; undefined until the first sample. */
  rttEstimateUs: number | undefined;
  rateEstimate: number | undefined;
  samples: number;
  selections: number;
  greedy: number;
  minRttUs: number;
  maxDeliveryRate: number;
  /** The host's sample count at this algorithm's last sample, and when it was last chosen. */
  lastSampleAt: number;
  lastChosenAt: number;
}

/** Relative distance of an RTT and a rate (a sample's, or an algorithm's estimates) from the best ones, in COST_SCALE units. */
export function relativeCost(minRttUs: number, deliveryRate: number, bestMinRttUs: number, bestDeliveryRate: number): number {
  const rtt = bestMinRttUs > 0 ? (minRttUs - bestMinRttUs) / bestMinRttUs : 0;
  const rate = bestDeliveryRate > 0 ? (bestDeliveryRate - deliveryRate) / bestDeliveryRate : 0;
  return Math.round(COST_SCALE * (Math.max(0, rtt) + Math.max(0, rate)));
}

/**
 * estimate += (sample - estimate) >> shift, except that the first 2^shift
 * samples are averaged (the n-th moves it by 1/n): at a fixed weight an
 * algorithm's first sample would outweigh its next ones, so one unlucky
 * connection would hold its estimate down for many more. `n` counts this
 * sample; without it, the fixed weight alone.
 */
export function updateEstimate(estimate: number | undefined, sample: number, shift: number, n = Infinity): number {
  if (estimate === undefined) return sample;
  return estimate + (sample - estimate) * Math.max(1 / n, 1 / 2 ** shift);
}

/**
 * Samples to a host, after an algorithm's last one, before an algorithm out
 * of the lead is tried again; the wait doubles with each sample it has. One
 * connection can be unlucky far beyond the path's noise (6.1 VM, 80 ms:
 * bbr's one try delivered 20 Mbit/s where its other connections reached
 * 160-320), and exploration alone would come back to it about once in 40
 * connections. Retries cost a handful of connections per host over its life
 * (4, 8, 16, 32... samples apart: 7 in 1000 connections), fewer than
 * exploration's 50.
 */
export const RETRY_AFTER = 4;

export class RemoteLearner {
  private readonly stats = new Map<Algorithm, AlgorithmStats>();
  private samples = 0;
  /** The algorithm best() returned last: it keeps the lead until beaten by LEAD_MARGIN. */
  private leader: Algorithm | undefined;

  constructor(
    private readonly algorithms: readonly Algorithm[],
    private readonly shift: number,
    private readonly random: () => number = Math.random,
  ) {
    if (algorithms.length === 0) throw new Error('the learner needs at least one congestion control algorithm');
    for (const a of algorithms) {
      this.stats.set(a, {
        rttEstimateUs: undefined,
        rateEstimate: undefined,
        samples: 0,
        selections: 0,
        greedy: 0,
        minRttUs: Infinity,
        maxDeliveryRate: 0,
        lastSampleAt: 0,
        lastChosenAt: -Infinity,
      });
    }
  }

  /** Seen often enough to be worth steering. */
  get ready(): boolean {
    return this.samples >= MIN_SAMPLES;
  }

  get sampleCount(): number {
    return this.samples;
  }

  /**
   * Some algorithm has not been measured here yet and is still owed its try
   * (not chosen yet, or chosen once and its connection not measured yet). One
   * chosen twice without a sample (the kernel refusing it, connections too
   * short to measure) no longer holds the others' comparison open.
   */
  private get trying(): boolean {
    for (const s of this.stats.values()) if (s.samples === 0 && s.selections <= 1) return true;
    return false;
  }

  /** Returns false for an algorithm the learner does not choose among (nothing is recorded). */
  record(sample: ConnectionSample): boolean {
    const stats = this.stats.get(sample.algorithm);
    if (!stats || !(sample.minRttUs > 0) || !(sample.deliveryRate > 0)) return false;
    this.samples++;
    stats.samples++;
    stats.minRttUs = Math.min(stats.minRttUs, sample.minRttUs);
    stats.maxDeliveryRate = Math.max(stats.maxDeliveryRate, sample.deliveryRate);
    stats.lastSampleAt = this.samples;
    stats.rttEstimateUs = updateEstimate(stats.rttEstimateUs, sample.minRttUs, this.shift, stats.samples);
    stats.rateEstimate = updateEstimate(stats.rateEstimate, sample.deliveryRate, this.shift, stats.samples);
    return true;
  }

  /** Each measured algorithm's cost against the best estimates on this host now. */
  private costs(): Map<Algorithm, number> {
    let bestRttUs = Infinity;
    let bestRate = 0;
    for (const s of this.stats.values()) {
      if (s.rttEstimateUs !== undefined) bestRttUs = Math.min(bestRttUs, s.rttEstimateUs);
      if (s.rateEstimate !== undefined) bestRate = Math.max(bestRate, s.rateEstimate);
    }
    const costs = new Map<Algorithm, number>();
    for (const [a, s] of this.stats) {
      if (s.rttEstimateUs !== undefined && s.rateEstimate !== undefined) costs.set(a, relativeCost(s.rttEstimateUs, s.rateEstimate, bestRttUs, bestRate));
    }
    return costs;
  }

  /**
   * The lowest-cost algorithm measured so far, unless the one leading before
   * is within LEAD_MARGIN of it. The lead is held only once every algorithm
   * has had its try: before, whichever led among those tried so far kept
   * its margin over the last one tried, which then had to be 10 % better
   * to count, on paths that got faster between tries too (tcp_buffer
   * raising the receive limit on the 6.1 VM's 80 ms path).
   */
  best(): Algorithm | undefined {
    const costs = this.costs();
    let best: Algorithm | undefined;
    let bestCost = Infinity;
    for (const a of this.algorithms) {
      const cost = costs.get(a);
      if (cost !== undefined && cost < bestCost) {
        best = a;
        bestCost = cost;
      }
    }
    if (this.trying) return best;
    const leaderCost = this.leader === undefined ? undefined : costs.get(this.leader);
    if (leaderCost !== undefined && bestCost + LEAD_MARGIN > leaderCost) return this.leader;
    this.leader = best;
    return best;
  }

  /** Chooses the algorithm for this host's next connections, and counts the choice. */
  select(): Selection {
    const untried = this.algorithms.find((a) => {
      const s = this.stats.get(a);
      return s !== undefined && s.samples === 0 && s.selections === 0;
    });
    const best = this.best();
    const retry = best === undefined ? undefined : this.retryDue(best);
    let selection: Selection;
    if (untried !== undefined || best === undefined) {
      selection = { algorithm: untried ?? this.pick(this.algorithms), greedy: false };
    } else if (retry !== undefined) {
      selection = { algorithm: retry, greedy: false };
    } else if (this.algorithms.length > 1 && this.random() < EXPLORATION) {
      selection = { algorithm: this.pick(this.algorithms.filter((a) => a !== best)), greedy: false };
    } else {
      selection = { algorithm: best, greedy: true };
    }
    const stats = this.stats.get(selection.algorithm);
    if (stats) {
      stats.lastChosenAt = this.samples;
      stats.selections++;
      if (selection.greedy) stats.greedy++;
    }
    return selection;
  }

  /**
   * An algorithm out of the lead whose retry is due (RETRY_AFTER samples to
   * this host since its last sample, doubled for each sample it has), and not
   * already chosen in the last RETRY_AFTER samples (its connection may not be
   * measured yet, or ever). The one waiting longest goes first.
   */
  private retryDue(best: Algorithm): Algorithm | undefined {
    let due: Algorithm | undefined;
    let longest = -1;
    for (const [a, s] of this.stats) {
      if (a === best || s.samples === 0) continue;
      const waited = this.samples - s.lastSampleAt;
      if (waited < RETRY_AFTER * 2 ** (s.samples - 1) || this.samples - s.lastChosenAt < RETRY_AFTER) continue;
      if (waited > longest) {
        due = a;
        longest = waited;
      }
    }
    return due;
  }

  rows(): AlgorithmRow[] {
    const costs = this.costs();
    return this.algorithms.map((algorithm) => {
      const s = this.stats.get(algorithm) as AlgorithmStats;
      return {
        algorithm,
        cost: costs.get(algorithm),
        samples: s.samples,
        selections: s.selections,
        greedy: s.greedy,
        minRttUs: Number.isFinite(s.minRttUs) ? s.minRttUs : undefined,
        maxDeliveryRate: s.maxDeliveryRate > 0 ? s.maxDeliveryRate : undefined,
      };
    });
  }

  private pick(from: readonly Algorithm[]): Algorithm {
    const index = Math.min(from.length - 1, Math.floor(this.random() * from.length));
    return from[index];
  }
}
