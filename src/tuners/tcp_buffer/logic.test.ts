/** Pure logic of the tcp_buffer tuner: parsers, the tcp_mem growth bound, and how growth episodes step. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { grownTcpMem, parseSockstatTcpMem, TCP_MEM_CAP_FRACTIONS } from './memory';
import { parseProcNetCounters, passiveOpens, synCounters } from './syn-flood';
import { releaseAtLeast } from './memory-watch';
import { parseNamespaceCounters } from './verify';
import { BufferGrowth, type BufferSide } from './buffers';
import { MemoryWatch } from './memory-watch';
import type { TcpBufferData } from './tcp_buffer.contract';
import type { TunerEvent } from '../../core/event';
import type { Outcome } from '../../core/tuner';
import { fakeContext } from '../../../test/support/fake-context';
import { learningRateFor } from '../../core/tuner-loader';

const SOCKSTAT = `sockets: used 37
TCP: inuse 1 orphan 2 tw 1 alloc 3 mem 417
UDP: inuse 0 mem 0
`;

test('sockstat: TCP memory in pages', () => {
  assert.equal(parseSockstatTcpMem(SOCKSTAT), 417);
  assert.throws(() => parseSockstatTcpMem('UDP: inuse 0 mem 3\n'), /no "TCP: \.\.\. mem N" line/);
});

test('tcp_mem grows one step per value, each capped by its share of free buffer pages', () => {
  const grow = (v: number) => v + (v >> 2);
  assert.deepEqual(grownTcpMem([16, 32, 48], 1_000_000, grow), [20, 40, 60]);
  // Capped: 1/16, 3/32 and 1/4 of 1600 pages are 100, 150 and 400.
  assert.deepEqual(grownTcpMem([96, 140, 390], 1600, grow), [100, 150, 400]);
  // Already beyond a cap (an administrator's choice): never lowered here.
  assert.deepEqual(grownTcpMem([200, 300, 500], 1600, grow), [200, 300, 500]);
  assert.equal(TCP_MEM_CAP_FRACTIONS.length, 3);
});

const NETSTAT = `TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows TCPReqQFullDoCookies TCPReqQFullDrop
TcpExt: 460 12 3 7 455 5
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
`;
const SNMP = `Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails
Tcp: 1 200 120000 -1 10 2271 0
`;

test('/proc/net counters: header and value lines pair up per prefix', () => {
  const ext = parseProcNetCounters(NETSTAT, 'TcpExt');
  assert.equal(ext.get('SyncookiesSent'), 460);
  assert.equal(ext.get('TCPReqQFullDrop'), 5);
  assert.equal(parseProcNetCounters(SNMP, 'Tcp').get('MaxConn'), -1);
  assert.deepEqual(synCounters(NETSTAT), { overflows: 460, cookiesSent: 460, cookiesValid: 12 });
  assert.deepEqual(synCounters(''), { overflows: 0, cookiesSent: 0, cookiesValid: 0 });
  assert.equal(passiveOpens(SNMP), 2271);
});

test('kernel release comparison for the high-order allocation rule (>= 5.14)', () => {
  assert.equal(releaseAtLeast('6.18.0-1-cloud-amd64', [5, 14]), true);
  assert.equal(releaseAtLeast('5.14.0', [5, 14]), true);
  assert.equal(releaseAtLeast('5.13.19-generic', [5, 14]), false);
  assert.equal(releaseAtLeast('4.19.0', [5, 14]), false);
  assert.equal(releaseAtLeast('5.4.0', [5, 14]), false, 'minor compared as a number, not as text');
  assert.equal(releaseAtLeast('not a release', [5, 14]), false);
});

test('namespace counters for the verifier: IpExt octets, Tcp segments and retransmits, TcpExt receiver drops', () => {
  const netstat = 'TcpExt: RcvPruned TCPOFOQueue TCPOFODrop TCPRcvQDrop SyncookiesSent\nTcpExt: 2 900 5 10 0\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 123456 654321\n';
  const snmp = 'Tcp: RtoAlgorithm InSegs OutSegs RetransSegs\nTcp: 1 1000 2000 30\n';
  assert.deepEqual(parseNamespaceCounters(netstat, snmp), { inOctets: 123456, outOctets: 654321, inSegs: 1000, outSegs: 2000, retransSegs: 30, receiverDrops: 17 });
  assert.deepEqual(parseNamespaceCounters('', ''), { inOctets: 0, outOctets: 0, inSegs: 0, outSegs: 0, retransSegs: 0, receiverDrops: 0 });
});

/** A limit-near-max event as the BPF side posts it: the limit seen, and one learning step above it. */
function nearMaxEvent(limit: number): TunerEvent {
  return { tunerId: 0, scenarioId: 0, netnsCookie: 1n, netnsInum: 1, pid: 1, ktimeNs: 0n, oldValues: [4096, 16384, limit], newValues: [4096, 16384, learningRateFor(2).grow(limit)], data: Buffer.alloc(0) };
}

function socketAt(limit: number, rttUs = 40_000): TcpBufferData {
  // rcvSpace and rttUs: the receive side's read rate, which makes its episodes start without a window before.
  return { rttUs, skBuf: limit, family: 2, tcpModerateRcvbuf: 1, busy: 1000, sndbufLimited: 0, bdp: limit, rcvSpace: limit, rwndLimited: 0, pipe: limit / 2 };
}

/**
 * Episodes under a stand-in for the core's verifier that the test steps through: the window
 * before ends when the test says, and the verdict is 'kept' when the test says. The first step
 * on trust is taken only for the first change, as the verifier does when the next change comes
 * soon after a kept one (it takes that one's window after as its baseline).
 */
async function growthUnderVerdicts(side: BufferSide): Promise<{
  limits: () => number[];
  reasons: () => string[];
  proposals: () => number;
  step: (limit: number, rttUs?: number) => Promise<void>;
  endWindowBefore: () => Promise<void>;
  keep: () => Promise<void>;
}> {
  const tunable = side === 'rmem' ? 'net.ipv4.tcp_rmem' : 'net.ipv4.tcp_wmem';
  const fake = fakeContext('tcp_buffer', { [tunable]: [4096, 16384, 1 << 20] });
  const windowsBefore: Array<() => void> = [];
  const verdicts: Array<(o: Outcome) => void> = [];
  let proposals = 0;
  fake.ctx.verifyChange = async (change) => {
    const firstMade = proposals++ === 0 && change.first ? await change.first() : false;
    if (change.signalBaseline === undefined) await new Promise<void>((r) => windowsBefore.push(r));
    if (!(await change.apply())) return { kind: 'not applied', key: change.key, firstMade };
    return new Promise<Outcome>((r) => verdicts.push(r));
  };
  const growth = new BufferGrowth(fake.ctx, new MemoryWatch(fake.ctx));
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return {
    limits: () => fake.changes.map((c) => Number(c.values[2])),
    reasons: () => fake.changes.map((c) => c.reason),
    proposals: () => proposals,
    step: async (limit, rttUs) => {
      await growth.nearMax(side, nearMaxEvent(limit), socketAt(limit, rttUs));
      await settle();
    },
    endWindowBefore: async () => {
      windowsBefore.shift()?.();
      await settle();
    },
    keep: async () => {
      verdicts.shift()?.({ kind: 'kept', key: tunable, benefit: { measure: 'peak', before: 1, after: 2, verdict: 'improved' }, guards: [] });
      await settle();
      await settle();
    },
  };
}

test('send limit: one judged step per episode, a socket pressing meanwhile opening the next once it is kept; the receive limit grows while judged', async () => {
  const M = 1 << 20;
  const send = await growthUnderVerdicts('wmem');
  await send.step(M); // first step on trust, at once
  assert.deepEqual(send.limits(), [1.25 * M]);
  await send.step(1.25 * M); // during the window before: noted
  await send.endWindowBefore(); // the judged step
  assert.deepEqual(send.limits(), [1.25 * M, 1.5625 * M]);
  await send.step(1.5625 * M); // while judged: noted, not raised
  await send.step(1.5625 * M);
  assert.deepEqual(send.limits(), [1.25 * M, 1.5625 * M]);
  await send.keep(); // kept: the next episode opens with the socket that pressed
  assert.equal(send.proposals(), 2);
  await send.endWindowBefore();
  assert.deepEqual(send.limits(), [1.25 * M, 1.5625 * M, 1.953125 * M]);

  const receive = await growthUnderVerdicts('rmem');
  await receive.step(M); // raised at once, judged against the socket's read rate
  await receive.step(1.25 * M); // while judged: raised again
  assert.deepEqual(receive.limits(), [1.25 * M, 1.5625 * M]);
  await receive.keep(); // kept: nothing pending, no new episode until an event
  assert.equal(receive.proposals(), 1);
});

test('bigger limits going with longer round trips: one step back, then no increase for a while', async () => {
  const M = 1 << 20;
  const receive = await growthUnderVerdicts('rmem');
  // RTT flat, then rising with each raise (a queue filling): correlation over 4 samples, RTT up by half.
  const rtts = [40_000, 40_500, 48_000, 56_000, 66_000];
  let limit = M;
  for (const rtt of rtts) {
    await receive.step(limit, rtt);
    limit = learningRateFor(2).grow(limit);
  }
  const limits = receive.limits();
  const top = limits[limits.length - 2];
  assert.deepEqual(limits.slice(0, 4), [1.25 * M, 1.5625 * M, 1.953125 * M, 2.44140625 * M], 'raised while RTT rose less than half');
  assert.ok(limits[4] < top, `stepped back from ${top} to ${limits[4]}`);
  assert.match(receive.reasons()[4], /^smoothed RTT rising with net\.ipv4\.tcp_rmem max \(correlation (0\.\d+|1\.00), RTT 40\.0 ms -> 66\.0 ms\)$/);
  await receive.step(limits[4], 40_000);
  assert.equal(receive.limits().length, 5, 'held: no increase right after stepping back');
});
