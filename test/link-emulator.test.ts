/**
 * The link emulator the tuner tests and benchmarks rely on: it must really
 * add the delay, drop the packets it says it drops, and hold the rate limit,
 * over IPv4 and IPv6, and leave nothing behind.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createEmulatedLink, type EmulatedLink } from './support/link-emulator';
import { cleanupNamespaces, inNamespace } from './support/netns';

const links: EmulatedLink[] = [];
after(async () => {
  for (const l of links) await l.close();
  cleanupNamespaces();
});

async function link(options: Parameters<typeof createEmulatedLink>[0]): Promise<EmulatedLink> {
  const l = await createEmulatedLink(options);
  links.push(l);
  return l;
}

function pingStats(ns: string, addr: string, count: number, intervalS: number): { received: number; minMs: number } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', String(intervalS), '-W', '1', addr], { encoding: 'utf8' });
  const received = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  const minMs = Number(/= ([\d.]+)\//.exec(r.stdout)?.[1] ?? NaN);
  return { received, minMs };
}

test('delay: every round trip takes at least the configured RTT, IPv4 and IPv6', async () => {
  const l = await link({ rttMs: 30 });
  const v4 = pingStats(l.client, l.serverAddr4, 5, 0.05);
  const v6 = pingStats(l.client, l.serverAddr6, 5, 0.05);
  assert.equal(v4.received, 5);
  assert.equal(v6.received, 5);
  assert.ok(v4.minMs >= 30, `IPv4 min RTT ${v4.minMs} ms`);
  assert.ok(v6.minMs >= 30, `IPv6 min RTT ${v6.minMs} ms`);
  const counters = await l.close();
  assert.ok(counters && counters.clientToServer.forwarded >= 10 && counters.clientToServer.dropped === 0);
});

test('loss: the forwarder drops about the configured share, and the drops are real', async () => {
  const l = await link({ lossPercent: 20, seed: 7 });
  const { received } = pingStats(l.client, l.serverAddr4, 200, 0.002);
  const counters = await l.close();
  assert.ok(counters, 'counters');
  const sent = counters.clientToServer.forwarded + counters.clientToServer.dropped;
  const share = counters.clientToServer.dropped / sent;
  // 200 draws at p = 0.2: outside 0.08..0.35 is ~5 standard deviations away.
  assert.ok(share > 0.08 && share < 0.35, `dropped ${counters.clientToServer.dropped} of ${sent}`);
  // A reply comes back only if neither the request nor the reply was dropped.
  assert.equal(received, counters.serverToClient.forwarded);
});

test('rate: tbf on both ends caps TCP throughput', async () => {
  const l = await link({ rateMbit: 20 });
  const server = spawn('ip', ['netns', 'exec', l.server, 'iperf3', '-s', '-1', '-B', l.serverAddr6], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const out = inNamespace(l.client, 'iperf3', ['-c', l.serverAddr6, '-t', '2', '-J']);
    const mbit = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
    assert.ok(mbit > 5 && mbit <= 22, `${mbit.toFixed(1)} Mbit/s through a 20 Mbit/s link`);
  } finally {
    server.kill('SIGKILL');
  }
});

test('close removes the namespaces and the forwarder', async () => {
  const l = await link({ rttMs: 2 });
  await l.close();
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!list.includes(l.client) && !list.includes(l.server), list);
  assert.equal(await l.close(), undefined, 'second close is a no-op');
});
