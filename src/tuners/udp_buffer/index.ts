/**
 * udp_buffer tuner: UDP receive buffers and UDP memory.
 * - Datagrams dropped at a full receive buffer (BPF: udp:udp_fail_queue_rcv_skb,
 *   rc -ENOMEM; before 6.4 IPv6 sockets' drops from fexit on
 *   __udp_enqueue_schedule_skb, which that kernel's IPv6 path does not trace): grow net.core.rmem_max when the socket asked SO_RCVBUF for
 *   at least that much, net.core.rmem_default when it kept the default
 *   (policy.ts), within what memory allows (bufferCap).
 * - UDP memory near udp_mem[1] (pressure; /proc/net/sockstat on a timer):
 *   raise udp_mem within a share of free buffer pages. Near udp_mem[2]
 *   (exhaustion; BPF: rc -ENOBUFS, memory accounting refused a datagram; from
 *   6.18 skb:kfree_skb with reason PROTO_MEM, as its batches refuse silently;
 *   also a refusal at udp_mem[0], where UDP, having no pressure mode, starts refusing):
 *   raise udp_mem while there is room, else shrink rmem_max/rmem_default.
 *   No buffer grows while UDP is near pressure.
 * All three sysctls are global: the kernel keeps one value for the system
 * (6.18 shows rmem_max/rmem_default read-only in other namespaces, 6.1 not
 * at all), so a drop in any namespace changes the global value, and the log
 * names the namespace the drop happened in.
 */
import { errorText } from '../../core/log';
import { freeBufferPages, grownProtoMem, pagesAllocated } from '../../core/socket-memory';
import type { ChangeRequest, KernelFacts, Namespace, TickResult, TunableDeclaration, TunerContext, TunerDefinition, TunerEvent } from '../../core/tuner';
import { bufferCap, rcvbufDecision, RMEM_DEFAULT, RMEM_MAX, shrunkBuffer, UDP_MEM, udpMemoryState, type UdpMemoryState } from './policy';
import { UdpBufferDropKind, UdpBufferEventData, UdpBufferScenario } from './udp_buffer.contract';

const UDP_MEM_TUNABLE = { name: UDP_MEM, namespaced: false, values: 3, labels: ['min', 'pressure', 'max'] } satisfies TunableDeclaration;
const RMEM_MAX_TUNABLE = { name: RMEM_MAX, namespaced: false, values: 1 } satisfies TunableDeclaration;
const RMEM_DEFAULT_TUNABLE = { name: RMEM_DEFAULT, namespaced: false, values: 1 } satisfies TunableDeclaration;

const MEMORY_INTERVAL_MS = 5_000;
/** Linux 6.4 added the udp_fail_queue_rcv_skb call to __udpv6_queue_rcv_skb(); before it, IPv6 drops pass by the tracepoint. */
const IPV6_TRACEPOINT_SINCE: readonly [number, number] = [6, 4];
/** While UDP holds less than half of udp_mem[0] (drops still arrive at once as events). */
const QUIET_MEMORY_INTERVAL_MS = 30_000;
const AF_INET6 = 10;

export interface UdpDropEvent {
  kind: number;
  drops: number;
  family: 'IPv4' | 'IPv6';
  rcvbuf: number;
  locked: boolean;
  pagesAllocated: number;
  windowMs: number;
}

export function decodeUdpDrop(event: TunerEvent): UdpDropEvent {
  const d = UdpBufferEventData.decode(event.data);
  return {
    kind: d.dropKind,
    drops: event.oldValues[0] ?? 0,
    family: d.family === AF_INET6 ? 'IPv6' : 'IPv4',
    rcvbuf: d.rcvbuf,
    locked: d.rcvbufLocked !== 0,
    pagesAllocated: Number(d.memoryAllocated),
    windowMs: Number(d.windowNs) / 1e6,
  };
}

/**
 * The call site is not visible in BTF or kallsyms (the tracepoint exists on
 * 6.1, only its IPv6 caller is missing), so the release decides. A kernel
 * below 6.4 that has the call after all (a backport) costs a per-datagram
 * fexit but counts nothing twice: with the flag set, the tracepoint program
 * leaves AF_INET6 sockets to the fexit one.
 */
export function ipv6FexitNeeded(kernel: KernelFacts): string | undefined {
  const [major, minor] = kernel.version;
  const [sinceMajor, sinceMinor] = IPV6_TRACEPOINT_SINCE;
  if (major === 0 || major > sinceMajor || (major === sinceMajor && minor >= sinceMinor)) return undefined;
  return `kernel ${kernel.release} is older than ${sinceMajor}.${sinceMinor}: its IPv6 UDP receive path does not call udp:udp_fail_queue_rcv_skb, so IPv6 sockets' drops are counted on return from __udp_enqueue_schedule_skb`;
}

/**
 * 6.18's per-NUMA receive batches (net/ipv4/udp.c, "udp: remove busylock and
 * add per NUMA queues") free what UDP memory refuses with reason PROTO_MEM
 * only: no tracepoint, no MemErrors. skb:kfree_skb's rx_sk (6.11 and later)
 * names the socket; the flag makes the other programs leave -ENOBUFS to it.
 */
export function memoryKfreeNeeded(kernel: KernelFacts): string | undefined {
  const [major, minor] = kernel.version;
  if (major < 6 || (major === 6 && minor < 18)) return undefined;
  return (
    `kernel ${kernel.release} is 6.18 or later: datagrams UDP memory refuses are dropped in receive batches without ` +
    'udp:udp_fail_queue_rcv_skb or MemErrors, so they are counted at skb:kfree_skb (reason PROTO_MEM, with the socket)'
  );
}

function where(ns: Namespace | undefined, cookie: bigint): string {
  if (!ns) return `netns cookie ${cookie}`;
  if (ns.global) return 'the global netns';
  return ns.name ? `netns ${ns.name}` : `netns cookie ${cookie}`;
}

class UdpBufferTuner {
  private queue: Promise<void> = Promise.resolve();
  private freePages?: number;
  private memoryState: UdpMemoryState = 'normal';
  private pages = 0;
  /** Values at which a change was declined (taken over, or the write failed): not retried until they change. */
  private readonly declined = new Map<string, string>();
  /** Reasons already logged at debug for not growing, so a flood logs each once. */
  private readonly skipped = new Set<string>();

  constructor(private readonly ctx: TunerContext) {}

  init(): void {
    this.ctx.log.info(
      `${RMEM_MAX}, ${RMEM_DEFAULT} and ${UDP_MEM} are global (one value for the system; other namespaces see them read-only or not at all): ` +
        'UDP receive-buffer drops in any namespace change the global values',
    );
  }

  /** One change at a time: drop events and the memory timer share the sysctls. */
  serialised<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async change(request: ChangeRequest, current: string): Promise<boolean> {
    const key = request.tunable;
    if (this.declined.get(key) === current) return false;
    const changed = await this.ctx.set(request);
    if (changed) this.declined.delete(key);
    else this.declined.set(key, current);
    return changed;
  }

  private skip(reason: string): void {
    if (this.skipped.has(reason)) return;
    if (this.skipped.size > 256) this.skipped.clear();
    this.skipped.add(reason);
    this.ctx.log.debug(`not changing receive buffer limits: ${reason}`);
  }

  private udpMem(): Promise<number[]> {
    return this.ctx.tunable(UDP_MEM_TUNABLE).get();
  }

  async event(event: TunerEvent): Promise<void> {
    const drop = decodeUdpDrop(event);
    const ns = await this.ctx.namespaces.seen(event.netnsCookie, event.netnsInum).catch(() => undefined);
    if (drop.kind === UdpBufferDropKind.RCVBUF) await this.rcvbufFull(drop, where(ns, event.netnsCookie));
    else if (drop.kind === UdpBufferDropKind.MEMORY) await this.memoryRefused(drop, where(ns, event.netnsCookie));
  }

  private async rcvbufFull(drop: UdpDropEvent, place: string): Promise<void> {
    const udpMem = await this.udpMem();
    this.pages = pagesAllocated('UDP');
    if (udpMemoryState(this.pages, udpMem, this.ctx.learning) !== 'normal') {
      this.skip(`UDP memory use of ${this.pages} pages is near udp_mem pressure ${udpMem[1]}`);
      return;
    }
    const [rmemMax = 0] = await this.ctx.tunable(RMEM_MAX_TUNABLE).get();
    const [rmemDefault = 0] = await this.ctx.tunable(RMEM_DEFAULT_TUNABLE).get();
    const decision = rcvbufDecision(drop, { rmemMax, rmemDefault }, bufferCap(udpMem), this.ctx.learning);
    if ('skip' in decision) {
      this.skip(decision.skip);
      return;
    }
    const within = drop.windowMs > 0 ? ` within ${Math.round(drop.windowMs)} ms` : '';
    await this.change(
      {
        tunable: decision.grow,
        scenario: UdpBufferScenario.INCREASE,
        values: [decision.to],
        // The reference's phrase first: operators grep for it.
        reason:
          `need to increase receive buffer size to maximize throughput (${drop.drops} datagrams dropped at a full ${drop.family} ` +
          `UDP receive buffer in ${place}${within}; ${decision.because})`,
      },
      String(decision.from),
    );
  }

  /** rc -ENOBUFS: UDP memory accounting refused a datagram; near udp_mem[2] this is exhaustion. */
  private async memoryRefused(drop: UdpDropEvent, place: string): Promise<void> {
    const udpMem = await this.udpMem();
    this.pages = Math.max(pagesAllocated('UDP'), drop.pagesAllocated);
    const state = udpMemoryState(this.pages, udpMem, this.ctx.learning);
    const [min = 0, , max = 0] = udpMem;
    // UDP has no memory-pressure mode: once its pages pass udp_mem[0], __sk_mem_raise_allocated()
    // refuses receive memory to any socket already holding udp_rmem_min (seen here on 6.18 at 258
    // pages with udp_mem 256 2000 4000). So a refusal at or near min is udp_mem's doing too; well
    // below it, something else refused (a memory cgroup), which udp_mem cannot help.
    if (state === 'normal' && !this.ctx.learning.nearlyFull(this.pages, min)) {
      this.skip(`${drop.drops} datagrams refused UDP memory in ${place} at ${this.pages} pages, below udp_mem (${udpMem.join(' ')}): not udp_mem's limit`);
      return;
    }
    const limit = state === 'normal' ? `above udp_mem min ${min}, past which UDP refuses receive memory` : `near udp_mem max ${max}`;
    const why = `${drop.drops} datagrams refused UDP memory in ${place}, UDP memory use of ${this.pages} pages ${limit}`;
    if (await this.raiseUdpMem(udpMem, UdpBufferScenario.MEM_EXHAUSTION, `near memory exhaustion (${why})`)) return;
    // No room left to give UDP: make each socket cost less instead.
    for (const declaration of [RMEM_MAX_TUNABLE, RMEM_DEFAULT_TUNABLE]) {
      const tunable = declaration.name;
      const [value = 0] = await this.ctx.tunable(declaration).get();
      const to = shrunkBuffer(value, this.ctx.learning);
      if (to === undefined) continue;
      await this.change({ tunable, scenario: UdpBufferScenario.DECREASE, values: [to], reason: `near memory exhaustion (${why}; udp_mem is at its cap)` }, String(value));
    }
  }

  /** udp_mem one step up within free buffer pages; false when it is at its cap. */
  private async raiseUdpMem(udpMem: number[], scenario: number, reason: string): Promise<boolean> {
    this.freePages ??= await freeBufferPages();
    const grown = grownProtoMem(udpMem, this.freePages, (v) => this.ctx.learning.grow(v));
    if (grown.every((v, i) => v === udpMem[i])) {
      this.skip(`udp_mem (${udpMem.join(' ')}) is at its cap for ${this.freePages} free buffer pages`);
      return false;
    }
    return this.change({ tunable: UDP_MEM, scenario, values: grown, reason }, udpMem.join(' '));
  }

  /**
   * The timer: pressure has no event of its own (nothing is refused yet), so
   * the counter is polled; 'quiet' (poll slowly) while UDP holds less than
   * half of udp_mem[0].
   */
  async checkMemory(): Promise<TickResult> {
    let udpMem: number[];
    try {
      this.pages = pagesAllocated('UDP');
      udpMem = await this.udpMem();
    } catch (err) {
      this.ctx.log.debug(`cannot read UDP memory use: ${errorText(err)}`);
      return;
    }
    const state = udpMemoryState(this.pages, udpMem, this.ctx.learning);
    if (state !== this.memoryState) this.ctx.log.debug(`UDP memory ${state} (${this.pages} pages, udp_mem ${udpMem.join(' ')})`);
    this.memoryState = state;
    if (state === 'normal') return this.pages < (udpMem[0] ?? 0) / 2 ? 'quiet' : undefined;
    const label = state === 'pressure' ? 'near memory pressure' : 'near memory exhaustion';
    const threshold = state === 'pressure' ? `pressure threshold ${udpMem[1]}` : `max ${udpMem[2]}`;
    await this.raiseUdpMem(
      udpMem,
      state === 'pressure' ? UdpBufferScenario.MEM_PRESSURE : UdpBufferScenario.MEM_EXHAUSTION,
      `${label} (UDP memory use of ${this.pages} pages near udp_mem ${threshold})`,
    );
  }
}

const udpBufferTuner: TunerDefinition = {
  name: 'udp_buffer',
  description: 'Grows net.core.rmem_max/rmem_default on UDP receive-buffer drops and net.ipv4.udp_mem near UDP memory pressure',
  tunables: [UDP_MEM_TUNABLE, RMEM_MAX_TUNABLE, RMEM_DEFAULT_TUNABLE],
  conditionalPrograms: [
    { program: 'udp_buffer_enqueue_exit', neededBecause: ipv6FexitNeeded, flag: 'udp_buffer_ipv6_by_fexit' },
    { program: 'udp_buffer_proto_mem_drop', neededBecause: memoryKfreeNeeded, flag: 'udp_buffer_memory_by_kfree_skb' },
  ],
  scenarios: [
    {
      id: UdpBufferScenario.INCREASE,
      name: 'need to increase UDP buffer size(s)',
      description: 'Datagrams were dropped at full UDP receive buffers; grow the receive buffer limits so new sockets can queue bursts instead of losing them',
    },
    {
      id: UdpBufferScenario.DECREASE,
      name: 'need to decrease UDP buffer size(s)',
      description: 'UDP memory is nearly exhausted and udp_mem cannot grow further; shrink the receive buffer limits so each socket costs less',
    },
    {
      id: UdpBufferScenario.MEM_PRESSURE,
      name: 'approaching UDP memory pressure',
      description: 'UDP memory use is close to the udp_mem pressure threshold, an unstable state; raise udp_mem within the memory the system has',
    },
    {
      id: UdpBufferScenario.MEM_EXHAUSTION,
      name: 'approaching UDP memory exhaustion',
      description: 'UDP memory use is close to udp_mem max, where datagrams are refused; raise udp_mem while memory allows, else shrink receive buffers',
    },
  ],
  create(ctx) {
    const tuner = new UdpBufferTuner(ctx);
    tuner.init();
    const memoryTimer = ctx.every(MEMORY_INTERVAL_MS, () => tuner.serialised(() => tuner.checkMemory()), { quietIntervalMs: QUIET_MEMORY_INTERVAL_MS });
    return {
      event: (event) => {
        // A drop: UDP is busy, so its memory is worth watching closely again.
        memoryTimer.wake();
        return tuner.serialised(() => tuner.event(event));
      },
    };
  },
};

export default udpBufferTuner;
