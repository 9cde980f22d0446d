import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { EffectResult, EffectSample } from './effect';
import { escapeXml, formatAxisValue, niceTicks, renderEffectPlot, stepPoints, wrapText } from './plot';

/** A synthetic long-RTT run: without bpftune rmem stays put; with it, rmem doubles twice and throughput follows. */
function syntheticResult(): EffectResult {
  const without: EffectSample[] = [];
  const withTuning: EffectSample[] = [];
  for (let t = 0; t <= 20; t++) {
    without.push({ t, throughputMbit: 100, tunable: 6291456 });
    const rmem = t < 5 ? 6291456 : t < 10 ? 12582912 : 25165824;
    withTuning.push({ t: t + 0.5, throughputMbit: rmem / 62914.56, tunable: rmem });
  }
  return { scenario: 'long-RTT buffer sizing <40 ms> & "co"', rows: [], series: { tunableName: 'net.ipv4.tcp_rmem[2]', without, with: withTuning } };
}

function polyline(svg: string, id: string): Array<[number, number]> {
  const m = new RegExp(`data-series="${id}" points="([^"]*)"`).exec(svg);
  assert.ok(m, `polyline ${id} missing`);
  return m[1].split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

function viewBox(svg: string): { width: number; height: number } {
  const m = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
  assert.ok(m);
  return { width: Number(m[1]), height: Number(m[2]) };
}

test('niceTicks: round steps that cover the range', () => {
  assert.deepEqual(niceTicks(0, 100), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 9.3), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(3, 17, 7), [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  const big = niceTicks(6291456, 25165824);
  assert.ok(big[0] <= 6291456 && big[big.length - 1] >= 25165824, big.join(','));
  // A flat series still gets an axis around its value.
  const flat = niceTicks(50, 50);
  assert.ok(flat[0] < 50 && flat[flat.length - 1] > 50);
  assert.deepEqual(niceTicks(NaN, 1), []);
});

test('formatAxisValue shortens byte counts', () => {
  assert.equal(formatAxisValue(6291456), '6.29M');
  assert.equal(formatAxisValue(2.5e9), '2.5G');
  assert.equal(formatAxisValue(87380), '87.4k');
  assert.equal(formatAxisValue(250), '250');
});

test('stepPoints holds each value until the next sample', () => {
  assert.deepEqual(stepPoints([[0, 1], [1, 2], [3, 5]]), [[0, 1], [1, 1], [1, 2], [3, 2], [3, 5]]);
  assert.deepEqual(stepPoints([[0, 1]]), [[0, 1]]);
});

test('wrapText breaks long titles at spaces', () => {
  assert.deepEqual(wrapText('aaa bbb ccc', 7), ['aaa bbb', 'ccc']);
  assert.deepEqual(wrapText('a-very-long-word x', 5), ['a-very-long-word', 'x']);
});

test('escapeXml', () => {
  assert.equal(escapeXml('a<b & "c">'), 'a&lt;b &amp; &quot;c&quot;&gt;');
});

test('plot: one polyline per series, one point per sample, inside the picture', () => {
  const result = syntheticResult();
  const svg = renderEffectPlot(result);
  const { width, height } = viewBox(svg);
  for (const id of ['throughput-without', 'throughput-with', 'tunable-without', 'tunable-with']) {
    const pts = polyline(svg, id);
    // Throughput is one point per sample; a tunable is drawn as steps, two points per sample after the first.
    assert.equal(pts.length, id.startsWith('tunable') ? 41 : 21, id);
    for (const [x, y] of pts) assert.ok(x >= 0 && x <= width && y >= 0 && y <= height, `${id} point ${x},${y} outside`);
    // Time runs left to right (steps repeat an x).
    for (let i = 1; i < pts.length; i++) assert.ok(pts[i][0] >= pts[i - 1][0] && pts[pts.length - 1][0] > pts[0][0], `${id} x decreasing`);
  }
  // The scenario name is escaped, not injected.
  assert.match(svg, /long-RTT buffer sizing &lt;40 ms&gt; &amp; &quot;co&quot;/);
  assert.match(svg, /net\.ipv4\.tcp_rmem\[2\]/);
});

test('plot: higher values are drawn higher, and both conditions share the time axis', () => {
  const svg = renderEffectPlot(syntheticResult());
  const tput = polyline(svg, 'throughput-with');
  // Throughput quadruples from the first to the last sample: the line must rise (smaller y).
  assert.ok(tput[20][1] < tput[0][1]);
  // The tunable holds its value until the next sample: flat, then a vertical rise at t=5.5.
  const rmem = polyline(svg, 'tunable-with');
  assert.equal(rmem[0][1], rmem[8][1]);
  assert.equal(rmem[9][0], rmem[10][0], 'the rise is vertical');
  assert.ok(rmem[10][1] < rmem[9][1], 'and goes up');
  // The flat baseline sits below the tuned line at the end.
  const base = polyline(svg, 'throughput-without');
  assert.ok(base[20][1] > tput[20][1]);
  // Without starts at t=0, with at t=0.5: the shared axis puts "without" first.
  assert.ok(base[0][0] < tput[0][0]);
  // Without ends at t=20, with at t=20.5 (the axis maximum): with reaches further right.
  assert.ok(tput[20][0] > base[20][0]);
});

test('plot: samples with missing or non-finite values are left out, tunable panel says when empty', () => {
  const result: EffectResult = {
    scenario: 'lossy path',
    rows: [],
    series: {
      tunableName: 'congestion control',
      without: [{ t: 0, throughputMbit: 10 }, { t: 1, throughputMbit: NaN }, { t: 2, throughputMbit: 12 }],
      with: [{ t: 0, throughputMbit: 20 }, { t: 1, throughputMbit: Infinity }, { t: 2, throughputMbit: 30 }],
    },
  };
  const svg = renderEffectPlot(result);
  assert.equal(polyline(svg, 'throughput-without').length, 2);
  assert.equal(polyline(svg, 'throughput-with').length, 2);
  assert.doesNotMatch(svg, /data-series="tunable-/);
  assert.match(svg, /no values recorded/);
  assert.doesNotMatch(svg, /NaN|Infinity/);
});

test('plot: placeholder with the reason when there is nothing to draw', () => {
  const svg = renderEffectPlot(undefined, 'tcp_buffer effect benchmark not built yet');
  assert.match(svg, /^<svg /);
  assert.match(svg, /tcp_buffer effect benchmark not built yet/);
  assert.doesNotMatch(svg, /polyline/);
  assert.match(svg.trim(), /<\/svg>$/);
});
