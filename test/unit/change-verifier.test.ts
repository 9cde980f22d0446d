import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChangeVerifier, compareWindows, counterMeasure, judge, verifierTimings, type Measure, type ProposedChange } from '../../src/core/change-verifier';

const lower = { name: 'sndbuf-limited %', better: 'lower' as const, tolerance: 0.2, floor: 1 };

test('compareWindows: direction, tolerance and floor', () => {
  assert.equal(compareWindows(lower, 40, 10).verdict, 'improved');
  assert.equal(compareWindows(lower, 10, 40).verdict, 'worse');
  assert.equal(compareWindows(lower, 40, 35).verdict, 'unchanged', 'within 20 %');
  assert.equal(compareWindows(lower, 0.2, 0.9).verdict, 'unchanged', 'below the floor');
  assert.equal(compareWindows({ ...lower, better: 'higher' }, 100, 200).verdict, 'improved');
  assert.equal(compareWindows({ ...lower, better: 'higher' }, 100, 50).verdict, 'worse');
});

test('judge: keep only when the benefit improved and no guard got worse', () => {
  const improved = compareWindows(lower, 40, 5);
  const flat = compareWindows(lower, 0, 0);
  const retransWorse = compareWindows({ name: 'retransmits per MB', better: 'lower', tolerance: 0.25, floor: 0.5 }, 10, 30);
  const rttSame = compareWindows({ name: 'srtt us', better: 'lower', tolerance: 0.25, floor: 50 }, 200, 210);
  assert.deepEqual(judge(improved, [rttSame]), { keep: true, conclusive: true, why: '' });
  assert.match(judge(flat, [rttSame]).why, /^sndbuf-limited % did not improve \(0 -> 0\)$/);
  const both = judge(improved, [retransWorse]);
  assert.equal(both.keep, false);
  assert.equal(both.why, 'retransmits per MB got worse (10 -> 30)');
});

/** A measure whose windows give the values in turn. */
function scripted(name: string, values: number[], better: 'lower' | 'higher' = 'lower'): Measure {
  let i = 0;
  return { name, better, tolerance: 0.1, floor: 0, start: () => Promise.resolve(() => Promise.resolve(values[i++])) };
}

function setup() {
  let clock = 1_000_000;
  const lines: string[] = [];
  const verifier = new ChangeVerifier({
    windowMs: 2000,
    settleMs: 500,
    initialHoldOffMs: 60_000,
    maxHoldOffMs: 200_000,
    log: (l) => lines.push(l),
    now: () => clock,
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
  });
  return { verifier, lines, advance: (ms: number) => (clock += ms), now: () => clock };
}

function change(benefit: Measure, guards: Measure[], state: { value: string; undone: number }): ProposedChange {
  return {
    key: 'net.ipv4.tcp_wmem@4097',
    description: 'net.ipv4.tcp_wmem (4096 16384 4194304) -> (4096 16384 20000000)',
    benefit,
    guards,
    apply: () => Promise.resolve(((state.value = 'new'), true)),
    undo: () => Promise.resolve(void ((state.value = 'old'), state.undone++)),
  };
}

test('a change that helps stays; one that does not is undone, logged, and held off for a growing time', async () => {
  const { verifier, lines, advance } = setup();
  const state = { value: 'old', undone: 0 };
  const kept = await verifier.verify(change(scripted('sndbuf-limited %', [40, 5]), [scripted('retransmits per MB', [10, 10])], state));
  assert.equal(kept.kind, 'kept');
  assert.equal(state.value, 'new');
  assert.match(lines[0], /^Kept net\.ipv4\.tcp_wmem .*: sndbuf-limited % 40 -> 5, retransmits per MB 10 -> 10$/);

  state.value = 'old';
  advance(10_000); // not chained to the kept change: a baseline window of its own
  const undone = await verifier.verify(change(scripted('sndbuf-limited %', [0, 0]), [scripted('retransmits per MB', [10, 35])], state));
  assert.equal(undone.kind, 'undone');
  assert.equal(state.value, 'old');
  assert.equal(state.undone, 1);
  assert.equal(lines[1], "Scenario 'change did not help' occurred for 'net.ipv4.tcp_wmem@4097'. Undid net.ipv4.tcp_wmem (4096 16384 4194304) -> (4096 16384 20000000): sndbuf-limited % did not improve (0 -> 0); retransmits per MB got worse (10 -> 35); not retried for 60 s");

  // Held off: not even measured.
  let started = 0;
  const counting: Measure = { ...scripted('x', []), start: () => ((started++), Promise.resolve(() => Promise.resolve(0))) };
  const held = await verifier.verify(change(counting, [], state));
  assert.equal(held.kind, 'held off');
  assert.equal(started, 0);

  // After the hold-off, another failure doubles it, up to the limit.
  advance(60_001);
  const again = await verifier.verify(change(scripted('b', [0, 0]), [], state));
  assert.equal(again.kind === 'undone' && again.holdOffMs, 120_000);
  advance(120_001);
  const third = await verifier.verify(change(scripted('b', [0, 0]), [], state));
  assert.equal(third.kind === 'undone' && third.holdOffMs, 200_000);
  // A success clears it.
  advance(200_001);
  assert.equal((await verifier.verify(change(scripted('b', [10, 1]), [], state))).kind, 'kept');
  assert.equal(verifier.heldOffUntil('net.ipv4.tcp_wmem@4097'), 0);
});

test('a change that was not applied is neither measured after nor undone', async () => {
  const { verifier } = setup();
  const state = { value: 'old', undone: 0 };
  const c = { ...change(scripted('b', [1, 0]), [], state), apply: () => Promise.resolve(false) };
  assert.deepEqual(await verifier.verify(c), { kind: 'not applied', key: 'net.ipv4.tcp_wmem@4097', firstMade: false });
  assert.equal(state.undone, 0);
});

test('compareWindows: a failed read (NaN) never counts as a change', () => {
  assert.equal(compareWindows(lower, Number.NaN, 10).verdict, 'unchanged');
  assert.equal(compareWindows(lower, 10, Number.NaN).verdict, 'unchanged');
});

test('counterMeasure: increases over the window, or the peak over slices with sampleMs', async () => {
  let counter = 0;
  const whole = counterMeasure({ name: 'rate', better: 'higher', tolerance: 0, floor: 0, read: () => Promise.resolve([counter]), value: (d) => d[0] ?? 0 });
  const end = await whole.start();
  counter = 30;
  assert.equal(await end(), 30);
  // A burst then a pause: the peak slice, not the average, so the pause is not read as a loss.
  const rates: number[] = [];
  const peak = counterMeasure({
    name: 'peak rate',
    better: 'higher',
    tolerance: 0,
    floor: 0,
    sampleMs: 20,
    read: () => Promise.resolve([counter]),
    value: (d, s) => {
      rates.push((d[0] ?? 0) / s);
      return (d[0] ?? 0) / s;
    },
  });
  counter = 0;
  const endPeak = await peak.start();
  counter = 1000;
  await new Promise((r) => setTimeout(r, 70));
  const p = await endPeak();
  assert.ok(rates.length >= 2, `sampled ${rates.length} slices`);
  assert.equal(p, Math.max(...rates));
  assert.ok(p > 1000 / 0.07, 'the peak is above the window average');
  const failing = counterMeasure({ name: 'x', better: 'higher', tolerance: 0, floor: 0, read: () => Promise.reject(new Error('gone')), value: () => 1 });
  assert.ok(Number.isNaN(await (await failing.start())()));
});

test('verifierTimings: defaults, and the environment for tests', () => {
  assert.deepEqual(verifierTimings({}), { windowMs: 1000, settleMs: 1000, initialHoldOffMs: 10_000, maxHoldOffMs: 3_600_000 });
  assert.equal(verifierTimings({ BPFTUNE_VERIFY_SETTLE_MS: '600000' }).settleMs, 600_000);
  assert.equal(verifierTimings({ BPFTUNE_VERIFY_WINDOW_MS: 'soon' }).windowMs, 1000, 'not a number: the default');
});

test('a window that measured nothing (below the minimum) gives no verdict: the change stays, the hold-off is untouched', async () => {
  const traffic = { name: 'peak Mbit/s', better: 'higher' as const, tolerance: 0.15, floor: 1, minimum: 1 };
  assert.equal(compareWindows(traffic, 0.0008, 0.05).verdict, 'no data', 'no traffic either side');
  assert.equal(compareWindows(traffic, 8, 0.2).verdict, 'no data', 'traffic stopped');
  assert.equal(compareWindows(traffic, 0.2, 50).verdict, 'no data', 'traffic started');
  assert.equal(compareWindows(traffic, 8, 7).verdict, 'unchanged');
  const retransWorse = compareWindows({ name: 'retransmits', better: 'lower', tolerance: 0.25, floor: 0.5 }, 10, 30);
  assert.deepEqual(judge(compareWindows(traffic, 0, 0), []), { keep: true, conclusive: false, why: '' });
  assert.equal(judge(compareWindows(traffic, 0, 0), [retransWorse]).keep, false, 'a worse guard still undoes it');

  const { verifier, lines } = setup();
  const state = { value: 'old', undone: 0 };
  const quiet: Measure = { ...scripted('peak Mbit/s', [0.0008, 0.05], 'higher'), minimum: 1 };
  const outcome = await verifier.verify(change(quiet, [], state));
  assert.equal(outcome.kind, 'no verdict');
  assert.equal(state.value, 'new');
  assert.equal(state.undone, 0);
  assert.equal(verifier.heldOffUntil('net.ipv4.tcp_wmem@4097'), 0);
  assert.match(lines[0], /^Kept .* without a verdict: peak Mbit\/s measured nothing in a window \(peak Mbit\/s 0\.000800 -> 0\.0500\)$/);
});

test('a first step is taken before the baseline only while the key is trusted; an undo takes it back with the rest', async () => {
  const { verifier, advance } = setup();
  const steps: string[] = [];
  const stepping = (benefit: number[], applies = true): ProposedChange => ({
    key: 'k',
    description: 'growth of k',
    benefit: scripted('peak', benefit, 'higher'),
    guards: [],
    first: () => Promise.resolve((steps.push('first'), true)),
    apply: () => Promise.resolve(applies && (steps.push('apply'), true)),
    undo: () => Promise.resolve(void steps.push('undo')),
  });
  // Trusted at first: the first step comes before the baseline window.
  assert.equal((await verifier.verify(stepping([10, 20]))).kind, 'kept');
  assert.deepEqual(steps.splice(0), ['first', 'apply']);
  advance(10_000);
  // Kept, so still trusted. This time nothing more was needed: the first step stays, unjudged...
  assert.deepEqual(await verifier.verify(stepping([10], false)), { kind: 'not applied', key: 'k', firstMade: true });
  assert.deepEqual(steps.splice(0), ['first']);
  // ...and the next change to k measures its baseline before any step.
  assert.equal(verifier.trusted('k'), false);
  assert.equal((await verifier.verify(stepping([10, 10]))).kind, 'undone');
  assert.deepEqual(steps.splice(0), ['apply', 'undo']);
  // Undone: not trusted after the hold-off either, until a change is kept.
  advance(10 * 60_000);
  assert.equal((await verifier.verify(stepping([10, 30]))).kind, 'kept');
  assert.deepEqual(steps.splice(0), ['apply']);
  assert.equal(verifier.trusted('k'), true);
});

test('a change nothing used by the time it settled gets no verdict, and is not measured after', async () => {
  const { verifier, lines } = setup();
  const state = { value: 'old', undone: 0 };
  let windows = 0;
  const counting: Measure = { ...scripted('peak', []), start: () => ((windows++), Promise.resolve(() => Promise.resolve(5))) };
  const unused = { ...change(counting, [], state), exercised: () => false };
  assert.deepEqual(await verifier.verify(unused), { kind: 'no verdict', key: 'net.ipv4.tcp_wmem@4097' });
  assert.equal(windows, 1, 'only the window before');
  assert.equal(state.value, 'new');
  assert.equal(state.undone, 0);
  assert.match(lines[0], /without a verdict: nothing used it within 2500 ms$/, 'the settle time, then four more for something to use it');
  // Used: judged as usual (here: no better, so undone).
  const used = { ...change(scripted('peak', [5, 5], 'higher'), [], state), exercised: () => true };
  assert.equal((await verifier.verify(used)).kind, 'undone');
});

test('a change soon after a kept one takes that one\'s window after as its baseline (no pause before it)', async () => {
  const { verifier, advance } = setup();
  const state = { value: 'old', undone: 0 };
  let windows = 0;
  const rising = (values: number[]): Measure => {
    let i = 0;
    return { name: 'peak', better: 'higher', tolerance: 0.1, floor: 0, start: () => ((windows++), Promise.resolve(() => Promise.resolve(values[i++]))) };
  };
  assert.equal((await verifier.verify(change(rising([10, 20]), [], state))).kind, 'kept');
  assert.equal(windows, 2);
  // Within two windows of that verdict: only the window after is measured, against 20.
  advance(1500);
  const chained = await verifier.verify(change(rising([40]), [], state));
  assert.equal(chained.kind === 'kept' && chained.benefit.before, 20);
  assert.equal(windows, 3);
  // Chained and not better than the last window after: undone.
  const flat = await verifier.verify(change(rising([41]), [], state));
  assert.equal(flat.kind, 'undone');
  // Too late to chain: a baseline window of its own.
  advance(10 * 60_000);
  windows = 0;
  assert.equal((await verifier.verify(change(rising([30, 60]), [], state))).kind, 'kept');
  advance(5000);
  assert.equal((await verifier.verify(change(rising([60, 90]), [], state))).kind, 'kept');
  assert.equal(windows, 4);
});

test('a change with a signal baseline is made at once; the window before runs while it settles, the lower figure is the baseline', async () => {
  const { verifier, advance } = setup();
  const order: string[] = [];
  const traced = (name: string, values: number[], better: 'lower' | 'higher'): Measure => {
    let i = 0;
    return {
      name,
      better,
      tolerance: 0.15,
      floor: 1,
      start: () => {
        order.push(`${name} window`);
        return Promise.resolve(() => Promise.resolve(values[i++]));
      },
    };
  };
  const c = (signal: number, settling: number, after: number): ProposedChange => ({
    key: 'rmem@1',
    description: 'growth of rmem',
    benefit: traced('peak Mbit/s', [settling, after], 'higher'),
    guards: [traced('drops', [0, 0], 'lower')],
    signalBaseline: signal,
    apply: () => Promise.resolve((order.push('apply'), true)),
    undo: () => Promise.resolve(void order.push('undo')),
  });
  const kept = await verifier.verify(c(21, 300, 1185));
  assert.equal(kept.kind === 'kept' && kept.benefit.before, 21, 'the socket read 21 Mbit/s when it asked: below the settling window');
  assert.deepEqual(order.splice(0), ['apply', 'peak Mbit/s window', 'drops window', 'peak Mbit/s window', 'drops window']);
  advance(10_000); // not chained to the kept one
  // On loopback the socket's one-RTT figure overstates: the settling window's 20000 is the baseline.
  const loopback = await verifier.verify(c(52_000, 20_000, 21_000));
  assert.equal(loopback.kind === 'undone' && loopback.benefit.before, 20_000, 'no better than while it settled: undone');
  assert.deepEqual(order.splice(0), ['apply', 'peak Mbit/s window', 'drops window', 'peak Mbit/s window', 'drops window', 'undo']);
});

test('a signal-baseline change chained to a kept one is judged against that one\'s window after', async () => {
  const { verifier, advance } = setup();
  let i = 0;
  const afters = [300, 400, 1370]; // settling window, window after; then the chained window after
  const c = (signal: number): ProposedChange => ({
    key: 'rmem@2',
    description: 'growth of rmem',
    benefit: { name: 'peak Mbit/s', better: 'higher', tolerance: 0.15, floor: 1, start: () => Promise.resolve(() => Promise.resolve(afters[i++])) },
    guards: [],
    signalBaseline: signal,
    apply: () => Promise.resolve(true),
    undo: () => Promise.resolve(),
  });
  assert.equal((await verifier.verify(c(21))).kind, 'kept');
  advance(500);
  // The socket's one-RTT peak said 1985; the window after the last kept step said 400.
  const chained = await verifier.verify(c(1985));
  assert.equal(chained.kind === 'kept' && chained.benefit.before, 400);
});
