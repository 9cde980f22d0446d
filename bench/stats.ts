/** Summary statistics for benchmark samples (pure; unit-tested in stats.test.ts). */

/** Linear-interpolated quantile (q in [0, 1]), the usual definition for IQRs; NaN for no samples. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * Nearest-rank percentile (p in [0, 100]), as the daemon's LatencyWindow
 * computes it, so that the suite's end-to-end and the daemon's internal
 * latencies are ranked the same way.
 */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function formatBytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

export function formatMbit(bitsPerSecond: number): string {
  return `${(bitsPerSecond / 1e6).toFixed(0)} Mbit/s`;
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e4 ? `${(ns / 1e3).toFixed(0)} us` : `${ns.toFixed(0)} ns`;
}
