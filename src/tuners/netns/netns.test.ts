/**
 * The netns tuner follows namespaces created and destroyed while the daemon
 * runs: a namespace made after start is known at once (so a change can land
 * in it), and one deleted is dropped within the liveness-check interval.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, createNamespace, deleteNamespace, removeStaleNamespaces, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from '../../../test/support/daemon';
import { listenWithBacklog } from '../../../test/support/listen';

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

function knownPaths(daemon: DaemonProcess): string[] {
  const status = JSON.parse(daemon.query('jstatus').stdout) as { namespaces: Array<{ path: string }> };
  return status.namespaces.map((n) => n.path);
}

async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

test('namespaces created after start are mapped, and dropped when deleted', async () => {
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-d', '-R']);
  await daemon.started();
  const ns = createNamespace();
  const created = await daemon.waitFor(/netns: pid \d+ created netns cookie (\d+)/);
  await daemon.waitFor(new RegExp(`netns created \\(cookie ${created[1]}\\)`));
  assert.ok(await eventually(() => knownPaths(daemon).includes(`/var/run/netns/${ns}`), 8000), `the named path is found: ${knownPaths(daemon).join(' ')}`);

  // Writing somaxconn here now would (rightly) hand the namespace to the administrator,
  // so the kernel's default (4096) is the starting point: 5000 needs one 25% step.
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '4096');
  listenWithBacklog(ns, 5000);
  await daemon.waitFor(/change net\.core\.somaxconn from \(4096\) -> \(5120\)/);
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '5120');

  deleteNamespace(ns);
  assert.ok(await eventually(() => !knownPaths(daemon).includes(`/var/run/netns/${ns}`), 8000), 'the deleted namespace is dropped');
  await daemon.waitFor(new RegExp(`netns destroyed \\(cookie ${created[1]}\\)`));
  assert.equal(await daemon.stop(), 0);
});
