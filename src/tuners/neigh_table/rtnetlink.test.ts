/**
 * Pure parts of neigh_table: rtnetlink messages against their byte layouts
 * (as the kernel's uapi headers define them), the plausible-neighbour
 * arithmetic, threshold steps, and the event payload offsets against the
 * BTF clang emits for struct neigh_table_event_data.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  AF_INET,
  AF_INET6,
  countNeighboursByDevice,
  getNeighTablesRequest,
  parseAddresses,
  parseNeighTables,
  RTM_NEWADDR,
  RTM_NEWNEIGH,
  RTM_NEWNEIGHTBL,
  setNeighTableRequest,
} from './rtnetlink';
import { formatAddress, plausibleNeighbours } from './plausible';
import { grownThresholds, shrunkThresholds } from './index';

/** nlmsghdr + family header + rtattrs, written out by hand. */
function reply(type: number, header: number[], attrs: Array<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [Buffer.from(header)];
  for (const [t, payload] of attrs) {
    const len = 4 + payload.length;
    const a = Buffer.alloc((len + 3) & ~3);
    a.writeUInt16LE(len, 0);
    a.writeUInt16LE(t, 2);
    payload.copy(a, 4);
    parts.push(a);
  }
  const body = Buffer.concat(parts);
  const msg = Buffer.alloc(16 + body.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(type, 4);
  body.copy(msg, 16);
  return msg;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
}

test('RTM_SETNEIGHTBL: nlmsghdr, ndtmsg, NDTA_NAME and NDTA_THRESH1..3 at their offsets', () => {
  const msg = setNeighTableRequest(AF_INET, 'arp_cache', { thresh1: 40, thresh2: 80, thresh3: 160 });
  // 16 nlmsghdr + 4 ndtmsg + 16 (NDTA_NAME "arp_cache\0" = 4 + 10, padded) + 3 * 8
  assert.equal(msg.length, 16 + 4 + 16 + 24);
  assert.equal(msg.readUInt32LE(0), msg.length);
  assert.equal(msg.readUInt16LE(4), 67); // RTM_SETNEIGHTBL
  assert.equal(msg.readUInt16LE(6), 0x1); // NLM_F_REQUEST (the addon adds NLM_F_ACK)
  assert.equal(msg.readUInt8(16), AF_INET);
  assert.deepEqual([msg.readUInt16LE(20), msg.readUInt16LE(22)], [14, 1]);
  assert.equal(msg.subarray(24, 34).toString('latin1'), 'arp_cache\0');
  assert.deepEqual(
    [36, 44, 52].map((o) => [msg.readUInt16LE(o), msg.readUInt16LE(o + 2), msg.readUInt32LE(o + 4)]),
    [
      [8, 2, 40],
      [8, 3, 80],
      [8, 4, 160],
    ],
  );
});

test('RTM_GETNEIGHTBL is a dump request for a family', () => {
  const msg = getNeighTablesRequest(AF_INET6);
  assert.equal(msg.length, 20);
  assert.equal(msg.readUInt16LE(4), 66);
  assert.equal(msg.readUInt16LE(6), 0x301); // NLM_F_REQUEST | NLM_F_DUMP
  assert.equal(msg.readUInt8(16), AF_INET6);
});

test('a RTM_GETNEIGHTBL dump parses into tables; per-device parameter messages are skipped', () => {
  const config = Buffer.alloc(32);
  config.writeUInt16LE(4, 0); // ndtc_key_len
  config.writeUInt32LE(97, 4); // ndtc_entries
  const stats = Buffer.alloc(88);
  stats.writeBigUInt64LE(3n, 80); // ndts_table_fulls
  const table = reply(RTM_NEWNEIGHTBL, [AF_INET, 0, 0, 0], [
    [1, Buffer.from('arp_cache\0')],
    [2, u32(32)],
    [3, u32(64)],
    [4, u32(128)],
    [5, config],
    [7, stats],
  ]);
  const perDevice = reply(RTM_NEWNEIGHTBL, [AF_INET, 0, 0, 0], [
    [1, Buffer.from('arp_cache\0')],
    [6 | 0x8000, u32(0)],
  ]);
  assert.deepEqual(parseNeighTables([table, perDevice]), [
    { family: AF_INET, name: 'arp_cache', thresh1: 32, thresh2: 64, thresh3: 128, entries: 97, tableFulls: 3n },
  ]);
});

test('RTM_NEWADDR and RTM_NEWNEIGH replies: prefixes per device, entries per device', () => {
  const addr = reply(RTM_NEWADDR, [AF_INET, 24, 0, 0, 7, 0, 0, 0], [
    [1, Buffer.from([198, 18, 0, 9])],
    [2, Buffer.from([198, 18, 0, 1])],
  ]);
  assert.deepEqual(parseAddresses([addr]), [{ family: AF_INET, prefixLength: 24, ifindex: 7, address: Buffer.from([198, 18, 0, 1]) }]);
  const neigh = (ifindex: number) => {
    const ndmsg = Buffer.alloc(12);
    ndmsg.writeUInt8(AF_INET, 0);
    ndmsg.writeInt32LE(ifindex, 4);
    return reply(RTM_NEWNEIGH, [...ndmsg], []);
  };
  assert.deepEqual([...countNeighboursByDevice([neigh(7), neigh(7), neigh(3)])], [
    [7, 2],
    [3, 1],
  ]);
});

test('plausible neighbours: hosts in the prefixes less own addresses', () => {
  const v4 = (bytes: number[], prefixLength: number) => ({ family: AF_INET, prefixLength, ifindex: 1, address: Buffer.from(bytes) });
  assert.equal(plausibleNeighbours([v4([198, 18, 0, 1], 24)]), 253);
  assert.equal(plausibleNeighbours([v4([198, 18, 2, 1], 27)]), 29);
  // Two addresses in one prefix count the prefix once.
  assert.equal(plausibleNeighbours([v4([198, 18, 0, 1], 24), v4([198, 18, 0, 2], 24)]), 252);
  assert.equal(plausibleNeighbours([v4([198, 18, 0, 0], 31)]), 1);
  assert.equal(plausibleNeighbours([]), 0);
  const v6 = { family: AF_INET6, prefixLength: 64, ifindex: 1, address: Buffer.from('fd000010000000000000000000000001', 'hex') };
  assert.equal(plausibleNeighbours([v6]), Number.MAX_SAFE_INTEGER);
  assert.equal(plausibleNeighbours([{ ...v6, prefixLength: 120 }]), 254);
  assert.equal(formatAddress(v6), 'fd00:10::1/64');
  assert.equal(formatAddress(v4([198, 18, 2, 1], 27)), '198.18.2.1/27');
});

test('threshold steps: grow by a quarter within the cap; shrink while a quarter used, not below the floor', () => {
  const grow = (n: number) => n + (n >> 2);
  const shrink = (n: number) => n - (n >> 2);
  assert.deepEqual(grownThresholds({ thresh1: 32, thresh2: 64, thresh3: 128 }, grow, 1e9), { thresh1: 40, thresh2: 80, thresh3: 160 });
  assert.deepEqual(grownThresholds({ thresh1: 8, thresh2: 16, thresh3: 32 }, grow, 33), { thresh1: 10, thresh2: 20, thresh3: 33 });
  assert.deepEqual(grownThresholds({ thresh1: 30, thresh2: 31, thresh3: 32 }, grow, 33), { thresh1: 33, thresh2: 33, thresh3: 33 });
  const floor = { thresh1: 32, thresh2: 64, thresh3: 128 };
  assert.deepEqual(shrunkThresholds({ thresh1: 50, thresh2: 100, thresh3: 200 }, floor, 0, shrink), floor);
  assert.deepEqual(shrunkThresholds({ thresh1: 50, thresh2: 100, thresh3: 200 }, floor, 50, shrink), { thresh1: 38, thresh2: 75, thresh3: 150 });
  assert.deepEqual(shrunkThresholds(floor, floor, 0, shrink), floor);
});
