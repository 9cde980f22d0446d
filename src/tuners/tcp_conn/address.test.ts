/** Addresses as the BPF side stores them, printed as inet_ntop prints them. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AF_INET, AF_INET6, addressBytes, addressWords, formatAddress } from './address';

function v6(text: string): number[] {
  // Expands "a:b::c" into 16 bytes, for test inputs only.
  const [head = '', tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return addressWords(Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff])));
}

test('addresses print as inet_ntop prints them', () => {
  assert.equal(formatAddress(AF_INET, addressWords(Buffer.from([198, 18, 1, 2, ...Array<number>(12).fill(0)]))), '198.18.1.2');
  for (const text of ['fd00:1::2', '::1', 'fd00::', 'fd00:0:b0::2', 'fd00:1:2:3:4:5:6:7', 'fd00:0:0:1::1']) {
    assert.equal(formatAddress(AF_INET6, v6(text)), text);
  }
  // The longest run of zero groups is the one compressed; a single zero group is not.
  assert.equal(formatAddress(AF_INET6, v6('fd00:0:1:0:0:0:0:2')), 'fd00:0:1::2');
});

test('address words and bytes convert both ways', () => {
  const bytes = Buffer.from([253, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  assert.deepEqual(addressBytes(addressWords(bytes)), bytes);
});
