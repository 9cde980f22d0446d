/**
 * TCP memory: how much the kernel has allocated to TCP (pages, global) against
 * net.ipv4.tcp_mem. Read from /proc/net/sockstat on a slow timer (index.ts):
 * the kernel has no tracepoint for entering memory pressure, and the counter
 * is what it compares itself.
 * sock:sock_exceed_buf_limit (BPF) adds the moment an allocation is refused
 * and the namespace of the socket it was refused to.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * TCP's memory use in pages ("TCP: ... mem N" in /proc/net/sockstat). Read
 * synchronously: the kernel formats it from counters without blocking, and
 * an asynchronous read costs several thread-pool round trips (each a wake-up
 * of the daemon) for a few hundred bytes.
 */
export function tcpPagesAllocated(sockstatPath = '/proc/net/sockstat'): number {
  return parseSockstatTcpMem(readFileSync(sockstatPath, 'utf8'));
}

export function parseSockstatTcpMem(text: string): number {
  const m = /^TCP:.*\bmem (\d+)/m.exec(text);
  if (!m) throw new Error('no "TCP: ... mem N" line in /proc/net/sockstat');
  return Number(m[1]);
}

/**
 * The kernel sizes tcp_mem from nr_free_buffer_pages() (tcp_mem[1] is 1/16 of
 * it), which user space cannot read; MemTotal in pages is a close upper bound
 * (nr_free_buffer_pages is managed memory minus the zones' high watermarks).
 */
export async function freeBufferPages(pageSize = 4096, meminfoPath = '/proc/meminfo'): Promise<number> {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(await readFile(meminfoPath, 'utf8'));
  if (!m) throw new Error('no MemTotal line in /proc/meminfo');
  return Math.floor((Number(m[1]) * 1024) / pageSize);
}

/**
 * Upper bounds for tcp_mem (min, pressure, max) as fractions of free buffer
 * pages: ~6%, ~9% and 25%. The kernel's own defaults are ~4.7%, 6.25% and
 * ~9.4%; beyond a quarter of memory TCP would crowd out everything else.
 */
export const TCP_MEM_CAP_FRACTIONS: readonly [number, number, number] = [1 / 16, 3 / 32, 1 / 4];

/** tcp_mem grown by one learning step per value, each capped; equal to `mem` when there is no room left. */
export function grownTcpMem(mem: readonly number[], freePages: number, grow: (v: number) => number): number[] {
  return mem.map((v, i) => Math.max(v, Math.min(grow(v), Math.floor(freePages * (TCP_MEM_CAP_FRACTIONS[i] ?? 0)))));
}
