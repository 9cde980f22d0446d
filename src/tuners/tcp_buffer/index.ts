/**
 * tcp_buffer tuner: raises net.ipv4.tcp_rmem[2] / tcp_wmem[2] in a socket's
 * namespace when its buffer has grown to the limit, stops raising (and steps
 * back) when bigger buffers only bring longer round trips, raises tcp_mem as
 * TCP memory nears pressure and retreats when it nears exhaustion, and sizes
 * the SYN backlog against floods. See README.md.
 */
import { performance } from 'node:perf_hooks';
import type { TunerDefinition } from '../../core/tuner';
import { errorText } from '../../core/log';
import { TcpBufferData, TcpBufferEvent, maps } from './tcp_buffer.contract';
import { BufferGrowth } from './buffers';
import { MemoryWatch } from './memory-watch';
import { SynFloodWatch } from './syn-flood';
import { SCENARIOS, TUNABLES } from './scenarios';

/**
 * One timer serves all of this tuner's polling: every 2 s while something
 * is going on (a SYN queue overflowing, TCP memory beyond half of
 * tcp_mem[0], a near-limit event posted), every 30 s once nothing has been
 * for 10 s; any event from the BPF side brings it back to 2 s at once.
 * (Each wake-up of the daemon costs ~0.1 ms of CPU on a VM, whatever it does.)
 */
const TICK_MS = 2000;
const QUIET_TICK_MS = 30_000;
/** Shorter than the other tuners' 30 s: its fast tick is the most frequent wake-up of all. */
const QUIET_AFTER_MS = 10_000;
/** Far below tcp_mem[0], sockstat is read at most this often; exhaustion still arrives at once (sock_exceed_buf_limit). */
const CALM_MEMORY_MS = 10_000;
/**
 * The BPF side may post the same limit for the same namespace again once
 * last_posted is cleared (see tcp_buffer.bpf.c): after each tick in which
 * something was posted, and every 30 s regardless, so a ring buffer
 * sample that never arrived cannot pin an entry.
 */
const REPOST_SWEEP_MS = 30_000;
/** last_posted is indexed by event kind, for the two that post a limit. */
const LAST_POSTED_KINDS = [TcpBufferEvent.RMEM_NEAR_MAX, TcpBufferEvent.WMEM_NEAR_MAX];

const SEND_TRACEPOINT = 'tcp_buffer_snd';
const SEND_PROGRAMS = [SEND_TRACEPOINT, 'tcp_buffer_snd_fentry', 'tcp_buffer_snd_kprobe'];
/**
 * The send hook runs on every send, and its presence alone costs a
 * send-heavy workload: with no daemon, stress-ng --sock did 0.94 of its work
 * per CPU-second with an empty program on tcp:tcp_sendmsg_locked, and 0.93
 * with this one's check run only a tenth of the time, while a program loaded
 * and attached elsewhere cost nothing (bench/results/hook-presence-*.md). So
 * the hook is attached 2 % of the time: a sender held back by its buffer
 * keeps sending and is seen within a period (the reaction this costs:
 * bench/results/send-sampling.md); once one is seen the hook stays attached
 * while the limit is grown step by step. The period is long because each
 * cycle costs the daemon CPU: the attach and detach themselves (0.4 ms for
 * the tracepoint here, bench/results/hook-cycle.md) and the wake-ups around
 * them; every 4 s, an idle daemon's CPU went from 0.027 % to 0.079 % of a
 * core; every 15 s it was 0.038 %. Where the hook is fentry (6.1, 6.12) each
 * cycle builds and tears down a trampoline: on 6.1 under TCG the idle daemon
 * used 0.61 % of a core sampled against 0.17 % always attached
 * (bench/results/vs-upstream-6.1-footprint-{sampled,unsampled}.md), some
 * 66 ms a cycle. The core lengthens the period where a cycle costs that much
 * (CYCLE_CPU_BUDGET in core/hook-sampling.ts).
 *
 * So only the tracepoint is sampled; its fallbacks (fentry, kprobe) stay
 * attached, as before sampling. Each of their cycles patches kernel text, and
 * in the 6.1 guest the sampled fentry hook did not see the tests' held-back
 * senders within 6-12 s of traffic (test/vm/results/6.1-sampling-stretch.md:
 * four send-side tcp_buffer tests and the verifier's failed); attached all
 * the time, the two growth tests pass there again (6.1-send-attached.md;
 * since the send side also reads the path, 2291b71, all but the two tests of
 * a sender in front of a 20 Mbit/s queue pass, 6.1-send-pipe-calibrated.md).
 * Likely why sampling missed them: they run once per call, at its entry, and a
 * held-back sender spends its call waiting inside for buffer space, so a
 * 300 ms window sees few of its calls; the tracepoint fires inside the call
 * as data is queued.
 *
 * The receive hook stays attached. On 6.16+ (tcp:tcp_rcvbuf_grow) it fires
 * only when a reader's demand grows. Before 6.16 it is tcp:tcp_rcv_space_adjust,
 * on every read, but a program there did not cost bulk TCP measurably often
 * enough to pay for sampling it: with no daemon an empty one gave 0.967 and
 * 0.979 of the work per CPU-second in two runs and 0.996 [0.985, 1.006] in a
 * third (bench/results/hook-presence-floor_rcv.md), the daemon with it attached
 * 1.001, while sampled its first change waited a median 8.8 s instead of
 * 0.07 s (bench/results/receive-sampling.md, measured at commit 50704b8).
 */
const WINDOW_MS = 300;
const PERIOD_MS = 15_000;
/** Twice the repost cycle (a held-back socket posts again after each 2 s tick clears last_posted), and then some. */
const HOLD_MS = 10_000;

const tcpBufferTuner: TunerDefinition<'readProcNet' | 'verifyChange'> = {
  name: 'tcp_buffer',
  description: 'Grows TCP buffer limits that block throughput; backs off under memory pressure or rising latency; sizes the SYN backlog',
  tunables: TUNABLES,
  scenarios: SCENARIOS,
  abilities: ['readProcNet', 'verifyChange'],
  programAlternatives: [
    // tcp:tcp_rcvbuf_grow (6.16+) fires only when a reader's demand grows; before it, every read is hooked.
    { hook: 'receive buffer growth', variants: ['tcp_buffer_rcv_grow', 'tcp_buffer_rcv'] },
    // tcp:tcp_sendmsg_locked is not in 6.1 or 6.12: hook the function itself there (fentry; kprobe without trampolines).
    { hook: 'tcp_sendmsg_locked', variants: SEND_PROGRAMS },
  ],
  sampledHooks: [
    { programs: [SEND_TRACEPOINT], windowMs: WINDOW_MS, periodMs: PERIOD_MS, holdOn: [TcpBufferEvent.WMEM_NEAR_MAX], holdMs: HOLD_MS },
  ],
  async create(ctx) {
    const memory = new MemoryWatch(ctx);
    const buffers = new BufferGrowth(ctx, memory);
    const syn = new SynFloodWatch(ctx);
    /** A near-limit event arrived since last_posted was last cleared. */
    let posted = false;
    let lastSweep = performance.now();
    let lastMemoryCheck = performance.now();
    await memory.enableHighOrderAllocations().catch((err) => ctx.log.warn(`enabling high-order allocations failed: ${errorText(err)}`));
    await memory.check().catch((err) => ctx.log.warn(`first TCP memory check failed: ${errorText(err)}`));
    const lastPosted = ctx.map(maps.lastPosted);
    const clearLastPosted = () => {
      for (const kind of LAST_POSTED_KINDS) lastPosted.update(kind, { net: 0n, limit: 0, recheck: 0, judgedRecord: 0, recordReadAt: 0 });
    };
    const ticker = ctx.every(
      TICK_MS,
      async () => {
        const now = performance.now();
        const busy = posted;
        if (posted || now - lastSweep >= REPOST_SWEEP_MS - TICK_MS / 2) {
          posted = false;
          lastSweep = now;
          clearLastPosted();
        }
        if (!memory.calm || now - lastMemoryCheck >= CALM_MEMORY_MS - TICK_MS / 2) {
          lastMemoryCheck = now;
          await memory.check().catch((err) => ctx.log.warn(`TCP memory check failed: ${errorText(err)}`));
        }
        // SYN counters on every tick: a burst in a new namespace must find its baseline already read.
        const overflowing = await syn.check();
        buffers.retain(new Set([ctx.namespaces.global.cookie, ...ctx.namespaces.all().map((n) => n.cookie)]));
        return busy || overflowing || !memory.calm ? undefined : 'quiet';
      },
      { quietIntervalMs: QUIET_TICK_MS, quietAfterMs: QUIET_AFTER_MS },
    );
    return {
      async event(event) {
        switch (event.scenarioId) {
          case TcpBufferEvent.RMEM_NEAR_MAX:
            posted = true;
            ticker.wake();
            await buffers.nearMax('rmem', event, TcpBufferData.decode(event.data));
            break;
          case TcpBufferEvent.WMEM_NEAR_MAX:
            posted = true;
            ticker.wake();
            await buffers.nearMax('wmem', event, TcpBufferData.decode(event.data));
            break;
          case TcpBufferEvent.MEM_EXCEEDED:
            ticker.wake();
            await memory.allocationRefused(event.netnsCookie, event.newValues[0] ?? 0, event.oldValues);
            break;
          default:
            ctx.log.debug(`ignoring unknown event kind ${event.scenarioId}`);
        }
      },
    };
  },
};

export default tcpBufferTuner;
