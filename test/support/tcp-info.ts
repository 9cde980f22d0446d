/**
 * TCP_INFO of the sockets in a namespace, through `ss -tin` (sock_diag):
 * cumulative counters per connection, summed over the connections matched.
 * What a verifier measures a TCP change by: bytes acked (delivery), bytes
 * retransmitted, the smoothed RTT, and the kernel's own account of why a
 * sender was held back (tcp_info's chrono stats: busy, rwnd_limited,
 * sndbuf_limited, in ms).
 */
import { inNamespace } from './netns';

export interface TcpInfoTotals {
  connections: number;
  bytesAcked: number;
  bytesSent: number;
  bytesRetrans: number;
  busyMs: number;
  rwndLimitedMs: number;
  sndbufLimitedMs: number;
  /** Highest smoothed RTT among the connections, ms. */
  maxRttMs: number;
}

/** Parses `ss -tinH` output (a socket line, then its info line). */
export function parseSsInfo(text: string): TcpInfoTotals {
  const totals: TcpInfoTotals = { connections: 0, bytesAcked: 0, bytesSent: 0, bytesRetrans: 0, busyMs: 0, rwndLimitedMs: 0, sndbufLimitedMs: 0, maxRttMs: 0 };
  for (const line of text.split('\n')) {
    if (!/\brtt:/.test(line)) continue;
    totals.connections++;
    const num = (re: RegExp) => Number(re.exec(line)?.[1] ?? 0);
    totals.bytesAcked += num(/\bbytes_acked:(\d+)/);
    totals.bytesSent += num(/\bbytes_sent:(\d+)/);
    totals.bytesRetrans += num(/\bbytes_retrans:(\d+)/);
    totals.busyMs += num(/\bbusy:(\d+)ms/);
    totals.rwndLimitedMs += num(/\brwnd_limited:(\d+)ms/);
    totals.sndbufLimitedMs += num(/\bsndbuf_limited:(\d+)ms/);
    totals.maxRttMs = Math.max(totals.maxRttMs, num(/\brtt:([\d.]+)\//));
  }
  return totals;
}

/** Totals over the TCP connections in `ns` going to `port`. */
export function tcpInfo(ns: string, port: number): TcpInfoTotals {
  return parseSsInfo(inNamespace(ns, 'ss', ['-tinH', 'dport', '=', `:${port}`]));
}
