/**
 * The counters net_buffer reads on its slow timer, and its NAPI budget
 * policy (pure logic, unit tested):
 * - /proc/net/softnet_stat: one line per CPU of hex columns; column 0 is
 *   packets processed, 1 packets dropped because the backlog was full, 2
 *   time_squeeze (net_rx_action() stopped with work left because it ran out
 *   of netdev_budget packets or netdev_budget_usecs).
 * - scheduler wait time: /proc/pressure/cpu "some total" (µs some task
 *   waited for a CPU), or the run_delay column of /proc/schedstat (ns) on
 *   kernels without PSI.
 */
import { readFileSync } from 'node:fs';
import { Correlation, CORRELATION_THRESHOLD } from '../../core/correlation';

export interface SoftnetTotals {
  processed: number;
  dropped: number;
  timeSqueeze: number;
}

export function parseSoftnetStat(text: string): SoftnetTotals {
  const totals = { processed: 0, dropped: 0, timeSqueeze: 0 };
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 3 || !/^[0-9a-f]+$/i.test(cols[0] ?? '')) continue;
    totals.processed += parseInt(cols[0], 16);
    totals.dropped += parseInt(cols[1], 16);
    totals.timeSqueeze += parseInt(cols[2], 16);
  }
  return totals;
}

/** PSI "some total=" in µs, as ns. */
export function parsePressureWaitNs(text: string): number | undefined {
  const m = /^some .*\btotal=(\d+)/m.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}

/** Sum of run_delay (8th field after "cpuN") over CPUs, in ns. */
export function parseSchedstatWaitNs(text: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (!/^cpu\d+$/.test(cols[0] ?? '') || cols.length < 9) continue;
    total = (total ?? 0) + Number(cols[8]);
  }
  return total;
}

/**
 * procfs text the kernel makes from counters, read synchronously: an
 * asynchronous read is several thread-pool round trips (each a wake-up of the
 * daemon) for a few hundred bytes. Failures still arrive as rejections.
 */
export function readProcText(path: string): Promise<string> {
  try {
    return Promise.resolve(readFileSync(path, 'utf8'));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

export interface WaitSource {
  name: string;
  read(): Promise<number | undefined>;
}

export const WAIT_SOURCES: WaitSource[] = [
  { name: '/proc/pressure/cpu', read: async () => parsePressureWaitNs(await readProcText('/proc/pressure/cpu')) },
  { name: '/proc/schedstat', read: async () => parseSchedstatWaitNs(await readProcText('/proc/schedstat')) },
];

export type BudgetDecision = 'grow' | 'shrink' | 'hold';

export interface BudgetSample {
  /** time_squeeze increments since the previous sample. */
  squeezes: number;
  /** Scheduler wait (ns) since the previous sample, or undefined when unknown. */
  waitNs: number | undefined;
  seconds: number;
  budget: number;
}

/**
 * Grow netdev_budget while polls keep getting squeezed; shrink it when the
 * budget and scheduler wait time rise together (more time in softirq
 * delaying tasks), and grow no more until that correlation has gone.
 */
export class BudgetPolicy {
  private readonly correlation = new Correlation(16);

  constructor(private readonly squeezesPerSecond = 1) {}

  get correlationValue(): number {
    return this.correlation.value();
  }

  decide(sample: BudgetSample): BudgetDecision {
    if (sample.waitNs !== undefined && sample.seconds > 0) this.correlation.add(sample.budget, sample.waitNs / sample.seconds);
    if (this.correlation.exceeds(CORRELATION_THRESHOLD)) {
      // The evidence is spent on one step back; a new trend has to build up before the next.
      this.correlation.reset();
      return 'shrink';
    }
    if (sample.seconds > 0 && sample.squeezes / sample.seconds > this.squeezesPerSecond) return 'grow';
    return 'hold';
  }
}

/** A cpumask as the kernel prints it ("3", "00000000,00000003") with one more CPU set, in the same shape. */
export function withCpu(mask: string, cpu: number): string {
  const groups = mask.trim().split(',');
  const value = BigInt(`0x${groups.join('') || '0'}`) | (1n << BigInt(cpu));
  if (groups.length === 1) return value.toString(16);
  const needed = Math.max(groups.length, Math.ceil((cpu + 1) / 32));
  const out: string[] = [];
  for (let i = needed - 1; i >= 0; i--) out.push(((value >> BigInt(32 * i)) & 0xffffffffn).toString(16).padStart(8, '0'));
  return out.join(',');
}

export function hasCpu(mask: string, cpu: number): boolean {
  const hex = mask.trim().split(',').join('') || '0';
  return ((BigInt(`0x${hex}`) >> BigInt(cpu)) & 1n) === 1n;
}
