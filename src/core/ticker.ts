/**
 * The timers behind ctx.every(), shaped for an idle host: each wake-up of
 * the daemon costs CPU whatever it does (a VM's timer interrupt, the event
 * loop turning, often a worker-thread hop for a /proc read), so
 *  - every run lands on a grid of its interval on one clock shared by all
 *    tuners: timers whose intervals divide each other fire in the same
 *    wake-up instead of each in its own;
 *  - a task that says it found nothing worth watching ('quiet') for
 *    quietAfterMs (30 s) in a row is run at its quiet interval instead, until it
 *    says otherwise or something (a BPF event) calls wake(). Quiet intervals
 *    are multiples of each other (30 s is the usual one), so slowed timers
 *    share their wake-ups too.
 * A run never overlaps the previous one: the next is scheduled when it ends.
 */
import { performance } from 'node:perf_hooks';
import type { TickResult, Ticker, TickerOptions } from './tuner';

/** How long a task must stay quiet at its own interval before slowing down, unless it says otherwise. */
export const QUIET_AFTER_MS = 30_000;

/**
 * The next point of the `intervalMs` grid at least a quarter interval away:
 * a timer firing a hair early (ms rounding) must not land on the grid point
 * it is running for.
 */
export function nextGridDelay(now: number, intervalMs: number): number {
  const next = (Math.floor((now + intervalMs / 4) / intervalMs) + 1) * intervalMs;
  return Math.max(1, Math.ceil(next - now));
}

export function startTicker(
  intervalMs: number,
  task: () => Promise<TickResult> | TickResult,
  onError: (err: unknown) => void,
  options: TickerOptions = {},
): Ticker & { stop(): void } {
  const quietIntervalMs = Math.max(intervalMs, options.quietIntervalMs ?? intervalMs);
  const quietAfterMs = options.quietAfterMs ?? QUIET_AFTER_MS;
  let current = intervalMs;
  /** performance.now() when the task first said 'quiet' in the current quiet stretch. */
  let quietSince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopped = false;

  const schedule = () => {
    if (stopped || running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, nextGridDelay(performance.now(), current));
    timer.unref();
  };
  const settle = (result: TickResult) => {
    const now = performance.now();
    if (result !== 'quiet') {
      quietSince = undefined;
      current = intervalMs;
      return;
    }
    quietSince ??= now;
    if (now - quietSince >= quietAfterMs) current = quietIntervalMs;
  };
  function run(): void {
    timer = undefined;
    running = true;
    Promise.resolve()
      .then(task)
      .then(settle, (err: unknown) => {
        settle(undefined);
        onError(err);
      })
      .finally(() => {
        running = false;
        schedule();
      });
  }
  schedule();
  return {
    get intervalMs() {
      return current;
    },
    wake() {
      quietSince = undefined;
      if (current === intervalMs) return;
      current = intervalMs;
      // A run in progress schedules the next one itself, at the base interval now.
      schedule();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
