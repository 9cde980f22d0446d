/**
 * Advisory mode (--advise) end to end, over a 30 s run of real traffic:
 * - tcp_rmem: iperf3 into a named namespace whose tcp_rmem max is low;
 * - tcp_conn: iperf3 over an emulated lossy path (the loss rule would switch
 *   those connections to bbr);
 * - a global tunable: listen() in the host namespace above somaxconn (the
 *   listen_backlog sample).
 * Each produces advice with a stable id and a count; every tunable the loaded
 * tuners manage keeps its value in every namespace involved and each
 * connection keeps its congestion control, both checked from outside
 * (sysctl, ss -ti); the advice stays the same size and value throughout.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from './support/daemon';
import { cleanupNamespaces, createNamespace, inNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from './support/netns';
import { restoreGlobalSysctls, saveGlobalSysctls } from './support/global-sysctls';
import { createEmulatedLink, type EmulatedLink } from './support/link-emulator';
import { TestCgroup } from './support/cgroup';
import { createVethPair, runIperfClient, startIperfServer, type IperfServer } from '../src/tuners/tcp_buffer/test-net';
import { transfer } from '../src/tuners/tcp_conn/test-traffic';

const RUN_MS = 30_000;
const LOW_RMEM = '4096 65536 131072';
const SOMAXCONN = 'net.core.somaxconn';

interface AdviceJson {
  id: string;
  tuner: string;
  tunable: string;
  count: number;
  reason: string;
  from?: Array<number | string>;
  to?: Array<number | string>;
  firstSeen: string;
  lastSeen: string;
}

let cgroup: TestCgroup | undefined;
let link: EmulatedLink | undefined;
const servers: IperfServer[] = [];
let tempDir: string | undefined;

before(() => {
  removeStaleNamespaces();
  saveGlobalSysctls([SOMAXCONN, 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem', 'net.ipv4.tcp_mem', 'net.ipv4.tcp_allowed_congestion_control']);
});
after(async () => {
  for (const s of servers) s.stop();
  await stopAllDaemons();
  await link?.close();
  cgroup?.remove();
  cleanupNamespaces();
  restoreGlobalSysctls();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

/** Every value of these tunables in these namespaces (null: the host's), read from outside the daemon. */
function snapshot(names: readonly string[], namespaces: ReadonlyArray<string | null>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const ns of namespaces) {
    for (const name of names) {
      try {
        values[`${ns ?? 'host'} ${name}`] = sysctlIn(ns, name);
      } catch {
        // Not in this namespace (tcp_mem is the initial namespace's only).
      }
    }
  }
  return values;
}

function advice(daemon: DaemonProcess): AdviceJson[] {
  const reply = daemon.query('jadvice');
  assert.equal(reply.code, 0, reply.stderr);
  const parsed = JSON.parse(reply.stdout) as { advisory: boolean; advice: AdviceJson[] };
  assert.equal(parsed.advisory, true);
  return parsed.advice;
}

test('--advise: the tcp_rmem, lossy-path and somaxconn scenarios give bounded advice with ids and counts, and nothing changes', async () => {
  cgroup = new TestCgroup();
  const pair = createVethPair();
  setSysctlIn(pair.server, 'net.ipv4.tcp_rmem', LOW_RMEM);
  link = await createEmulatedLink({ rttMs: 10, lossPercent: 5, rateMbit: 100, seed: 4242 });
  for (const ns of [link.client, link.server]) setSysctlIn(ns, 'net.ipv4.tcp_congestion_control', 'reno');
  const somaxconn = Number(sysctlIn(null, SOMAXCONN));

  const daemon = new DaemonProcess([
    '--advise',
    ...['-a', 'tcp_buffer', '-a', 'tcp_conn', '-a', 'listen_backlog'],
    ...['-l', SAMPLES_LIBDIR, '-c', cgroup.mountPoint],
  ]);
  await daemon.started();
  assert.match(daemon.log, /advisory mode \(--advise\): tuners run, nothing is changed/);
  const names = (JSON.parse(daemon.query('jtunables').stdout) as Array<{ name: string }>).map((t) => t.name);
  assert.ok(names.includes('net.ipv4.tcp_rmem') && names.includes(SOMAXCONN));
  const namespaces = [null, pair.client, pair.server, link.client, link.server];
  const before = snapshot(names, namespaces);

  const algorithms = new Set<string>();
  const samples: AdviceJson[][] = [];
  const started = Date.now();
  while (Date.now() - started < RUN_MS) {
    const server = startIperfServer(pair.server);
    servers.push(server);
    await runIperfClient(pair.client, pair.serverAddr4, 2);
    server.stop();
    for (const a of await transfer(cgroup, link, 2, ['-b', '20M'])) algorithms.add(a);
    execFileSync(process.execPath, ['-e', `const s=require('net').createServer();s.listen({host:'127.0.0.1',port:0,backlog:${somaxconn * 2}},()=>s.close());`]);
    samples.push(advice(daemon));
  }
  assert.ok(samples.length >= 4, `${samples.length} rounds`);

  // Nothing changed, seen from outside.
  assert.deepEqual([...algorithms], ['reno'], 'every connection kept its congestion control (ss -ti)');
  assert.deepEqual(snapshot(names, namespaces), before, 'every managed tunable kept its value in every namespace');

  const last = new Map(samples[samples.length - 1].map((a) => [a.id, a]));
  const rmem = last.get(`tcp_buffer/net.ipv4.tcp_rmem/0/netns ${pair.server}`);
  assert.ok(rmem, `tcp_rmem advice: ${[...last.keys()].join(', ')}`);
  assert.deepEqual(rmem.from, [4096, 65536, 131072]);
  assert.deepEqual(rmem.to, [4096, 65536, 163840]);
  assert.ok(rmem.count >= 2, `tcp_rmem advice seen ${rmem.count} times`);
  const loss = last.get(`tcp_conn/net.ipv4.tcp_congestion_control/0/netns ${link.client}`);
  assert.ok(loss, `lossy-path advice: ${[...last.keys()].join(', ')}`);
  assert.ok(loss.count >= 2, `lossy-path advice seen ${loss.count} times`);
  assert.match(daemon.log, /Due to loss events for 198\.18\.1\.2, specify 'bbr' congestion control algorithm \(advice only: not applied\) \[advice tcp_conn\//);
  const global = last.get('listen_backlog/net.core.somaxconn/0/global');
  assert.deepEqual(global?.to, [somaxconn * 2]);
  assert.ok((global?.count ?? 0) >= samples.length - 1);
  assert.match(
    daemon.log,
    new RegExp(`Due to receive buffer of \\d+ bytes .* would change net\\.ipv4\\.tcp_rmem\\(min default max\\) from \\(${LOW_RMEM}\\) -> \\(4096 65536 163840\\) \\[advice tcp_buffer/net\\.ipv4\\.tcp_rmem/0/netns ${pair.server}\\]`),
  );

  // Bounded: each piece of advice keeps its value (a limit that stays low never gets ever larger advice), is logged once, and only counts grow.
  for (const sample of samples) {
    for (const a of sample) assert.deepEqual(a.to, last.get(a.id)?.to, `${a.id} kept its advice`);
  }
  assert.ok(last.size <= 12, `${last.size} pieces of advice`);
  assert.equal(daemon.log.match(/ \[advice /g)?.length, last.size, 'each piece of advice is logged once');
  const text = daemon.query('advice').stdout;
  assert.match(text, new RegExp(`^advice tcp_buffer/net\\.ipv4\\.tcp_rmem/0/netns ${pair.server}: seen \\d+ times, first \\S+, last \\S+$`, 'm'));

  // The export says what it would set; applied in a fresh namespace it reproduces it, and the host keeps its own.
  const dropIn = daemon.query('sysctl.d').stdout;
  assert.match(dropIn, /would set \(advisory mode\)/);
  assert.match(dropIn, new RegExp(`^net\\.core\\.somaxconn = ${somaxconn * 2}$`, 'm'));
  tempDir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-advice-'));
  const file = path.join(tempDir, '90-bpftune.conf');
  writeFileSync(file, dropIn);
  const fresh = createNamespace();
  inNamespace(fresh, 'sysctl', ['-p', file]);
  assert.equal(Number(sysctlIn(fresh, SOMAXCONN)), somaxconn * 2);
  assert.equal(Number(sysctlIn(null, SOMAXCONN)), somaxconn);

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, new RegExp(`^advice tcp_buffer/net\\.ipv4\\.tcp_rmem/0/netns ${pair.server}: seen \\d+ times`, 'm'), 'the summary on exit lists the advice');
  assert.deepEqual(snapshot(names, namespaces), before, 'still nothing changed after exit');
});
