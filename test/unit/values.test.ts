import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { delta, grow, learningShift, nearlyFull, shrink } from '../../src/core/learning-rate';
import { formatSysctlValues, parseSysctlValues, sameValues, sysctlDottedName, sysctlPath } from '../../src/core/sysctl-values';
import { LatencyWindow } from '../../src/core/latency';

test('learning rate maps to the documented shifts and step sizes', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(learningShift), [6, 5, 4, 3, 2]);
  assert.equal(delta(6291456, learningShift(4)), 1572864); // 25%
  assert.equal(delta(6400, learningShift(0)), 100); // 1.5625%
  assert.equal(grow(1000, 2), 1250);
  assert.equal(shrink(1000, 2), 750);
  assert.throws(() => learningShift(5), RangeError);
});

test('nearly full is within limit >> shift of the limit', () => {
  assert.equal(nearlyFull(750, 1000, 2), true);
  assert.equal(nearlyFull(749, 1000, 2), false);
  assert.equal(nearlyFull(1000, 1000, 6), true);
});

test('sysctl names convert between dotted and path forms', () => {
  assert.equal(sysctlPath('net.ipv4.tcp_rmem'), 'net/ipv4/tcp_rmem');
  assert.equal(sysctlPath('/proc/sys/net/core/somaxconn'), 'net/core/somaxconn');
  assert.equal(sysctlDottedName('net/ipv4/tcp_rmem'), 'net.ipv4.tcp_rmem');
});

test('sysctl values parse tabs and spaces and compare by text', () => {
  assert.deepEqual(parseSysctlValues('4096\t131072\t6291456\n', false), [4096, 131072, 6291456]);
  assert.deepEqual(parseSysctlValues('cubic\n', true), ['cubic']);
  assert.throws(() => parseSysctlValues('4096 abc', false), /not a number/);
  assert.equal(formatSysctlValues([1, 2, 3]), '1 2 3');
  assert.ok(sameValues([1, 2], ['1', '2']));
  assert.ok(!sameValues([1, 2], [1, 3]));
});

test('latency window keeps the newest samples and gives nearest-rank percentiles', () => {
  const w = new LatencyWindow(100);
  assert.equal(w.percentile(50), undefined);
  for (let i = 1; i <= 200; i++) w.add(i);
  assert.equal(w.count, 100);
  assert.equal(w.percentile(0), 101);
  assert.equal(w.percentile(50), 150);
  assert.equal(w.percentile(99), 199);
  assert.equal(w.percentile(100), 200);
  // A new sample after percentiles were asked is counted in the next answer.
  w.add(1000);
  assert.equal(w.percentile(100), 1000);
  assert.equal(w.percentile(0), 102);
});
