/**
 * TypeScript mirror of tcp_conn.h: the remote-host key of the choice map and
 * the event payload. tcp_conn.test.ts checks every offset here against the
 * BTF of tcp_conn.bpf.o, so the two cannot drift silently.
 */
import type { Algorithm } from './learner';

export const SCENARIO_LOSS = 0;
export const SCENARIO_SAMPLE = 1;
export const SCENARIO_SET_FAILED = 2;

/** Algorithm ids on the BPF side (TCP_CONN_ALG_*); 0 is any other algorithm. */
export const ALGORITHM_IDS: Record<Algorithm, number> = { reno: 1, cubic: 2, bbr: 3 };

export function algorithmOf(id: number): Algorithm | undefined {
  return (Object.keys(ALGORITHM_IDS) as Algorithm[]).find((a) => ALGORITHM_IDS[a] === id);
}

/** Slots of the tcp_conn_counts array (enum tcp_conn_count): one per algorithm id, then thin linear timeouts. */
export const COUNT_THIN_LTO = 4;
export const COUNTS = 5;

export const AF_INET = 2;
export const AF_INET6 = 10;

export const REMOTE_LAYOUT = {
  netns_cookie: 0,
  family: 8,
  addr: 12,
  pad: 28,
} as const;
export const REMOTE_SIZE = 32;

export const EVENT_DATA_LAYOUT = {
  remote: 0,
  peer: 32,
  alg: 48,
  initial_alg: 52,
  learned: 56,
  setsockopt_err: 60,
  min_rtt_us: 64,
  total_retrans: 68,
  segs_out: 72,
  data_segs_out: 76,
  bytes_acked: 80,
  duration_us: 88,
} as const;
export const EVENT_DATA_SIZE = 96;

export const CHOICE_SIZE = 4;

export interface Remote {
  netnsCookie: bigint;
  family: number;
  /** 16 bytes; an IPv4 address is the first 4 (network byte order). */
  addr: Buffer;
}

export interface ConnectionEvent {
  remote: Remote;
  peer: Buffer;
  alg: number;
  initialAlg: number;
  learned: boolean;
  setsockoptErr: number;
  minRttUs: number;
  totalRetrans: number;
  segsOut: number;
  dataSegsOut: number;
  bytesAcked: bigint;
  durationUs: bigint;
}

export function decodeRemote(buf: Buffer): Remote {
  return {
    netnsCookie: buf.readBigUInt64LE(REMOTE_LAYOUT.netns_cookie),
    family: buf.readUInt32LE(REMOTE_LAYOUT.family),
    addr: Buffer.from(buf.subarray(REMOTE_LAYOUT.addr, REMOTE_LAYOUT.addr + 16)),
  };
}

export function encodeRemote(remote: Remote): Buffer {
  const buf = Buffer.alloc(REMOTE_SIZE);
  buf.writeBigUInt64LE(remote.netnsCookie, REMOTE_LAYOUT.netns_cookie);
  buf.writeUInt32LE(remote.family, REMOTE_LAYOUT.family);
  remote.addr.copy(buf, REMOTE_LAYOUT.addr, 0, 16);
  return buf;
}

export function encodeChoice(algorithm: Algorithm): Buffer {
  const buf = Buffer.alloc(CHOICE_SIZE);
  buf.writeUInt32LE(ALGORITHM_IDS[algorithm], 0);
  return buf;
}

export function decodeConnectionEvent(data: Buffer): ConnectionEvent {
  if (data.length < EVENT_DATA_SIZE) throw new Error(`tcp_conn event payload of ${data.length} bytes is shorter than ${EVENT_DATA_SIZE}`);
  const L = EVENT_DATA_LAYOUT;
  return {
    remote: decodeRemote(data.subarray(L.remote, L.remote + REMOTE_SIZE)),
    peer: Buffer.from(data.subarray(L.peer, L.peer + 16)),
    alg: data.readUInt32LE(L.alg),
    initialAlg: data.readUInt32LE(L.initial_alg),
    learned: data.readUInt32LE(L.learned) !== 0,
    setsockoptErr: data.readInt32LE(L.setsockopt_err),
    minRttUs: data.readUInt32LE(L.min_rtt_us),
    totalRetrans: data.readUInt32LE(L.total_retrans),
    segsOut: data.readUInt32LE(L.segs_out),
    dataSegsOut: data.readUInt32LE(L.data_segs_out),
    bytesAcked: data.readBigUInt64LE(L.bytes_acked),
    durationUs: data.readBigUInt64LE(L.duration_us),
  };
}

/** Text form of an address as the kernel stores it (network byte order). */
export function formatAddress(family: number, addr: Buffer): string {
  if (family === AF_INET) return [...addr.subarray(0, 4)].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(addr.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}
