import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { combineRuns, compare, harmComparisons, rankTestP, harmFindings, parseChanges, parseSockstatTcpMemory, parseSoftnet, renderHarmTable, type HarmRun, type HarmScenarioResult } from './harm-report';

function run(throughput: number, retransmits: number, p99Us: number, extra: Record<string, number | string> = {}): HarmRun {
  return { throughput, retransmits, p50Us: p99Us / 4, p99Us, probeTransactions: 300, tcpMemBytes: 4 * 1048576, changes: [], extra };
}

test('compare: worse only when the runs rank consistently on the harmful side, and by more than the floor', () => {
  const noDaemon = [100, 98, 103, 101, 99, 102];
  // Every run below every no-daemon run, by ~30 %: worse (p = 1/84).
  const low = compare('throughput', noDaemon, [70, 72, 69], 'higher is better');
  assert.equal(low.worse, true);
  assert.ok(Math.abs(low.p - 1 / 84) < 1e-12);
  assert.ok(Math.abs(low.ratio - 70 / 100.5) < 1e-12);
  // As consistent, but within the 10 % floor: not worse.
  assert.equal(compare('throughput', noDaemon, [95, 96, 94], 'higher is better').worse, false);
  // Better is never worse.
  assert.equal(compare('throughput', noDaemon, [150, 160, 155], 'higher is better').worse, false);
  // One outlying run does not decide: the median moved 30 % but the runs mix with the no-daemon ones.
  const mixed = compare('p99 RTT', [1000, 1400, 900, 1300, 950, 1350], [1500, 980, 1320], 'lower is better');
  assert.equal(mixed.worse, false);
  assert.ok(mixed.p > 0.05);
  // The no-daemon runs' own spread is reported (largest distance from their median).
  assert.ok(Math.abs(compare('p99 RTT', [1000, 1100, 900], [1500], 'lower is better').controlSpread - 0.1) < 1e-12);
  // Two rounds cannot reach 5 %: then worse needs every run worse than every no-daemon run.
  assert.equal(compare('p99 RTT', [1000, 1010, 990, 1005], [1300, 1250], 'lower is better').worse, true);
  assert.equal(compare('p99 RTT', [1000, 1010, 990, 1300], [1300, 1250], 'lower is better').worse, false);
  // Counts are smoothed: 0 -> 3 is x4, not infinite.
  const rx = compare('retransmits', [0, 0], [3], 'lower is better', 1);
  assert.equal(rx.ratio, 4);
  assert.equal(rx.worse, true);
});

test('rankTestP: exact with ties, and a fixed-seed sample when the labelings are too many', () => {
  assert.equal(rankTestP([1, 2], [3], 'lower is better'), 1 / 3);
  assert.equal(rankTestP([1, 1], [1], 'lower is better'), 1);
  const many = Array.from({ length: 30 }, (_, i) => i);
  const p = rankTestP(many, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109], 'lower is better');
  assert.ok(p < 0.001);
  assert.equal(p, rankTestP(many, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109], 'lower is better'));
});

test('combineRuns: means, highest memory, changes of the busiest run, extras per run', () => {
  const a = { ...run(100, 10, 1000, { drops: 1 }), tcpMemBytes: 5 };
  const b = { ...run(200, 30, 3000, { drops: 4 }), tcpMemBytes: 9, changes: [{ tunable: 'net.ipv4.tcp_wmem', from: '1', to: '2', count: 3 }] };
  const c = combineRuns([a, b]);
  assert.ok(c);
  assert.equal(c.throughput, 150);
  assert.equal(c.retransmits, 20);
  assert.equal(c.p99Us, 2000);
  assert.equal(c.tcpMemBytes, 9);
  assert.equal(c.changes.length, 1);
  assert.equal(c.extra.drops, '1 / 4');
  assert.equal(combineRuns([]), undefined);
});

test('the matrix flags bpftune only where it is worse than no daemon beyond the control, and says what it changed', () => {
  const s: HarmScenarioResult = {
    id: 'a',
    title: '(a) bulk over veth',
    throughputUnit: 'bit/s',
    runs: {
      none: [run(10e9, 1000, 500), run(10.2e9, 1100, 520)],
      control: [run(10.1e9, 1050, 510), run(10e9, 1000, 500)],
      bpftune: [
        { ...run(10e9, 3500, 520), changes: [{ tunable: 'net.ipv4.tcp_wmem', from: '4096 16384 4194304', to: '4096 16384 20000000', count: 7 }] },
        run(10.1e9, 3300, 500),
      ],
      profile: [run(10e9, 1000, 500), run(10.1e9, 1000, 510)],
    },
  };
  const worse = harmComparisons(s).filter((c) => c.worse);
  assert.deepEqual(worse.map((c) => c.metric), ['retransmits']);
  assert.deepEqual(harmComparisons(s, 'profile').filter((c) => c.worse), []);
  const md = renderHarmTable([s]);
  assert.match(md, /\| \(a\) bulk over veth \| bpftune \| 10050 Mbit\/s \(10000, 10100\) \| 3400 \(3500, 3300\) \|.*\*\*worse\*\*: retransmits x3\.31 \(p 0\.067; no-daemon runs within 7 %\)/);
  assert.match(md, /net\.ipv4\.tcp_wmem 4096 16384 4194304 -> 4096 16384 20000000 \(7 steps\)/);
  assert.match(md, /\| tuned network-throughput \|.*\| not worse \|/);
  const findings = harmFindings([s]);
  assert.equal(findings.length, 1);
  assert.match(findings[0], /against no daemon: retransmits x3\.31/);
  assert.match(renderHarmTable([{ ...s, runs: {}, error: 'link forwarder did not start' }]), /failed .*link forwarder did not start/);
});

test('parsers: the daemon log, softnet_stat and sockstat', () => {
  const log = [
    "Scenario 'need to increase TCP buffer size(s)' occurred for tunable 'net.ipv4.tcp_wmem' in non-global ns. ...",
    'Due to need to increase max buffer size to maximize throughput change net.ipv4.tcp_wmem(min default max) from (4096 16384 4194304) -> (4096 16384 5242880)',
    'Due to need to increase max buffer size to maximize throughput change net.ipv4.tcp_wmem(min default max) from (4096 16384 5242880) -> (4096 16384 6553600)',
    'Due to backlog drops change net.core.netdev_max_backlog from (1000) -> (1250)',
  ].join('\n');
  assert.deepEqual(parseChanges(log), [
    { tunable: 'net.ipv4.tcp_wmem', from: '4096 16384 4194304', to: '4096 16384 6553600', count: 2 },
    { tunable: 'net.core.netdev_max_backlog', from: '1000', to: '1250', count: 1 },
  ]);
  const softnet = '0000a000 00000002 0000000a 00000000\n0000b000 00000001 00000005 00000000\n';
  assert.deepEqual(parseSoftnet(softnet), { dropped: 3, squeezed: 15 });
  assert.equal(parseSockstatTcpMemory('sockets: used 10\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 12\nUDP: inuse 1 mem 3\n'), 12 * 4096);
  assert.ok(Number.isNaN(parseSockstatTcpMemory('nothing here')));
});
