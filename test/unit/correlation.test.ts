import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Correlation, CORRELATION_THRESHOLD } from '../../src/core/correlation';

function feed(c: Correlation, xs: number[], ys: number[]): Correlation {
  xs.forEach((x, i) => c.add(x, ys[i]));
  return c;
}

test('perfectly linear series correlate at +1 and -1', () => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8];
  assert.ok(Math.abs(feed(new Correlation(), xs, xs.map((x) => 3 * x + 7)).value() - 1) < 1e-12);
  assert.ok(Math.abs(feed(new Correlation(), xs, xs.map((x) => -2 * x)).value() + 1) < 1e-12);
});

test('matches a known data set (Anscombe I: r = 0.816)', () => {
  const x = [10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5];
  const y = [8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68];
  const r = feed(new Correlation(), x, y).value();
  assert.ok(Math.abs(r - 0.81642) < 1e-4, `r = ${r}`);
  assert.ok(feed(new Correlation(), x, y).exceeds(CORRELATION_THRESHOLD));
});

test('buffer sizes vs RTT: RTT rising with buffers exceeds 0.7, flat RTT does not', () => {
  const buffers = [131072, 163840, 204800, 256000, 320000, 400000, 500000, 625000];
  const bloated = buffers.map((b) => 40_000 + b / 20); // queueing delay grows with buffer
  const flat = [40100, 39950, 40020, 40080, 39990, 40040, 39970, 40060];
  assert.ok(feed(new Correlation(), buffers, bloated).exceeds());
  assert.ok(!feed(new Correlation(), buffers, flat).exceeds());
});

test('large magnitudes keep full precision (no cancellation error)', () => {
  const xs = [1e9, 1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4];
  const r = feed(new Correlation(), xs, [5, 4, 3, 2, 1]).value();
  assert.ok(Math.abs(r + 1) < 1e-9, `r = ${r}`);
});

test('too few samples, a constant series or non-finite input give no evidence', () => {
  assert.equal(feed(new Correlation(), [1, 2, 3], [1, 2, 3]).value(), 0);
  assert.equal(feed(new Correlation(), [1, 2, 3, 4, 5], [7, 7, 7, 7, 7]).value(), 0);
  const c = feed(new Correlation(), [1, 2, 3, 4], [2, 4, 6, 8]);
  c.add(Number.NaN, 1);
  assert.equal(c.count, 4);
});

test('the window forgets old samples', () => {
  const c = new Correlation(4);
  feed(c, [1, 2, 3, 4], [1, 2, 3, 4]);
  assert.ok(c.value() > 0.99);
  feed(c, [5, 6, 7, 8], [8, 7, 6, 5]);
  assert.equal(c.count, 4);
  assert.ok(c.value() < -0.99);
  c.reset();
  assert.equal(c.count, 0);
  assert.throws(() => new Correlation(1), RangeError);
});
