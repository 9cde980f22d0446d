import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { nextGridDelay, startTicker } from '../../src/core/ticker';
import type { TickResult } from '../../src/core/tuner';

test('runs land on the grid of their interval, so timers whose intervals divide each other share wake-ups', () => {
  assert.equal(nextGridDelay(0, 5000), 5000);
  assert.equal(nextGridDelay(1200, 5000), 3800);
  assert.equal(nextGridDelay(12_000, 10_000), 8000);
  // 10 s and 30 s timers meet at 30 s.
  assert.equal(21_000 + nextGridDelay(21_000, 10_000), 30_000);
  assert.equal(1000 + nextGridDelay(1000, 30_000), 30_000);
  // A timer firing a hair early does not run again for the grid point it ran for.
  assert.equal(nextGridDelay(4999.6, 5000), 5001);
  assert.equal(nextGridDelay(29_999, 30_000), 30_001);
});

/** The ticker's timers are unref'd (they never keep the daemon alive): this keeps the test's loop going. */
function keepAlive(): () => void {
  const timer = setInterval(() => undefined, 1000);
  return () => clearInterval(timer);
}

/** Resolves after the next run, once the ticker has taken in its result. */
async function runs(counter: { n: number; waiters: Array<() => void> }): Promise<void> {
  await new Promise<void>((resolve) => counter.waiters.push(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

test("a task quiet for quietAfterMs slows to its quiet interval; a result that is not 'quiet', or wake(), brings it back", async () => {
  const release = keepAlive();
  const counter = { n: 0, waiters: [] as Array<() => void> };
  let result: TickResult = 'quiet';
  const ticker = startTicker(
    10,
    () => {
      counter.n++;
      for (const w of counter.waiters.splice(0)) w();
      return result;
    },
    (err) => assert.fail(String(err)),
    { quietIntervalMs: 40, quietAfterMs: 30 },
  );
  try {
    assert.equal(ticker.intervalMs, 10);
    while (ticker.intervalMs === 10) await runs(counter);
    assert.equal(ticker.intervalMs, 40, 'slowed after 30 ms of quiet runs');
    ticker.wake();
    assert.equal(ticker.intervalMs, 10, 'wake() restores the base interval at once');
    result = undefined;
    await runs(counter);
    await runs(counter);
    assert.equal(ticker.intervalMs, 10, 'busy runs keep it at the base interval');
    result = 'quiet';
    while (ticker.intervalMs === 10) await runs(counter);
    result = undefined;
    await runs(counter);
    assert.equal(ticker.intervalMs, 10, 'one busy run restores it');
  } finally {
    ticker.stop();
    release();
  }
});

test('a run never overlaps the previous one, and a throwing task keeps its timer', async () => {
  const release = keepAlive();
  let active = 0;
  let overlapped = false;
  let calls = 0;
  const errors: unknown[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const ticker = startTicker(
    5,
    async () => {
      calls++;
      if (active++) overlapped = true;
      await new Promise((r) => setTimeout(r, 12));
      active--;
      if (calls === 2) throw new Error('boom');
      if (calls === 4) done();
    },
    (err) => errors.push(err),
  );
  try {
    await finished;
  } finally {
    ticker.stop();
    release();
  }
  assert.equal(overlapped, false);
  assert.equal(errors.length, 1);
});
