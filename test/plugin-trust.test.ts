/**
 * What the reference's users rely on when they pick and install tuners:
 * -a accepts its spellings and refuses unknown names; plugin paths are
 * trusted only when nothing but root can change them, from / down, with
 * no ACL; editor leftovers in a plugin directory are never loaded; the
 * start-up support lines are logged as the reference logs them.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, SAMPLES_LIBDIR, runBpftune, stopAllDaemons } from './support/daemon';
import { cleanupNamespaces, removeStaleNamespaces } from './support/netns';
import { trustedTempDir } from './support/trusted-dir';

const untrusted: string[] = [];
before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
  for (const d of untrusted) rmSync(d, { recursive: true, force: true });
});

function loadedTuners(log: string): string[] {
  return /\d+ tuners loaded \(([^)]*)\)/.exec(log)?.[1]?.split(', ') ?? [];
}

test("-a takes the reference's spellings: tcp_buffer_tuner.so, tcp_buffer_tuner, a path, or ours", async () => {
  for (const spelling of ['tcp_buffer_tuner.so', '/usr/lib64/bpftune/tcp_buffer_tuner.so', 'tcp_buffer_tuner', 'tcp_buffer']) {
    const daemon = new DaemonProcess(['-R', '-a', spelling]);
    await daemon.started();
    assert.deepEqual(loadedTuners(daemon.log).sort(), ['netns', 'sysctl', 'tcp_buffer'], `-a ${spelling}`);
    assert.equal(await daemon.stop(), 0);
  }
});

test('-a with a name no tuner has stops with an error naming the known tuners', () => {
  const r = runBpftune(['-s', '-R', '-a', 'tcp_bufer_tuner.so'], trustedTempDir('run'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bpftune could not start: no tuner named 'tcp_bufer' \(-a\); known tuners: .*\btcp_buffer\b/);
});

test('the daemon logs the reference\'s support lines at start', async () => {
  const daemon = new DaemonProcess(['-R', '-a', 'netns']);
  await daemon.started();
  assert.match(daemon.log, /^bpftune works fully$/m);
  assert.match(daemon.log, /^bpftune supports per-netns policy \(via netns cookie\)$/m);
  assert.equal(await daemon.stop(), 0);
});

test('a relative or dotted plugin directory is refused before anything starts', () => {
  const relative = runBpftune(['-s', '-l', 'plugins']);
  assert.equal(relative.code, 1);
  assert.equal(relative.stderr, "plugin directory 'plugins' must be an absolute path\n");
  const dotted = runBpftune(['-s', '-l', '/run/../tmp']);
  assert.equal(dotted.code, 1);
  assert.match(dotted.stderr, /must not contain '\.' or '\.\.' components/);
});

test('plugins below a directory others can write to, or carrying an ACL, are refused; editor leftovers are ignored', async () => {
  // Under /tmp (mode 1777): anyone could swap the directory's contents.
  const tmpLib = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-untrusted-'));
  untrusted.push(tmpLib);
  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(tmpLib, 'listen_backlog'), { recursive: true });

  const libdir = trustedTempDir('lib');
  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(libdir, 'listen_backlog~'), { recursive: true });
  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(libdir, '.listen_backlog'), { recursive: true });
  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(libdir, 'with_acl'), { recursive: true });
  // A read-only ACL entry for nobody: harmless today, but the reference refuses any ACL, and so do we.
  const acl = spawnSync('setfacl', ['-m', 'u:nobody:r', path.join(libdir, 'with_acl', 'index.js')], { encoding: 'utf8' });
  assert.equal(acl.status, 0, `setfacl: ${acl.stderr}`);

  const outside = new DaemonProcess(['-R', '-a', 'netns', '-l', tmpLib]);
  await outside.started();
  assert.match(outside.log, /refusing untrusted plugin '\/tmp\/bpftune-test-untrusted-[^']+': directory \/tmp above the plugin directory is writable by group or others/);
  assert.equal(await outside.stop(), 0);

  const inside = new DaemonProcess(['-R', '-l', libdir]);
  await inside.started();
  assert.match(inside.log, /ignoring .*\/listen_backlog~ in the plugin directory: editor or package manager temporary file/);
  assert.match(inside.log, /ignoring .*\/\.listen_backlog in the plugin directory: hidden entry/);
  assert.match(inside.log, /refusing untrusted plugin '.*\/with_acl': .*with_acl\/index\.js has an access ACL/);
  assert.ok(!loadedTuners(inside.log).includes('listen_backlog'), 'no copy of listen_backlog was loaded');
  assert.equal(await inside.stop(), 0);
});
