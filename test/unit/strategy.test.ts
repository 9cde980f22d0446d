import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  chooseStrategy,
  strategyTimeoutOverride,
  StrategyRunner,
  type StrategyDeclaration,
  type StrategyEvaluation,
  type StrategyScore,
} from '../../src/core/strategy';
import { recordingLog, recordingPrograms } from '../support/recording';

const scored = (name: string, score: number, samples = 5): StrategyEvaluation => ({ name, score: { score, samples } });

test('chooseStrategy: the running one with nothing measured runs on; unmeasured ones are tried first, in declared order', () => {
  assert.deepEqual(chooseStrategy('a', [{ name: 'a' }, { name: 'b' }]), { next: 'a', switched: false, why: "'a' having measured nothing yet" });
  const untried = chooseStrategy('a', [scored('a', 0.9), { name: 'b' }, { name: 'c' }]);
  assert.equal(untried.next, 'b');
  assert.equal(untried.switched, true);
  assert.equal(untried.why, "'b' not measured yet");
  assert.equal(chooseStrategy('b', [scored('a', 0.9), scored('b', 0.1), { name: 'c' }]).next, 'c', 'even when the running one is worse');
});

test('chooseStrategy: then the best score runs; within the margin is a tie, and a tie keeps the running one', () => {
  const better = chooseStrategy('c', [scored('a', 0.9, 7), scored('b', 0.5), scored('c', 0.4, 6)]);
  assert.deepEqual(better, {
    next: 'a',
    switched: true,
    why: "'a' scoring 0.900 (7 samples) against 'c' 0.400 (6 samples)",
  });
  assert.equal(chooseStrategy('a', [scored('a', 0.9), scored('b', 0.5)]).switched, false, 'the best is running');
  const tie = chooseStrategy('b', [scored('a', 0.54), scored('b', 0.5)], 0.05);
  assert.equal(tie.next, 'b');
  assert.equal(tie.switched, false);
  assert.match(tie.why, /^'b' scoring best or within 0\.05 of the best: 'a' 0\.540 \(5 samples\), 'b' 0\.500 \(5 samples\)$/);
  assert.equal(chooseStrategy('b', [scored('a', 0.56), scored('b', 0.5)], 0.05).next, 'a', 'beyond the margin');
  assert.equal(chooseStrategy('b', [scored('a', 0.5), scored('b', 0.5)]).next, 'b', 'an exact tie without a margin');
});

test('chooseStrategy: a strategy whose evaluation failed is never chosen; a failing running one gives way', () => {
  assert.equal(chooseStrategy('a', [scored('a', 0.2), { name: 'b', error: 'boom' }]).next, 'a', 'a failed one is not "untried"');
  assert.equal(chooseStrategy('a', [scored('a', 0.2), { name: 'b', error: 'boom', score: { score: 9, samples: 1 } }]).next, 'a');
  const away = chooseStrategy('a', [{ name: 'a', error: 'boom' }, scored('b', 0.1)]);
  assert.equal(away.next, 'b');
  assert.match(away.why, /^'a' failing \(boom\); 'b' scoring 0\.100/);
  assert.equal(chooseStrategy('a', [{ name: 'a', error: 'boom' }, { name: 'b' }]).why, "'a' failing (boom) and 'b' not measured yet");
  assert.equal(chooseStrategy('a', [{ name: 'a', error: 'boom' }, { name: 'b', error: 'bang' }]).switched, false, 'nothing to go to');
});

test('strategyTimeoutOverride: a positive integer of ms, anything else ignored', () => {
  assert.equal(strategyTimeoutOverride({ BPFTUNE_STRATEGY_TIMEOUT_MS: '1500' }), 1500);
  for (const bad of [undefined, '', '0', '-5', '1.5', 'soon']) assert.equal(strategyTimeoutOverride({ BPFTUNE_STRATEGY_TIMEOUT_MS: bad }), undefined, String(bad));
});

/** A program set that records attach/detach, timers run by hand, a log kept as lines. */
function harness(loaded = ['p_common', 'p_a', 'p_b']) {
  const { programs, attached, calls } = recordingPrograms(loaded);
  const { log, lines } = recordingLog();
  const timers: Array<{ ms: number; task: () => void; cancelled: boolean }> = [];
  const setTimer = (task: () => void, ms: number) => {
    const t = { ms, task, cancelled: false };
    timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  let now = 1_000_000;
  return {
    attached,
    calls,
    lines,
    timers,
    programs,
    log,
    setTimer,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    pending: () => timers.filter((t) => !t.cancelled),
  };
}

function strategy(name: string, scores: Array<StrategyScore | undefined | Error>, extra: Partial<StrategyDeclaration> = {}, started: string[] = []): StrategyDeclaration {
  let i = 0;
  return {
    name,
    description: `the ${name} way`,
    timeoutMs: 60_000,
    evaluate: () => {
      const s = scores[Math.min(i++, scores.length - 1)];
      if (s instanceof Error) throw s;
      return s;
    },
    start: () => {
      started.push(name);
    },
    ...extra,
  };
}

test('StrategyRunner: runs the first, tries the other, then keeps the better one; logs each switch with what and why', async () => {
  const h = harness();
  const started: string[] = [];
  const runner = new StrategyRunner(
    [
      strategy('alpha', [{ score: 0.4, samples: 6, basis: 'slow' }], { programs: ['p_common', 'p_a'], timeoutMs: 30_000 }, started),
      strategy('beta', [undefined, undefined, { score: 0.9, samples: 5 }], { programs: ['p_common', 'p_b'] }, started),
    ],
    { margin: 0.05 },
    { tuner: 'demo', log: h.log, programs: h.programs, now: h.now, setTimer: h.setTimer },
  );
  await runner.start();
  assert.equal(runner.current, 'alpha');
  assert.deepEqual(started, ['alpha']);
  assert.deepEqual(h.calls, ['detach p_b'], 'a program only another strategy needs is detached');
  assert.match(h.lines[0], /^tuner 'demo': strategy 'alpha' runs first, evaluated after 30 s \(of 'alpha', 'beta'\): the alpha way$/);
  assert.equal(h.pending()[0].ms, 30_000, "the first one's own timeout");

  h.advance(30_000);
  const first = await runner.evaluate();
  assert.equal(first?.next, 'beta');
  assert.equal(runner.current, 'beta');
  assert.deepEqual(h.calls, ['detach p_b', 'attach p_b', 'detach p_a'], 'attached before the other is detached');
  assert.equal(h.lines[1], "Scenario 'strategy switched' occurred for tuner 'demo'. the beta way");
  assert.equal(h.lines[2], "Due to 'beta' not measured yet switch strategy from 'alpha' -> 'beta'");
  assert.equal(h.pending().length, 1, 'one timer armed at a time');
  assert.equal(h.pending()[0].ms, 60_000);

  // beta has measured nothing yet (its first evaluation): it runs on.
  await runner.evaluate();
  assert.equal(runner.current, 'beta');
  assert.match(h.lines[3], /^tuner 'demo': strategy 'beta' keeps running, due to 'beta' having measured nothing yet$/);

  await runner.evaluate();
  assert.equal(runner.current, 'beta', 'beta 0.9 beats alpha 0.4');
  const status = runner.status();
  assert.equal(status.evaluations, 3);
  assert.equal(status.switches, 1);
  assert.deepEqual(
    status.strategies.map((s) => [s.name, s.score?.score, s.runs]),
    [
      ['alpha', 0.4, 1],
      ['beta', 0.9, 1],
    ],
  );
  assert.match(status.lastDecision ?? '', /^'beta' scoring best or within 0\.05 of the best: 'alpha' 0\.400 \(6 samples, slow\), 'beta' 0\.900 \(5 samples\)$/);
  runner.stop();
  assert.equal(h.pending().length, 0, 'stop clears the timer');
});

test('StrategyRunner: the best measured runs next, and a drop in the running one sends it back', async () => {
  const h = harness();
  const runner = new StrategyRunner(
    [strategy('alpha', [{ score: 0.8, samples: 4 }]), strategy('beta', [undefined, { score: 0.6, samples: 4 }, { score: 0.6, samples: 9 }])],
    {},
    { tuner: 'demo', log: h.log, programs: h.programs, now: h.now, setTimer: h.setTimer },
  );
  await runner.start();
  await runner.evaluate(); // beta untried
  assert.equal(runner.current, 'beta');
  await runner.evaluate(); // beta 0.6 < alpha 0.8
  assert.equal(runner.current, 'alpha');
  assert.equal(h.lines.at(-1), "Due to 'alpha' scoring 0.800 (4 samples) against 'beta' 0.600 (4 samples) switch strategy from 'beta' -> 'alpha'");
  assert.deepEqual(
    runner.status().strategies.map((s) => s.runs),
    [2, 1],
  );
});

test('StrategyRunner: an evaluation that throws or returns nonsense is logged and that strategy passed over; the runner goes on', async () => {
  const h = harness();
  const runner = new StrategyRunner(
    [strategy('alpha', [{ score: 0.5, samples: 3 }]), strategy('beta', [new Error('map gone')]), strategy('gamma', [{ score: Number.NaN, samples: 1 }])],
    {},
    { tuner: 'demo', log: h.log, programs: h.programs, now: h.now, setTimer: h.setTimer },
  );
  await runner.start();
  const decision = await runner.evaluate();
  assert.equal(decision?.switched, false);
  assert.equal(runner.current, 'alpha');
  assert.ok(h.lines.includes("error: tuner 'demo': strategy 'beta': evaluation failed: map gone; it is not chosen this time"), h.lines.join('\n'));
  assert.ok(h.lines.some((l) => /strategy 'gamma': evaluation failed: not a score/.test(l)), h.lines.join('\n'));
  assert.equal(runner.status().strategies[1].error, 'evaluation failed: map gone');
  assert.equal(h.pending().length, 1, 'the timer is armed again');
});

test('StrategyRunner: a strategy that fails to start is not run; the running one is restarted and stays', async () => {
  const h = harness();
  const started: string[] = [];
  const runner = new StrategyRunner(
    [
      strategy('alpha', [{ score: 0.5, samples: 3 }], {}, started),
      strategy('beta', [undefined], {
        start: () => {
          throw new Error('EPERM');
        },
      }),
    ],
    {},
    { tuner: 'demo', log: h.log, programs: h.programs, now: h.now, setTimer: h.setTimer },
  );
  await runner.start();
  await runner.evaluate();
  assert.equal(runner.current, 'alpha');
  assert.deepEqual(started, ['alpha', 'alpha']);
  assert.ok(h.lines.includes("error: tuner 'demo': strategy 'beta' could not start: EPERM; 'alpha' keeps running"), h.lines.join('\n'));
  await runner.evaluate();
  assert.equal(runner.current, 'alpha', 'not tried again');
  assert.equal(runner.status().switches, 0);
});

test('StrategyRunner: advisory mode evaluates but keeps the first, saying why once; BPFTUNE_STRATEGY_TIMEOUT_MS replaces every timeout', async () => {
  const h = harness();
  const runner = new StrategyRunner(
    [strategy('alpha', [{ score: 0.1, samples: 3 }]), strategy('beta', [undefined])],
    {},
    { tuner: 'demo', log: h.log, programs: h.programs, now: h.now, setTimer: h.setTimer, advisory: true, timeoutOverrideMs: 2_000 },
  );
  await runner.start();
  assert.equal(h.pending()[0].ms, 2_000);
  await runner.evaluate();
  await runner.evaluate();
  assert.equal(runner.current, 'alpha');
  assert.equal(h.lines.filter((l) => /advisory mode: strategies are evaluated but 'alpha' keeps running/.test(l)).length, 1);
  assert.equal(runner.status().strategies[0].timeoutMs, 2_000);
});

test('StrategyRunner: declarations are checked: two at least, names, timeouts, programs that are loaded', () => {
  const h = harness(['p_common']);
  const make = (list: StrategyDeclaration[]) => () => new StrategyRunner(list, {}, { tuner: 'demo', log: h.log, programs: h.programs });
  assert.throws(make([strategy('alpha', [])]), /at least two/);
  assert.throws(make([strategy('alpha', []), strategy('alpha', [])]), /'alpha' is declared twice/);
  assert.throws(make([strategy('alpha', []), strategy('Beta Way', [])]), /lowercase letters/);
  assert.throws(make([strategy('alpha', []), strategy('beta', [], { timeoutMs: 0 })]), /'beta' needs a positive timeoutMs/);
  assert.throws(make([strategy('alpha', []), strategy('beta', [], { programs: ['p_missing'] })]), /'beta' needs program 'p_missing', which is not loaded \(loaded: p_common\)/);
});
