/**
 * The state file end to end: real daemons killed with SIGKILL and started
 * again on the same state directory, real traffic (iperf3 between two named
 * test namespaces makes tcp_buffer raise tcp_rmem there) and a real global
 * change (listen() in the host namespace with a backlog above somaxconn makes
 * the listen_backlog sample raise the global net.core.somaxconn). Every
 * global sysctl touched is put back after each test and on exit.
 */
import { after, afterEach, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from './support/daemon';
import { cleanupNamespaces, createNamespace, inNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from './support/netns';
import { restoreGlobalSysctls, saveGlobalSysctls } from './support/global-sysctls';
import { listenWithBacklog } from './support/listen';
import { runIperfClient, startIperfServer, type IperfServer } from '../src/tuners/tcp_buffer/test-net';
import { closeAllLinks, createEmulatedLink, type EmulatedLink } from './support/link-emulator';

const SOMAXCONN = 'net.core.somaxconn';
const TCP_RMEM = 'net.ipv4.tcp_rmem';
const LOW_RMEM = '4096 65536 131072';
// tcp_buffer sees the host's sockets too, and may raise its limits while a test runs.
const GLOBALS = [SOMAXCONN, TCP_RMEM, 'net.ipv4.tcp_wmem', 'net.ipv4.tcp_mem'];
const TUNERS = ['-a', 'tcp_buffer', '-a', 'listen_backlog', '-l', SAMPLES_LIBDIR];

const tempDirs: string[] = [];
const servers: IperfServer[] = [];

function stateDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-state-'));
  tempDirs.push(dir);
  return dir;
}

before(() => {
  removeStaleNamespaces();
  saveGlobalSysctls(GLOBALS);
});
afterEach(async () => {
  for (const s of servers.splice(0)) s.stop();
  await stopAllDaemons();
  restoreGlobalSysctls();
});
after(async () => {
  await stopAllDaemons();
  await closeAllLinks();
  cleanupNamespaces();
  restoreGlobalSysctls();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** listen() in the host namespace with a backlog above somaxconn: the sample tuner raises the global value. */
function listenInHost(backlog: number): void {
  execFileSync(process.execPath, ['-e', `const s=require('net').createServer();s.listen({host:'127.0.0.1',port:0,backlog:${backlog}},()=>s.close());`]);
}

/** Makes tcp_buffer raise tcp_rmem max in the receiver namespace (low limit + a transfer). */
async function raiseRmem(daemon: DaemonProcess, pair: EmulatedLink, from: string): Promise<void> {
  const server = startIperfServer(pair.server);
  servers.push(server);
  const logged = daemon.log.length;
  await runIperfClient(pair.client, pair.serverAddr4, 3);
  server.stop();
  await daemon.waitFor(new RegExp(`change net\\.ipv4\\.tcp_rmem\\(min default max\\) from \\(${escape(from)}\\) -> `), 15_000, logged);
}

/** Doubles the global somaxconn (a backlog of twice it is above the sample's one growth step); returns the new value. */
async function raiseSomaxconn(daemon: DaemonProcess, from: number): Promise<number> {
  const to = from * 2;
  listenInHost(to);
  await daemon.waitFor(new RegExp(`change net\\.core\\.somaxconn from \\(${from}\\) -> \\(${to}\\)`));
  return to;
}

interface StateOnDisk {
  namespaces: Array<{ key: string; changes: Array<{ tunable: string; original: unknown[] }>; takeovers: unknown[] }>;
}

function stateFile(dir: string): StateOnDisk {
  return JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as StateOnDisk;
}

/**
 * A first daemon raises tcp_rmem in a named namespace and the global
 * somaxconn, and is killed with SIGKILL (so it rolls nothing back).
 */
async function changeThenKill(firstArgs: string[]) {
  // A 20 ms path: on a bare veth the path carries far less per round trip than the limit, so tcp_rmem does not grow.
  const pair = await createEmulatedLink({ rttMs: 20 });
  setSysctlIn(pair.server, TCP_RMEM, LOW_RMEM);
  const somaxconn = Number(sysctlIn(null, SOMAXCONN));
  const dir = stateDir();
  // The change verifier's verdict comes after the kill: the growth must still be in place then.
  const first = new DaemonProcess(firstArgs, { stateDir: dir, env: { BPFTUNE_VERIFY_SETTLE_MS: '600000' } });
  await first.started();
  await raiseRmem(first, pair, LOW_RMEM);
  const raisedSomaxconn = await raiseSomaxconn(first, somaxconn);
  const raisedRmem = sysctlIn(pair.server, TCP_RMEM);
  assert.notEqual(raisedRmem, LOW_RMEM);
  const onDisk = stateFile(dir);
  await first.stop('SIGKILL');
  assert.equal(sysctlIn(pair.server, TCP_RMEM), raisedRmem, 'a killed daemon rolls nothing back');
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), raisedSomaxconn);
  return { pair, somaxconn, dir, first, raisedSomaxconn, raisedRmem, onDisk };
}

test('SIGKILL of a -R run: the next start restores a named namespace tcp_rmem and the global somaxconn before any tuner loads', async () => {
  const { pair, somaxconn, dir, first, raisedSomaxconn, raisedRmem, onDisk } = await changeThenKill(['-R', ...TUNERS]);
  // The originals were on disk before the changes were made.
  const named = onDisk.namespaces.find((n) => n.key === `netns ${pair.server}`);
  assert.deepEqual(named?.changes.find((c) => c.tunable === TCP_RMEM)?.original, [4096, 65536, 131072]);
  assert.deepEqual(onDisk.namespaces.find((n) => n.key === 'global')?.changes.find((c) => c.tunable === SOMAXCONN)?.original, [somaxconn]);

  const second = new DaemonProcess(['-a', 'netns'], { stateDir: dir });
  await second.started();
  const log = second.log;
  assert.match(log, new RegExp(`Restored 'net\\.ipv4\\.tcp_rmem' in netns ${pair.server} from \\(${raisedRmem}\\) -> \\(${LOW_RMEM}\\): bpftune \\(pid ${first.pid}, run with -R\\)`));
  assert.match(log, new RegExp(`Restored 'net\\.core\\.somaxconn' in global ns from \\(${raisedSomaxconn}\\) -> \\(${somaxconn}\\)`));
  assert.ok(log.indexOf('Restored') < log.indexOf("tuner 'netns' loaded"), 'restored before any tuner loaded');
  assert.equal(sysctlIn(pair.server, TCP_RMEM), LOW_RMEM);
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), somaxconn);
  assert.equal(await second.stop(), 0);
  // Restored values are no longer bpftune's: the next start has nothing to restore.
  const third = new DaemonProcess(['-a', 'netns'], { stateDir: dir });
  await third.started();
  assert.doesNotMatch(third.log, /Restored/);
  assert.equal(await third.stop(), 0);
});

test("SIGKILL of a -R run with an administrator's write in between: their value stays, the rest is restored", async () => {
  const { pair, somaxconn, dir } = await changeThenKill(['-R', ...TUNERS]);
  setSysctlIn(pair.server, TCP_RMEM, '4096 65536 300000');
  const second = new DaemonProcess(['-a', 'netns'], { stateDir: dir });
  await second.started();
  assert.match(second.log, new RegExp(`Not restoring 'net\\.ipv4\\.tcp_rmem' in netns ${pair.server}: it is \\(4096 65536 300000\\), not the \\(4096 65536 \\d+\\) bpftune set`));
  assert.match(second.log, /Restored 'net\.core\.somaxconn' in global ns/);
  assert.equal(sysctlIn(pair.server, TCP_RMEM), '4096 65536 300000');
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), somaxconn);
});

test('SIGKILL without -R, restart, SIGTERM with -R: the true originals come back, not what the first run set', async () => {
  const { pair, somaxconn, dir, raisedSomaxconn: firstSomaxconn, raisedRmem: leftRmem } = await changeThenKill(TUNERS);

  const second = new DaemonProcess(['-R', ...TUNERS], { stateDir: dir });
  await second.started();
  assert.match(second.log, /did not exit cleanly; carrying on from its changes and takeovers/);
  assert.doesNotMatch(second.log, /Restored/);
  assert.equal(sysctlIn(pair.server, TCP_RMEM), leftRmem, 'a run without -R left its changes: they stay');
  const rollback = second.query('rollback').stdout;
  assert.match(rollback, new RegExp(`ip netns exec ${pair.server} sysctl -w net\\.ipv4\\.tcp_rmem="${LOW_RMEM}"`));
  assert.match(rollback, new RegExp(`^sysctl -w net\\.core\\.somaxconn="${somaxconn}"$`, 'm'));
  // This run changes somaxconn further (tcp_rmem may already be beyond what a short transfer reaches); the originals stay the first run's.
  const secondSomaxconn = await raiseSomaxconn(second, firstSomaxconn);
  assert.match(second.query('summary').stdout, new RegExp(`# sysctl 'net\\.ipv4\\.tcp_rmem' changed from \\(4096 65536 131072 \\) -> `));

  assert.equal(await second.stop(), 0);
  assert.match(second.log, new RegExp(`Rolled back 'net\\.ipv4\\.tcp_rmem' in non-global ns from \\(4096 65536 \\d+\\) -> \\(${LOW_RMEM}\\)`));
  assert.match(second.log, new RegExp(`Rolled back 'net\\.core\\.somaxconn' in global ns from \\(${secondSomaxconn}\\) -> \\(${somaxconn}\\)`));
  assert.equal(sysctlIn(pair.server, TCP_RMEM), LOW_RMEM);
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), somaxconn);
});

test("an administrator's takeover survives a restart until they hand the tunable back with -q 'release'", async () => {
  const ns = createNamespace();
  setSysctlIn(ns, SOMAXCONN, '128');
  const dir = stateDir();
  const args = ['-a', 'listen_backlog', '-l', SAMPLES_LIBDIR];
  const first = new DaemonProcess(args, { stateDir: dir });
  await first.started();
  setSysctlIn(ns, SOMAXCONN, '256');
  await first.waitFor(/modified sysctl 'core\/somaxconn' that tuner 'listen_backlog' uses; disabling 'listen_backlog' for namespace cookie (\d+)/);
  // The takeover is on disk at once, so even SIGKILL keeps it.
  for (let i = 0; i < 50 && !stateFile(dir).namespaces.some((n) => n.key === `netns ${ns}` && n.takeovers.length); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await first.stop('SIGKILL');

  const second = new DaemonProcess(args, { stateDir: dir });
  await second.started();
  assert.match(second.log, new RegExp(`tuner 'listen_backlog' stays disabled in netns ${ns} \\(cookie \\d+\\): pid \\d+, cmd '[^']*' wrote 'net/core/somaxconn'`));
  assert.match(second.query('tuners').stdout, /tuner 'listen_backlog': active \(tracepoint\); manual in netns cookie \d+/);
  listenWithBacklog(ns, 1000);
  await second.waitFor(/Skipping update of 'net\.core\.somaxconn' ; tuner 'listen_backlog' is disabled in netns/);
  assert.equal(sysctlIn(ns, SOMAXCONN), '256');

  const released = second.query(`release net.core.somaxconn ${ns}`);
  assert.match(released.stdout, /handed 'net\.core\.somaxconn' back: tuner\(s\) 'listen_backlog' tune in netns cookie \d+ again/);
  listenWithBacklog(ns, 1000);
  await second.waitFor(/change net\.core\.somaxconn from \(256\) -> \(1000\)/);
  assert.equal(await second.stop(), 0);
  const third = new DaemonProcess(args, { stateDir: dir });
  await third.started();
  assert.doesNotMatch(third.log, /stays disabled/, 'the release is kept too');
});

test('a state file truncated mid-write, or garbage: a clear error naming it, moved aside, and the daemon runs', async () => {
  const dir = stateDir();
  const file = path.join(dir, 'state.json');
  const clean = new DaemonProcess(['-a', 'netns'], { stateDir: dir });
  await clean.started();
  assert.equal(await clean.stop(), 0);
  const valid = readFileSync(file, 'utf8');
  for (const [what, content, reason] of [
    ['truncated', valid.slice(0, Math.floor(valid.length / 2)), 'not valid JSON'],
    ['garbage', '\u0000\u0001garbage\n', 'not valid JSON'],
    ['wrong shape', '{"version":1,"bootId":7}', 'not a bpftune state file'],
  ] as const) {
    writeFileSync(file, content);
    const daemon = new DaemonProcess(['-a', 'netns'], { stateDir: dir });
    await daemon.started();
    assert.match(daemon.log, new RegExp(`state file ${escape(file)} is ${reason} \\(.*\\); moved it to ${escape(file)}\\.corrupt-\\S+; starting without it`), what);
    assert.equal(await daemon.stop(), 0, what);
    const moved = readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'));
    assert.ok(moved.some((f) => readFileSync(path.join(dir, f), 'utf8') === content), `${what}: the bad file is kept aside`);
    for (const f of moved) rmSync(path.join(dir, f));
    assert.doesNotThrow(() => JSON.parse(readFileSync(file, 'utf8')), `${what}: a good state file replaces it`);
  }
});

test('-q sysctl.d is a drop-in that sysctl -p applies: in a fresh namespace it reproduces what bpftune set globally', async () => {
  const somaxconn = Number(sysctlIn(null, SOMAXCONN));
  const daemon = new DaemonProcess(['-R', ...TUNERS]);
  await daemon.started();
  const raised = await raiseSomaxconn(daemon, somaxconn);
  const dropIn = daemon.query('sysctl.d').stdout;
  assert.match(dropIn, new RegExp(`# scenario: 'listen backlog truncated' \\(1 times\\)\\n# reason: .*\\n# original value: ${somaxconn}\\nnet\\.core\\.somaxconn = ${raised}$`, 'm'));
  const exported = JSON.parse(daemon.query('jexport').stdout) as { entries: Array<{ tunable: string; values: number[]; count: number; sysctl: boolean }> };
  assert.deepEqual(
    exported.entries.filter((e) => e.tunable === SOMAXCONN).map((e) => [e.values, e.count, e.sysctl]),
    [[[raised], 1, true]],
  );
  assert.equal(await daemon.stop(), 0);
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), somaxconn, '-R put the global value back');

  const dir = stateDir();
  const file = path.join(dir, '90-bpftune.conf');
  writeFileSync(file, dropIn);
  const fresh = createNamespace();
  inNamespace(fresh, 'sysctl', ['-p', file]);
  // Everything the drop-in sets is reproduced in the namespace (the host's values are untouched).
  for (const m of dropIn.matchAll(/^([a-z0-9_.]+) = (.*)$/gm)) {
    assert.equal(sysctlIn(fresh, m[1]), m[2].trim().split(/\s+/).join(' '), m[1]);
  }
  assert.equal(Number(sysctlIn(fresh, SOMAXCONN)), raised);
});
