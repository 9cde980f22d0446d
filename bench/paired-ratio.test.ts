import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { pairedRatio, resolution, seededRandom, unpairedMedianRatio, verdict } from './paired-ratio';

/** Normal deviates from the seeded generator (Box-Muller). */
function normals(seed: number, n: number, mean: number, sd: number): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}

test('seededRandom is deterministic and in [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, seededRandom(43)));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('identical and exactly scaled samples give a degenerate interval at the ratio', () => {
  const base = [100, 120, 90, 110];
  const same = pairedRatio(base, base);
  assert.deepEqual([same.ratio, same.low, same.high], [1, 1, 1]);
  const scaled = pairedRatio(base, base.map((x) => x * 0.9));
  assert.ok(Math.abs(scaled.ratio - 0.9) < 1e-12 && Math.abs(scaled.low - 0.9) < 1e-12 && Math.abs(scaled.high - 0.9) < 1e-12);
  assert.deepEqual(scaled.pairs.map((p) => p.toFixed(3)), ['0.900', '0.900', '0.900', '0.900']);
});

test('ratio of means, not mean of pairwise ratios', () => {
  const r = pairedRatio([100, 10], [100, 20]);
  assert.equal(r.ratio, 120 / 110);
  assert.deepEqual(r.pairs, [1, 2]);
});

test('a 3 % cost under 2 % noise: the interval holds it and excludes 1; the control straddles 1', () => {
  const base = normals(7, 20, 1000, 20);
  const noise = normals(8, 20, 0, 20);
  const treated = base.map((b, i) => b * 0.97 + noise[i]);
  const effect = pairedRatio(base, treated, { seed: 3 });
  assert.ok(effect.low < 0.97 && 0.97 < effect.high, `[${effect.low}, ${effect.high}]`);
  assert.ok(effect.high < 1);
  const again = normals(9, 20, 0, 20);
  const control = pairedRatio(base, base.map((b, i) => b + again[i]), { seed: 3 });
  assert.ok(control.low < 1 && 1 < control.high, `[${control.low}, ${control.high}]`);
  assert.ok(resolution(control) < 0.03);
  assert.equal(verdict(effect, control), 'costs measurably');
  assert.equal(verdict(control, control), 'no measurable cost');
});

test('more pairs narrow the interval; the same seed repeats it', () => {
  const width = (n: number) => {
    const base = normals(11, n, 1000, 30);
    const noise = normals(12, n, 0, 30);
    const r = pairedRatio(base, base.map((b, i) => b + noise[i]), { seed: 5 });
    return r.high - r.low;
  };
  assert.ok(width(40) < width(5));
  const base = normals(1, 10, 50, 5);
  const t = normals(2, 10, 50, 5);
  assert.deepEqual(pairedRatio(base, t, { seed: 9 }), pairedRatio(base, t, { seed: 9 }));
});

test('a cost smaller than the control can resolve is not called measurable', () => {
  const effect = { ratio: 0.995, low: 0.992, high: 0.998, confidence: 0.95, pairs: [] };
  const control = { ratio: 1.0, low: 0.99, high: 1.01, confidence: 0.95, pairs: [] };
  assert.equal(verdict(effect, control), 'no measurable cost');
  assert.equal(verdict({ ...effect, low: 1.01, high: 1.03, ratio: 1.02 }, control), 'faster (within noise or real)');
});

test('bad input is refused with the reason', () => {
  assert.throws(() => pairedRatio([1, 2], [1]), /differ in length/);
  assert.throws(() => pairedRatio([1], [1]), /at least 2 pairs/);
  assert.throws(() => pairedRatio([1, 0], [1, 2]), /finite and positive/);
  assert.throws(() => pairedRatio([1, NaN], [1, 2]), /finite and positive/);
});

test('unpairedMedianRatio: the ratio of medians, an interval around it, and one that shrinks with the spread', () => {
  const same = unpairedMedianRatio([5, 5, 5], [10, 10]);
  assert.deepEqual([same.ratio, same.low, same.high], [2, 2, 2]);
  const base = normals(7, 30, 100, 5);
  const treated = normals(8, 30, 50, 5);
  const r = unpairedMedianRatio(base, treated);
  assert.ok(r.low < r.ratio && r.ratio < r.high, JSON.stringify(r));
  assert.ok(r.low > 0.4 && r.high < 0.6, JSON.stringify(r));
  const wide = unpairedMedianRatio(normals(7, 30, 100, 15), normals(8, 30, 50, 15));
  assert.ok(wide.high - wide.low > r.high - r.low);
  assert.throws(() => unpairedMedianRatio([], [1]), RangeError);
  assert.throws(() => unpairedMedianRatio([1, 0], [1]), RangeError);
});
