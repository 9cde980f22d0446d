/**
 * How tcp_conn's strategies are scored, free of BPF and I/O so it can be
 * tested alone. Every measured connection counts for the strategy it was
 * established under (the BPF side records it per socket), whatever runs
 * when it closes.
 *
 * A strategy's score is the mean, over its last connections, of each one's
 * delivery rate divided by the best delivery rate any strategy's
 * connections reached to the same remote host: 1.0 is as good as the best
 * seen on each path. Dividing per host makes strategies comparable when
 * they ran while the machine talked to different hosts (a fast LAN peer
 * must not make whichever strategy ran during its backup win). Min RTT is
 * left out: it is the path's propagation delay, which the algorithm barely
 * moves, while the delivery rate is what the strategies change.
 */
import type { StrategyScore } from '../../core/tuner';

/** Connections kept per strategy: recent enough to follow a changing path, enough to average out noise. */
export const STRATEGY_WINDOW = 256;
/** Fewer connections than this are no basis for a score. */
export const MIN_STRATEGY_SAMPLES = 3;

interface Measured {
  host: string;
  /** Bytes per second. */
  deliveryRate: number;
}

export class StrategySamples {
  private readonly byStrategy = new Map<number, Measured[]>();

  constructor(private readonly window = STRATEGY_WINDOW) {}

  /** A measured connection; one with no delivery rate says nothing and is ignored. */
  record(strategy: number, host: string, deliveryRate: number): void {
    if (!(deliveryRate > 0) || !Number.isFinite(deliveryRate)) return;
    let list = this.byStrategy.get(strategy);
    if (!list) this.byStrategy.set(strategy, (list = []));
    list.push({ host, deliveryRate });
    if (list.length > this.window) list.splice(0, list.length - this.window);
  }

  count(strategy: number): number {
    return this.byStrategy.get(strategy)?.length ?? 0;
  }

  score(strategy: number): StrategyScore | undefined {
    const mine = this.byStrategy.get(strategy) ?? [];
    if (mine.length < MIN_STRATEGY_SAMPLES) return undefined;
    const best = new Map<string, number>();
    for (const list of this.byStrategy.values()) {
      for (const m of list) best.set(m.host, Math.max(best.get(m.host) ?? 0, m.deliveryRate));
    }
    let relative = 0;
    let rate = 0;
    for (const m of mine) {
      relative += m.deliveryRate / (best.get(m.host) ?? m.deliveryRate);
      rate += m.deliveryRate;
    }
    const hosts = new Set(mine.map((m) => m.host)).size;
    const mbit = ((rate / mine.length) * 8) / 1e6;
    return {
      score: relative / mine.length,
      samples: mine.length,
      basis: `mean delivery rate ${mbit.toFixed(1)} Mbit/s, to ${hosts} remote host${hosts === 1 ? '' : 's'}`,
    };
  }
}
