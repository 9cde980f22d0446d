/**
 * The plugin SDK (dist/sdk, `make sdk`) as a third party uses it: the
 * listen_backlog sample's two source files, copied to a temporary directory
 * outside the repository, built with bpftune-plugin alone (SDK headers,
 * generated contract, SDK types), installed into a running daemon's plugin
 * directory, and its event handled there.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, stopAllDaemons } from './support/daemon';
import { cleanupNamespaces, createNamespace, removeStaleNamespaces, setSysctlIn } from './support/netns';
import { listenWithBacklog } from './support/listen';
import { trustedTempDir } from './support/trusted-dir';

const SDK = path.join(REPO_ROOT, 'dist', 'sdk');
const work = mkdtempSync(path.join(os.tmpdir(), 'bpftune-sdk-'));

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
  rmSync(work, { recursive: true, force: true });
});

test('samples/listen_backlog builds out of tree with the SDK alone, and a running daemon loads it and handles its event', async () => {
  assert.ok(existsSync(path.join(SDK, 'bin', 'bpftune-plugin')), 'dist/sdk is built (make sdk)');
  const src = path.join(work, 'listen_backlog');
  mkdirSync(src);
  for (const file of ['listen_backlog.bpf.c', 'index.ts']) cpSync(path.join(REPO_ROOT, 'samples', 'listen_backlog', file), path.join(src, file));
  const out = path.join(work, 'out', 'listen_backlog');
  const build = spawnSync(path.join(SDK, 'bin', 'bpftune-plugin'), ['build', src, out], {
    encoding: 'utf8',
    // The toolchain is the plugin author's; only the SDK comes from bpftune.
    env: { ...process.env, TSC: path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), TYPEROOTS: path.join(REPO_ROOT, 'node_modules', '@types') },
  });
  assert.equal(build.status, 0, `${build.stdout}${build.stderr}`);
  assert.deepEqual(readdirSync(out).sort(), ['index.js', 'listen_backlog.bpf.o', 'listen_backlog.contract.js']);

  const libdir = trustedTempDir('sdk');
  // Set before the daemon starts: a write while it runs hands the namespace to the administrator.
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', libdir, '-R']);
  await daemon.started();
  cpSync(out, path.join(libdir, 'listen_backlog'), { recursive: true });
  await daemon.waitFor(/tuner 'listen_backlog' loaded \(tracepoint\)/);
  listenWithBacklog(ns, 700);
  await daemon.waitFor(/Due to listen\(\) backlog 700 \(pid \d+\) above somaxconn 128 change net\.core\.somaxconn from \(128\) -> \(700\)/);
  assert.equal(await daemon.stop(), 0);
});
