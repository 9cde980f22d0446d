/**
 * The change verifier with real traffic: one iperf3 connection over an
 * emulated 40 ms path whose receiver's tcp_rmem max is 128 KiB, so the
 * sender is held back by the receive window. Raising the sender's tcp_wmem
 * max does not help it (it is not short of send buffer): undone, logged,
 * held off. Measures come from the kernel's TCP_INFO of the live connection
 * (ss -tin).
 *
 * The "helps, so it stays" case needs new connections after the change
 * (raising the receiver's tcp_rmem max does not widen a live connection's
 * window: its clamp was set at the handshake), i.e. measures over a
 * namespace's connections rather than one: the daemon does that, and
 * src/tuners/tcp_buffer/verify.test.ts shows both outcomes through it.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ChangeVerifier, type Measure } from '../src/core/change-verifier';
import { createEmulatedLink, type EmulatedLink } from './support/link-emulator';
import { cleanupNamespaces, setSysctlIn, sysctlIn } from './support/netns';
import { parseSsInfo, tcpInfo, type TcpInfoTotals } from './support/tcp-info';

const PORT = 5201;
let link: EmulatedLink | undefined;
const children: Array<ReturnType<typeof spawn>> = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await link?.close();
  cleanupNamespaces();
});

test('parseSsInfo sums the counters of every connection and keeps the highest RTT', () => {
  const text = [
    'ESTAB 0 0 198.18.1.1:40000 198.18.1.2:5201',
    '\t cubic wscale:7,7 rto:244 rtt:41.2/0.5 mss:8948 cwnd:10 bytes_sent:1000 bytes_retrans:100 bytes_acked:900 busy:2000ms rwnd_limited:1500ms(75.0%) delivery_rate 2Mbps',
    'ESTAB 0 0 198.18.1.1:40002 198.18.1.2:5201',
    '\t cubic rtt:40.1/0.2 bytes_sent:500 bytes_acked:500 busy:1000ms sndbuf_limited:10ms(1.0%)',
  ].join('\n');
  const t = parseSsInfo(text);
  assert.deepEqual(t, { connections: 2, bytesAcked: 1400, bytesSent: 1500, bytesRetrans: 100, busyMs: 3000, rwndLimitedMs: 1500, sndbufLimitedMs: 10, maxRttMs: 41.2 });
});

/** A measure over a window from two TCP_INFO readings of the sender's connections. */
function windowMeasure(name: string, better: Measure['better'], tolerance: number, floor: number, value: (a: TcpInfoTotals, b: TcpInfoTotals, seconds: number) => number): Measure {
  return {
    name,
    better,
    tolerance,
    floor,
    start() {
      const a = tcpInfo(link!.client, PORT);
      const t0 = Date.now();
      return Promise.resolve(() => Promise.resolve(value(a, tcpInfo(link!.client, PORT), (Date.now() - t0) / 1000)));
    },
  };
}

const throughput = windowMeasure('throughput Mbit/s', 'higher', 0.25, 1, (a, b, s) => ((b.bytesAcked - a.bytesAcked) * 8) / s / 1e6);
const retransPerMB = windowMeasure('retransmitted KB per MB', 'lower', 1, 5, (a, b) => (b.bytesRetrans - a.bytesRetrans) / 1024 / Math.max(1, (b.bytesSent - a.bytesSent) / 1048576));
const rtt = windowMeasure('srtt ms', 'lower', 0.5, 20, (_a, b) => b.maxRttMs);

test('with real traffic: a change that does not help is undone, restored and held off', { timeout: 120_000 }, async () => {
  link = await createEmulatedLink({ rttMs: 40, seed: 1 });
  setSysctlIn(link.server, 'net.ipv4.tcp_rmem', '4096 131072 131072');
  const server = spawn('ip', ['netns', 'exec', link.server, 'iperf3', '-s', '-1', '-B', link.serverAddr4, '-p', String(PORT)], { stdio: 'ignore' });
  children.push(server);
  await new Promise((r) => setTimeout(r, 500));
  const client = spawn('ip', ['netns', 'exec', link.client, 'iperf3', '-c', link.serverAddr4, '-p', String(PORT), '-t', '40'], { stdio: 'ignore' });
  children.push(client);
  await new Promise((r) => setTimeout(r, 3000));
  const signal = tcpInfo(link.client, PORT);
  assert.ok(signal.connections >= 1, 'the iperf3 connection is up');
  // Slow start is not window-limited, so over the first seconds the share is below its steady value.
  assert.ok(signal.rwndLimitedMs > signal.busyMs / 4, `the sender is receive-window limited (${signal.rwndLimitedMs} of ${signal.busyMs} ms busy)`);

  const lines: string[] = [];
  const verifier = new ChangeVerifier({ windowMs: 3000, settleMs: 1000, initialHoldOffMs: 60_000, maxHoldOffMs: 3_600_000, log: (l) => lines.push(l) });
  const sysctlChange = (ns: string, tunable: string, to: string) => {
    const from = sysctlIn(ns, tunable);
    return {
      key: `${tunable}@${ns}`,
      description: `${tunable} (${from}) -> (${to})`,
      benefit: throughput,
      guards: [retransPerMB, rtt],
      apply: () => Promise.resolve((setSysctlIn(ns, tunable, to), true)),
      undo: () => Promise.resolve(setSysctlIn(ns, tunable, from)),
    };
  };

  const wmemBefore = sysctlIn(link.client, 'net.ipv4.tcp_wmem');
  const wmem = await verifier.verify(sysctlChange(link.client, 'net.ipv4.tcp_wmem', '4096 16384 16777216'));
  assert.equal(wmem.kind, 'undone', lines.join('\n'));
  assert.equal(sysctlIn(link.client, 'net.ipv4.tcp_wmem'), wmemBefore, 'the old value is back');
  assert.match(lines[0], /^Scenario 'change did not help' occurred for 'net\.ipv4\.tcp_wmem@.*'\. Undid net\.ipv4\.tcp_wmem \(4096 16384 \d+\) -> \(4096 16384 16777216\): throughput Mbit\/s did not improve \([\d.]+ -> [\d.]+\).*; not retried for 60 s$/);
  assert.equal((await verifier.verify(sysctlChange(link.client, 'net.ipv4.tcp_wmem', '4096 16384 16777216'))).kind, 'held off');

});
