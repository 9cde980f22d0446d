/**
 * ip_frag end to end, and its pure parts. The kernel tests send real
 * fragmented pings (IPv4 and IPv6) over a veth into a namespace whose
 * reassembly threshold is 8192 bytes, the reference's scenario: without
 * bpftune every ping is lost (the threshold never moves); with it the
 * threshold is raised in that namespace only, and pings get through.
 * Everything the tests change is inside namespaces they make and delete.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { learningRateFor } from '../../core/tuner-loader';
import { Correlation } from '../../core/correlation';
import { createVethPair } from '../tcp_buffer/test-net';
import { failPercent, HIGH_THRESH_MAX, parseIp6Reasm, parseIpReasm, thresholdDecision } from './reassembly';
import { fragmentedPings, fragmentFlood, setThreshold, thresholdSysctls } from './test-traffic';

/** Learning rate 4 (-r default): steps and "nearly full" are a quarter. */
const learning = learningRateFor(2);

before(() => removeStaleNamespaces());

after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

test('reassembly counters are read from snmp and snmp6', () => {
  const snmp =
    'Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits\n' +
    'Ip: 1 64 300 0 0 0 0 0 280 20 0 0 2 280 0 96 0 0 0 20\n';
  assert.deepEqual(parseIpReasm(snmp), { reqds: 280, fails: 96 });
  assert.deepEqual(parseIp6Reasm('Ip6InReceives 10\nIp6ReasmReqds                   	42\nIp6ReasmOKs 1\nIp6ReasmFails 7\n'), { reqds: 42, fails: 7 });
  assert.equal(failPercent({ reqds: 100, fails: 10 }, { reqds: 200, fails: 60 }), 50);
  assert.equal(failPercent({ reqds: 100, fails: 10 }, { reqds: 100, fails: 10 }), undefined);
});

test('the threshold grows a step at a time, and backs off to where it started when failures rise with it', () => {
  assert.deepEqual(thresholdDecision(8192, 8192, false, learning), { to: 10240, direction: 'increase' });
  assert.ok('skip' in thresholdDecision(HIGH_THRESH_MAX, 8192, false, learning));
  // Failure rate rising with each increase: a fragment flood that more memory only feeds.
  const c = new Correlation();
  for (const [thresh, rate] of [[8192, 20], [10240, 30], [12800, 45], [16000, 60], [20000, 80]] as const) c.add(thresh, rate);
  assert.ok(c.exceeds());
  assert.deepEqual(thresholdDecision(20000, 8192, c.exceeds(), learning), { to: 15000, direction: 'decrease' });
  assert.deepEqual(thresholdDecision(9000, 8192, true, learning), { to: 8192, direction: 'decrease' });
  assert.ok('skip' in thresholdDecision(8192, 8192, true, learning));
  // Failures falling as the threshold rises: the increases help.
  const helping = new Correlation();
  for (const [thresh, rate] of [[8192, 100], [10240, 100], [12800, 80], [16000, 40], [20000, 0]] as const) helping.add(thresh, rate);
  assert.ok(!helping.exceeds());
});

for (const family of [4, 6] as const) {
  test(`IPv${family}: fragments dropped at ${thresholdSysctls(family).high} 8192 raise it in that namespace only; pings get through`, async () => {
    const { high } = thresholdSysctls(family);
    const globalBefore = sysctlIn(null, high);
    const target = (p: ReturnType<typeof createVethPair>) => (family === 4 ? p.serverAddr4 : p.serverAddr6);
    // Without bpftune, as the reference's scenario: all lost, threshold unchanged.
    const without = createVethPair();
    setThreshold(without.server, family, 8192);
    assert.equal(await fragmentedPings(without.client, target(without), 10), 0, 'no fragmented ping gets through 8192 bytes of reassembly memory');
    assert.equal(sysctlIn(without.server, high), '8192');

    const pair = createVethPair();
    setThreshold(pair.server, family, 8192);
    const daemon = new DaemonProcess(['-a', 'ip_frag']);
    try {
      await daemon.started();
      assert.match(daemon.log, /tuner 'ip_frag' loaded \(tp_btf\)/);
      await fragmentedPings(pair.client, target(pair), 20);
      await daemon.waitFor(new RegExp(`Scenario 'need to increase IP fragmentation high threshold' occurred for tunable '${high.replace(/\./g, '\\.')}' in non-global ns\\.`));
      assert.match(
        daemon.log,
        new RegExp(
          `Due to approaching fragmentation maximum threshold \\(\\d+ fragments dropped in netns ${pair.server} with \\d+ bytes queued for reassembly.*\\) ` +
            `change ${high.replace(/\./g, '\\.')} from \\(8192\\) -> \\(10240\\)`,
        ),
      );
      // The threshold is still climbing during this batch (half-assembled datagrams hold what it
      // had before for 30 s), so not all get through yet; without bpftune none ever do.
      const delivered = await fragmentedPings(pair.client, target(pair), 20);
      assert.ok(delivered >= 10, `${delivered} of 20 fragmented pings delivered after bpftune raised the threshold to ${sysctlIn(pair.server, high)}`);
      // Every ping completes once it fits: failures fall as the threshold rises, so no step back.
      assert.doesNotMatch(daemon.log, /need to decrease IP fragmentation high threshold/);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
    assert.ok(Number(sysctlIn(pair.server, high)) > 8192);
    assert.equal(sysctlIn(null, high), globalBefore, 'the global namespace is untouched');
  });
}

test('IPv4: reassembly failures that rise with the threshold (a growing flood of fragments that never complete) step it back', async () => {
  const pair = createVethPair();
  const high = 'net.ipv4.ipfrag_high_thresh';
  setThreshold(pair.server, 4, 8192);
  // Junk leaves reassembly memory (and counts as a failure) a second after it came, not 30.
  setSysctlIn(pair.server, 'net.ipv4.ipfrag_time', '1');
  const daemon = new DaemonProcess(['-a', 'ip_frag']);
  try {
    await daemon.started();
    // Legitimate datagrams at a steady 100/s; junk from 20/s to 3000/s: the failing share climbs while
    // the drops at the threshold keep raising it, until the two are seen to rise together.
    const flood = fragmentFlood(pair.client, pair.clientAddr4, pair.serverAddr4, { legitPerSecond: 100, junkFrom: 20, junkTo: 3000, seconds: 30 });
    flood.catch(() => undefined); // awaited below; a failed wait for the log must not leave it unhandled
    const backOff = daemon.waitFor(
      /Due to reassembly failures rising with the fragmentation threshold \(correlation (-?[\d.]+); (\d+) fragments dropped in netns (\S+) .*?, ([\d.]+)% of reassemblies failing since the last change\) change net\.ipv4\.ipfrag_high_thresh from \((\d+)\) -> \((\d+)\)/,
      40_000,
    );
    const m = await backOff;
    // Read at once: the flood goes on, and the threshold may move again within the next 250 ms.
    const now = Number(sysctlIn(pair.server, high));
    const [, correlation, , ns, , from, to] = m;
    assert.equal(ns, pair.server);
    // The tuner steps back above 0.7; the log rounds to two decimals, so 0.7004 reads "0.70".
    assert.ok(Number(correlation) >= 0.7, `correlation ${correlation} above 0.7`);
    assert.ok(Number(to) < Number(from) && Number(to) >= 8192, `stepped back from ${from} to ${to}, not below where it started (8192)`);
    assert.ok(now < Number(from), `${high} is ${now}, below the ${from} it stepped back from`);
    assert.match(daemon.log, /Scenario 'need to decrease IP fragmentation high threshold' occurred for tunable 'net\.ipv4\.ipfrag_high_thresh' in non-global ns\./);
    // It had been raised before, by the flood's drops at the threshold.
    assert.match(daemon.log, /Due to approaching fragmentation maximum threshold .* change net\.ipv4\.ipfrag_high_thresh from \(8192\) -> \(10240\)/);
    const sent = await flood;
    assert.ok(sent.junk > sent.legit, `the flood sent ${JSON.stringify(sent)}`);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
