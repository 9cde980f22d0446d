/**
 * route_table cost and reaction time. Its effect (no IPv6 destination
 * refused) cannot be shown on this kernel: since Linux 6.3 max_size no
 * longer refuses entries. What is measured instead:
 * - the cost of its poll, one readProcNet of rt6_stats inside a namespace,
 *   against the same read in the daemon's own namespace (no setns);
 * - how long after a namespace's destination count nears max_size the
 *   daemon has grown it (the poll runs every 5 s).
 *
 * Run as root: node dist/bench/route_table.js
 */
import { native } from '../src/core/native';
import { DaemonProcess, stopAllDaemons } from '../test/support/daemon';
import { cleanupNamespaces, createNamespace, removeStaleNamespaces, setSysctlIn } from '../test/support/netns';
import type { EffectResult } from './effect';
import { printEffect } from './print-effect';
import { makeDestinations, pmtuTopology } from '../src/tuners/route_table/pmtu-topology';

const CALLS = 2000;

async function meanMicros(call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await call();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await call();
  return Number(process.hrtime.bigint() - t0) / CALLS / 1000;
}

/** Seconds from 100 PMTU exceptions existing (max_size 64) to the daemon's change. */
async function reaction(): Promise<number> {
  const { host } = pmtuTopology();
  setSysctlIn(host, 'net.ipv6.route.max_size', '64');
  const daemon = new DaemonProcess(['-a', 'route_table', '-R']);
  try {
    await daemon.started();
    makeDestinations(host, 100);
    const t0 = Date.now();
    await daemon.waitFor(/change net\.ipv6\.route\.max_size from \(64\)/, 20_000);
    return (Date.now() - t0) / 1000;
  } finally {
    await daemon.stop();
    cleanupNamespaces();
  }
}

export async function routeTableEffect(): Promise<EffectResult> {
  removeStaleNamespaces();
  const ns = createNamespace();
  try {
    const n = native();
    const inside = await meanMicros(() => n.readProcNet(`/var/run/netns/${ns}`, 0, 'rt6_stats'));
    const own = await meanMicros(() => n.readProcNet(null, 0, 'rt6_stats'));
    const seconds = await reaction();
    return {
      scenario: 'route_table: poll cost and reaction time',
      rows: [
        { metric: 'rt6_stats read inside a namespace (per namespace per 5 s)', value: `${inside.toFixed(1)} µs`, baseline: `${own.toFixed(1)} µs (own namespace)` },
        { metric: 'poll work for 100 namespaces', value: `${((inside * 100) / 1000).toFixed(1)} ms per 5 s` },
        { metric: 'time from 100 destinations (max_size 64) to the change', value: `${seconds.toFixed(1)} s`, target: '<= 5 s (one poll)', met: seconds <= 5.5 },
      ],
      notes: [`Mean of ${CALLS} calls after 100 warm-up calls, through the native addon from node.`],
    };
  } finally {
    await stopAllDaemons();
    cleanupNamespaces();
  }
}

if (require.main === module) {
  routeTableEffect()
    .then((r) => printEffect(r))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
