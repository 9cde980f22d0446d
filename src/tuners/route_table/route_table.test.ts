/**
 * route_table end to end: in a test namespace with net.ipv6.route.max_size
 * lowered to 64, PMTU exceptions for 100 destinations (a router namespace
 * answers 1400-byte pings towards a 1280-MTU link with "packet too big")
 * make 100 IPv6 destination entries; the daemon grows max_size there, and
 * only there. Also checks the rt6_stats parser.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, inNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { parseRt6Stats } from './rt6-stats';
import { makeDestinations, pmtuTopology } from './pmtu-topology';

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

test('rt6_stats: seven hex fields, the sixth is the destination entry count', () => {
  assert.deepEqual(parseRt6Stats('0008 0005 006e 0005 0064 0064 0000\n'), {
    fibNodes: 8,
    fibRouteNodes: 5,
    fibRtAlloc: 0x6e,
    fibRtEntries: 5,
    fibRtCache: 100,
    dstEntries: 100,
    fibDiscardedRoutes: 0,
  });
  assert.throws(() => parseRt6Stats('0008 0005'), /expected 7 hex fields/);
});

test('many IPv6 destinations near max_size grow it in that namespace only', async () => {
  const globalBefore = sysctlIn(null, 'net.ipv6.route.max_size');
  const { host, router } = pmtuTopology();
  setSysctlIn(host, 'net.ipv6.route.max_size', '64');
  const daemon = new DaemonProcess(['-a', 'route_table', '-R']);
  await daemon.started();
  assert.match(daemon.log, /tuner 'route_table' loaded \(no programs\)/);

  makeDestinations(host, 100);
  const stats = parseRt6Stats(inNamespace(host, 'cat', ['/proc/net/rt6_stats']));
  assert.ok(stats.dstEntries >= 90, `PMTU exceptions made destination entries (${stats.dstEntries})`);

  const m = await daemon.waitFor(
    /Due to (\d+) IPv6 destination entries \(\d+ cached routes\) near max_size 64 change net\.ipv6\.route\.max_size from \(64\) -> \((\d+)\)/,
  );
  assert.match(daemon.log, /Scenario 'IPv6 destination table nearly full' occurred for tunable 'net\.ipv6\.route\.max_size' in non-global ns\./);
  const grown = Number(m[2]);
  // Grown in 25% steps until the count is no longer within a quarter of it.
  assert.ok(Number(m[1]) + (grown >> 2) < grown, `${m[1]} entries are not nearly full at ${grown}`);
  // Before 6.3 max_size also refuses entries, so entries held back at 64 arrive once it grows and
  // it may grow again (6.1 in the VM matrix): the namespace holds the daemon's latest value.
  const now = sysctlIn(host, 'net.ipv6.route.max_size');
  assert.ok(Number(now) >= grown, `max_size ${now} in the namespace, grown to ${grown} first`);
  await daemon.waitFor(new RegExp(`change net\\.ipv6\\.route\\.max_size from \\(\\d+\\) -> \\(${now}\\)`));
  assert.equal(sysctlIn(router, 'net.ipv6.route.max_size'), globalBefore);
  assert.equal(sysctlIn(null, 'net.ipv6.route.max_size'), globalBefore);

  assert.equal(await daemon.stop(), 0);
  const last = [...daemon.log.matchAll(/change net\.ipv6\.route\.max_size from \(\d+\) -> \((\d+)\)/g)].pop()?.[1];
  assert.match(daemon.log, new RegExp(`Rolled back 'net\\.ipv6\\.route\\.max_size' in non-global ns from \\(${last}\\) -> \\(64\\)`));
  assert.equal(sysctlIn(host, 'net.ipv6.route.max_size'), '64');
});
