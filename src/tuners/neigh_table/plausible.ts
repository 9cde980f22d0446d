/**
 * How many neighbours a device can plausibly have: the hosts in its on-link
 * prefixes, less its own addresses. A /24 has at most 253 other hosts; an
 * IPv6 /64 so many that it bounds nothing. Pure arithmetic, unit tested.
 */
import type { InterfaceAddress } from './rtnetlink';

function hostsInPrefix(bits: number, prefixLength: number): number {
  const hostBits = bits - prefixLength;
  if (hostBits <= 0) return 1; // a /32 or /128: the point-to-point peer at most
  if (hostBits >= 53) return Number.MAX_SAFE_INTEGER;
  const all = 2 ** hostBits;
  if (bits === 32) return hostBits === 1 ? 2 : all - 2; // RFC 3021 /31s have no network or broadcast address
  return all - 1; // IPv6: the subnet-router anycast address is no neighbour
}

function prefixKey(a: InterfaceAddress): string {
  const masked = Buffer.from(a.address);
  for (let bit = a.prefixLength; bit < masked.length * 8; bit++) {
    const byte = bit >> 3;
    masked[byte] = (masked[byte] ?? 0) & ~(0x80 >> (bit & 7));
  }
  return `${masked.toString('hex')}/${a.prefixLength}`;
}

/** Plausible neighbours on one device for one family, from its addresses. */
export function plausibleNeighbours(addresses: readonly InterfaceAddress[]): number {
  const prefixes = new Map<string, number>();
  for (const a of addresses) {
    const bits = a.address.length * 8;
    prefixes.set(prefixKey(a), hostsInPrefix(bits, a.prefixLength));
  }
  let total = 0;
  for (const hosts of prefixes.values()) total = Math.min(Number.MAX_SAFE_INTEGER, total + hosts);
  if (total === Number.MAX_SAFE_INTEGER) return total;
  return Math.max(0, total - addresses.length);
}

/** "198.18.0.1/24", "fd00:1::1/120". */
export function formatAddress(a: InterfaceAddress): string {
  if (a.address.length === 4) return `${[...a.address].join('.')}/${a.prefixLength}`;
  const groups: string[] = [];
  for (let i = 0; i < a.address.length; i += 2) groups.push(a.address.readUInt16BE(i).toString(16));
  // Shorten the longest run of zero groups, as inet_ntop does.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text = best < 0 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  return `${text}/${a.prefixLength}`;
}
