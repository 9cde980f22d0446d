/**
 * Fragmented traffic for ip_frag's test and benchmark: large pings (20000
 * bytes: 14 fragments at the veth's MTU of 1500) from one namespace to
 * another whose reassembly threshold is set low, as in the reference's
 * scenario (ipfrag_high_thresh 8192). Reassembly happens in the receiving
 * namespace; a reply is a delivered, reassembled datagram.
 */
import { spawn } from 'node:child_process';
import { setSysctlIn } from '../../../test/support/netns';

export const PING_BYTES = 20000;

export type IpFamily = 4 | 6;

export function thresholdSysctls(family: IpFamily): { high: string; low: string } {
  return family === 4
    ? { high: 'net.ipv4.ipfrag_high_thresh', low: 'net.ipv4.ipfrag_low_thresh' }
    : { high: 'net.ipv6.ip6frag_high_thresh', low: 'net.ipv6.ip6frag_low_thresh' };
}

/** Sets a namespace's reassembly thresholds (low first: the kernel keeps high >= low). */
export function setThreshold(ns: string, family: IpFamily, high: number): void {
  const names = thresholdSysctls(family);
  setSysctlIn(ns, names.low, String(Math.floor(high / 2)));
  setSysctlIn(ns, names.high, String(high));
}

/** Sends `count` fragmented pings, one every `intervalS`; resolves with how many were answered. */
export function fragmentedPings(ns: string, address: string, count: number, intervalS = 0.2): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', String(intervalS), '-W', '1', '-s', String(PING_BYTES), address], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
      if (!m) reject(new Error(`ping ${address} in ${ns}: no summary in its output: ${out.slice(-300)}`));
      else resolve(Number(m[2]));
    });
  });
}
