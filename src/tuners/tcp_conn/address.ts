/**
 * Addresses as tcp_conn's BPF side stores them: four __u32 words holding
 * the address bytes in network byte order (an IPv4 address in the first).
 */
export const AF_INET = 2;
export const AF_INET6 = 10;

/** The 16 address bytes behind the words the contract decodes. */
export function addressBytes(words: readonly number[]): Buffer {
  const bytes = Buffer.alloc(16);
  words.slice(0, 4).forEach((w, i) => bytes.writeUInt32LE(w >>> 0, 4 * i));
  return bytes;
}

/** The words for address bytes (the inverse of addressBytes). */
export function addressWords(bytes: Buffer): number[] {
  return [0, 4, 8, 12].map((i) => bytes.readUInt32LE(i));
}

/** Text form of an address, as inet_ntop prints it. */
export function formatAddress(family: number, words: readonly number[]): string {
  const addr = addressBytes(words);
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
