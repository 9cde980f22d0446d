/** Pure logic of the tcp_buffer tuner: parsers and the tcp_mem growth bound. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { grownTcpMem, parseSockstatTcpMem, TCP_MEM_CAP_FRACTIONS } from './memory';
import { parseProcNetCounters, passiveOpens, synCounters } from './syn-flood';
import { releaseAtLeast } from './memory-watch';
import { parseNamespaceCounters } from './verify';

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
