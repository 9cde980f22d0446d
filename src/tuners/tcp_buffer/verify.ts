/**
 * What a buffer-limit increase is judged by (issue 16, item 3: no change
 * without a measured benefit). The benefit is the namespace's throughput in
 * the direction the limit serves (IpExt InOctets for tcp_rmem, OutOctets for
 * tcp_wmem, from the namespace's own /proc/net/netstat; the highest rate over
 * 250 ms slices of the window, so traffic pausing for a moment is no loss); the guards are the
 * namespace's retransmitted share of segments sent (Tcp RetransSegs /
 * OutSegs), the share of segments received that its receivers dropped
 * (TcpExt TCPRcvQDrop + TCPOFODrop + RcvPruned, per Tcp InSegs: a bigger
 * receive buffer must not mean more of them), and TCP memory above
 * tcp_mem[0] (global: the kernel accounts TCP memory only globally; below
 * tcp_mem[0] the kernel does not care how much is used).
 *
 * Not the out-of-order share (TCPOFOQueue), which an earlier version used:
 * one loss sends every segment of the next round trip to the out-of-order
 * queue, so the share grows with the window itself. On a 40 ms path a single
 * drop at a 27 MB window read as 333 per 1000 and undid growth that had
 * doubled throughput.
 */
import { counterMeasure, levelMeasure, type Measure } from '../../core/change-verifier';
import type { ContextWith } from '../../core/tuner';
import { parseProcNetCounters } from './syn-flood';
import { tcpPagesAllocated } from './memory';
import { Tunable } from './scenarios';
import type { BufferSide } from './buffers';

/** Relative change in throughput below which two windows count as the same. */
const THROUGHPUT_TOLERANCE = 0.15;
/** Retransmit/receiver-drop shares: worse only when they at least double and rise by 1 % of segments. */
const LOSS_TOLERANCE = 1;
const LOSS_FLOOR_PERMILLE = 10;

export interface NamespaceCounters {
  inOctets: number;
  outOctets: number;
  inSegs: number;
  outSegs: number;
  retransSegs: number;
  /** Segments receivers dropped: receive queue full, out-of-order queue full, pruned for memory. */
  receiverDrops: number;
}

export function parseNamespaceCounters(netstat: string, snmp: string): NamespaceCounters {
  const ip = parseProcNetCounters(netstat, 'IpExt');
  const ext = parseProcNetCounters(netstat, 'TcpExt');
  const tcp = parseProcNetCounters(snmp, 'Tcp');
  return {
    inOctets: ip.get('InOctets') ?? 0,
    outOctets: ip.get('OutOctets') ?? 0,
    inSegs: tcp.get('InSegs') ?? 0,
    outSegs: tcp.get('OutSegs') ?? 0,
    retransSegs: tcp.get('RetransSegs') ?? 0,
    receiverDrops: (ext.get('TCPRcvQDrop') ?? 0) + (ext.get('TCPOFODrop') ?? 0) + (ext.get('RcvPruned') ?? 0),
  };
}

/** Per mille, with no segments counting as none. */
function permille(part: number, whole: number): number {
  return whole > 0 ? (part * 1000) / whole : 0;
}

/** The benefit and guard measures for an increase of `side` in the namespace `cookie`. */
export function bufferMeasures(ctx: ContextWith<'readProcNet'>, side: BufferSide, cookie: bigint, sockstatPath: string): { benefit: Measure; guards: Measure[] } {
  const read = async (): Promise<number[]> => {
    const [netstat, snmp] = await Promise.all([ctx.readProcNet('netstat', cookie), ctx.readProcNet('snmp', cookie)]);
    const c = parseNamespaceCounters(netstat, snmp);
    return [c.inOctets, c.outOctets, c.inSegs, c.outSegs, c.retransSegs, c.receiverDrops];
  };
  const [IN_OCTETS, OUT_OCTETS, IN_SEGS, OUT_SEGS, RETRANS, RCV_DROPS] = [0, 1, 2, 3, 4, 5];
  const octets = side === 'rmem' ? IN_OCTETS : OUT_OCTETS;
  const benefit = counterMeasure({
    name: side === 'rmem' ? 'peak received Mbit/s' : 'peak sent Mbit/s',
    // The peak over 250 ms slices: a pause between connections within a window is not a loss of throughput.
    sampleMs: 250,
    better: 'higher',
    tolerance: THROUGHPUT_TOLERANCE,
    floor: 1,
    // A window below 1 Mbit/s had no traffic worth the name (between connections): no verdict from it.
    minimum: 1,
    read,
    value: (d, s) => ((d[octets] ?? 0) * 8) / s / 1e6,
  });
  const retransmits = counterMeasure({
    name: 'retransmitted per 1000 segments sent',
    better: 'lower',
    tolerance: LOSS_TOLERANCE,
    floor: LOSS_FLOOR_PERMILLE,
    read,
    value: (d) => permille(d[RETRANS] ?? 0, d[OUT_SEGS] ?? 0),
  });
  const receiverDrops = counterMeasure({
    name: 'dropped by receivers per 1000 segments received',
    better: 'lower',
    tolerance: LOSS_TOLERANCE,
    floor: LOSS_FLOOR_PERMILLE,
    read,
    value: (d) => permille(d[RCV_DROPS] ?? 0, d[IN_SEGS] ?? 0),
  });
  const memory = levelMeasure({
    name: 'TCP pages above tcp_mem min',
    better: 'lower',
    tolerance: 0,
    floor: 0,
    read: async () => {
      const [low = 0] = await ctx.tunable(Tunable.mem).get();
      return Math.max(0, tcpPagesAllocated(sockstatPath) - low);
    },
  });
  return { benefit, guards: [retransmits, receiverDrops, memory] };
}
