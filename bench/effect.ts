/**
 * What a tuner's effect benchmark returns, so that `make bench` can run each
 * one and put its figures in one report. Each tuner's benchmark module
 * (bench/<tuner>.ts) exports a function returning this, and also runs
 * standalone (`node dist/bench/<tuner>.js`), printing its own table.
 */
export interface EffectRow {
  metric: string;
  /** Measured value with its unit, e.g. "412 Mbit/s", "3.2 s". */
  value: string;
  /** e.g. ">= 90% within 10 s"; empty when the figure has no target. */
  target?: string;
  /** The same figure without bpftune, measured in the same run. */
  baseline?: string;
  /** Whether the target was met; undefined when there is no target. */
  met?: boolean;
}

/** One point of a time series for the report's plot. */
export interface EffectSample {
  /** Seconds since the start of the run. */
  t: number;
  throughputMbit: number;
  /** The tuned value at that time (e.g. tcp_rmem[2] in bytes), when there is one. */
  tunable?: number;
}

export interface EffectResult {
  scenario: string;
  rows: EffectRow[];
  /** Without and with bpftune, for the plot (optional). */
  series?: { tunableName: string; without: EffectSample[]; with: EffectSample[] };
  /** Free text: how it was measured, and why a target was missed. */
  notes?: string[];
}
