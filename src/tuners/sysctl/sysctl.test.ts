/**
 * The sysctl tuner with real writes: `sysctl -w` of a managed tunable inside
 * one namespace disables the owning tuner there only; the same in the global
 * namespace disables it globally while other namespaces are still tuned.
 * Writes keep each value as it was, so nothing on the host changes.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cleanupNamespaces, createNamespace, inNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from '../../../test/support/daemon';
import { listenWithBacklog } from '../../../test/support/listen';

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

interface Status {
  namespaces: Array<{ cookie: string; path: string; global: boolean }>;
  tuners: Array<{ name: string; state: string; manualNamespaces: string[] }>;
}

function cookieOf(daemon: DaemonProcess, ns: string): string {
  const status = JSON.parse(daemon.query('jstatus').stdout) as Status;
  const found = status.namespaces.find((n) => n.path === `/var/run/netns/${ns}`);
  assert.ok(found, `daemon knows namespace ${ns}`);
  return found.cookie;
}

test('an administrator write disables the tuner only in the namespace written', async () => {
  const written = createNamespace();
  const other = createNamespace();
  for (const ns of [written, other]) setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-R']);
  await daemon.started();
  const writtenCookie = cookieOf(daemon, written);

  inNamespace(written, 'sysctl', ['-q', '-w', 'net.core.somaxconn=128']);
  await daemon.waitFor(
    new RegExp(
      `pid \\d+, cmd '[^']*' modified sysctl 'core/somaxconn' that tuner 'listen_backlog' uses; ` +
        `disabling 'listen_backlog' for namespace cookie ${writtenCookie}`,
    ),
  );

  listenWithBacklog(written, 1000);
  await daemon.waitFor(new RegExp(`Skipping update of 'net\\.core\\.somaxconn' ; tuner 'listen_backlog' is disabled in netns \\(cookie ${writtenCookie}\\)`));
  assert.equal(sysctlIn(written, 'net.core.somaxconn'), '128');

  listenWithBacklog(other, 1000);
  await daemon.waitFor(/change net\.core\.somaxconn from \(128\) -> \(1000\)/);
  assert.equal(sysctlIn(other, 'net.core.somaxconn'), '1000');

  const tuners = daemon.query('tuners').stdout;
  assert.match(tuners, new RegExp(`tuner 'listen_backlog': active \\(tracepoint\\); manual in netns cookie ${writtenCookie}`));
  assert.equal(await daemon.stop(), 0);
});

test('a global write disables the tuner globally while other namespaces are still tuned', async () => {
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-R']);
  await daemon.started();
  const globalValue = sysctlIn(null, 'net.core.somaxconn');
  // The same value: the write is what counts, and the host is left as it was.
  execFileSync('sysctl', ['-q', '-w', `net.core.somaxconn=${globalValue}`]);
  const status = JSON.parse(daemon.query('jstatus').stdout) as Status;
  const globalCookie = status.namespaces.find((n) => n.global)?.cookie ?? '';
  await daemon.waitFor(new RegExp(`modified sysctl 'core/somaxconn' that tuner 'listen_backlog' uses; disabling 'listen_backlog' for namespace cookie ${globalCookie}$`, 'm'));
  assert.match(daemon.query('tuners').stdout, /tuner 'listen_backlog': manual/);

  listenWithBacklog(ns, 1000);
  await daemon.waitFor(/change net\.core\.somaxconn from \(128\) -> \(1000\)/);
  assert.equal(sysctlIn(null, 'net.core.somaxconn'), globalValue);
  assert.equal(await daemon.stop(), 0);
});
