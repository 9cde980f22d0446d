import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { blockOrder, CONDITIONS, summariseWorkload, type WorkloadRun } from './overhead-summary';

test('every condition runs first, second and last equally often over six blocks', () => {
  for (let position = 0; position < 3; position++) {
    const counts = new Map<string, number>();
    for (let block = 0; block < 6; block++) counts.set(blockOrder(block)[position], (counts.get(blockOrder(block)[position]) ?? 0) + 1);
    assert.deepEqual([...counts.values()], [2, 2, 2], `position ${position}`);
  }
  for (let block = 0; block < 12; block++) assert.deepEqual([...blockOrder(block)].sort(), [...CONDITIONS].sort());
  assert.deepEqual(blockOrder(6), blockOrder(0));
});

test('summariseWorkload: CPU per unit of work separates a cost that throughput hides', () => {
  const run = (work: number, cpuNs: number, seconds = 2): WorkloadRun => ({ work, cpuNs, machineNs: cpuNs * 2, seconds, retransmits: 0 });
  // Same work in the same time, but the daemon's blocks took 2 % more CPU for it.
  const none = [run(100, 1000), run(110, 1100), run(90, 900), run(100, 1000)];
  const control = [run(101, 1010), run(109, 1090), run(91, 910), run(99, 990)];
  const daemon = [run(100, 1020), run(110, 1122), run(90, 918), run(100, 1020)];
  const s = summariseWorkload('bulk', { none, control, daemon });
  assert.equal(s.throughput.effect.ratio, 1);
  assert.equal(s.throughput.verdict, 'no measurable cost');
  assert.ok(Math.abs(s.efficiency.effect.ratio - 1 / 1.02) < 1e-9);
  assert.equal(s.efficiency.verdict, 'costs measurably');
  assert.ok(s.efficiency.control.low <= 1 && s.efficiency.control.high >= 1);
  assert.ok(Math.abs(s.machineEfficiency.effect.ratio - 1 / 1.02) < 1e-9);
});
