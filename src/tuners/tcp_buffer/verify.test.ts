/**
 * No increase without a measured benefit, with real traffic: the daemon's
 * tcp_buffer raises a limit, the core's verifier measures the namespace's
 * throughput and guards before and after, and the raise is kept or undone.
 *
 *  - does not help: a 20 Mbit/s bottleneck with a deep queue one hop from
 *    the sender, whose send buffer limit is tiny. The sender really is limited by
 *    its send buffer (the queue holds what it sent), so the BPF side asks for
 *    more, but more only fills the queue: the rate stays 20 Mbit/s. Undone,
 *    logged with the figures, held off.
 *  - helps: a 40 ms path whose receiver's tcp_rmem max is 128 KiB, with a new
 *    connection every 2 s (a connection's window scale is fixed at its SYN,
 *    so new ones are what a raise pays off for). The raise stays.
 *  - helps, send side: a sender on a 40 ms path whose tcp_wmem max is at most
 *    a quarter of what the path carries per round trip. Its steps are judged
 *    one at a time: kept, and only then the next.
 */
import { after, afterEach, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons, TIME_SCALE } from '../../../test/support/daemon';
import { createEmulatedLink, type EmulatedLink } from '../../../test/support/link-emulator';
import { learningRateFor } from '../../core/tuner-loader';
import { createQueuedPath, runIperfClient, sendBufferGate, senderHeldByBuffer, startIperfServer, type IperfServer } from './test-net';

const servers: IperfServer[] = [];
const links: EmulatedLink[] = [];

before(() => removeStaleNamespaces());
afterEach(async () => {
  for (const s of servers.splice(0)) s.stop();
  await stopAllDaemons();
  for (const l of links.splice(0)) await l.close();
});
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

const maxOf = (triple: string) => Number(triple.split(/\s+/)[2]);

test('an increase that does not help (send buffer in front of a 20 Mbit/s queue) is undone, logged with its figures, and held off', async (t) => {
  // The queue one hop from the sender, not on its own device: see createQueuedPath.
  const pair = createQueuedPath(20);
  setSysctlIn(pair.client, 'net.ipv4.tcp_wmem', '4096 16384 32768');
  // The default first hold-off (10 s) would end within this run; a minute shows it holds.
  // The send hook's sampling period (15 s) shortened to 4 s, so the sender is first seen early in the run.
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-R'], { env: { BPFTUNE_VERIFY_HOLDOFF_MS: '60000', BPFTUNE_HOOK_PERIOD_MS: '4000' } });
  await daemon.started();
  const server = startIperfServer(pair.server);
  servers.push(server);
  const run = runIperfClient(pair.client, pair.serverAddr4, 10, ['-C', 'cubic']).catch((err: unknown) => err);
  try {
    const gate = await sendBufferGate(pair.client);
    if (!gate.open) {
      t.skip(`this kernel does not count the sender limited by its send buffer (${gate.why}): nothing is raised, so nothing is undone`);
      return;
    }
    await daemon.waitFor(/change net\.ipv4\.tcp_wmem\(min default max\) from \(4096 16384 32768\) -> \(4096 16384 40960\)/, 15_000);
    const undone = await daemon.waitFor(
      /Scenario 'TCP buffer increase did not help' occurred for tunable 'net\.ipv4\.tcp_wmem' in non-global ns\. Raising the buffer limit brought no more throughput, or more retransmits, losses or memory: it is undone and not retried for a while\n.*Due to raising net\.ipv4\.tcp_wmem max from 32768 to (\d+) did not help: peak sent Mbit\/s did not improve \(([\d.]+) -> ([\d.]+)\)[^\n]*; not raised again there for 60 s change net\.ipv4\.tcp_wmem\(min default max\) from \(4096 16384 (\d+)\) -> \(4096 16384 32768\)/,
      20_000,
    );
    assert.ok(Number(undone[1]) > 32768);
    assert.equal(undone[1], undone[4]);
    // The verifier's own verdict line, with every measure's figures: logged once the tuner's undo has returned.
    await daemon.waitFor(/Scenario 'change did not help' occurred for 'net\.ipv4\.tcp_wmem@\d+'\. Undid growth of net\.ipv4\.tcp_wmem max from 32768: peak sent Mbit\/s did not improve/, 5_000);
    assert.equal(sysctlIn(pair.client, 'net.ipv4.tcp_wmem'), '4096 16384 32768', 'the old value is back');
    // Still sending for a few seconds: held off, so not raised again.
    const undoneAt = daemon.log.length;
    const iperf = await run;
    assert.ok(!(iperf instanceof Error), `iperf3 ran: ${iperf instanceof Error ? iperf.message : ''}`);
    assert.doesNotMatch(daemon.log.slice(undoneAt), /change net\.ipv4\.tcp_wmem\(min default max\) from \(4096 16384 32768\) ->/, 'not raised again while held off');
    assert.equal(maxOf(sysctlIn(pair.client, 'net.ipv4.tcp_wmem')), 32768);
  } finally {
    server.stop();
    await run;
  }
  assert.equal(await daemon.stop(), 0);
});

test('an increase that helps (receive window on a 40 ms path, new connections) is kept', async () => {
  const link = await createEmulatedLink({ rttMs: 40, seed: 3 });
  links.push(link);
  setSysctlIn(link.server, 'net.ipv4.tcp_rmem', '4096 131072 131072');
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-R']);
  await daemon.started();
  // Back-to-back 2 s connections for 12 s: the verdict comes about 3 s after the first raise.
  const rates: number[] = [];
  for (let i = 0; i < 6; i++) {
    const server = startIperfServer(link.server, 5202 + i);
    servers.push(server);
    rates.push((await runIperfClient(link.client, link.serverAddr4, 2, [], 5202 + i)).bitsPerSecond);
    server.stop();
  }
  const kept = await daemon.waitFor(/Kept growth of net\.ipv4\.tcp_rmem max from 131072: peak received Mbit\/s ([\d.]+) -> ([\d.]+)/, 10_000);
  assert.ok(Number(kept[2]) > Number(kept[1]) * 1.15, `throughput rose: ${kept[1]} -> ${kept[2]} Mbit/s`);
  // Later episodes are judged on their own (growth beyond what the path needs is undone), never back to the start.
  assert.doesNotMatch(daemon.log, /Due to raising net\.ipv4\.tcp_rmem max from 131072 to/);
  const final = maxOf(sysctlIn(link.server, 'net.ipv4.tcp_rmem'));
  const episodeEnd = [...daemon.log.matchAll(/change net\.ipv4\.tcp_rmem\(min default max\) from \(4096 131072 \d+\) -> \(4096 131072 (\d+)\)/g)].map((m) => Number(m[1]));
  assert.ok(final > 131072 * 4, `the raise stayed: tcp_rmem max ${final} (changes to ${episodeEnd.join(', ')})`);
  // At the old limit a connection moves at most 131072 bytes per 40 ms round trip (26 Mbit/s):
  // the growth is made at once, so even the first connection gets past that; the later ones must.
  const atOldLimit = (131072 * 8) / 0.04;
  assert.ok(rates.slice(1).every((r) => r > atOldLimit * 2), `connections after the first beat the old limit's ${(atOldLimit / 1e6).toFixed(0)} Mbit/s twice over: ${rates.map((r) => (r / 1e6).toFixed(0)).join(', ')} Mbit/s`);
  assert.equal(await daemon.stop(), 0);
});

/*
 * A sender held back by its buffer on a 40 ms path: tcp_wmem[2] the largest
 * power of two up to a quarter of what the path carries per round trip, so
 * three steps of a quarter each still fit and each lets it send about a
 * quarter more. The first step is taken on trust and the second judged; no
 * step is taken while that verdict is pending (steps taken then outran it:
 * bench/results/tcp_buffer-gain-ab.md), and once it is kept, the socket that
 * pressed on the limit meanwhile has the next step taken from the kept limit.
 */
test('a send buffer step that helps is kept, and growth goes on from it one judged step at a time (sender on a 40 ms path)', async (t) => {
  if (TIME_SCALE > 1) {
    // 6.1 under TCG: calibrated at over 1 MB per round trip, the path queued at 400 KB (RTT 47.6 -> 84.5 ms)
    // and the daemon rightly stepped back for latency (test/vm/results/6.1-send-steps.md).
    t.skip('under software emulation the path carries what the host CPU lets it, not what a calibration run saw: a step cannot be arranged to help');
    return;
  }
  const { link, limit, bytesPerRtt } = await senderHeldByBuffer(1 / 4, 1 << 24);
  links.push(link);
  if (!limit) {
    t.skip(`the path carried ${bytesPerRtt.toFixed(0)} bytes per round trip: too little for three steps above 64 KiB`);
    return;
  }
  // The daemon's learning step (the default rate).
  const learning = learningRateFor(2);
  const first = learning.grow(limit);
  const judged = learning.grow(first);
  const next = learning.grow(judged);
  const raise = (from: number, to: number) =>
    new RegExp(`change net\\.ipv4\\.tcp_wmem\\(min default max\\) from \\(4096 16384 ${from}\\) -> \\(4096 16384 ${to}\\)`);
  // The send hook's sampling period (15 s) shortened to 4 s, so the sender is first seen early in the run.
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-R'], { env: { BPFTUNE_HOOK_PERIOD_MS: '4000' } });
  await daemon.started();
  const server = startIperfServer(link.server);
  servers.push(server);
  const run = runIperfClient(link.client, link.serverAddr4, 15).catch((err: unknown) => err);
  try {
    await daemon.waitFor(raise(limit, first), 15_000);
    await daemon.waitFor(raise(first, judged), 10_000);
    const kept = await daemon.waitFor(new RegExp(`Kept growth of net\\.ipv4\\.tcp_wmem max from ${limit}: peak sent Mbit\\/s ([\\d.]+) -> ([\\d.]+)`), 10_000);
    const keptAt = daemon.log.indexOf(kept[0]);
    const stepsBefore = daemon.log.slice(0, keptAt).match(/change net\.ipv4\.tcp_wmem\(/g) ?? [];
    assert.equal(stepsBefore.length, 2, `two steps before the verdict (the first on trust, the judged one), none while it was pending`);
    assert.ok(Number(kept[2]) > Number(kept[1]) * 1.15, `throughput rose: ${kept[1]} -> ${kept[2]} Mbit/s`);
    await daemon.waitFor(raise(judged, next), 10_000);
    assert.ok(daemon.log.search(raise(judged, next)) > keptAt, 'the next step came after the verdict');
  } finally {
    server.stop();
    await run;
  }
  assert.equal(await daemon.stop(), 0);
});
