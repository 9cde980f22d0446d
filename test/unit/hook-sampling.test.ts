import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { HookSampler, hookPeriodOverride, hookSamplingSetting, sampledHookProblems, sampledProgram, samplingSettings, samplingSummary, withPeriod, type SampledHook } from '../../src/core/hook-sampling';
import { recordingLog, recordingPrograms } from '../support/recording';

const HOOK: SampledHook = { programs: ['snd', 'snd_fentry'], windowMs: 200, periodMs: 4000, holdOn: [2], holdMs: 10_000 };

/** Virtual time: timers fire in due order as time is advanced; attach and detach are recorded with their time. */
function harness(options: { failAttach?: () => boolean; callCpuMs?: () => number; stretch?: boolean } = {}) {
  let now = 8000; // on the period's grid
  let cpu = 0; // the process's CPU in ms: each attach and detach adds callCpuMs
  const { programs, attached, calls } = recordingPrograms(['snd'], {
    describe: (call) => {
      cpu += options.callCpuMs?.() ?? 0;
      return `${call} ${now}`;
    },
    refuseAttach: options.failAttach,
  });
  const { log, lines } = recordingLog();
  const timers: Array<{ due: number; task: () => void; cancelled: boolean }> = [];
  const setTimer = (task: () => void, ms: number) => {
    const t = { due: now + ms, task, cancelled: false };
    timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  const sampler = new HookSampler(HOOK, 'snd', { tuner: 'demo', log, programs, now: () => now, setTimer, cpuNow: () => cpu, stretch: options.stretch });
  return {
    sampler,
    attached,
    calls,
    lines,
    now: () => now,
    pending: () => timers.filter((t) => !t.cancelled).length,
    /** Runs every timer due up to `to`, in order, with the clock at each one's due time. */
    advanceTo(to: number) {
      for (;;) {
        const next = timers.filter((t) => !t.cancelled && t.due <= to).sort((a, b) => a.due - b.due)[0];
        if (!next) break;
        next.cancelled = true;
        now = next.due;
        next.task();
      }
      now = to;
    },
  };
}

test('a sampled hook is attached for its window at the start of each period and detached in between', () => {
  const h = harness();
  h.sampler.start();
  assert.match(h.lines[0], /tuner 'demo': program 'snd' runs on every call of its hook, so it is attached 200 ms of every 4 s/);
  h.advanceTo(8000 + 3 * 4000 + 500);
  assert.deepEqual(h.calls, ['detach 8200', 'attach 12000', 'detach 12200', 'attach 16000', 'detach 16200', 'attach 20000', 'detach 20200']);
  assert.equal(h.attached.has('snd'), false);
  const share = h.sampler.attachedShare();
  assert.ok(share > 0.04 && share < 0.07, `attached about 5 % of the time (${share})`);
  h.sampler.stop();
  assert.equal(h.pending(), 0, 'stop cancels the next window');
});

test('an event of its kinds keeps the hook attached until holdMs pass without one; other kinds do not', () => {
  const h = harness();
  h.sampler.start();
  h.advanceTo(8100);
  h.sampler.sawEvent(7); // not the hook's kind
  h.sampler.sawEvent(2);
  h.advanceTo(15_000);
  h.sampler.sawEvent(2); // still attached: the hold runs on from here
  h.advanceTo(24_000);
  assert.deepEqual(h.calls, [], 'attached throughout the hold');
  h.advanceTo(25_001);
  assert.deepEqual(h.calls, ['detach 25000'], 'detached 10 s after the last event');
  h.advanceTo(28_000);
  assert.deepEqual(h.calls, ['detach 25000', 'attach 28000'], 'and the periodic windows resume on the grid');
});

test('an event that arrives after its window closed attaches the hook again and holds it', () => {
  const h = harness();
  h.sampler.start();
  h.advanceTo(9000);
  assert.deepEqual(h.calls, ['detach 8200']);
  h.sampler.sawEvent(2); // posted during the window, read after it
  assert.deepEqual(h.calls, ['detach 8200', 'attach 9000']);
  h.advanceTo(19_001);
  assert.deepEqual(h.calls, ['detach 8200', 'attach 9000', 'detach 19000']);
});

test('a failed attach is logged once, tried again each window, and its recovery logged', () => {
  let fail = true;
  const h = harness({ failAttach: () => fail });
  h.sampler.start();
  h.advanceTo(8000 + 2 * 4000 + 500);
  assert.equal(h.lines.filter((l) => /attaching program 'snd' for its sampling window failed: attach refused; trying again every 4 s/.test(l)).length, 1);
  fail = false;
  h.advanceTo(20_100);
  assert.ok(h.attached.has('snd'));
  assert.ok(h.lines.some((l) => /program 'snd' attaches again/.test(l)));
});

test('where attaching and detaching cost more than the budget, the period grows in whole periods, and the change is logged', () => {
  // 1.8 ms a cycle: 0.01 % of a core allows one every 18 s, so every 20 s (5 periods of 4 s).
  const h = harness({ callCpuMs: () => 0.9 });
  h.sampler.start();
  h.advanceTo(61_000);
  assert.deepEqual(h.calls, [
    'detach 8200', // the loader's attach was not measured: no cycle yet
    'attach 12000', 'detach 12200',
    'attach 16000', 'detach 16200',
    'attach 20000', 'detach 20200', // the third cycle measured: judged
    'attach 40000', 'detach 40200',
    'attach 60000', 'detach 60200',
  ]);
  assert.equal(h.sampler.periodMs(), 20_000);
  const changes = h.lines.filter((l) => /costs .* of CPU a cycle/.test(l));
  assert.equal(changes.length, 1, h.lines.join('\n'));
  assert.match(changes[0], /tuner 'demo': attaching and detaching program 'snd' costs 1\.8 ms of CPU a cycle \(median of the last 3\), so it is now attached 200 ms of every 20 s, not every 4 s: sampling spends at most 0\.01 % of a core on it/);
});

test('a cheap cycle keeps the declared period; a cost that falls brings it back, once the median has fallen', () => {
  let perCall = 0.9;
  const h = harness({ callCpuMs: () => perCall });
  h.sampler.start();
  h.advanceTo(20_300);
  assert.equal(h.sampler.periodMs(), 20_000);
  perCall = 0.05; // 0.1 ms a cycle from here
  h.advanceTo(60_300);
  assert.equal(h.sampler.periodMs(), 20_000, 'two cheap cycles of five: the median is still 1.8 ms');
  h.advanceTo(85_000);
  assert.equal(h.sampler.periodMs(), 4000);
  assert.deepEqual(h.calls.slice(-3), ['detach 80200', 'attach 84000', 'detach 84200']);
  assert.match(h.lines.at(-1) ?? '', /costs 0\.1 ms of CPU a cycle \(median of the last 5\), so it is now attached 200 ms of every 4 s, not every 20 s/);

  const cheap = harness({ callCpuMs: () => 0.05 });
  cheap.sampler.start();
  cheap.advanceTo(60_000);
  assert.equal(cheap.sampler.periodMs(), 4000);
  assert.ok(!cheap.lines.some((l) => /of CPU a cycle/.test(l)));
});

test('an explicit period (BPFTUNE_HOOK_PERIOD_MS) is kept however dear the cycle', () => {
  const h = harness({ callCpuMs: () => 50, stretch: false });
  h.sampler.start();
  h.advanceTo(28_500);
  assert.equal(h.sampler.periodMs(), 4000);
  assert.deepEqual(h.calls.filter((c) => c.startsWith('attach')), ['attach 12000', 'attach 16000', 'attach 20000', 'attach 24000', 'attach 28000']);
});

test('sampledHookProblems names what a declaration gets wrong', () => {
  assert.deepEqual(sampledHookProblems([HOOK], ['snd']), []);
  assert.deepEqual(sampledHookProblems([HOOK], ['other']), [], 'a hook whose programs were not loaded is skipped, not an error');
  const bad = sampledHookProblems(
    [
      { ...HOOK, windowMs: 5000 },
      { ...HOOK, holdMs: -1, holdOn: ['x' as unknown as number] },
      { ...HOOK, programs: [] },
    ],
    ['snd', 'snd_fentry'],
  );
  assert.equal(bad.length, 6, bad.join('\n'));
  assert.match(bad.join('\n'), /needs 0 < windowMs < periodMs \(got 5000 and 4000\)/);
  assert.match(bad.join('\n'), /names snd and snd_fentry, both loaded/);
  assert.match(bad.join('\n'), /needs holdMs >= 0/);
  assert.match(bad.join('\n'), /needs the names of the programs it samples/);
  assert.deepEqual(sampledHookProblems('nonsense', []), ['sampledHooks must be a list']);
});

test('BPFTUNE_HOOK_SAMPLING=off and BPFTUNE_HOOK_PERIOD_MS: anything else is ignored', () => {
  assert.equal(hookSamplingSetting({ BPFTUNE_HOOK_SAMPLING: 'off' }), false);
  assert.equal(hookSamplingSetting({ BPFTUNE_HOOK_SAMPLING: ' OFF ' }), false);
  assert.equal(hookSamplingSetting({ BPFTUNE_HOOK_SAMPLING: 'no' }), true);
  assert.equal(hookSamplingSetting({}), true);
  assert.equal(hookPeriodOverride({ BPFTUNE_HOOK_PERIOD_MS: '4000' }), 4000);
  for (const bad of ['0', '-5', '4s', '', '1.5']) assert.equal(hookPeriodOverride({ BPFTUNE_HOOK_PERIOD_MS: bad }), undefined, bad);
  assert.deepEqual(withPeriod(HOOK, 4000), HOOK, 'the window is kept');
  assert.equal(withPeriod(HOOK, 300).windowMs, 150, 'up to half the period');
  assert.equal(withPeriod(HOOK, undefined), HOOK);
});

test('-S describes a sampled hook by the settings the daemon would run with', () => {
  assert.equal(sampledProgram(HOOK, ['other', 'snd_fentry']), 'snd_fentry');
  assert.equal(sampledProgram(HOOK, ['other']), undefined);
  assert.equal(
    samplingSummary(HOOK, samplingSettings({})),
    'sampled: attached 200 ms of every 4 s (or of a longer period where attaching and detaching it cost more than 0.01 % of a core)',
  );
  assert.equal(samplingSummary(HOOK, samplingSettings({ BPFTUNE_HOOK_PERIOD_MS: '300' })), 'sampled: attached 150 ms of every 0.3 s');
  assert.equal(samplingSummary(HOOK, samplingSettings({ BPFTUNE_HOOK_SAMPLING: 'off', BPFTUNE_HOOK_PERIOD_MS: '300' })), 'not sampled, attached all the time (BPFTUNE_HOOK_SAMPLING=off)');
});
