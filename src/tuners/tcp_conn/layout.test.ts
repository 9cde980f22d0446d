/** The payload codec without BPF: addresses as the kernel stores them, and the map key round trip. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AF_INET, AF_INET6, decodeRemote, encodeChoice, encodeRemote, formatAddress, REMOTE_SIZE } from './layout';

function v6(text: string): Buffer {
  // Expands "a:b::c" into 16 bytes, for test inputs only.
  const [head = '', tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

test('addresses print as inet_ntop prints them', () => {
  assert.equal(formatAddress(AF_INET, Buffer.from([198, 18, 1, 2, ...Array<number>(12).fill(0)])), '198.18.1.2');
  for (const text of ['fd00:1::2', '::1', 'fd00::', 'fd00:0:b0::2', 'fd00:1:2:3:4:5:6:7', 'fd00:0:0:1::1']) {
    assert.equal(formatAddress(AF_INET6, v6(text)), text);
  }
  // The longest run of zero groups is the one compressed; a single zero group is not.
  assert.equal(formatAddress(AF_INET6, v6('fd00:0:1:0:0:0:0:2')), 'fd00:0:1::2');
});

test('a remote host key round-trips, and a choice is the algorithm id', () => {
  const remote = { netnsCookie: 4097n, family: AF_INET6, addr: v6('fd00:1::2') };
  const key = encodeRemote(remote);
  assert.equal(key.length, REMOTE_SIZE);
  assert.deepEqual(decodeRemote(key), remote);
  assert.deepEqual([...encodeChoice('bbr')], [3, 0, 0, 0]);
});
