/**
 * tcp_buffer tuner: raises net.ipv4.tcp_rmem[2] / tcp_wmem[2] in a socket's
 * namespace when its buffer has grown to the limit, stops raising (and steps
 * back) when bigger buffers only bring longer round trips, raises tcp_mem as
 * TCP memory nears pressure and retreats when it nears exhaustion, and sizes
 * the SYN backlog against floods. See README.md.
 */
import type { TunerContext, TunerDefinition, TunerEvent } from '../../core/tuner';
import { errorText } from '../../core/log';
import { EventKind, decodeTcpBufferData } from './event-data';
import { BufferGrowth } from './buffers';
import { MemoryWatch } from './memory-watch';
import { SynFloodWatch } from './syn-flood';
import { SCENARIOS, TUNABLES } from './scenarios';

/**
 * One wake-up every 2 s serves all of this tuner's polling, and what runs in
 * it depends on how busy things are: an idle host costs a timer tick (each
 * wake-up of the daemon costs ~0.1 ms of CPU on a VM, whatever it does).
 */
const TICK_MS = 2000;
/** Far below tcp_mem[0], sockstat is read every this many ticks; exhaustion still arrives at once (sock_exceed_buf_limit). */
const CALM_MEMORY_TICKS = 5;
/**
 * The BPF side may post the same limit for the same namespace again once
 * last_posted is cleared (see tcp_buffer.bpf.c): after each tick in which
 * something was posted, and every 15 ticks regardless, so a ring buffer
 * sample that never arrived cannot pin an entry.
 */
const REPOST_SWEEP_TICKS = 15;
const LAST_POSTED_ENTRIES = 2;

interface TunerState {
  memory: MemoryWatch;
  buffers: BufferGrowth;
  syn: SynFloodWatch;
  ticks: number;
  /** A near-limit event arrived since last_posted was last cleared. */
  posted: boolean;
}

/** One state per loaded instance, dropped with it: no module-level mutable state survives a reload. */
const states = new WeakMap<TunerContext, TunerState>();

function stateOf(ctx: TunerContext): TunerState {
  let s = states.get(ctx);
  if (!s) {
    const memory = new MemoryWatch(ctx);
    s = { memory, buffers: new BufferGrowth(ctx, memory), syn: new SynFloodWatch(ctx), ticks: 0, posted: false };
    states.set(ctx, s);
  }
  return s;
}

const tcpBufferTuner: TunerDefinition = {
  name: 'tcp_buffer',
  description: 'Grows TCP buffer limits that block throughput; backs off under memory pressure or rising latency; sizes the SYN backlog',
  tunables: TUNABLES,
  scenarios: SCENARIOS,
  // tcp:tcp_sendmsg_locked is not in 6.1 or 6.12: hook the function itself there (fentry; kprobe without trampolines).
  programAlternatives: [{ hook: 'tcp_sendmsg_locked', variants: ['tcp_buffer_snd', 'tcp_buffer_snd_fentry', 'tcp_buffer_snd_kprobe'] }],
  async init(ctx) {
    const s = stateOf(ctx);
    await s.memory.enableHighOrderAllocations().catch((err) => ctx.log.warn(`enabling high-order allocations failed: ${errorText(err)}`));
    await s.memory.check().catch((err) => ctx.log.warn(`first TCP memory check failed: ${errorText(err)}`));
    const lastPosted = ctx.bpf.map('last_posted');
    const empty = Buffer.alloc(lastPosted.valueSize);
    const clearLastPosted = () => {
      for (let i = 0; i < LAST_POSTED_ENTRIES; i++) {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(i);
        lastPosted.update(key, empty);
      }
    };
    ctx.every(TICK_MS, async () => {
      const tick = ++s.ticks;
      if (s.posted || tick % REPOST_SWEEP_TICKS === 0) {
        s.posted = false;
        clearLastPosted();
      }
      if (!s.memory.calm || tick % CALM_MEMORY_TICKS === 0) {
        await s.memory.check().catch((err) => ctx.log.warn(`TCP memory check failed: ${errorText(err)}`));
      }
      // SYN counters every tick: a burst in a new namespace must find its baseline already read.
      await s.syn.check();
      s.buffers.retain(new Set([ctx.namespaces.global.cookie, ...ctx.namespaces.all().map((n) => n.cookie)]));
    });
  },
  async event(event: TunerEvent, ctx) {
    const s = stateOf(ctx);
    switch (event.scenarioId) {
      case EventKind.rmemNearMax:
        s.posted = true;
        await s.buffers.nearMax('rmem', event, decodeTcpBufferData(event.data));
        break;
      case EventKind.wmemNearMax:
        s.posted = true;
        await s.buffers.nearMax('wmem', event, decodeTcpBufferData(event.data));
        break;
      case EventKind.memExceeded:
        await s.memory.allocationRefused(event.netnsCookie, event.newValues[0] ?? 0, event.oldValues);
        break;
      default:
        ctx.log.debug(`ignoring unknown event kind ${event.scenarioId}`);
    }
  },
  fini(ctx) {
    states.delete(ctx);
  },
};

export default tcpBufferTuner;
