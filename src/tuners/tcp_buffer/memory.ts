/**
 * TCP memory: how much the kernel has allocated to TCP (pages, global) against
 * net.ipv4.tcp_mem. Read from /proc/net/sockstat on a slow timer (index.ts):
 * the kernel has no tracepoint for entering memory pressure, and the counter
 * is what it compares itself.
 * sock:sock_exceed_buf_limit (BPF) adds the moment an allocation is refused
 * and the namespace of the socket it was refused to.
 * The arithmetic is shared with udp_buffer (src/core/socket-memory.ts).
 */
import { freeBufferPages, grownProtoMem, pagesAllocated, parseSockstatMem, PROTO_MEM_CAP_FRACTIONS } from '../../core/socket-memory';

export { freeBufferPages };

/** TCP's memory use in pages ("TCP: ... mem N" in /proc/net/sockstat). */
export function tcpPagesAllocated(sockstatPath = '/proc/net/sockstat'): number {
  return pagesAllocated('TCP', sockstatPath);
}

export function parseSockstatTcpMem(text: string): number {
  return parseSockstatMem(text, 'TCP');
}

/** Upper bounds for tcp_mem (min, pressure, max) as fractions of free buffer pages. */
export const TCP_MEM_CAP_FRACTIONS = PROTO_MEM_CAP_FRACTIONS;

/** tcp_mem grown by one learning step per value, each capped; equal to `mem` when there is no room left. */
export const grownTcpMem = grownProtoMem;
