/**
 * The few rtnetlink messages the neigh_table tuner needs, built and parsed
 * here byte by byte (layouts from include/uapi/linux/{netlink,rtnetlink,
 * neighbour,if_addr}.h); the native addon only moves them across a netlink
 * socket inside a namespace (NativeBinding.netlinkRequest).
 *
 * - RTM_GETNEIGHTBL (dump) / RTM_SETNEIGHTBL: a table's gc_thresh1..3, its
 *   entry count (what `ip ntable show` prints).
 * - RTM_GETADDR (dump): a device's prefixes, to bound how many neighbours
 *   it can plausibly have.
 * - RTM_GETNEIGH (dump): how many entries a device has.
 */
export const NETLINK_ROUTE = 0;

export const AF_INET = 2;
export const AF_INET6 = 10;

const NLMSG_HDRLEN = 16;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;

export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;
export const RTM_NEWNEIGHTBL = 64;
export const RTM_GETNEIGHTBL = 66;
export const RTM_SETNEIGHTBL = 67;

// enum in linux/neighbour.h
export const NDTA_NAME = 1;
export const NDTA_THRESH1 = 2;
export const NDTA_THRESH2 = 3;
export const NDTA_THRESH3 = 4;
export const NDTA_CONFIG = 5;
export const NDTA_STATS = 7;
// enum in linux/if_addr.h
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

/** struct ndtmsg, struct ifaddrmsg, struct ndmsg. */
const NDTMSG_LEN = 4;
const IFADDRMSG_LEN = 8;
const NDMSG_LEN = 12;
/** struct ndt_config: ndtc_entries follows two __u16. */
const NDT_CONFIG_ENTRIES_OFFSET = 4;
/** struct ndt_stats: ndts_table_fulls is the 11th __u64. */
const NDT_STATS_TABLE_FULLS_OFFSET = 80;
/** The type field's top bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER. */
const NLA_TYPE_MASK = 0x3fff;

function align4(n: number): number {
  return (n + 3) & ~3;
}

let sequence = 0;

/** A request: nlmsghdr then the family header then attributes. */
function message(type: number, flags: number, header: Buffer, attributes: Buffer[] = []): Buffer {
  const body = Buffer.concat([header, ...attributes]);
  const msg = Buffer.alloc(NLMSG_HDRLEN + body.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(type, 4);
  msg.writeUInt16LE(NLM_F_REQUEST | flags, 6);
  sequence = (sequence + 1) >>> 0;
  msg.writeUInt32LE(sequence, 8);
  msg.writeUInt32LE(0, 12);
  body.copy(msg, NLMSG_HDRLEN);
  return msg;
}

/** struct rtattr, padded to 4 bytes. */
function attribute(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const attr = Buffer.alloc(align4(len));
  attr.writeUInt16LE(len, 0);
  attr.writeUInt16LE(type, 2);
  payload.copy(attr, 4);
  return attr;
}

function u32Attribute(type: number, value: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32LE(value, 0);
  return attribute(type, payload);
}

function familyHeader(length: number, family: number): Buffer {
  const header = Buffer.alloc(length);
  header.writeUInt8(family, 0);
  return header;
}

/** Attributes after the family header of a reply, by type (the last of a type wins). */
export function parseAttributes(msg: Buffer, headerLength: number): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  const end = Math.min(msg.length, msg.readUInt32LE(0));
  let off = NLMSG_HDRLEN + align4(headerLength);
  while (off + 4 <= end) {
    const len = msg.readUInt16LE(off);
    if (len < 4 || off + len > end) break;
    attrs.set(msg.readUInt16LE(off + 2) & NLA_TYPE_MASK, msg.subarray(off + 4, off + len));
    off += align4(len);
  }
  return attrs;
}

export function messageType(msg: Buffer): number {
  return msg.readUInt16LE(4);
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

export function getNeighTablesRequest(family = 0): Buffer {
  return message(RTM_GETNEIGHTBL, NLM_F_DUMP, familyHeader(NDTMSG_LEN, family));
}

export interface NeighThresholds {
  thresh1: number;
  thresh2: number;
  thresh3: number;
}

export function setNeighTableRequest(family: number, name: string, t: NeighThresholds): Buffer {
  return message(RTM_SETNEIGHTBL, 0, familyHeader(NDTMSG_LEN, family), [
    attribute(NDTA_NAME, Buffer.from(`${name}\0`, 'utf8')),
    u32Attribute(NDTA_THRESH1, t.thresh1),
    u32Attribute(NDTA_THRESH2, t.thresh2),
    u32Attribute(NDTA_THRESH3, t.thresh3),
  ]);
}

export interface NeighTableInfo extends NeighThresholds {
  family: number;
  name: string;
  /** All entries, permanent ones included (ndtc_entries). */
  entries: number;
  /** How often an allocation failed because the table was full ("neighbour table overflow"). */
  tableFulls: bigint;
}

/**
 * The tables in an RTM_GETNEIGHTBL dump. The dump also carries one message
 * per device's parameters; those have no thresholds and are skipped.
 */
export function parseNeighTables(replies: Buffer[]): NeighTableInfo[] {
  const tables: NeighTableInfo[] = [];
  for (const msg of replies) {
    if (messageType(msg) !== RTM_NEWNEIGHTBL) continue;
    const attrs = parseAttributes(msg, NDTMSG_LEN);
    const name = attrs.get(NDTA_NAME);
    const t1 = attrs.get(NDTA_THRESH1);
    const t2 = attrs.get(NDTA_THRESH2);
    const t3 = attrs.get(NDTA_THRESH3);
    if (!name || !t1 || !t2 || !t3) continue;
    const config = attrs.get(NDTA_CONFIG);
    const stats = attrs.get(NDTA_STATS);
    tables.push({
      family: msg.readUInt8(NLMSG_HDRLEN),
      name: cString(name),
      thresh1: t1.readUInt32LE(0),
      thresh2: t2.readUInt32LE(0),
      thresh3: t3.readUInt32LE(0),
      entries: config && config.length >= NDT_CONFIG_ENTRIES_OFFSET + 4 ? config.readUInt32LE(NDT_CONFIG_ENTRIES_OFFSET) : 0,
      tableFulls: stats && stats.length >= NDT_STATS_TABLE_FULLS_OFFSET + 8 ? stats.readBigUInt64LE(NDT_STATS_TABLE_FULLS_OFFSET) : 0n,
    });
  }
  return tables;
}

export function getAddressesRequest(family: number): Buffer {
  return message(RTM_GETADDR, NLM_F_DUMP, familyHeader(IFADDRMSG_LEN, family));
}

export interface InterfaceAddress {
  family: number;
  prefixLength: number;
  ifindex: number;
  /** The local address as bytes (4 or 16). */
  address: Buffer;
}

export function parseAddresses(replies: Buffer[]): InterfaceAddress[] {
  const addresses: InterfaceAddress[] = [];
  for (const msg of replies) {
    if (messageType(msg) !== RTM_NEWADDR) continue;
    const attrs = parseAttributes(msg, IFADDRMSG_LEN);
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    const address = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (!address) continue;
    addresses.push({
      family: msg.readUInt8(NLMSG_HDRLEN),
      prefixLength: msg.readUInt8(NLMSG_HDRLEN + 1),
      ifindex: msg.readUInt32LE(NLMSG_HDRLEN + 4),
      address: Buffer.from(address),
    });
  }
  return addresses;
}

export function getNeighboursRequest(family: number): Buffer {
  return message(RTM_GETNEIGH, NLM_F_DUMP, familyHeader(NDMSG_LEN, family));
}

/** Neighbour entries per ifindex in an RTM_GETNEIGH dump. */
export function countNeighboursByDevice(replies: Buffer[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const msg of replies) {
    if (messageType(msg) !== RTM_NEWNEIGH || msg.length < NLMSG_HDRLEN + NDMSG_LEN) continue;
    const ifindex = msg.readInt32LE(NLMSG_HDRLEN + 4);
    counts.set(ifindex, (counts.get(ifindex) ?? 0) + 1);
  }
  return counts;
}
