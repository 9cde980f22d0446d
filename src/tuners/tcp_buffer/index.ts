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

const MEMORY_CHECK_INTERVAL_MS = 1000;
/** Two namespace reads per namespace per check would cost ~0.2 ms; SYN floods last longer than this anyway. */
const SYN_CHECK_INTERVAL_MS = 2000;
/** How often the BPF side may post the same limit again for the same namespace (see last_posted in tcp_buffer.bpf.c). */
const REPOST_INTERVAL_MS = 1000;
const LAST_POSTED_ENTRIES = 2;

interface TunerState {
  memory: MemoryWatch;
  buffers: BufferGrowth;
  syn: SynFloodWatch;
}

/** One state per loaded instance, dropped with it: no module-level mutable state survives a reload. */
const states = new WeakMap<TunerContext, TunerState>();

function stateOf(ctx: TunerContext): TunerState {
  let s = states.get(ctx);
  if (!s) {
    const memory = new MemoryWatch(ctx);
    s = { memory, buffers: new BufferGrowth(ctx, memory), syn: new SynFloodWatch(ctx) };
    states.set(ctx, s);
  }
  return s;
}

const tcpBufferTuner: TunerDefinition = {
  name: 'tcp_buffer',
  description: 'Grows TCP buffer limits that block throughput; backs off under memory pressure or rising latency; sizes the SYN backlog',
  tunables: TUNABLES,
  scenarios: SCENARIOS,
  async init(ctx) {
    const s = stateOf(ctx);
    await s.memory.check().catch((err) => ctx.log.warn(`first TCP memory check failed: ${errorText(err)}`));
    ctx.every(MEMORY_CHECK_INTERVAL_MS, () => s.memory.check());
    ctx.every(SYN_CHECK_INTERVAL_MS, async () => {
      await s.syn.check();
      s.buffers.retain(new Set([ctx.namespaces.global.cookie, ...ctx.namespaces.all().map((n) => n.cookie)]));
    });
    const lastPosted = ctx.bpf.map('last_posted');
    const empty = Buffer.alloc(lastPosted.valueSize);
    ctx.every(REPOST_INTERVAL_MS, () => {
      for (let i = 0; i < LAST_POSTED_ENTRIES; i++) {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(i);
        lastPosted.update(key, empty);
      }
    });
  },
  async event(event: TunerEvent, ctx) {
    const s = stateOf(ctx);
    switch (event.scenarioId) {
      case EventKind.rmemNearMax:
        await s.buffers.nearMax('rmem', event, decodeTcpBufferData(event.data));
        break;
      case EventKind.wmemNearMax:
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
