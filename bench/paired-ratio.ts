/**
 * The overhead method's statistics (pure; unit-tested in paired-ratio.test.ts).
 * Runs come in interleaved pairs (baseline, treated) that saw the same
 * background load; the ratio of their means is the effect, and a paired
 * bootstrap (pairs resampled whole, so the pairing is kept) gives its
 * confidence interval. The same function over two baseline runs of each
 * pair is the control: the interval the method finds where there is no
 * effect at all.
 */

/** A small seeded generator (mulberry32), so a report's intervals can be recomputed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PairedRatio {
  /** mean(treated) / mean(baseline) over all pairs. */
  ratio: number;
  /** Bootstrap percentile interval of the ratio. */
  low: number;
  high: number;
  confidence: number;
  /** treated[i] / baseline[i], in run order. */
  pairs: number[];
}

export interface BootstrapOptions {
  iterations?: number;
  confidence?: number;
  seed?: number;
}

function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Ratio of means of paired samples with a bootstrap confidence interval.
 * The ratio of means, not the mean of pairwise ratios: a pair whose runs
 * both lost half their CPU to someone else's test weighs what its work
 * weighs, instead of as much as an undisturbed pair.
 */
export function pairedRatio(baseline: readonly number[], treated: readonly number[], options: BootstrapOptions = {}): PairedRatio {
  const n = baseline.length;
  if (treated.length !== n) throw new RangeError(`paired samples differ in length (${n} baseline, ${treated.length} treated)`);
  if (n < 2) throw new RangeError(`a bootstrap needs at least 2 pairs (got ${n})`);
  if ([...baseline, ...treated].some((v) => !Number.isFinite(v) || v <= 0)) throw new RangeError('samples must be finite and positive');
  const iterations = options.iterations ?? 10_000;
  const confidence = options.confidence ?? 0.95;
  const random = seededRandom(options.seed ?? 1);
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const ratios = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    let b = 0;
    let t = 0;
    for (let k = 0; k < n; k++) {
      const i = Math.floor(random() * n);
      b += baseline[i];
      t += treated[i];
    }
    ratios[it] = t / b;
  }
  ratios.sort();
  const tail = (1 - confidence) / 2;
  return {
    ratio: sum(treated) / sum(baseline),
    low: quantileSorted(ratios, tail),
    high: quantileSorted(ratios, 1 - tail),
    confidence,
    pairs: baseline.map((b, i) => treated[i] / b),
  };
}

/**
 * Ratio of medians of two independent samples (treated / baseline) with a
 * bootstrap interval, each sample resampled on its own: for figures that
 * are not paired run by run (a daemon's RSS, idle CPU, reaction time).
 * `pairs` is empty.
 */
export function unpairedMedianRatio(baseline: readonly number[], treated: readonly number[], options: BootstrapOptions = {}): PairedRatio {
  if (baseline.length < 1 || treated.length < 1) throw new RangeError('each sample needs at least one value');
  if ([...baseline, ...treated].some((v) => !Number.isFinite(v) || v <= 0)) throw new RangeError('samples must be finite and positive');
  const iterations = options.iterations ?? 10_000;
  const confidence = options.confidence ?? 0.95;
  const random = seededRandom(options.seed ?? 1);
  const med = (xs: ArrayLike<number>) => {
    const s = Float64Array.from(xs).sort();
    return quantileSorted(s, 0.5);
  };
  const resample = (xs: readonly number[], into: Float64Array) => {
    for (let k = 0; k < xs.length; k++) into[k] = xs[Math.floor(random() * xs.length)];
    return med(into);
  };
  const b = new Float64Array(baseline.length);
  const t = new Float64Array(treated.length);
  const ratios = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) ratios[it] = resample(treated, t) / resample(baseline, b);
  ratios.sort();
  const tail = (1 - confidence) / 2;
  return { ratio: med(treated) / med(baseline), low: quantileSorted(ratios, tail), high: quantileSorted(ratios, 1 - tail), confidence, pairs: [] };
}

/** How far from 1 the control's interval reaches: differences smaller than this the method cannot see. */
export function resolution(control: PairedRatio): number {
  return Math.max(Math.abs(1 - control.low), Math.abs(control.high - 1));
}

export type Verdict = 'costs measurably' | 'no measurable cost' | 'faster (within noise or real)';

/**
 * A cost is measurable when the whole interval lies below 1 and its distance
 * from 1 exceeds the control's reach; otherwise the data cannot tell it
 * from noise.
 */
export function verdict(effect: PairedRatio, control: PairedRatio): Verdict {
  if (effect.high < 1 && 1 - effect.ratio > resolution(control)) return 'costs measurably';
  if (effect.low > 1) return 'faster (within noise or real)';
  return 'no measurable cost';
}
