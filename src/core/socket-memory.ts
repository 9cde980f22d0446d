/**
 * Protocol memory (TCP, UDP): how many pages the kernel has allocated to a
 * protocol's sockets, system-wide, against its <proto>_mem triple (min,
 * pressure, max). The counters are in /proc/net/sockstat ("TCP: ... mem N",
 * "UDP: ... mem N"), the same numbers the kernel compares with the limits;
 * tuners read them on a slow timer. Shared by tcp_buffer (tcp_mem) and
 * udp_buffer (udp_mem), which grow the triple the same way.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** "TCP" or "UDP": the line's label in /proc/net/sockstat. */
export type SockstatProtocol = 'TCP' | 'UDP';

export function parseSockstatMem(text: string, protocol: SockstatProtocol): number {
  const m = new RegExp(`^${protocol}:.*\\bmem (\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no "${protocol}: ... mem N" line in /proc/net/sockstat`);
  return Number(m[1]);
}

/**
 * A protocol's memory use in pages. Read synchronously: the kernel formats
 * it from counters without blocking, and an asynchronous read costs several
 * thread-pool round trips (each a wake-up of the daemon) for a few hundred bytes.
 */
export function pagesAllocated(protocol: SockstatProtocol, sockstatPath = '/proc/net/sockstat'): number {
  return parseSockstatMem(readFileSync(sockstatPath, 'utf8'), protocol);
}

/**
 * The kernel sizes tcp_mem and udp_mem from nr_free_buffer_pages() (the
 * pressure value is 1/16 of it), which user space cannot read; MemTotal in
 * pages is a close upper bound (nr_free_buffer_pages is managed memory minus
 * the zones' high watermarks).
 */
export async function freeBufferPages(pageSize = 4096, meminfoPath = '/proc/meminfo'): Promise<number> {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(await readFile(meminfoPath, 'utf8'));
  if (!m) throw new Error('no MemTotal line in /proc/meminfo');
  return Math.floor((Number(m[1]) * 1024) / pageSize);
}

/**
 * Upper bounds for a protocol's (min, pressure, max) as fractions of free
 * buffer pages: ~6%, ~9% and 25%. The kernel's own defaults are ~4.7%, 6.25%
 * and ~9.4%; beyond a quarter of memory one protocol would crowd out everything else.
 */
export const PROTO_MEM_CAP_FRACTIONS: readonly [number, number, number] = [1 / 16, 3 / 32, 1 / 4];

/** The triple grown by one learning step per value, each capped; equal to `mem` when there is no room left. */
export function grownProtoMem(mem: readonly number[], freePages: number, grow: (v: number) => number): number[] {
  return mem.map((v, i) => Math.max(v, Math.min(grow(v), Math.floor(freePages * (PROTO_MEM_CAP_FRACTIONS[i] ?? 0)))));
}
