/**
 * Sampled hooks: a BPF program on a per-call hook (every send, every read)
 * attached only part of the time. Having a program on such a tracepoint
 * costs the workload even when the program returns at once (the dispatch
 * around it: bench/hook-presence.ts measures it), so a check that does not
 * need to see every call is attached for a window of each period and
 * detached in between: the cost falls to the window's share of the period,
 * and what the check watches for (a socket held back by its limit) is
 * seen at the next window, at most a period late.
 *
 * Once the hook has found something (an event of one of the kinds it
 * posts), it stays attached until holdMs pass without another: a tuner
 * growing a limit step by step then takes each step when the socket reaches
 * it, not a period later.
 *
 * Windows start on a grid of the period on the shared clock (see ticker.ts),
 * so the attach shares its wake-up with the other timers of that grid.
 * Attaching can fail (the kernel refuses, memory): it is logged and tried
 * again at the next window; the daemon carries on without the hook meanwhile.
 *
 * Attaching and detaching cost the daemon CPU of their own, and how much
 * depends on the kernel's hook: a tracepoint is cheap to cycle, an fentry
 * program builds and tears down a BPF trampoline, patching kernel text each
 * time. So the sampler measures each cycle's CPU and, where cycling would
 * spend more than CYCLE_CPU_BUDGET of a core, lengthens the period (in whole
 * periods, so windows stay on the grid): sampling must not cost an idle
 * machine more than it saves a busy one. An explicit BPFTUNE_HOOK_PERIOD_MS
 * is kept as it is.
 */
import { performance } from 'node:perf_hooks';
import { errorText, type Logger } from './log';
import type { ProgramSwitch } from './strategy';
import { nextGridDelay } from './ticker';

/** The share of one core a sampled hook's attaching and detaching may take: a fifth of the daemon's idle target (0.05 %). */
export const CYCLE_CPU_BUDGET = 0.0001;
/** Cycles whose CPU is remembered: the period follows their median, so one slow cycle does not move it. */
const CYCLE_COST_SAMPLES = 5;
/** Measured cycles before the period is judged at all. */
const CYCLE_COST_MIN_SAMPLES = 3;

export interface SampledHook {
  /** The programs this applies to: the variants of one hook, whichever was loaded. */
  programs: readonly string[];
  /** Attached this long ... */
  windowMs: number;
  /** ... at the start of every period this long. */
  periodMs: number;
  /** Event kinds (scenario ids) posted by the hook: each keeps it attached for holdMs after it. */
  holdOn: readonly number[];
  holdMs: number;
}

export interface HookSamplerOptions {
  tuner: string;
  log: Logger;
  programs: ProgramSwitch;
  now?: () => number;
  /** A one-shot timer; returns its cancel. */
  setTimer?: (task: () => void, ms: number) => () => void;
  /** CPU time this process has used, in ms: what an attach or a detach cost. */
  cpuNow?: () => number;
  /** Lengthen the period where cycling costs more than CYCLE_CPU_BUDGET (not when the period was set explicitly). */
  stretch?: boolean;
}

/** The whole process's CPU (Node 18 has no per-thread figure): other threads' work during a call is noise that the median of several cycles keeps out. */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * BPFTUNE_HOOK_SAMPLING=off keeps sampled hooks attached all the time: the
 * cost they avoid and the reaction they give up, measured side by side
 * (bench/hook-sampling.ts). Anything else leaves sampling on.
 */
export function hookSamplingSetting(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.BPFTUNE_HOOK_SAMPLING?.trim().toLowerCase() !== 'off';
}

/**
 * BPFTUNE_HOOK_PERIOD_MS: every sampled hook's period, in ms, instead of its
 * declared one (its window kept, up to half the period): the tests see
 * windows in seconds. Anything but a positive integer is ignored.
 */
export function hookPeriodOverride(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.BPFTUNE_HOOK_PERIOD_MS?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const ms = Number(text);
  return ms > 0 ? ms : undefined;
}

/** A declaration with the period override applied. */
export function withPeriod(hook: SampledHook, periodMs: number | undefined): SampledHook {
  if (periodMs === undefined) return hook;
  return { ...hook, periodMs, windowMs: Math.min(hook.windowMs, Math.floor(periodMs / 2)) };
}

/** The two settings above, read once: the loader runs by them and -S reports by them. */
export interface SamplingSettings {
  sampling: boolean;
  periodMs: number | undefined;
}

export function samplingSettings(env: NodeJS.ProcessEnv = process.env): SamplingSettings {
  return { sampling: hookSamplingSetting(env), periodMs: hookPeriodOverride(env) };
}

/** A period given explicitly (BPFTUNE_HOOK_PERIOD_MS) is the one asked for: only a declared one is lengthened. */
export function periodStretches(settings: SamplingSettings): boolean {
  return settings.periodMs === undefined;
}

/** The hook's program among those loaded (its variants are alternatives, so at most one is), if any. */
export function sampledProgram(hook: SampledHook, loaded: readonly string[]): string | undefined {
  return hook.programs.find((p) => loaded.includes(p));
}

/** How a loaded sampled program runs under these settings, as -S says it. */
export function samplingSummary(hook: SampledHook, settings: SamplingSettings): string {
  if (!settings.sampling) return 'not sampled, attached all the time (BPFTUNE_HOOK_SAMPLING=off)';
  const h = withPeriod(hook, settings.periodMs);
  const stretched = periodStretches(settings) ? ` (or of a longer period where attaching and detaching it cost more than ${CYCLE_CPU_BUDGET * 100} % of a core)` : '';
  return `sampled: attached ${h.windowMs} ms of every ${h.periodMs / 1000} s${stretched}`;
}

function defaultTimer(task: () => void, ms: number): () => void {
  const t = setTimeout(task, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** What is wrong with a declaration, for the tuner's load error; empty when nothing is. (Plugins are not type-checked.) */
export function sampledHookProblems(hooks: unknown, loaded: readonly string[]): string[] {
  if (!Array.isArray(hooks)) return ['sampledHooks must be a list'];
  const problems: string[] = [];
  const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  (hooks as unknown[]).forEach((entry, i) => {
    const what = `sampledHooks[${i}]`;
    const h = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<Record<keyof SampledHook, unknown>>;
    const programs: unknown[] = Array.isArray(h.programs) ? (h.programs as unknown[]) : [];
    if (programs.length === 0 || programs.some((p) => typeof p !== 'string')) {
      problems.push(`${what} needs the names of the programs it samples`);
      return;
    }
    const names = programs as string[];
    if (!positive(h.windowMs) || !positive(h.periodMs) || (h.windowMs as number) >= (h.periodMs as number)) {
      problems.push(`${what} (${names.join(', ')}) needs 0 < windowMs < periodMs (got ${String(h.windowMs)} and ${String(h.periodMs)})`);
    }
    if (typeof h.holdMs !== 'number' || !Number.isFinite(h.holdMs) || h.holdMs < 0) problems.push(`${what} needs holdMs >= 0`);
    if (!Array.isArray(h.holdOn) || (h.holdOn as unknown[]).some((k) => !Number.isInteger(k))) problems.push(`${what} needs holdOn, a list of event kinds`);
    const present = names.filter((p) => loaded.includes(p));
    if (present.length > 1) problems.push(`${what} names ${present.join(' and ')}, both loaded: it samples the variants of one hook`);
  });
  return problems;
}

/** One sampled program: attached for a window of each period, and while its events keep coming. */
export class HookSampler {
  private readonly now: () => number;
  private readonly setTimer: (task: () => void, ms: number) => () => void;
  private readonly cpuNow: () => number;
  private cancel: (() => void) | undefined;
  private heldUntil = 0;
  private windowEnd = 0;
  private failing = false;
  private stopped = false;
  /** ms attached in completed windows and holds, and since when the current one runs: attachedShare(). */
  private attachedMs = 0;
  private attachedSince: number | undefined;
  private readonly startedAt: number;
  /** CPU of the last attach, until its detach completes the cycle; the last cycles' CPU; periods per window. */
  private attachCpuMs: number | undefined;
  private readonly cycleCpuMs: number[] = [];
  private periods = 1;

  constructor(
    readonly hook: SampledHook,
    readonly program: string,
    private readonly options: HookSamplerOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimer ?? defaultTimer;
    this.cpuNow = options.cpuNow ?? processCpuMs;
    this.startedAt = this.now();
  }

  /** The period windows start on: the declared one, or a whole multiple of it where cycling is dear. */
  periodMs(): number {
    return this.hook.periodMs * this.periods;
  }

  /** The program is attached now (the loader attached it): its first window runs from here. */
  start(): void {
    const { tuner, log } = this.options;
    const h = this.hook;
    log.info(
      `tuner '${tuner}': program '${this.program}' runs on every call of its hook, so it is attached ${h.windowMs} ms of every ` +
        `${h.periodMs / 1000} s, and kept attached while it finds something (until ${h.holdMs / 1000} s pass without)`,
    );
    if (this.options.programs.attached(this.program)) this.attachedSince = this.now();
    this.windowEnd = this.now() + h.windowMs;
    this.schedule(() => this.endWindow(), h.windowMs);
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** An event from this tuner: one of the hook's kinds keeps it attached, and attaches it if a window just closed. */
  sawEvent(kind: number): void {
    if (this.stopped || !this.hook.holdOn.includes(kind)) return;
    const now = this.now();
    this.heldUntil = Math.max(this.heldUntil, now + this.hook.holdMs);
    if (!this.options.programs.attached(this.program) && this.attach()) {
      this.windowEnd = now;
      this.schedule(() => this.endWindow(), this.hook.holdMs);
    }
  }

  /** Share of the time since start the program was attached, 0 to 1. */
  attachedShare(): number {
    const now = this.now();
    const total = now - this.startedAt;
    const current = this.attachedSince === undefined ? 0 : now - this.attachedSince;
    return total > 0 ? Math.min(1, (this.attachedMs + current) / total) : 1;
  }

  private schedule(task: () => void, ms: number): void {
    this.cancel?.();
    this.cancel = this.setTimer(() => {
      this.cancel = undefined;
      if (!this.stopped) task();
    }, Math.max(1, Math.ceil(ms)));
  }

  private endWindow(): void {
    const now = this.now();
    const until = Math.max(this.windowEnd, this.heldUntil);
    if (now < until) {
      this.schedule(() => this.endWindow(), until - now);
      return;
    }
    this.detach();
    this.schedule(() => this.startWindow(), nextGridDelay(now, this.periodMs()));
  }

  private startWindow(): void {
    this.attach();
    // A failed attach is tried again at the next window; the window's end schedules it.
    this.windowEnd = this.now() + this.hook.windowMs;
    this.schedule(() => this.endWindow(), this.hook.windowMs);
  }

  private attach(): boolean {
    const { programs, log, tuner } = this.options;
    const cpu0 = this.cpuNow();
    try {
      programs.attach(this.program);
    } catch (err) {
      if (!this.failing) {
        log.warn(`tuner '${tuner}': attaching program '${this.program}' for its sampling window failed: ${errorText(err)}; trying again every ${this.periodMs() / 1000} s`);
      }
      this.failing = true;
      return false;
    }
    this.attachCpuMs = this.cpuNow() - cpu0;
    if (this.failing) log.info(`tuner '${tuner}': program '${this.program}' attaches again`);
    this.failing = false;
    this.attachedSince ??= this.now();
    return true;
  }

  private detach(): void {
    if (this.attachedSince !== undefined) this.attachedMs += this.now() - this.attachedSince;
    this.attachedSince = undefined;
    const cpu0 = this.cpuNow();
    this.options.programs.detach(this.program);
    const detachCpuMs = this.cpuNow() - cpu0;
    // The loader's attach was not measured: the first cycle counts from the sampler's own attach.
    if (this.attachCpuMs === undefined) return;
    this.cycleCpuMs.push(this.attachCpuMs + detachCpuMs);
    if (this.cycleCpuMs.length > CYCLE_COST_SAMPLES) this.cycleCpuMs.shift();
    this.attachCpuMs = undefined;
    this.judgePeriod();
  }

  /**
   * Whole periods per window such that a cycle's CPU (the median of the last
   * few) stays within the budget. Lengthened at once; shortened only when half
   * as many would do, so a cost near a boundary does not flip it every cycle.
   */
  private judgePeriod(): void {
    if (this.options.stretch === false || this.cycleCpuMs.length < CYCLE_COST_MIN_SAMPLES) return;
    const sorted = [...this.cycleCpuMs].sort((a, b) => a - b);
    const cycleMs = sorted[Math.floor(sorted.length / 2)];
    const needed = Math.max(1, Math.ceil(cycleMs / CYCLE_CPU_BUDGET / this.hook.periodMs));
    if (needed <= this.periods && needed * 2 > this.periods) return;
    const before = this.periodMs();
    this.periods = needed;
    const { log, tuner } = this.options;
    log.info(
      `tuner '${tuner}': attaching and detaching program '${this.program}' costs ${cycleMs.toFixed(1)} ms of CPU a cycle (median of the last ${sorted.length}), ` +
        `so it is now attached ${this.hook.windowMs} ms of every ${this.periodMs() / 1000} s, not every ${before / 1000} s: ` +
        `sampling spends at most ${CYCLE_CPU_BUDGET * 100} % of a core on it`,
    );
  }
}
