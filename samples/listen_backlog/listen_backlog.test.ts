/**
 * The sample tuner end to end: a real listen() in a test namespace reaches the
 * BPF program, the ring buffer, the handler and the one write path; the change
 * lands in that namespace only, is logged in the compat format, and -R
 * restores it on exit.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, createNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from '../../test/support/netns';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from '../../test/support/daemon';
import { listenWithBacklog } from '../../test/support/listen';

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

test('a truncated listen() backlog raises somaxconn in that namespace only, and -R rolls it back', async () => {
  const globalBefore = sysctlIn(null, 'net.core.somaxconn');
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-R']);
  await daemon.started();
  assert.match(daemon.log, /tuner 'listen_backlog' loaded \(tracepoint\)/);

  listenWithBacklog(ns, 1000);
  await daemon.waitFor(/Due to listen\(\) backlog 1000 \(pid \d+\) above somaxconn 128 change net\.core\.somaxconn from \(128\) -> \(1000\)/);
  assert.match(
    daemon.log,
    /Scenario 'listen backlog truncated' occurred for tunable 'net\.core\.somaxconn' in non-global ns\. A listen\(\) backlog exceeded/,
  );
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '1000');
  assert.equal(sysctlIn(null, 'net.core.somaxconn'), globalBefore);

  // A backlog within somaxconn, or "as long as allowed" (INT_MAX), is no demand.
  const logged = daemon.log.length;
  listenWithBacklog(ns, 500);
  listenWithBacklog(ns, 2147483647);
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(daemon.log.slice(logged), /Due to/);

  const status = JSON.parse(daemon.query('jstatus').stdout) as { tuners: Array<{ name: string; events: number }> };
  assert.equal(status.tuners.find((t) => t.name === 'listen_backlog')?.events, 1);

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, /Rolled back 'net\.core\.somaxconn' in non-global ns from \(1000\) -> \(128\)/);
  assert.match(daemon.log, /# Summary: scenario 'listen backlog truncated' occurred 1 times for tunable 'net\.core\.somaxconn' in non-global ns/);
  assert.match(daemon.log, /# To roll back changes to 'net\.core\.somaxconn', run the following as a privileged user in a terminal:\nip netns exec \S+ sysctl -w net\.core\.somaxconn="128"/);
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '128');
});

test('learning rate sets the minimum step: -r 0 grows by 1/64 at least', async () => {
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '6400');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-r', '0', '-R']);
  await daemon.started();
  listenWithBacklog(ns, 6401);
  await daemon.waitFor(/change net\.core\.somaxconn from \(6400\) -> \(6500\)/);
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '6500');
  assert.equal(await daemon.stop(), 0);
});
