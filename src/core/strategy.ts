/**
 * Strategies (the reference's struct bpftuner_strategy): a tuner may offer
 * several ways of tuning the same thing, each with a name, a description, a
 * timeout, an evaluation function and the BPF programs it needs. One runs at
 * a time. When the running one's timeout expires, every strategy is
 * evaluated and the next one chosen (chooseStrategy below):
 *
 * - the running strategy with nothing measured yet runs on (nothing learned);
 * - else a strategy not measured yet is tried, in declared order;
 * - else the best score runs; one within the margin of the running
 *   strategy's is a tie, and a tie keeps the running one.
 *
 * A strategy that has lost keeps its last score, so the running one is
 * left as soon as its own, refreshed each timeout, falls below it.
 *
 * Generic on purpose: the core knows no tuner here, only what a tuner
 * declares. The runner attaches the programs the chosen strategy needs and
 * detaches those only other strategies need, and calls the strategy's
 * start() (e.g. to set a mode in a BPF map when the programs are shared).
 * An evaluation or start() that throws is logged and counted against that
 * strategy only: the daemon and the running strategy carry on.
 */
import { errorText, type Logger } from './log';

/** What a strategy's evaluation measured. */
export interface StrategyScore {
  /** Higher is better; comparable across one tuner's strategies. */
  score: number;
  /** How many measurements the score rests on. */
  samples: number;
  /** What was measured, for the log and status, e.g. "mean delivery rate 41.2 Mbit/s". */
  basis?: string;
}

export interface StrategyDeclaration {
  /** Short and stable, e.g. "bbr-on-loss": logs, status and tests name it. */
  name: string;
  description: string;
  /** How long it runs before every strategy is evaluated (BPFTUNE_STRATEGY_TIMEOUT_MS replaces it, for tests). */
  timeoutMs: number;
  /**
   * Names of the tuner's BPF programs it needs attached; programs that no
   * strategy names stay attached whatever runs. Omitted: every program.
   */
  programs?: readonly string[];
  /**
   * The score of what was measured while this strategy ran; undefined while
   * there is not enough to judge. Called for every strategy at each timeout.
   */
  evaluate(): StrategyScore | undefined | Promise<StrategyScore | undefined>;
  /** It becomes the running strategy (its programs are attached by then). */
  start?(): void | Promise<void>;
}

export interface StrategyOptions {
  /** Scores within this of the running strategy's are a tie, which keeps it (the measure's noise). Default 0. */
  margin?: number;
}

/** What the tuner gets back: which strategy is running now. */
export interface StrategyHandle {
  readonly current: string;
}

/** One strategy's evaluation: a score, none yet, or why it could not be evaluated. */
export interface StrategyEvaluation {
  name: string;
  score?: StrategyScore;
  /** The evaluation threw, or the strategy failed to start: it is not chosen. */
  error?: string;
}

export interface StrategyDecision {
  next: string;
  switched: boolean;
  /** Completes "Due to ...", e.g. "'bbr-on-loss' scoring 0.912 (7 samples) against 'learned-per-host' 0.850 (6 samples)". */
  why: string;
}

export function formatScore(score: StrategyScore | undefined): string {
  if (!score) return 'not measured';
  return `${score.score.toFixed(3)} (${score.samples} samples${score.basis ? `, ${score.basis}` : ''})`;
}

/** The rules above, on evaluations in declared order. */
export function chooseStrategy(current: string, evaluations: readonly StrategyEvaluation[], margin = 0): StrategyDecision {
  const running = evaluations.find((e) => e.name === current);
  const usable = evaluations.filter((e) => e.error === undefined);
  if (running && running.error === undefined && !running.score) {
    return { next: current, switched: false, why: `'${current}' having measured nothing yet` };
  }
  const untried = usable.find((e) => !e.score && e.name !== current);
  if (untried) {
    const from = running?.error !== undefined ? `'${current}' failing (${running.error}) and ` : '';
    return { next: untried.name, switched: true, why: `${from}'${untried.name}' not measured yet` };
  }
  let best: StrategyEvaluation | undefined;
  for (const e of usable) if (e.score && (!best?.score || e.score.score > best.score.score)) best = e;
  if (!best?.score) return { next: current, switched: false, why: 'no strategy having a score' };
  if (running?.error !== undefined) {
    if (best.name === current) return { next: current, switched: false, why: `no other strategy to run` };
    return { next: best.name, switched: true, why: `'${current}' failing (${running.error}); '${best.name}' scoring ${formatScore(best.score)}` };
  }
  const runningScore = running?.score;
  if (!runningScore || best.name === current || best.score.score - runningScore.score <= margin) {
    const scores = usable.map((e) => `'${e.name}' ${formatScore(e.score)}`).join(', ');
    return { next: current, switched: false, why: `'${current}' scoring best or within ${margin} of the best: ${scores}` };
  }
  return {
    next: best.name,
    switched: true,
    why: `'${best.name}' scoring ${formatScore(best.score)} against '${current}' ${formatScore(runningScore)}`,
  };
}

/**
 * BPFTUNE_STRATEGY_TIMEOUT_MS: every strategy's timeout, in ms, instead of the
 * tuner's own (tests run a whole rotation in seconds). Anything but a
 * positive integer is ignored.
 */
export function strategyTimeoutOverride(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.BPFTUNE_STRATEGY_TIMEOUT_MS;
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const ms = Number(text);
  return ms > 0 ? ms : undefined;
}

/** How the runner reaches the tuner's programs (the loader's links). */
export interface ProgramSwitch {
  /** Programs of the tuner's object that were loaded. */
  loaded(): string[];
  attached(name: string): boolean;
  attach(name: string): void;
  detach(name: string): void;
}

export interface StrategyRunnerOptions {
  tuner: string;
  /** Unprefixed: the scenario lines are printed as the core prints them. */
  log: Logger;
  programs: ProgramSwitch;
  timeoutOverrideMs?: number;
  /** --advise: strategies are evaluated, but the first keeps running (see README). */
  advisory?: boolean;
  now?: () => number;
  /** A one-shot timer; returns its cancel. */
  setTimer?: (task: () => void, ms: number) => () => void;
}

/** A strategy as status shows it. */
export interface StrategyRow {
  name: string;
  description: string;
  timeoutMs: number;
  programs: readonly string[] | undefined;
  /** How often it became the running strategy. */
  runs: number;
  /** At the last evaluation. */
  score: StrategyScore | undefined;
  error: string | undefined;
}

export interface StrategyStatus {
  current: string;
  /** ms since epoch when it started running. */
  since: number;
  /** ms since epoch of the next evaluation. */
  nextEvaluation: number;
  /** ms since epoch of the last evaluation, if any. */
  lastEvaluation: number | undefined;
  evaluations: number;
  switches: number;
  /** The last evaluation's decision, "Due to ..." text. */
  lastDecision: string | undefined;
  strategies: StrategyRow[];
}

interface Entry {
  declaration: StrategyDeclaration;
  runs: number;
  score: StrategyScore | undefined;
  error: string | undefined;
  startError: string | undefined;
}

function defaultTimer(task: () => void, ms: number): () => void {
  const t = setTimeout(task, ms);
  t.unref();
  return () => clearTimeout(t);
}

export class StrategyRunner implements StrategyHandle {
  private readonly entries: Entry[];
  private readonly margin: number;
  private running: Entry;
  private since = 0;
  private nextAt = 0;
  private lastAt: number | undefined;
  private evaluations = 0;
  private switches = 0;
  private lastDecision: string | undefined;
  private cancel: (() => void) | undefined;
  private stopped = false;
  private busy = false;
  private advisoryNoted = false;
  private readonly now: () => number;
  private readonly setTimer: (task: () => void, ms: number) => () => void;

  constructor(
    declarations: readonly StrategyDeclaration[],
    options: StrategyOptions,
    private readonly runner: StrategyRunnerOptions,
  ) {
    const problems = validate(declarations, runner.programs.loaded());
    if (problems.length) throw new Error(`invalid strategies: ${problems.join('; ')}`);
    this.entries = declarations.map((declaration) => ({ declaration, runs: 0, score: undefined, error: undefined, startError: undefined }));
    this.running = this.entries[0];
    this.margin = options.margin ?? 0;
    this.now = runner.now ?? Date.now;
    this.setTimer = runner.setTimer ?? defaultTimer;
  }

  get current(): string {
    return this.running.declaration.name;
  }

  /** Runs the first strategy; throws if it cannot start (the tuner then fails to load, saying why). */
  async start(): Promise<void> {
    await this.enter(this.running);
    const d = this.running.declaration;
    this.runner.log.info(
      `tuner '${this.runner.tuner}': strategy '${d.name}' runs first, evaluated after ${Math.round(this.timeoutOf(d) / 1000)} s ` +
        `(of ${this.entries.map((e) => `'${e.declaration.name}'`).join(', ')}): ${d.description}`,
    );
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** The timeout expired: evaluate every strategy, choose, switch if chosen. Never throws. */
  async evaluate(): Promise<StrategyDecision | undefined> {
    if (this.busy || this.stopped) return undefined;
    this.busy = true;
    try {
      const evaluations: StrategyEvaluation[] = [];
      for (const entry of this.entries) {
        const name = entry.declaration.name;
        try {
          entry.score = checkScore(await entry.declaration.evaluate());
          entry.error = entry.startError;
        } catch (err) {
          entry.score = undefined;
          entry.error = `evaluation failed: ${errorText(err)}`;
          this.runner.log.error(`tuner '${this.runner.tuner}': strategy '${name}': ${entry.error}; it is not chosen this time`);
        }
        evaluations.push({ name, score: entry.score, error: entry.error });
      }
      if (this.stopped) return undefined;
      this.evaluations++;
      this.lastAt = this.now();
      const decision = chooseStrategy(this.current, evaluations, this.margin);
      this.lastDecision = decision.why;
      if (decision.switched && this.runner.advisory) {
        if (!this.advisoryNoted) {
          this.advisoryNoted = true;
          this.runner.log.info(
            `tuner '${this.runner.tuner}': advisory mode: strategies are evaluated but '${this.current}' keeps running, ` +
              'since nothing any of them would do is applied, so measurements cannot tell them apart',
          );
        }
      } else if (decision.switched) {
        await this.switchTo(this.entryOf(decision.next), decision.why);
      } else {
        this.runner.log.info(`tuner '${this.runner.tuner}': strategy '${this.current}' keeps running, due to ${decision.why}`);
      }
      return decision;
    } finally {
      this.busy = false;
      if (!this.stopped) this.arm();
    }
  }

  status(): StrategyStatus {
    return {
      current: this.current,
      since: this.since,
      nextEvaluation: this.nextAt,
      lastEvaluation: this.lastAt,
      evaluations: this.evaluations,
      switches: this.switches,
      lastDecision: this.lastDecision,
      strategies: this.entries.map((e) => ({
        name: e.declaration.name,
        description: e.declaration.description,
        timeoutMs: this.timeoutOf(e.declaration),
        programs: e.declaration.programs,
        runs: e.runs,
        score: e.score,
        error: e.error,
      })),
    };
  }

  private timeoutOf(d: StrategyDeclaration): number {
    return this.runner.timeoutOverrideMs ?? d.timeoutMs;
  }

  private arm(): void {
    this.cancel?.();
    const ms = this.timeoutOf(this.running.declaration);
    this.nextAt = this.now() + ms;
    this.cancel = this.setTimer(() => void this.evaluate(), ms);
  }

  private entryOf(name: string): Entry {
    const entry = this.entries.find((e) => e.declaration.name === name);
    if (!entry) throw new Error(`no strategy '${name}'`);
    return entry;
  }

  private async switchTo(next: Entry, why: string): Promise<void> {
    const previous = this.running;
    try {
      await this.enter(next);
    } catch (err) {
      next.startError = `could not start: ${errorText(err)}`;
      next.error = next.startError;
      this.runner.log.error(`tuner '${this.runner.tuner}': strategy '${next.declaration.name}' ${next.startError}; '${previous.declaration.name}' keeps running`);
      try {
        await this.enter(previous, false);
      } catch (again) {
        this.runner.log.error(`tuner '${this.runner.tuner}': restarting strategy '${previous.declaration.name}' failed too: ${errorText(again)}`);
      }
      return;
    }
    this.switches++;
    const d = next.declaration;
    this.runner.log.info(`Scenario 'strategy switched' occurred for tuner '${this.runner.tuner}'. ${d.description}`);
    this.runner.log.info(`Due to ${why} switch strategy from '${previous.declaration.name}' -> '${d.name}'`);
  }

  /** Attaches what the strategy needs, detaches what only others need, then starts it. */
  private async enter(entry: Entry, count = true): Promise<void> {
    const d = entry.declaration;
    const governed = new Set(this.entries.flatMap((e) => e.declaration.programs ?? []));
    const needed = (p: string) => d.programs === undefined || d.programs.includes(p);
    const { programs } = this.runner;
    for (const p of governed) if (needed(p) && !programs.attached(p)) programs.attach(p);
    for (const p of governed) if (!needed(p) && programs.attached(p)) programs.detach(p);
    await d.start?.();
    entry.startError = undefined;
    this.running = entry;
    if (!count) return;
    this.since = this.now();
    entry.runs++;
  }
}

function checkScore(score: StrategyScore | undefined): StrategyScore | undefined {
  if (score === undefined) return undefined;
  if (!Number.isFinite(score.score) || !Number.isInteger(score.samples) || score.samples < 0) {
    throw new Error(`not a score: ${JSON.stringify(score)} (score must be a finite number, samples a count)`);
  }
  return score;
}

function validate(declarations: readonly StrategyDeclaration[], loaded: readonly string[]): string[] {
  const problems: string[] = [];
  if (declarations.length < 2) problems.push('a tuner with strategies offers at least two');
  const names = new Set<string>();
  for (const [i, d] of declarations.entries()) {
    if (typeof d.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(d.name)) problems.push(`strategies[${i}] needs a name of lowercase letters, digits and '-'`);
    else if (names.has(d.name)) problems.push(`strategy '${d.name}' is declared twice`);
    names.add(d.name);
    if (typeof d.description !== 'string' || !d.description) problems.push(`strategy '${d.name}' needs a description`);
    if (!Number.isFinite(d.timeoutMs) || d.timeoutMs <= 0) problems.push(`strategy '${d.name}' needs a positive timeoutMs`);
    if (typeof d.evaluate !== 'function') problems.push(`strategy '${d.name}' needs an evaluate() function`);
    for (const p of d.programs ?? []) {
      if (!loaded.includes(p)) problems.push(`strategy '${d.name}' needs program '${p}', which is not loaded (loaded: ${loaded.join(', ') || 'none'})`);
    }
  }
  return problems;
}
