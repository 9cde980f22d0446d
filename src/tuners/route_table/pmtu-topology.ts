/**
 * Test and benchmark plumbing: IPv6 destination entries made on demand.
 *
 *   host --veth-- router --(1280 MTU)--> fd00:7::/64
 *
 * A 1400-byte ping from the host to an address behind the router gets
 * "packet too big", and the host caches a PMTU exception: one destination
 * entry per address pinged. Everything made here goes with the namespaces.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createNamespace, setSysctlIn } from '../../../test/support/netns';

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function pmtuTopology(): { host: string; router: string } {
  const host = createNamespace();
  const router = createNamespace();
  ip(['-n', host, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'vc0', 'netns', router]);
  ip(['-n', host, 'link', 'set', 'veth0', 'up']);
  ip(['-n', router, 'link', 'set', 'vc0', 'up']);
  ip(['-n', host, 'addr', 'add', 'fd00:5::1/64', 'dev', 'veth0', 'nodad']);
  ip(['-n', router, 'addr', 'add', 'fd00:5::2/64', 'dev', 'vc0', 'nodad']);
  ip(['-n', router, 'link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'vc1']);
  ip(['-n', router, 'link', 'set', 'veth1', 'mtu', '1280', 'up']);
  ip(['-n', router, 'link', 'set', 'vc1', 'up']);
  ip(['-n', router, '-6', 'route', 'add', 'fd00:7::/64', 'dev', 'veth1']);
  setSysctlIn(router, 'net.ipv6.conf.all.forwarding', '1');
  ip(['-n', host, '-6', 'route', 'add', 'fd00:7::/64', 'via', 'fd00:5::2']);
  return { host, router };
}

/** One PMTU exception (destination entry) in `host` for each of fd00:7::1 .. fd00:7::<count>. */
export function makeDestinations(host: string, count: number): void {
  for (let i = 1; i <= count; i++) {
    spawnSync('ip', ['netns', 'exec', host, 'ping', '-6', '-c1', '-W0.05', '-s', '1400', `fd00:7::${i.toString(16)}`], { stdio: 'ignore' });
  }
}
