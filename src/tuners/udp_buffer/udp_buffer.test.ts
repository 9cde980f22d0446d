/**
 * udp_buffer end to end, and its pure parts. The kernel tests flood a slow
 * UDP receiver for real, over a veth between two namespaces this test
 * makes: its drops at a full receive buffer must make bpftune grow the
 * limit the socket ran into (rmem_max for a socket that asked SO_RCVBUF for
 * more, rmem_default for one that kept the default), and sockets made
 * afterwards must drop less. The three sysctls are global (no namespace has
 * its own), so the tests save them first and restore them in `after`, also
 * when a test fails.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { cleanupNamespaces, removeStaleNamespaces, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { globalTunables, restoreGlobalSysctls, saveGlobalSysctls } from '../../../test/support/global-sysctls';
import { kernelFacts } from '../../core/program-selection';
import { learningRateFor } from '../../core/tuner-loader';
import udpBufferTuner, { ipv6FexitNeeded } from './index';
import { createVethPair } from '../tcp_buffer/test-net';
import { bufferCap, rcvbufDecision, RMEM_DEFAULT, RMEM_MAX, shrunkBuffer, UDP_BUFFER_MAX, UDP_BUFFER_MIN, UDP_MEM, udpMemoryState } from './policy';
import { dropsPerThousand, udpCounters, udpFlood } from './test-traffic';

const GLOBALS = globalTunables(udpBufferTuner);
/** Before 6.4 IPv6 drops bypass the tracepoint, and the daemon adds its fexit program (index.ts). */
const IPV6_BY_FEXIT = ipv6FexitNeeded(kernelFacts(os.release())) !== undefined;

/** Learning rate 4 (-r default): steps and "nearly full" are a quarter. */
const learning = learningRateFor(2);

function setGlobal(name: string, value: string): void {
  execFileSync('sysctl', ['-q', '-w', `${name}=${value}`]);
}

before(() => {
  removeStaleNamespaces();
  saveGlobalSysctls(GLOBALS);
});

after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
  restoreGlobalSysctls();
});

test('a full buffer grows the limit the socket ran into, and only that', () => {
  const limits = { rmemMax: 65536, rmemDefault: 32768 };
  // SO_RCVBUF clamped: sk_rcvbuf is exactly 2 x rmem_max.
  assert.deepEqual(rcvbufDecision({ rcvbuf: 131072, locked: true }, limits, 1 << 30, learning), {
    grow: RMEM_MAX,
    from: 65536,
    to: 81920,
    because: 'sk_rcvbuf 131072 is 2 x rmem_max: SO_RCVBUF asked for at least rmem_max',
  });
  // The socket asked for less (or was made under a smaller rmem_max): a larger limit changes nothing.
  assert.ok('skip' in rcvbufDecision({ rcvbuf: 100000, locked: true }, limits, 1 << 30, learning));
  assert.deepEqual(rcvbufDecision({ rcvbuf: 32768, locked: false }, limits, 1 << 30, learning), {
    grow: RMEM_DEFAULT,
    from: 32768,
    to: 40960,
    because: 'sk_rcvbuf 32768 is rmem_default',
  });
  assert.ok('skip' in rcvbufDecision({ rcvbuf: 16384, locked: false }, limits, 1 << 30, learning));
  // Capped by memory: at the cap, nothing; below it, up to it.
  assert.ok('skip' in rcvbufDecision({ rcvbuf: 131072, locked: true }, limits, 65536, learning));
  assert.equal((rcvbufDecision({ rcvbuf: 131072, locked: true }, limits, 70000, learning) as { to: number }).to, 70000);
});

test('the buffer cap follows udp_mem and stays within 8 KiB..256 MiB', () => {
  assert.equal(bufferCap([100, 200, 300]), (200 * 4096) / 8);
  assert.equal(bufferCap([1e9, 2e9, 3e9]), UDP_BUFFER_MAX);
  assert.equal(bufferCap([1, 2, 3]), UDP_BUFFER_MIN);
});

test('UDP memory state against udp_mem, and shrinking stops at the floor', () => {
  assert.equal(udpMemoryState(10, [100, 200, 300], learning), 'normal');
  assert.equal(udpMemoryState(160, [100, 200, 300], learning), 'pressure');
  assert.equal(udpMemoryState(230, [100, 200, 300], learning), 'exhaustion');
  assert.equal(shrunkBuffer(65536, learning), 49152);
  assert.equal(shrunkBuffer(UDP_BUFFER_MIN, learning), undefined);
  assert.equal(shrunkBuffer(10000, learning), UDP_BUFFER_MIN);
});

test('receive-buffer drops (SO_RCVBUF above rmem_max) grow rmem_max; new sockets drop less; -R restores it', async () => {
  const pair = createVethPair();
  setGlobal(RMEM_MAX, '32768');
  const flood = (seconds: number) => udpFlood(pair.client, pair.server, pair.serverAddr4, 5400, { rcvbufRequest: 4 << 20, seconds });
  const baseline = await flood(3);
  assert.ok(baseline.drops > 0, `the slow receiver drops without bpftune (${JSON.stringify(baseline)})`);
  const daemon = new DaemonProcess(['-a', 'udp_buffer', '-R']);
  let adapted;
  try {
    await daemon.started();
    assert.match(daemon.log, IPV6_BY_FEXIT ? /tuner 'udp_buffer' loaded \(tp_btf, fentry\)/ : /tuner 'udp_buffer' loaded \(tp_btf\)/);
    assert.match(daemon.log, /net\.core\.rmem_max, net\.core\.rmem_default and net\.ipv4\.udp_mem are global/);
    await flood(8);
    await daemon.waitFor(
      /Scenario 'need to increase UDP buffer size\(s\)' occurred for tunable 'net\.core\.rmem_max' in global ns\./,
    );
    assert.match(
      daemon.log,
      /Due to need to increase receive buffer size to maximize throughput \(\d+ datagrams dropped at a full IPv4 UDP receive buffer in netns bpftune-test-[\d-]+.*sk_rcvbuf 65536 is 2 x rmem_max.*\) change net\.core\.rmem_max from \(32768\) -> \(40960\)/,
    );
    adapted = await flood(3);
    assert.ok(Number(sysctlIn(null, RMEM_MAX)) > 32768);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  const before = dropsPerThousand(baseline);
  const afterwards = dropsPerThousand(adapted);
  assert.ok(afterwards < before / 2, `drops per 1000 datagrams: ${before.toFixed(1)} without bpftune, ${afterwards.toFixed(1)} after it grew rmem_max (${JSON.stringify(adapted)})`);
  assert.match(daemon.log, /Rolled back 'net\.core\.rmem_max' in global ns from \(\d+\) -> \(32768\)/);
  assert.equal(sysctlIn(null, RMEM_MAX), '32768');
  restoreGlobalSysctls();
});

test('IPv6 receivers keeping the default buffer grow rmem_default', async () => {
  const pair = createVethPair();
  setGlobal(RMEM_DEFAULT, '16384');
  const daemon = new DaemonProcess(['-a', 'udp_buffer', '-R']);
  try {
    await daemon.started();
    const fexit = /loading 'udp_buffer_enqueue_exit' \(fexit\/__udp_enqueue_schedule_skb\) because kernel \S+ is older than 6\.4/;
    if (IPV6_BY_FEXIT) assert.match(daemon.log, fexit);
    else assert.doesNotMatch(daemon.log, /udp_buffer_enqueue_exit/);
    await udpFlood(pair.client, pair.server, pair.serverAddr6, 5401, { rcvbufRequest: 0, seconds: 4 });
    await daemon.waitFor(
      /Due to need to increase receive buffer size to maximize throughput \(\d+ datagrams dropped at a full IPv6 UDP receive buffer in netns bpftune-test-[\d-]+.*sk_rcvbuf 16384 is rmem_default\) change net\.core\.rmem_default from \(16384\) -> \(20480\)/,
    );
  } finally {
    const code = await daemon.stop();
    assert.equal(code, 0, `the daemon exited with ${code}; its log:\n${daemon.log}`);
  }
  assert.equal(sysctlIn(null, RMEM_DEFAULT), '16384');
  restoreGlobalSysctls();
});

test('UDP memory refusing datagrams (udp_mem set just above use) raises udp_mem', async (t) => {
  const pair = createVethPair();
  const pages = udpPagesNow();
  // Above what UDP holds now by more than the per-CPU reserves the kernel adds to the
  // counter in batches (net.core.mem_pcpu_rsv, 256 pages), and small enough that a
  // receiver that never reads exhausts it within a second.
  const low = [pages + 256, pages + 512, pages + 1024];
  setGlobal(UDP_MEM, low.join(' '));
  // A receive buffer larger than udp_mem max, so UDP memory runs out before the socket's buffer does.
  setGlobal(RMEM_MAX, String(16 << 20));
  const daemon = new DaemonProcess(['-a', 'udp_buffer', '-R']);
  try {
    await daemon.started();
    const before = udpCounters(pair.server);
    const flood = await udpFlood(pair.client, pair.server, pair.serverAddr4, 5402, { rcvbufRequest: 16 << 20, seconds: 2, drainMs: 5000 });
    const after = udpCounters(pair.server);
    // 6.18 counts no MemErrors for what its receive batches refuse (see udp_buffer.bpf.c): there the
    // datagrams that never reached the receiver, with its buffer far from full, are the refusals.
    const refused = Math.max(after.memErrors - before.memErrors, flood.sent - flood.received - (after.rcvbufErrors - before.rcvbufErrors));
    if (refused <= 0) {
      // Without refusals (e.g. the flood was too slow on a loaded machine) there is nothing to react to.
      t.skip(`the kernel refused no UDP memory (MemErrors unchanged) with udp_mem ${low.join(' ')} and ${udpPagesNow()} pages in use: scenario not produced`);
      return;
    }
    await daemon.waitFor(/Scenario 'approaching UDP memory exhaustion' occurred for tunable 'net\.ipv4\.udp_mem' in global ns\./);
    const grown = [low[0] + (low[0] >> 2), low[1] + (low[1] >> 2), low[2] + (low[2] >> 2)];
    assert.match(
      daemon.log,
      new RegExp(
        `Due to near memory exhaustion \\(\\d+ datagrams refused UDP memory in netns bpftune-test-[\\d-]+, UDP memory use of \\d+ pages (?:near udp_mem max ${low[2]}|above udp_mem min ${low[0]}, past which UDP refuses receive memory)\\) ` +
          `change net\\.ipv4\\.udp_mem\\(min pressure max\\) from \\(${low.join(' ')}\\) -> \\(${grown.join(' ')}\\)`,
      ),
    );
  } finally {
    assert.equal(await daemon.stop(), 0);
    restoreGlobalSysctls();
  }
});

function udpPagesNow(): number {
  const m = /^UDP:.*\bmem (\d+)/m.exec(execFileSync('cat', ['/proc/net/sockstat'], { encoding: 'utf8' }));
  return Number(m?.[1] ?? 0);
}
