/**
 * udp_buffer's decisions, as pure functions of what the kernel reported and
 * the limits in force (index.ts reads and writes; these only decide).
 *
 * How the kernel sizes a UDP socket's receive buffer, which the rules follow:
 * a socket starts with sk_rcvbuf = net.core.rmem_default, and UDP never
 * grows it; SO_RCVBUF v sets sk_rcvbuf = 2 * min(v, net.core.rmem_max) and
 * locks it. So a full receive buffer says "rmem_max too small" only when the
 * socket asked for at least rmem_max, and "rmem_default too small" only when
 * the socket kept the default. Either value applies to sockets (and
 * setsockopt calls) made after the change, not to existing buffers.
 */
import type { LearningRate } from '../../core/tuner';

export const RMEM_MAX = 'net.core.rmem_max';
export const RMEM_DEFAULT = 'net.core.rmem_default';
export const UDP_MEM = 'net.ipv4.udp_mem';

/** Below this a receive buffer holds a handful of datagrams: never shrink past it. */
export const UDP_BUFFER_MIN = 8192;
/** No single socket buffer beyond 256 MiB, however much memory there is. */
export const UDP_BUFFER_MAX = 256 * 1024 * 1024;

export interface RcvbufDrop {
  /** The dropping socket's sk_rcvbuf, bytes. */
  rcvbuf: number;
  /** Set with SO_RCVBUF (so rmem_default does not apply to it). */
  locked: boolean;
}

export interface RmemLimits {
  rmemMax: number;
  rmemDefault: number;
}

export type RcvbufDecision =
  | { grow: typeof RMEM_MAX | typeof RMEM_DEFAULT; from: number; to: number; because: string }
  | { skip: string };

/**
 * The largest receive buffer udp_buffer sets: 256 MiB, or an eighth of UDP's
 * pressure threshold (udp_mem[1], pages), whichever is less, so that a few
 * full sockets cannot take UDP into memory pressure by themselves.
 */
export function bufferCap(udpMem: readonly number[], pageSize = 4096): number {
  const pressureBytes = (udpMem[1] ?? 0) * pageSize;
  return Math.max(UDP_BUFFER_MIN, Math.min(UDP_BUFFER_MAX, Math.floor(pressureBytes / 8)));
}

function grownWithin(value: number, cap: number, learning: LearningRate): number {
  return Math.min(cap, Math.max(value + 1, learning.grow(value)));
}

/** What a full receive buffer asks of rmem_max / rmem_default (see the module comment). */
export function rcvbufDecision(drop: RcvbufDrop, limits: RmemLimits, cap: number, learning: LearningRate): RcvbufDecision {
  const { rmemMax, rmemDefault } = limits;
  let tunable: typeof RMEM_MAX | typeof RMEM_DEFAULT;
  let from: number;
  let because: string;
  if (drop.locked) {
    // Exactly 2 x rmem_max when SO_RCVBUF was clamped; less when the socket asked for less,
    // or was made under a smaller rmem_max (a step behind: growing again would overshoot).
    if (drop.rcvbuf < 2 * rmemMax) {
      return { skip: `socket's SO_RCVBUF ${drop.rcvbuf / 2} is below rmem_max ${rmemMax}: a larger limit would not change its buffer` };
    }
    tunable = RMEM_MAX;
    from = rmemMax;
    because = `sk_rcvbuf ${drop.rcvbuf} is 2 x rmem_max: SO_RCVBUF asked for at least rmem_max`;
  } else {
    if (drop.rcvbuf < rmemDefault) {
      return { skip: `socket's sk_rcvbuf ${drop.rcvbuf} is not rmem_default ${rmemDefault}: it was made before rmem_default last changed` };
    }
    tunable = RMEM_DEFAULT;
    from = rmemDefault;
    because = `sk_rcvbuf ${drop.rcvbuf} is rmem_default`;
  }
  const to = grownWithin(from, cap, learning);
  if (to <= from) return { skip: `${tunable} ${from} is at its cap ${cap} (256 MiB or udp_mem[1]/8)` };
  return { grow: tunable, from, to, because };
}

export type UdpMemoryState = 'normal' | 'pressure' | 'exhaustion';

/** Where UDP's memory use (pages) stands against udp_mem (min pressure max). */
export function udpMemoryState(pages: number, udpMem: readonly number[], learning: LearningRate): UdpMemoryState {
  const [, pressure = 0, max = 0] = udpMem;
  if (max > 0 && learning.nearlyFull(pages, max)) return 'exhaustion';
  if (pressure > 0 && learning.nearlyFull(pages, pressure)) return 'pressure';
  return 'normal';
}

/** rmem_max / rmem_default one step smaller, never below UDP_BUFFER_MIN; undefined when already there. */
export function shrunkBuffer(value: number, learning: LearningRate): number | undefined {
  const to = Math.max(UDP_BUFFER_MIN, learning.shrink(value));
  return to < value ? to : undefined;
}
