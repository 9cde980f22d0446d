/**
 * tcp_conn end to end: real iperf3 traffic over the link emulator between
 * two test namespaces, the real sockops program, the daemon's log, `ss` on
 * the sockets and the learner's table through `-q jreport`.
 *
 * The daemon attaches to a cgroup of this test's own (-c), and every iperf3
 * runs inside it, so the program sees this test's sockets only and leaves
 * other tests' connections on the machine alone. Both namespaces default to
 * reno: a loss-based algorithm that collapses on random loss, and one that a
 * non-initial namespace may select (cubic is not in this machine's
 * tcp_allowed_congestion_control, and changing that would be global).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, inNamespace, removeStaleNamespaces, setSysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { createEmulatedLink, type EmulatedLink } from '../../../test/support/link-emulator';
import { TestCgroup } from '../../../test/support/cgroup';
import { thinFlow, transfer } from './test-traffic';
import { createVethPair } from '../tcp_buffer/test-net';

const links: EmulatedLink[] = [];
let cgroup: TestCgroup | undefined;

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  for (const link of links) await link.close();
  cgroup?.remove();
  cleanupNamespaces();
});

/*
 * The rate limit makes the path's capacity the kernel's (tbf), not whatever
 * CPU the emulator's forwarder gets on this shared machine: a starved
 * forwarder drops packets, which is loss too.
 */
async function lossyLink(lossPercent: number): Promise<EmulatedLink> {
  const link = await createEmulatedLink({ rttMs: 10, lossPercent, rateMbit: 100, seed: 4242 });
  links.push(link);
  for (const ns of [link.client, link.server]) setSysctlIn(ns, 'net.ipv4.tcp_congestion_control', 'reno');
  return link;
}

function startDaemon(cg: TestCgroup): DaemonProcess {
  return new DaemonProcess(['-d', '-a', 'tcp_conn', '-c', cg.mountPoint]);
}

interface ReportRow {
  address: string;
  algorithm: string;
  cost: number | null;
  count: number;
  greedyCount: number;
  samples: number;
}

/** The learner's table (`-q jreport tcp_conn`) once it has a sample for `address`: the control that shows measuring works. */
async function learnedRowsOnceMeasured(daemon: DaemonProcess, address: string): Promise<ReportRow[]> {
  const measuredHere = (rows: ReportRow[]) => rows.some((r) => r.address === address && r.samples > 0);
  let rows: ReportRow[] = [];
  for (let i = 0; i < 100 && !measuredHere(rows); i++) {
    await new Promise((r) => setTimeout(r, 100));
    const reply = daemon.query('jreport tcp_conn');
    assert.equal(reply.code, 0, reply.stderr);
    rows = (JSON.parse(reply.stdout) as { tcp_conn: ReportRow[] }).tcp_conn;
  }
  assert.ok(measuredHere(rows), `the connection to ${address} was measured: ${JSON.stringify(rows)}`);
  return rows;
}

test('connections on a lossy path are switched to bbr and logged; on a clean path nothing is switched', async () => {
  cgroup = new TestCgroup();
  const daemon = startDaemon(cgroup);
  await daemon.started();
  assert.match(daemon.log, /tuner 'tcp_conn' loaded \(cgroup\)/);

  // Paced below the path's rate, so that the only loss is the emulator's random loss (none here), not a full queue.
  const paced = ['-b', '20M'];
  const clean = await lossyLink(0);
  const cleanAlgorithms = await transfer(cgroup, clean, 2, paced);
  assert.deepEqual([...cleanAlgorithms], ['reno'], 'without loss every connection keeps the namespace default');
  assert.doesNotMatch(daemon.log, /Due to loss events/);
  await clean.close();

  const lossy = await lossyLink(5);
  const lossyAlgorithms = await transfer(cgroup, lossy, 3, paced);
  assert.ok(lossyAlgorithms.has('bbr'), `a connection on the lossy path runs bbr (ss saw ${[...lossyAlgorithms].join(', ')})`);
  await daemon.waitFor(/Due to loss events for 198\.18\.1\.2, specify 'bbr' congestion control algorithm/);
  assert.match(
    daemon.log,
    /Scenario 'specify TCP congestion control algorithm' occurred for tunable 'net\.ipv4\.tcp_congestion_control' in non-global ns\./,
  );
  // One line per remote host per interval, however many connections were switched.
  assert.equal(daemon.log.match(/Due to loss events for 198\.18\.1\.2/g)?.length, 1);

  const lossy6 = await transfer(cgroup, lossy, 3, paced, lossy.serverAddr6);
  assert.ok(lossy6.has('bbr'), `an IPv6 connection on the lossy path runs bbr (ss saw ${[...lossy6].join(', ')})`);
  await daemon.waitFor(/Due to loss events for fd00:1::2, specify 'bbr' congestion control algorithm/);

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, /# Summary: scenario 'specify TCP congestion control algorithm' occurred 2 times for tunable 'net\.ipv4\.tcp_congestion_control' in non-global ns/);
  cgroup.remove();
});

test('repeated connections to one lossy remote: the learner converges on bbr and still explores', async () => {
  cgroup = new TestCgroup();
  const daemon = startDaemon(cgroup);
  await daemon.started();
  const link = await lossyLink(5);
  // Enough runs that greedy choices outnumber the unsteered first connections and the one try of each algorithm.
  const runs = 14;
  for (let i = 0; i < runs; i++) await transfer(cgroup, link, 1);
  await daemon.waitFor(/lowest learned cost \([\d.]+\) for 198\.18\.1\.2, specify 'bbr' congestion control algorithm/);

  const reply = daemon.query('jreport tcp_conn');
  assert.equal(reply.code, 0, reply.stderr);
  const rows = (JSON.parse(reply.stdout) as { tcp_conn: ReportRow[] }).tcp_conn.filter((r) => r.address === link.serverAddr4);
  const byAlgorithm = new Map(rows.map((r) => [r.algorithm, r]));
  assert.deepEqual([...byAlgorithm.keys()].sort(), ['bbr', 'cubic', 'reno']);
  const bbr = byAlgorithm.get('bbr') as ReportRow;
  for (const other of ['reno', 'cubic']) {
    const row = byAlgorithm.get(other) as ReportRow;
    assert.ok(row.count >= 1, `${other} was explored at least once: ${JSON.stringify(row)}`);
    assert.ok(row.cost !== null && bbr.cost !== null && bbr.cost < row.cost, `bbr costs less than ${other}: ${JSON.stringify(rows)}`);
  }
  const selections = rows.reduce((n, r) => n + r.count, 0);
  const explored = selections - rows.reduce((n, r) => n + r.greedyCount, 0);
  assert.ok(bbr.greedyCount * 2 > selections, `bbr won most selections: ${JSON.stringify(rows)}`);
  assert.ok(explored >= 2, `other algorithms were still tried: ${JSON.stringify(rows)}`);

  const text = daemon.query('report tcp_conn').stdout;
  assert.match(text, /remote host\s+netns cookie\s+algorithm\s+cost\s+count\s+greedy\s+samples\s+min RTT \(us\)\s+max delivery rate/);
  assert.match(daemon.query('help').stdout, /^report\s/m);

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, /# Summary: tcp_conn_tuner: 198\.18\.1\.2\s+\d+\s+bbr\s+[\d.]+/);
});

test('an administrator who sets the congestion control in a namespace takes it over: its lossy connections are left alone', async () => {
  cgroup = new TestCgroup();
  const link = await lossyLink(5);
  const daemon = new DaemonProcess(['-d', '-a', 'tcp_conn', '-c', cgroup.mountPoint]);
  await daemon.started();
  await cgroup.run('ip', ['netns', 'exec', link.client, 'sysctl', '-q', '-w', 'net.ipv4.tcp_congestion_control=reno']).done;
  const disabled = await daemon.waitFor(
    /modified sysctl 'ipv4\/tcp_congestion_control' that tuner 'tcp_conn' uses; disabling 'tcp_conn' for namespace cookie (\d+)/,
  );
  await daemon.waitFor(new RegExp(`leaving connections in netns cookie ${disabled[1]} alone`));

  const algorithms = await transfer(cgroup, link, 3, ['-b', '20M']);
  assert.deepEqual([...algorithms], ['reno'], 'the administrator’s choice stands despite the loss');
  assert.doesNotMatch(daemon.log, /Due to loss events for 198\.18\.1\.2/);
  assert.equal(await daemon.stop(), 0);
});

test('retransmitting thin flows get TCP_THIN_LINEAR_TIMEOUTS per connection, counted in the summary; a clean one does not', async () => {
  cgroup = new TestCgroup();
  const daemon = startDaemon(cgroup);
  await daemon.started();

  const clean = await lossyLink(0);
  const control = await thinFlow(cgroup, clean, { messages: 30, seconds: 20, stopWhenSet: false });
  assert.equal(control.thinLinearTimeouts, 0, `no loss, no option: ${JSON.stringify(control)}`);
  await clean.close();

  // 15% each way: about every third exchange loses a packet, which a thin flow recovers by timeout only.
  const lossy = await lossyLink(15);
  const thin = await thinFlow(cgroup, lossy, { messages: 400, seconds: 60, stopWhenSet: true });
  assert.equal(thin.thinLinearTimeouts, 1, `the lossy thin connection has TCP_THIN_LINEAR_TIMEOUTS on: ${JSON.stringify(thin)}`);
  assert.ok(thin.retransmissions >= 4, `it retransmitted: ${JSON.stringify(thin)}`);

  assert.equal(await daemon.stop(), 0);
  assert.match(
    daemon.log,
    /Scenario 'set TCP thin linear timeouts' occurred for tunable 'net\.ipv4\.tcp_thin_linear_timeouts' in non-global ns\.[^\n]*\nDue to retransmissions on \d+ connection\(s\), set TCP_THIN_LINEAR_TIMEOUTS on them, so that while they are thin their retransmission timeouts stay linear instead of doubling/,
  );
  // The reference's summary lines: the connection count, and the CongAlg/Count table (the loss rule also set bbr).
  const summary = /# Summary: tcp_conn_tuner: set 'net\.ipv4\.tcp_thin_linear_timeouts' for (\d+) connections to improve responsiveness of thin flows durning retransmission/.exec(daemon.log);
  assert.ok(summary && Number(summary[1]) >= 1, 'the summary counts the connections');
  assert.match(daemon.log, /# Summary: tcp_conn_tuner: {14}CongAlg {16}Count\n/);
  const bbr = /# Summary: tcp_conn_tuner: {18}bbr +(\d+)\n/.exec(daemon.log);
  assert.ok(bbr && Number(bbr[1]) >= 1, 'bbr was set on the lossy connection');
  cgroup.remove();
});

test('connections over the loopback device are left alone: no measurement, no choice; a routed one beside them is measured', async () => {
  cgroup = new TestCgroup();
  const daemon = startDaemon(cgroup);
  await daemon.started();
  const link = await lossyLink(0);
  // Bulk over 127.0.0.1 inside the client namespace: each connection sends far more than the 32 segments a measurement needs.
  for (let i = 0; i < 3; i++) {
    const seen = await transfer(cgroup, link, 1, [], '127.0.0.1', link.client);
    assert.deepEqual([...seen], ['reno'], 'a loopback connection keeps the namespace default');
  }
  // The control: a routed connection from the same namespace, measured as usual.
  await transfer(cgroup, link, 1, ['-b', '20M']);
  const measured = await learnedRowsOnceMeasured(daemon, link.serverAddr4);
  assert.deepEqual(measured.filter((r) => r.address.startsWith('127.')), [], 'no loopback host is learned');
  // Neither a measurement (debug) nor a choice line names it.
  assert.doesNotMatch(daemon.log, /127\.0\.0\.1 \(netns cookie|for 127\.0\.0\.1/);
  assert.equal(await daemon.stop(), 0);
  cgroup.remove();
});

test('connections on a sub-millisecond path are not measured: no sample, no choice; a 10 ms path beside them is', async () => {
  cgroup = new TestCgroup();
  const daemon = startDaemon(cgroup);
  await daemon.started();
  const veth = createVethPair();
  setSysctlIn(veth.client, 'net.ipv4.tcp_congestion_control', 'reno');
  // The premise: a bare veth pair is far below the 1 ms threshold (ping's minimum, as TCP's min RTT is a minimum).
  const ping = inNamespace(veth.client, 'ping', ['-n', '-q', '-c', '5', '-i', '0.2', veth.serverAddr4]);
  const minRttMs = Number(/= ([\d.]+)\//.exec(ping)?.[1]);
  assert.ok(minRttMs < 0.5, `the veth path's RTT is well under 1 ms: ${ping}`);
  // Three bulk connections, each far more than the 32 segments a measurement needs, further apart than the 100 ms sample limit.
  for (let i = 0; i < 3; i++) await transfer(cgroup, veth, 1);
  const link = await lossyLink(0);
  await transfer(cgroup, link, 1, ['-b', '20M']);
  const measured = await learnedRowsOnceMeasured(daemon, link.serverAddr4);
  assert.deepEqual(measured.filter((r) => r.address === veth.serverAddr4), [], 'no sub-millisecond host is learned');
  // Neither a measurement (debug) nor a choice line names it.
  assert.doesNotMatch(daemon.log, /198\.18\.0\.2 \(netns cookie|for 198\.18\.0\.2/);
  assert.match(daemon.log, /198\.18\.1\.2 \(netns cookie \d+\): reno min RTT \d+ us/);
  assert.equal(await daemon.stop(), 0);
  cgroup.remove();
});
