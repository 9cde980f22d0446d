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

/**
 * Crafted IPv4 fragments through a raw socket (IP_HDRINCL; the kernel fills
 * in the total length and the header checksum): every 10 ms, `legit`/100
 * complete datagrams (two fragments, reassembled at once) and a share of
 * "junk", first fragments of datagrams whose rest never comes, each with its
 * own id (protocol 253, so junk and legit never share a reassembly queue).
 * The junk rate climbs linearly from `junkFrom` to `junkTo` per second over
 * `seconds`: a fragment flood that grows while legitimate traffic stays the
 * same, so the share of reassemblies that fail rises over time whatever the
 * threshold, and every junk fragment holds reassembly memory until
 * ipfrag_time expires it (counted as a failure then).
 */
const FRAGMENT_FLOOD = `
import socket, struct, sys, time
src, dst, legit, junk_from, junk_to, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
def fragment(ident, proto, offset8, more, payload):
    frag = (0x2000 if more else 0) | offset8
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, ident, frag, 64, proto, 0, saddr, daddr) + payload
# A UDP datagram of 8 + 1472 + 520 bytes: 1480 bytes in the first fragment, 520 in the second.
udp = struct.pack('!HHHH', 40000, 9, 2000, 0) + b'f' * 1992
sent = {'legit': 0, 'junk': 0}
legit_id = junk_id = 0
legit_due = junk_due = 0.0
start = time.monotonic()
tick = start
while tick - start < seconds:
    elapsed = tick - start
    legit_due += legit / 100
    junk_due += (junk_from + (junk_to - junk_from) * elapsed / seconds) / 100
    while legit_due >= 1:
        legit_due -= 1
        legit_id = legit_id % 65535 + 1
        try:
            s.sendto(fragment(legit_id, 17, 0, True, udp[:1480]), (dst, 0))
            s.sendto(fragment(legit_id, 17, 185, False, udp[1480:]), (dst, 0))
            sent['legit'] += 1
        except OSError:
            pass
    while junk_due >= 1:
        junk_due -= 1
        junk_id = junk_id % 65535 + 1
        try:
            s.sendto(fragment(junk_id, 253, 0, True, b'j' * 64), (dst, 0))
            sent['junk'] += 1
        except OSError:
            pass
    tick += 0.01
    delay = tick - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(sent['legit'], sent['junk'], flush=True)
`;

export interface FragmentFloodOptions {
  /** Complete two-fragment datagrams per second. */
  legitPerSecond: number;
  /** Junk first fragments per second at the start and at the end. */
  junkFrom: number;
  junkTo: number;
  seconds: number;
}

/** Runs the fragment flood from `ns` (source `src`) to `dst`; resolves with what was sent. */
export function fragmentFlood(ns: string, src: string, dst: string, o: FragmentFloodOptions): Promise<{ legit: number; junk: number }> {
  const args = [src, dst, o.legitPerSecond, o.junkFrom, o.junkTo, o.seconds].map(String);
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', FRAGMENT_FLOOD, ...args], { stdio: ['ignore', 'pipe', 'inherit'], timeout: (o.seconds + 30) * 1000 });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /^(\d+) (\d+)/.exec(out);
      if (!m) reject(new Error(`fragment flood in ${ns} exited (${code}) without its counts: ${out.slice(-300)}`));
      else resolve({ legit: Number(m[1]), junk: Number(m[2]) });
    });
  });
}
