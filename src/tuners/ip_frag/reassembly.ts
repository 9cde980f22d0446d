/**
 * ip_frag's decisions, as pure functions (index.ts reads and writes).
 *
 * The kernel refuses every fragment of a namespace, of new and of
 * half-assembled datagrams alike, while its reassembly queues hold more than
 * *frag_high_thresh bytes; the half-assembled ones then wait out
 * ipfrag_time (30 s) holding that memory. So a threshold too low for the
 * fragmented traffic loses nearly everything, and raising it helps at once.
 * Where fragments are junk (a flood of fragments that never complete) more
 * memory only holds more junk: failures rise with the threshold, which the
 * correlation between the two shows, and then the threshold goes back down.
 */
import type { LearningRate } from '../../core/tuner';

export const IPV4_HIGH_THRESH = 'net.ipv4.ipfrag_high_thresh';
export const IPV6_HIGH_THRESH = 'net.ipv6.ip6frag_high_thresh';

/** No namespace's reassembly memory beyond 256 MiB (the kernel default is 4 MiB). */
export const HIGH_THRESH_MAX = 256 * 1024 * 1024;

export interface ReasmCounters {
  reqds: number;
  fails: number;
}

/** ReasmReqds and ReasmFails from /proc/net/snmp ("Ip:" header and value lines). */
export function parseIpReasm(snmp: string): ReasmCounters {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Ip:'));
  const [header, values] = lines;
  if (!header || !values) throw new Error('no "Ip:" lines in /proc/net/snmp');
  const names = header.split(/\s+/);
  const numbers = values.split(/\s+/);
  const field = (name: string): number => {
    const i = names.indexOf(name);
    if (i < 0) throw new Error(`no ${name} in /proc/net/snmp`);
    return Number(numbers[i]);
  };
  return { reqds: field('ReasmReqds'), fails: field('ReasmFails') };
}

/** Ip6ReasmReqds and Ip6ReasmFails from /proc/net/snmp6 ("Name value" lines). */
export function parseIp6Reasm(snmp6: string): ReasmCounters {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(snmp6);
    if (!m) throw new Error(`no ${name} in /proc/net/snmp6`);
    return Number(m[1]);
  };
  return { reqds: field('Ip6ReasmReqds'), fails: field('Ip6ReasmFails') };
}

/** Failed reassemblies per 100 fragments needing reassembly between two readings; undefined without new fragments. */
export function failPercent(before: ReasmCounters, after: ReasmCounters): number | undefined {
  const reqds = after.reqds - before.reqds;
  if (reqds <= 0) return undefined;
  return (100 * Math.max(0, after.fails - before.fails)) / reqds;
}

export type ThresholdDecision = { to: number; direction: 'increase' | 'decrease' } | { skip: string };

/**
 * One step up, or one step down when failures rise with the threshold
 * (`correlated`), never below `floor` (what it was before bpftune raised it) or
 * above the cap.
 */
export function thresholdDecision(highThresh: number, floor: number, correlated: boolean, learning: LearningRate): ThresholdDecision {
  if (correlated) {
    const to = Math.max(floor, learning.shrink(highThresh));
    return to < highThresh ? { to, direction: 'decrease' } : { skip: `threshold ${highThresh} is back where it started (${floor})` };
  }
  const to = Math.min(HIGH_THRESH_MAX, Math.max(highThresh + 1, learning.grow(highThresh)));
  return to > highThresh ? { to, direction: 'increase' } : { skip: `threshold ${highThresh} is at its cap ${HIGH_THRESH_MAX}` };
}
