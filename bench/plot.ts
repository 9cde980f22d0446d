/**
 * The report's plot, written as SVG by hand: two panels sharing the time
 * axis, throughput above and the tuned value below, each without and with
 * bpftune, so a reader sees the tunable move and the throughput follow.
 * Pure: the same series always give the same text (unit-tested).
 */
import type { EffectResult, EffectSample } from './effect';

const WIDTH = 900;
const PANEL_HEIGHT = 220;
const MARGIN = { left: 90, right: 30, top: 106, gap: 60, bottom: 50 };
const HEIGHT = MARGIN.top + 2 * PANEL_HEIGHT + MARGIN.gap + MARGIN.bottom;
const COLOURS = { without: '#8a8a8a', with: '#1f6fd1', tunableWith: '#d9731f' };

export interface Range {
  min: number;
  max: number;
}

/** Round tick values (1, 2, 2.5, 5 x 10^n) covering [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    // A flat series still needs an axis: centre it in a span of its own magnitude.
    const pad = min === 0 ? 1 : Math.abs(min) / 2;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const first = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let v = first; v < max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/** 6291456 -> "6.29M": tunables are often byte counts, too long for an axis. */
export function formatAxisValue(v: number): string {
  const abs = Math.abs(v);
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (abs >= 1e9) return `${trim(v / 1e9)}G`;
  if (abs >= 1e6) return `${trim(v / 1e6)}M`;
  if (abs >= 1e4) return `${trim(v / 1e3)}k`;
  return trim(v);
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Splits text at spaces into lines of at most `width` characters (a longer word stays whole). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

type Pick = (s: EffectSample) => number | undefined;

function finitePoints(samples: readonly EffectSample[], pick: Pick): Array<[number, number]> {
  return samples
    .map((s): [number, number | undefined] => [s.t, pick(s)])
    .filter((p): p is [number, number] => Number.isFinite(p[0]) && typeof p[1] === 'number' && Number.isFinite(p[1]))
    .sort((a, b) => a[0] - b[0]);
}

/** [t0,v0],[t1,v1] -> [t0,v0],[t1,v0],[t1,v1]: the value holds until the next sample. */
export function stepPoints(points: Array<[number, number]>): Array<[number, number]> {
  return points.flatMap((p, i): Array<[number, number]> => (i === 0 ? [p] : [[p[0], points[i - 1][1]], p]));
}

function extent(values: number[]): Range | undefined {
  if (!values.length) return undefined;
  return { min: Math.min(...values), max: Math.max(...values) };
}

interface Panel {
  title: string;
  top: number;
  /** A tunable is set, not measured: it holds its value until the next sample (drawn as steps). */
  lines: Array<{ id: string; label: string; colour: string; dashed: boolean; step?: boolean; points: Array<[number, number]> }>;
  /** Throughput starts at zero so ratios read true; a tunable's axis hugs its range. */
  fromZero: boolean;
}

function renderPanel(panel: Panel, time: Range, out: string[]): void {
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const bottom = panel.top + PANEL_HEIGHT;
  out.push(`<text x="${left}" y="${panel.top - 10}" class="title">${escapeXml(panel.title)}</text>`);
  out.push(`<rect x="${left}" y="${panel.top}" width="${right - left}" height="${PANEL_HEIGHT}" class="frame"/>`);
  const values = extent(panel.lines.flatMap((l) => l.points.map((p) => p[1])));
  if (!values) {
    out.push(`<text x="${(left + right) / 2}" y="${panel.top + PANEL_HEIGHT / 2}" class="empty">no values recorded</text>`);
    return;
  }
  const yTicks = niceTicks(panel.fromZero ? Math.min(0, values.min) : values.min, values.max);
  const yMin = yTicks[0];
  const yMax = yTicks[yTicks.length - 1];
  const xTicks = niceTicks(time.min, time.max, 8).filter((t) => t >= time.min && t <= time.max);
  const x = (t: number) => left + ((t - time.min) / (time.max - time.min || 1)) * (right - left);
  const y = (v: number) => bottom - ((v - yMin) / (yMax - yMin || 1)) * PANEL_HEIGHT;
  for (const v of yTicks) {
    const py = y(v).toFixed(1);
    out.push(`<line x1="${left}" y1="${py}" x2="${right}" y2="${py}" class="grid"/>`);
    out.push(`<text x="${left - 8}" y="${py}" class="ylabel">${formatAxisValue(v)}</text>`);
  }
  for (const t of xTicks) {
    const px = x(t).toFixed(1);
    out.push(`<line x1="${px}" y1="${bottom}" x2="${px}" y2="${bottom + 5}" class="axis"/>`);
    out.push(`<text x="${px}" y="${bottom + 20}" class="xlabel">${formatAxisValue(t)}</text>`);
  }
  for (const line of panel.lines) {
    if (!line.points.length) continue;
    const coords = line.step ? stepPoints(line.points) : line.points;
    const pts = coords.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const dash = line.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline data-series="${line.id}" points="${pts}" fill="none" stroke="${line.colour}" stroke-width="2"${dash}/>`);
  }
}

/** The plot of an effect scenario's series; a placeholder that says why when there are none. */
export function renderEffectPlot(result: EffectResult | undefined, whyEmpty = 'no series recorded'): string {
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(
    '<style>.frame{fill:#fff;stroke:#444}.grid{stroke:#e4e4e4}.axis{stroke:#444}' +
      '.title{font-size:14px;font-weight:bold}.ylabel{text-anchor:end;dominant-baseline:middle}' +
      '.xlabel{text-anchor:middle}.empty{text-anchor:middle;fill:#a00;font-size:16px}</style>',
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#fafafa"/>`);
  const series = result?.series;
  const heading = result ? result.scenario : 'tuning effect';
  wrapText(`${heading}: without vs with bpftune`, 85)
    .slice(0, 2)
    .forEach((line, i) => out.push(`<text x="${MARGIN.left}" y="${22 + i * 18}" class="title">${escapeXml(line)}</text>`));
  if (!series || (!series.without.length && !series.with.length)) {
    out.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" class="empty">${escapeXml(whyEmpty)}</text>`);
    out.push('</svg>');
    return out.join('\n') + '\n';
  }
  const throughput: Pick = (s) => s.throughputMbit;
  const tunable: Pick = (s) => s.tunable;
  const allTimes = [...series.without, ...series.with].map((s) => s.t).filter((t) => Number.isFinite(t));
  const time = extent(allTimes) ?? { min: 0, max: 1 };
  if (time.max === time.min) time.max = time.min + 1;

  // Legend: one swatch per condition, shared by both panels.
  const legend: Array<[string, string, boolean]> = [
    ['without bpftune', COLOURS.without, true],
    ['with bpftune (throughput)', COLOURS.with, false],
    ['with bpftune (tunable)', COLOURS.tunableWith, false],
  ];
  legend.forEach(([label, colour, dashed], i) => {
    const lx = MARGIN.left + i * 230;
    const dash = dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<line x1="${lx}" y1="66" x2="${lx + 30}" y2="66" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 36}" y="70">${label}</text>`);
  });

  renderPanel(
    {
      title: 'throughput (Mbit/s)',
      top: MARGIN.top,
      fromZero: true,
      lines: [
        { id: 'throughput-without', label: 'without', colour: COLOURS.without, dashed: true, points: finitePoints(series.without, throughput) },
        { id: 'throughput-with', label: 'with', colour: COLOURS.with, dashed: false, points: finitePoints(series.with, throughput) },
      ],
    },
    time,
    out,
  );
  renderPanel(
    {
      title: series.tunableName,
      top: MARGIN.top + PANEL_HEIGHT + MARGIN.gap,
      fromZero: false,
      lines: [
        { id: 'tunable-without', label: 'without', colour: COLOURS.without, dashed: true, step: true, points: finitePoints(series.without, tunable) },
        { id: 'tunable-with', label: 'with', colour: COLOURS.tunableWith, dashed: false, step: true, points: finitePoints(series.with, tunable) },
      ],
    },
    time,
    out,
  );
  out.push(`<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 12}" class="xlabel">time since start of run (s)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
