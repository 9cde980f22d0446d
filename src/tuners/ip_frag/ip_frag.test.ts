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
import { cleanupNamespaces, removeStaleNamespaces, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { learningRateFor } from '../../core/tuner-loader';
import { Correlation } from '../../core/correlation';
import { createVethPair } from '../tcp_buffer/test-net';
import { failPercent, HIGH_THRESH_MAX, parseIp6Reasm, parseIpReasm, thresholdDecision } from './reassembly';
import { fragmentedPings, setThreshold, thresholdSysctls } from './test-traffic';

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
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
    assert.ok(Number(sysctlIn(pair.server, high)) > 8192);
    assert.equal(sysctlIn(null, high), globalBefore, 'the global namespace is untouched');
  });
}
