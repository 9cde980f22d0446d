/** The most recent N samples of a latency, for percentiles in status and benchmarks. */
export class LatencyWindow {
  private readonly samples: number[] = [];
  private next = 0;
  /**
   * Sorted copy, kept until the next sample: status and jstatus ask p50 and
   * p99 of every tuner on each call, and between events the answer is the same.
   */
  private sorted: number[] | undefined;

  constructor(private readonly capacity: number) {}

  add(ns: number): void {
    if (this.samples.length < this.capacity) this.samples.push(ns);
    else this.samples[this.next] = ns;
    this.next = (this.next + 1) % this.capacity;
    this.sorted = undefined;
  }

  get count(): number {
    return this.samples.length;
  }

  /** p in [0, 100]; nearest-rank. */
  percentile(p: number): number | undefined {
    if (!this.samples.length) return undefined;
    const sorted = (this.sorted ??= [...this.samples].sort((a, b) => a - b));
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[rank];
  }
}
