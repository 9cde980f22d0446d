/**
 * No change without a measured benefit (issue 16, item 3). A change is made
 * together with the signal that asked for it (its benefit measure, e.g. the
 * share of time senders were limited by the send buffer) and guards that
 * must not get worse (retransmits, RTT, memory). Each is measured over a
 * window before the change and over a window after it; a change whose
 * benefit did not improve, or whose guard got worse, is undone and its key
 * (tunable and namespace) held off from being changed again for a period that
 * doubles each time, up to a limit. A change that helped resets the hold-off.
 *
 * Refinements, all from runs where the plain scheme undid good changes or
 * reacted late:
 *  - A window in which the benefit measure saw nothing (below its
 *    `minimum`: no traffic at all) gives no verdict, nor does a change that
 *    nothing used by the time it settled (`exercised`: a connection whose
 *    reads do not grow never grows into a raised buffer limit, so the
 *    windows would judge a change it never saw). The change stays, the
 *    hold-off is left as it was, and nothing is concluded from it.
 *  - Waiting out the window before a change delays every reaction by that
 *    window. A change may carry a `first` step, made at once, before the
 *    baseline window; the baseline then includes it and `apply` is what the
 *    windows judge (an undo takes back both). That is allowed only while the
 *    key's last verified change was kept (or there was none), so unverified
 *    steps never follow one another: each is judged with what comes after it
 *    before another may be taken on trust.
 *  - Some changes must not wait for a window at all (a receive buffer limit
 *    that stands still while a connection settles is never grown into). A
 *    change with a `signalBaseline` is made at once; the window before runs
 *    while it settles, and its benefit is judged against the lower of the
 *    signal's figure and that window's.
 *  - A change that comes within two windows of a kept one to the same key
 *    takes the kept one's window after as its baseline: growth that goes on
 *    step after step is neither paused by a fresh window nor judged against
 *    a signal's figure (which can be a sharper peak than a window measures).
 *
 * Generic on purpose: the core knows no tuner and no kernel signal here, only
 * measures a tuner declares, so it can sit between a tuner and ctx.set()
 * without either changing shape.
 */

/** A figure measured over a window: start() begins it, the function it returns ends it and gives the value. */
export interface Measure {
  name: string;
  better: 'higher' | 'lower';
  /**
   * Relative change below which two windows count as the same (the measure's
   * own noise), e.g. 0.1 for 10 %.
   */
  tolerance: number;
  /** Differences smaller than this, in the measure's unit, never count (noise around zero). */
  floor: number;
  /**
   * A window reading below this measured nothing (e.g. no traffic at all):
   * the two windows cannot be compared, and the change gets no verdict.
   */
  minimum?: number;
  start(): Promise<() => Promise<number>>;
}

export interface ProposedChange {
  /** What is held off after an undo, e.g. "net.ipv4.tcp_wmem@4097". */
  key: string;
  /** "net.ipv4.tcp_wmem (4096 16384 4194304) -> (4096 16384 20000000)", for the log. */
  description: string;
  benefit: Measure;
  guards: Measure[];
  /**
   * Optional first step, made at once (before the baseline window) when the
   * key's last verified change was kept or it has none; false if it was not
   * made. The baseline is then measured with it in place.
   */
  first?(): Promise<boolean>;
  /**
   * Optional: the benefit as the signal that asked for the change measured
   * it (e.g. the rate the socket at its limit was reading at). Given, the
   * change is made at once, with no window before it: the window before runs
   * while the change settles, and the benefit after is judged against the
   * lower of this and that window's. For changes whose effect a pause would
   * spoil.
   */
  signalBaseline?: number;
  /** Makes the change; false if it was not made (the verifier then does nothing more). */
  apply(): Promise<boolean>;
  /**
   * Optional: whether anything has used the change yet (e.g. a socket grew
   * into a raised limit). Asked when the change has settled: a change nothing
   * used cannot be judged by the windows, and gets no verdict.
   */
  exercised?(): boolean;
  /** Puts the old value back; `verdict` says why (the tuner's own log line can carry it). */
  undo(verdict: UndoVerdict): Promise<void>;
}

/** Why a change is being undone, and for how long its key is held off. */
export interface UndoVerdict {
  why: string;
  holdOffMs: number;
  benefit: Reading;
  guards: Reading[];
}

export interface Reading {
  measure: string;
  before: number;
  after: number;
  /**
   * improved / unchanged / worse, by the measure's direction, tolerance and
   * floor; 'no data' when a window measured nothing (below the minimum).
   */
  verdict: 'improved' | 'unchanged' | 'worse' | 'no data';
}

export type Outcome =
  | { kind: 'held off'; key: string; untilMs: number }
  | { kind: 'not applied'; key: string; firstMade: boolean }
  | { kind: 'kept'; key: string; benefit: Reading; guards: Reading[] }
  | { kind: 'no verdict'; key: string; benefit?: Reading; guards?: Reading[] }
  | { kind: 'undone'; key: string; benefit: Reading; guards: Reading[]; why: string; holdOffMs: number };

/** How one measure moved from one window to the next. */
export function compareWindows(measure: Pick<Measure, 'name' | 'better' | 'tolerance' | 'floor' | 'minimum'>, before: number, after: number): Reading {
  if (measure.minimum !== undefined && (before < measure.minimum || after < measure.minimum)) {
    return { measure: measure.name, before, after, verdict: 'no data' };
  }
  const diff = after - before;
  if (!Number.isFinite(diff)) return { measure: measure.name, before, after, verdict: 'unchanged' };
  const significant = Math.abs(diff) > measure.floor && Math.abs(diff) > Math.abs(before) * measure.tolerance;
  const up = measure.better === 'higher' ? diff > 0 : diff < 0;
  return { measure: measure.name, before, after, verdict: !significant ? 'unchanged' : up ? 'improved' : 'worse' };
}

/**
 * Keep a change only if its benefit improved and no guard got worse;
 * otherwise say why not. A benefit with no data in a window is no reason
 * either way (`conclusive` false): the change stays unless a guard got worse.
 */
export function judge(benefit: Reading, guards: Reading[]): { keep: boolean; conclusive: boolean; why: string } {
  const reasons: string[] = [];
  const conclusive = benefit.verdict !== 'no data';
  if (conclusive && benefit.verdict !== 'improved') {
    reasons.push(`${benefit.measure} ${benefit.verdict === 'worse' ? 'got worse' : 'did not improve'} (${fmt(benefit.before)} -> ${fmt(benefit.after)})`);
  }
  for (const g of guards) if (g.verdict === 'worse') reasons.push(`${g.measure} got worse (${fmt(g.before)} -> ${fmt(g.after)})`);
  return { keep: reasons.length === 0, conclusive: conclusive || reasons.length > 0, why: reasons.join('; ') };
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3);
}

export interface VerifierOptions {
  /** Length of the windows before and after the change. */
  windowMs: number;
  /** Pause between the change and the window after it, so the kernel has taken it up. */
  settleMs: number;
  initialHoldOffMs: number;
  maxHoldOffMs: number;
  log: (line: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** After settling, how long (in settle periods) to wait for something to use a change, polling every USE_POLL_MS. */
const USE_WAIT_SETTLES = 4;
const USE_POLL_MS = 250;
/**
 * A change to a key whose last change was kept within this many windows of
 * it takes that change's window after as its baseline: growth that goes on
 * step after step is not paused by a fresh window before each step.
 */
const CHAIN_WINDOWS = 2;

interface HoldOff {
  untilMs: number;
  lastMs: number;
}

async function measureAll(measures: Measure[], windowMs: number, sleep: (ms: number) => Promise<void>): Promise<number[]> {
  const ends = await Promise.all(measures.map((m) => m.start()));
  await sleep(windowMs);
  return Promise.all(ends.map((end) => end()));
}

export class ChangeVerifier {
  private readonly holdOffs = new Map<string, HoldOff>();
  /** Keys whose last step was taken on trust (`first`) and not yet followed by a kept verdict. */
  private readonly untrusted = new Set<string>();
  /** The window after each key's last kept change: the next change's baseline if it comes soon enough. */
  private readonly lastKept = new Map<string, { atMs: number; values: number[] }>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: VerifierOptions) {
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** When `key` may be changed again (0: now). */
  heldOffUntil(key: string): number {
    const h = this.holdOffs.get(key);
    return h && h.untilMs > this.now() ? h.untilMs : 0;
  }

  /** The window after the key's last kept change, if it ended recently enough to be this change's baseline. */
  private chainedBaseline(key: string, count: number): number[] | undefined {
    const last = this.lastKept.get(key);
    this.lastKept.delete(key);
    if (!last || last.values.length !== count || this.untrusted.has(key)) return undefined;
    return this.now() - last.atMs <= this.options.windowMs * CHAIN_WINDOWS ? last.values : undefined;
  }

  private noUse(change: ProposedChange, afterMs: number): Outcome {
    this.options.log(`Kept ${change.description} without a verdict: nothing used it within ${Math.round(afterMs)} ms`);
    return { kind: 'no verdict', key: change.key };
  }

  /** Whether a change to `key` may take its first step before the baseline window. */
  trusted(key: string): boolean {
    return !this.untrusted.has(key);
  }

  /**
   * Makes the first step if trusted, measures a window, makes the change,
   * lets it settle, measures another window and keeps or undoes the change.
   * Resolves when that is decided.
   */
  async verify(change: ProposedChange): Promise<Outcome> {
    const until = this.heldOffUntil(change.key);
    if (until) return { kind: 'held off', key: change.key, untilMs: until };
    const measures = [change.benefit, ...change.guards];
    let firstMade = false;
    const waitForUse = async () => {
      // Something may take a while to use it (a connection's reads must grow first): wait a little more.
      const useWaitMs = this.options.settleMs * USE_WAIT_SETTLES;
      for (let waited = 0; change.exercised && !change.exercised() && waited < useWaitMs; waited += USE_POLL_MS) {
        await this.sleep(USE_POLL_MS);
      }
      return !change.exercised || change.exercised() ? 0 : this.options.settleMs + useWaitMs;
    };
    const chained = this.chainedBaseline(change.key, measures.length);
    const signal = chained ? undefined : change.signalBaseline;
    // Growth going on: the window after the last kept step is this one's baseline, same measures.
    let before = chained;
    if (!before && signal === undefined) {
      if (change.first && this.trusted(change.key)) {
        firstMade = await change.first();
        if (firstMade) this.untrusted.add(change.key);
      }
      before = await measureAll(measures, this.options.windowMs, this.sleep);
    }
    if (!(await change.apply())) return { kind: 'not applied', key: change.key, firstMade };
    if (signal === undefined) {
      await this.sleep(this.options.settleMs);
    } else {
      // The window before doubles as the settling time. Its benefit already has some of the change
      // in it, and the signal's figure can be a sharper peak than a window measures (on loopback a
      // socket's read per RTT over that RTT says tens of Gbit/s): the lower of the two is the baseline.
      const [settlingBenefit = Number.NaN, ...guardsBefore] = await measureAll(measures, this.options.settleMs, this.sleep);
      before = [Number.isFinite(settlingBenefit) ? Math.min(signal, settlingBenefit) : signal, ...guardsBefore];
    }
    const unusedFor = await waitForUse();
    if (unusedFor) return this.noUse(change, unusedFor);
    const after = await measureAll(measures, this.options.windowMs, this.sleep);
    const baseline = before ?? [];
    const readings = measures.map((m, i) => compareWindows(m, baseline[i] ?? Number.NaN, after[i]));
    const [benefit, ...guards] = readings;
    const { keep, conclusive, why } = judge(benefit, guards);
    const figures = readings.map((r) => `${r.measure} ${fmt(r.before)} -> ${fmt(r.after)}`).join(', ');
    if (keep && !conclusive) {
      this.options.log(`Kept ${change.description} without a verdict: ${benefit.measure} measured nothing in a window (${figures})`);
      return { kind: 'no verdict', key: change.key, benefit, guards };
    }
    if (keep) {
      this.holdOffs.delete(change.key);
      this.untrusted.delete(change.key);
      this.lastKept.set(change.key, { atMs: this.now(), values: after });
      this.options.log(`Kept ${change.description}: ${figures}`);
      return { kind: 'kept', key: change.key, benefit, guards };
    }
    const last = this.holdOffs.get(change.key)?.lastMs;
    const holdOffMs = last ? Math.min(this.options.maxHoldOffMs, last * 2) : this.options.initialHoldOffMs;
    this.holdOffs.set(change.key, { untilMs: this.now() + holdOffMs, lastMs: holdOffMs });
    this.untrusted.add(change.key);
    await change.undo({ why, holdOffMs, benefit, guards });
    this.options.log(
      `Scenario 'change did not help' occurred for '${change.key}'. Undid ${change.description}: ${why}; not retried for ${Math.round(holdOffMs / 1000)} s`,
    );
    return { kind: 'undone', key: change.key, benefit, guards, why, holdOffMs };
  }
}

/**
 * A measure from counters read at the start and the end of a window (e.g. a
 * namespace's /proc/net/snmp): `value` gets the increases and the seconds
 * between the reads. A failed read gives NaN, which never counts as a change.
 * With `sampleMs`, the counters are also read every sampleMs and the measure
 * is the highest value over those slices (for a rate: the peak rate), so a
 * pause in the traffic within a window does not read as a loss.
 */
export function counterMeasure(
  spec: Omit<Measure, 'start'> & { read(): Promise<number[]>; value(increase: number[], seconds: number): number; sampleMs?: number },
): Measure {
  const slice = (a: number[], b: number[], seconds: number) =>
    spec.value(
      b.map((v, i) => v - (a[i] ?? 0)),
      Math.max(0.001, seconds),
    );
  return {
    name: spec.name,
    better: spec.better,
    tolerance: spec.tolerance,
    floor: spec.floor,
    minimum: spec.minimum,
    async start() {
      const t0 = Date.now();
      const first = await spec.read().catch(() => undefined);
      let last = first ? { at: t0, values: first } : undefined;
      let peak = Number.NaN;
      let reading = false;
      const sample = async () => {
        const at = Date.now();
        const values = await spec.read().catch(() => undefined);
        if (!values) return;
        if (last && at > last.at) {
          const v = slice(last.values, values, (at - last.at) / 1000);
          if (!(v <= peak)) peak = v;
        }
        last = { at, values };
      };
      const timer = spec.sampleMs
        ? setInterval(() => {
            if (reading) return;
            reading = true;
            void sample().finally(() => (reading = false));
          }, spec.sampleMs)
        : undefined;
      timer?.unref();
      return async () => {
        if (timer) clearInterval(timer);
        if (!spec.sampleMs) {
          const b = await spec.read().catch(() => undefined);
          return first && b ? slice(first, b, (Date.now() - t0) / 1000) : Number.NaN;
        }
        await sample();
        return peak;
      };
    },
  };
}

/** A measure of a level read at the end of the window (e.g. memory in use). */
export function levelMeasure(spec: Omit<Measure, 'start'> & { read(): Promise<number> }): Measure {
  return {
    name: spec.name,
    better: spec.better,
    tolerance: spec.tolerance,
    floor: spec.floor,
    minimum: spec.minimum,
    start: () => Promise.resolve(() => spec.read().catch(() => Number.NaN)),
  };
}

/**
 * Windows and hold-offs of the verifier the core lends tuners (the
 * verifyChange ability): defaults, or BPFTUNE_VERIFY_WINDOW_MS,
 * BPFTUNE_VERIFY_SETTLE_MS, BPFTUNE_VERIFY_HOLDOFF_MS and
 * BPFTUNE_VERIFY_MAX_HOLDOFF_MS from the environment (tests shorten them).
 */
export function verifierTimings(env: NodeJS.ProcessEnv = process.env): Omit<VerifierOptions, 'log' | 'now' | 'sleep'> {
  const ms = (name: string, fallback: number) => {
    const v = Number(env[name]);
    return Number.isFinite(v) && v >= 0 && env[name] !== undefined && env[name] !== '' ? v : fallback;
  };
  return {
    windowMs: ms('BPFTUNE_VERIFY_WINDOW_MS', 1000),
    settleMs: ms('BPFTUNE_VERIFY_SETTLE_MS', 1000),
    // Short at first: a change undone on a misjudged window should come back within a minute of traffic.
    initialHoldOffMs: ms('BPFTUNE_VERIFY_HOLDOFF_MS', 10_000),
    maxHoldOffMs: ms('BPFTUNE_VERIFY_MAX_HOLDOFF_MS', 3_600_000),
  };
}
