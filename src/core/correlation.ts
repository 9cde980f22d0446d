/**
 * Pearson correlation between two series over a sliding window of recent
 * samples. Tuners use it to ask "does raising this limit go together with
 * something getting worse?" (buffer size vs smoothed RTT, netdev_budget vs
 * scheduler wait time). The reference design stops increasing a limit when
 * the correlation exceeds 0.7.
 *
 * Running sums make add() and value() O(1); the window keeps old regimes from
 * dominating once the system has moved on.
 */
export const CORRELATION_THRESHOLD = 0.7;
const DEFAULT_WINDOW = 32;
/** Fewer pairs than this say nothing about a trend. */
export const MIN_CORRELATION_SAMPLES = 4;

export class Correlation {
  private readonly xs: number[] = [];
  private readonly ys: number[] = [];
  private sumX = 0;
  private sumY = 0;
  private sumXX = 0;
  private sumYY = 0;
  private sumXY = 0;

  constructor(readonly window = DEFAULT_WINDOW) {
    if (!Number.isInteger(window) || window < 2) throw new RangeError(`correlation window ${window} must be an integer >= 2`);
  }

  get count(): number {
    return this.xs.length;
  }

  add(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    this.xs.push(x);
    this.ys.push(y);
    this.accumulate(x, y, 1);
    if (this.xs.length > this.window) {
      this.accumulate(this.xs.shift() as number, this.ys.shift() as number, -1);
    }
  }

  /**
   * Correlation coefficient in [-1, 1]; 0 when there are too few samples or
   * one series is constant (no evidence either way).
   */
  value(): number {
    const n = this.xs.length;
    if (n < MIN_CORRELATION_SAMPLES) return 0;
    // Recomputing from the window when variances get tiny avoids the
    // cancellation error that running sums of large values accumulate.
    const varX = n * this.sumXX - this.sumX * this.sumX;
    const varY = n * this.sumYY - this.sumY * this.sumY;
    if (varX <= 0 || varY <= 0) return this.exact();
    const r = (n * this.sumXY - this.sumX * this.sumY) / Math.sqrt(varX * varY);
    if (!Number.isFinite(r) || Math.abs(r) > 1 + 1e-9) return this.exact();
    return Math.max(-1, Math.min(1, r));
  }

  /** True when the two series move together strongly enough to stop increasing. */
  exceeds(threshold = CORRELATION_THRESHOLD): boolean {
    return this.value() > threshold;
  }

  reset(): void {
    this.xs.length = 0;
    this.ys.length = 0;
    this.sumX = this.sumY = this.sumXX = this.sumYY = this.sumXY = 0;
  }

  private accumulate(x: number, y: number, sign: 1 | -1): void {
    this.sumX += sign * x;
    this.sumY += sign * y;
    this.sumXX += sign * x * x;
    this.sumYY += sign * y * y;
    this.sumXY += sign * x * y;
  }

  /** Two-pass computation around the means: slower, numerically safe. */
  private exact(): number {
    const n = this.xs.length;
    const meanX = this.xs.reduce((a, b) => a + b, 0) / n;
    const meanY = this.ys.reduce((a, b) => a + b, 0) / n;
    let cov = 0;
    let vx = 0;
    let vy = 0;
    for (let i = 0; i < n; i++) {
      const dx = (this.xs[i]) - meanX;
      const dy = (this.ys[i]) - meanY;
      cov += dx * dy;
      vx += dx * dx;
      vy += dy * dy;
    }
    if (vx === 0 || vy === 0) return 0;
    return Math.max(-1, Math.min(1, cov / Math.sqrt(vx * vy)));
  }
}
