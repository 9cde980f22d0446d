/**
 * The Debian package end to end, as README's Install section promises it:
 * `make deb` builds it, lintian finds no errors, it holds the files README
 * lists, its unit verifies and its exposure is printed; and the packaged
 * daemon, unpacked with dpkg -x (nothing is installed on the machine), runs on
 * Debian's own Node.js 18: -S, and a namespace's tcp_rmem raised under traffic,
 * telling systemd it is ready and sending the change's journal fields, both to
 * sockets this test binds.
 */
import { closeAllLinks, createEmulatedLink } from './support/link-emulator';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scenarioMessageId } from '../src/core/journal';
import { DatagramReceiver, decodeJournalEntry } from './support/datagram-receiver';
import { DaemonProcess, REPO_ROOT, stopAllDaemons } from './support/daemon';
import { debianNode, type DebianNode } from './support/debian-node';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn, sysctlIn } from './support/netns';
import { runIperfClient, startIperfServer, type IperfServer } from '../src/tuners/tcp_buffer/test-net';

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const DEB = path.join(REPO_ROOT, 'dist', 'deb', `bpftune_${VERSION}_${ARCH}.deb`);
const EXPOSURE_TARGET = 5.0;

const work = mkdtempSync(path.join(os.tmpdir(), 'bpftune-package-test-'));
const root = path.join(work, 'root');
const receivers: DatagramReceiver[] = [];
const servers: IperfServer[] = [];
let node18: DebianNode | undefined;
const installedBefore = dpkgStatus();

function dpkgStatus(): string {
  return spawnSync('dpkg-query', ['-W', '-f=${Status}', 'bpftune'], { encoding: 'utf8' }).stdout;
}

before(() => removeStaleNamespaces());
after(async () => {
  for (const s of servers) s.stop();
  await stopAllDaemons();
  await closeAllLinks();
  cleanupNamespaces();
  for (const r of receivers) r.close();
  node18?.remove();
  rmSync(work, { recursive: true, force: true });
  assert.equal(dpkgStatus(), installedBefore, 'the test installs nothing');
});

test('make deb builds dist/deb/bpftune_<version>_<arch>.deb, and lintian reports no errors', (t) => {
  const started = Date.now();
  const build = spawnSync('make', ['deb'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 15 * 60_000 });
  assert.equal(build.status, 0, `make deb failed:\n${build.stdout.slice(-3000)}\n${build.stderr.slice(-3000)}`);
  t.diagnostic(`make deb took ${((Date.now() - started) / 1000).toFixed(1)} s; ${path.relative(REPO_ROOT, DEB)} is ${readFileSync(DEB).length} bytes`);
  // lintian leaves Berkeley DB files (mldbm-elf-*) in its TMPDIR: it gets one of its own, removed after.
  const lintianTmp = mkdtempSync(path.join(os.tmpdir(), 'bpftune-lintian-'));
  let lintianOutput: string;
  try {
    lintianOutput = spawnSync('lintian', ['--tag-display-limit', '0', '--info', DEB], { encoding: 'utf8', env: { ...process.env, TMPDIR: lintianTmp } }).stdout;
  } finally {
    rmSync(lintianTmp, { recursive: true, force: true });
  }
  const tags = lintianOutput.split('\n').filter((l) => /^[EWIPX]: /.test(l));
  for (const tag of tags) t.diagnostic(`lintian: ${tag}`);
  assert.deepEqual(tags.filter((l) => l.startsWith('E: ')), [], 'lintian errors');
  execFileSync('dpkg', ['-x', DEB, root]);
});

/** The first column of README's table of package contents. */
function readmePackagePaths(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('The package holds');
  assert.ok(start >= 0, "README's Install section lists the package's files");
  const table = readme.slice(start).split('\n\n')[1] ?? '';
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
}

test("the package holds the files README's Install section lists, and no test or build-only file", () => {
  const listed = readmePackagePaths();
  assert.ok(listed.length >= 5, `README table: ${listed.join(', ')}`);
  const files = execFileSync('dpkg', ['-c', DEB], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /\s\.(\/\S*)/.exec(l)?.[1] ?? '')
    .filter((p) => p && !p.endsWith('/'));
  const covers = (entry: string, file: string) => (entry.endsWith('/') ? file.startsWith(entry) : file === entry);
  for (const file of files) assert.ok(listed.some((entry) => covers(entry, file)), `${file} is in the package but not in README`);
  for (const entry of listed) assert.ok(files.some((file) => covers(entry, file)), `README lists ${entry}, the package has no such file`);
  const ownFiles = files.filter((f) => !f.startsWith('/usr/lib/bpftune/node_modules/'));
  assert.deepEqual(ownFiles.filter((f) => /\.test\.js$|\.ts$|\.map$|\/test\//.test(f)), [], 'no tests or sources');
  // npm packages: the runtime dependencies only (prom-client for --metrics), none of the build-only ones.
  assert.ok(files.includes('/usr/lib/bpftune/node_modules/prom-client/package.json'), 'prom-client is shipped');
  const devDependencies = Object.keys((JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: object }).devDependencies);
  for (const dev of devDependencies) assert.ok(!files.some((f) => f.startsWith(`/usr/lib/bpftune/node_modules/${dev}/`)), `${dev} is build-only`);
  for (const tuner of readdirSync(path.join(REPO_ROOT, 'dist', 'src', 'tuners'))) {
    for (const file of [`/usr/lib/bpftune/dist/src/tuners/${tuner}/index.js`, `/usr/lib/bpftune/dist/src/tuners/${tuner}/${tuner}.bpf.o`, `/usr/share/man/man8/bpftune-${tuner}.8.gz`]) {
      assert.ok(files.includes(file), `${file} for tuner ${tuner}`);
    }
  }
  const depends = execFileSync('dpkg-deb', ['-f', DEB, 'Depends'], { encoding: 'utf8' });
  assert.match(depends, /nodejs \(>= 18\)/);
  assert.match(depends, /libbpf1/, 'the addon\'s libraries, resolved by dpkg-shlibdeps');
});

test('make install puts the same files under DESTDIR, and make uninstall removes them all', () => {
  const destdir = path.join(work, 'destdir');
  const make = (target: string) => {
    const r = spawnSync('make', [target, `DESTDIR=${destdir}`, 'PREFIX=/usr'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `make ${target}: ${r.stderr}`);
  };
  const filesUnder = (dir: string) =>
    execFileSync('find', [dir, '!', '-type', 'd'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.slice(dir.length))
      .sort();
  make('install');
  // The package adds what debhelper makes (docs, the lintian override) and compresses man pages.
  const packaged = filesUnder(root)
    .filter((f) => !f.startsWith('/usr/share/doc/') && !f.startsWith('/usr/share/lintian/'))
    .map((f) => f.replace(/\.gz$/, ''));
  assert.deepEqual(filesUnder(destdir), packaged);
  make('uninstall');
  assert.deepEqual(filesUnder(destdir), [], 'make uninstall leaves no file');
});

test('the unit verifies clean; its security exposure is printed and at most 5.0', (t) => {
  const packaged = readFileSync(path.join(root, 'lib/systemd/system/bpftune.service'), 'utf8');
  assert.match(packaged, /^ExecStart=\/usr\/sbin\/bpftune$/m);
  assert.match(packaged, /^Type=notify$/m);
  // The same unit, pointed at the unpacked command and man pages, since nothing is installed.
  const unit = path.join(work, 'bpftune.service');
  writeFileSync(unit, packaged.replace(/^ExecStart=\/usr\/sbin\/bpftune/m, `ExecStart=${root}/usr/sbin/bpftune`));
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', env: { ...process.env, MANPATH: path.join(root, 'usr/share/man') } });
  assert.equal(`${verify.stdout}${verify.stderr}`, '', 'systemd-analyze verify prints nothing');
  assert.equal(verify.status, 0);
  const security = spawnSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8' });
  const exposure = /Overall exposure level for bpftune\.service: (\d+\.\d+)/.exec(security.stdout);
  assert.ok(exposure, security.stdout + security.stderr);
  t.diagnostic(`systemd-analyze security exposure: ${exposure[1]} (target <= ${EXPOSURE_TARGET})`);
  for (const open of security.stdout.split('\n').filter((l) => l.startsWith('✗'))) t.diagnostic(`open: ${open.replace(/\s+/g, ' ').slice(2)}`);
  assert.ok(Number(exposure[1]) <= EXPOSURE_TARGET, `exposure ${exposure[1]}`);
});

test("the packaged bpftune runs on Debian's Node.js 18: -S", (t) => {
  node18 = debianNode();
  t.diagnostic(`Debian's node: ${node18.version}`);
  assert.match(node18.version, /^v18\./);
  const [bin, ...args] = node18.command([path.join(root, 'usr/sbin/bpftune'), '-S']);
  const runDir = path.join(work, 'run-support');
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, BPFTUNE_RUNDIR: runDir } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^bpftune works (fully|in legacy mode)$/m);
  assert.match(r.stdout, /^tuner 'tcp_buffer': would use /m);
});

test("the packaged daemon on Debian's Node.js 18 raises a namespace's tcp_rmem under traffic: READY=1, STATUS, journal fields", async () => {
  assert.ok(node18, 'Debian node unpacked by the test before');
  const notify = new DatagramReceiver(`@bpftune-package-test-${process.pid}`);
  const journal = new DatagramReceiver(path.join(work, 'journal.sock'));
  receivers.push(notify, journal);
  await Promise.all([notify.listening(), journal.listening()]);

  // A 20 ms path: on a bare veth the path carries far less per round trip than the limit, so tcp_rmem does not grow.
  // after() closes it: its forwarder would keep this test file's process alive.
  const pair = await createEmulatedLink({ rttMs: 20 });
  setSysctlIn(pair.server, 'net.ipv4.tcp_rmem', '4096 65536 131072');
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-R'], {
    command: node18.command([path.join(root, 'usr/sbin/bpftune')]),
    // The change verifier's verdict after the test: the 3 s run ending must not undo the growth.
    env: { NOTIFY_SOCKET: notify.address, BPFTUNE_JOURNAL_SOCKET: journal.address, BPFTUNE_VERIFY_SETTLE_MS: '600000' },
  });
  await daemon.started();
  const ready = (await notify.waitFor((d) => d.toString().startsWith('READY=1'))).toString();
  assert.equal(ready, 'READY=1\nSTATUS=3 tuners loaded; 0 changes made');

  const server = startIperfServer(pair.server);
  servers.push(server);
  await runIperfClient(pair.client, pair.serverAddr4, 3);
  server.stop();
  const [line] = await daemon.waitFor(
    /Due to receive buffer of \d+ bytes \(IPv[46] socket, pid \d+\) nearly at net\.ipv4\.tcp_rmem max 131072, path carrying \d+ bytes per round trip change net\.ipv4\.tcp_rmem\(min default max\) from \(4096 65536 131072\) -> \(4096 65536 163840\)/,
  );
  assert.ok(Number(sysctlIn(pair.server, 'net.ipv4.tcp_rmem').split(' ')[2]) > 131072);

  const entry = decodeJournalEntry(await journal.waitFor((d) => d.includes('BPFTUNE_OLD=4096 65536 131072\n') && d.includes('MESSAGE=Due to')));
  assert.equal(entry.MESSAGE, line, 'MESSAGE is exactly the log line');
  assert.equal(entry.BPFTUNE_TUNER, 'tcp_buffer');
  assert.equal(entry.BPFTUNE_TUNABLE, 'net.ipv4.tcp_rmem');
  assert.equal(entry.BPFTUNE_SCENARIO, 'need to increase TCP buffer size(s)');
  assert.equal(entry.BPFTUNE_NEW, '4096 65536 163840');
  assert.match(entry.BPFTUNE_NETNS_COOKIE ?? '', /^\d+$/);
  assert.equal(entry.MESSAGE_ID, scenarioMessageId('tcp_buffer', 'need to increase TCP buffer size(s)'));
  assert.equal(entry.SYSLOG_IDENTIFIER, 'bpftune');
  await notify.waitFor((d) => /^STATUS=3 tuners loaded; [1-9]\d* changes made$/.test(d.toString()));

  assert.equal(await daemon.stop(), 0);
  await notify.waitFor((d) => d.toString().startsWith('STOPPING=1'));
  assert.match(daemon.log, /# Summary: scenario 'need to increase TCP buffer size\(s\)' occurred \d+ times for tunable 'net\.ipv4\.tcp_rmem' in non-global ns/);
  assert.equal(sysctlIn(pair.server, 'net.ipv4.tcp_rmem'), '4096 65536 131072', '-R rolled it back');
});
