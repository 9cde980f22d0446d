/**
 * Receive and send buffer limits: when the BPF side sees a socket whose
 * buffer has grown to within one learning step of tcp_rmem[2] (tcp_wmem[2]),
 * raise that limit by one step in the socket's namespace. Every sample also
 * feeds a per-namespace correlation between the limit and the sockets'
 * smoothed RTT: when bigger buffers go with materially longer round trips
 * (a queue filling somewhere, not more throughput), step back instead.
 *
 * A socket at its limit posts again only once the kernel has grown it up to
 * the new limit, so there is about one sample per increase: the correlation
 * is over the limits a namespace went through, not over time.
 *
 * No increase without a measured benefit: the first increase of a limit in a
 * namespace opens a growth episode through the core's change verifier. The
 * first step is taken at once (the verifier's `first`, when the namespace's
 * last episode was kept or there was none), and growth goes on step by step
 * without a pause: a live connection whose limit stands still for a moment
 * settles at it, and the kernel then never grows its buffer again (it grows
 * it only when the reads per round trip grow). The namespace's throughput and
 * guards (verify.ts) are measured over a window meanwhile, then again after
 * the verifier lets it settle, and the episode is judged on the growth after
 * that baseline (no verdict if no socket's buffer grew past the limit the
 * baseline ended at): kept, or the limit goes back to where the episode
 * started (scenario 'TCP buffer increase did not help') and is not raised
 * again in that namespace for a hold-off that doubles with each undo. An
 * episode after an undo or a no-verdict measures its window before raising.
 */
import { Correlation, MIN_CORRELATION_SAMPLES } from '../../core/correlation';
import type { ContextWith, TunableDeclaration, TunerEvent, UndoVerdict } from '../../core/tuner';
import { errorText } from '../../core/log';
import type { TcpBufferData } from './tcp_buffer.contract';
import type { MemoryWatch } from './memory-watch';
import { Scenario, TCP_MODERATE_RCVBUF, TCP_RMEM, Tunable } from './scenarios';
import { bufferMeasures } from './verify';

export type BufferSide = 'rmem' | 'wmem';

const TUNABLE = { rmem: Tunable.rmem, wmem: Tunable.wmem } satisfies Record<BufferSide, TunableDeclaration>;
const WHAT: Record<BufferSide, string> = { rmem: 'receive', wmem: 'send' };

/** Beyond this a single connection's buffer is no longer a plausible need (2^30: a 10 Gbit/s path at 800 ms). */
export const BUFFER_MAX_CAP = 1 << 30;

/**
 * A correlation says the two move together, not that the rise matters: on a
 * quiet path RTT creeps up by a fraction of a millisecond as throughput grows,
 * which correlates perfectly. Only a rise by half the lowest RTT seen, and by
 * at least 2 ms (veth RTTs of tens of microseconds jitter by more than half),
 * is latency worth giving throughput up for.
 */
const MIN_RTT_RISE_RATIO = 1.5;
const MIN_RTT_RISE_US = 2000;
/** After stepping back for latency, no increase for this long in that namespace. */
export const LATENCY_HOLD_MS = 30_000;

interface SideState {
  cookie: bigint;
  correlation: Correlation;
  lowestRttUs: number;
  holdUntil: number;
  /** A growth episode being verified: 'before' while the window before it is measured, then 'growing'. */
  episode?: 'before' | 'growing';
  /** The latest event during the 'before' window: a socket still pressing on the limit. */
  pending?: { event: TunerEvent; data: TcpBufferData };
  /** The limit before the episode's judged step, and whether a socket's buffer has since grown past it. */
  judgedFrom?: number;
  exercised?: boolean;
}

/** Why the limit is worth raising, from the BPF side's reading of the socket. */
function signalText(side: BufferSide, data: TcpBufferData): string {
  if (side === 'wmem') {
    const pct = data.busy > 0 ? Math.round((data.sndbufLimited * 100) / data.busy) : 0;
    return `, sender limited by it ${pct}% of its busy time`;
  }
  return data.bdp > 0 ? `, path carrying ${data.bdp} bytes per round trip` : '';
}

function familyName(family: number): string {
  return family === 10 ? 'IPv6' : family === 2 ? 'IPv4' : `family ${family}`;
}

export class BufferGrowth {
  private readonly states = new Map<string, SideState>();

  constructor(
    private readonly ctx: ContextWith<'readProcNet' | 'verifyChange'>,
    private readonly memory: MemoryWatch,
  ) {}

  async nearMax(side: BufferSide, event: TunerEvent, data: TcpBufferData): Promise<void> {
    const ctx = this.ctx;
    const tunable = TUNABLE[side].name;
    const max = event.oldValues[2] ?? 0;
    const cookie = event.netnsCookie;
    if (this.memory.constrained) {
      ctx.log.debug(`not raising ${tunable} (cookie ${cookie}): TCP memory is near pressure`);
      return;
    }
    const st = this.state(side, cookie);
    if (data.rttUs > 0) {
      st.correlation.add(max, data.rttUs);
      st.lowestRttUs = Math.min(st.lowestRttUs, data.rttUs);
    }
    if (ctx.log.debugEnabled) {
      ctx.log.debug(
        `${tunable} max ${max} (cookie ${cookie}): buffer ${data.skBuf}, RTT ${data.rttUs} us ` +
          `(lowest ${st.lowestRttUs}), correlation ${st.correlation.value().toFixed(2)} over ${st.correlation.count}`,
      );
    }
    if (Date.now() < st.holdUntil) return;
    if (this.latencyRises(st, data.rttUs)) {
      await this.stepBackForLatency(side, event, data, st);
      return;
    }
    if (st.episode === 'before') {
      st.pending = { event, data };
      return;
    }
    if (st.episode === 'growing') {
      if (st.judgedFrom !== undefined && data.skBuf > st.judgedFrom) st.exercised = true;
      await this.raise(side, event, data);
      return;
    }
    this.startEpisode(side, event, data, st);
  }

  /**
   * Opens a growth episode in the background (the event handler must not
   * wait out the windows): the verifier takes the first step at once if it
   * trusts the namespace, measures, calls apply (the next step, or the first
   * when it was not trusted), and judges the episode's growth as one change.
   */
  private startEpisode(side: BufferSide, event: TunerEvent, data: TcpBufferData, st: SideState): void {
    const ctx = this.ctx;
    const tunable = TUNABLE[side].name;
    const cookie = event.netnsCookie;
    let from: number[] | undefined;
    let firstMade = false;
    st.episode = 'before';
    st.pending = undefined;
    st.judgedFrom = undefined;
    st.exercised = false;
    const { benefit, guards } = bufferMeasures(ctx, side, cookie, this.memory.sockstatPath);
    const note = async () => {
      from ??= await ctx.tunable(TUNABLE[side]).get(cookie);
    };
    ctx
      .verifyChange({
        key: `${tunable}@${cookie}`,
        description: `growth of ${tunable} max from ${event.oldValues[2] ?? 0}`,
        benefit,
        guards,
        first: async () => {
          await note();
          firstMade = await this.raise(side, event, data);
          // No pause after it: a live connection that settles while its limit stands still stops
          // growing its buffer for good (the kernel grows it only when reads per round trip grow).
          if (firstMade) st.episode = 'growing';
          return firstMade;
        },
        apply: async () => {
          await note();
          const judgedFrom = (await ctx.tunable(TUNABLE[side]).get(cookie))[2];
          if (firstMade) {
            // Growth went on through the baseline window; what is judged is the growth after it.
            st.judgedFrom = judgedFrom;
            return true;
          }
          const next = st.pending ?? { event, data };
          st.pending = undefined;
          const raised = await this.raise(side, next.event, next.data);
          if (raised) {
            st.episode = 'growing';
            st.judgedFrom = judgedFrom;
          }
          return raised;
        },
        // A live connection whose reads do not grow never grows into a raised limit (the kernel
        // sizes its buffer from what it read per round trip), and growth that ended within the
        // baseline window left nothing for the window after it to show: only a socket whose
        // buffer grew past the limit the baseline ended at shows whether the growth helped.
        exercised: () => st.exercised === true,
        undo: (verdict) => this.undo(side, cookie, from, verdict),
      })
      .then((outcome) => {
        if (outcome.kind === 'held off') {
          ctx.log.debug(`not raising ${tunable} (cookie ${cookie}): an increase there did not help, held off until ${new Date(outcome.untilMs).toISOString()}`);
        }
      })
      .catch((err) => ctx.log.warn(`verifying ${tunable} growth (cookie ${cookie}) failed: ${errorText(err)}`))
      .finally(() => {
        st.episode = undefined;
        st.pending = undefined;
      });
  }

  /** Back to where the episode started, if the limit is still above it. */
  private async undo(side: BufferSide, cookie: bigint, from: number[] | undefined, verdict: UndoVerdict): Promise<void> {
    const tunable = TUNABLE[side].name;
    const start = from?.[2];
    if (start === undefined) return;
    const current = await this.ctx.tunable(TUNABLE[side]).get(cookie);
    if ((current[2] ?? 0) <= start) return;
    await this.ctx.set({
      tunable,
      scenario: Scenario.increaseUndone,
      netnsCookie: cookie,
      values: [current[0] ?? 0, current[1] ?? 0, start],
      reason: `raising ${tunable} max from ${start} to ${current[2]} did not help: ${verdict.why}; not raised again there for ${Math.round(verdict.holdOffMs / 1000)} s`,
    });
  }

  private async raise(side: BufferSide, event: TunerEvent, data: TcpBufferData): Promise<boolean> {
    const ctx = this.ctx;
    const tunable = TUNABLE[side].name;
    const [min = 0, def = 0, max = 0] = event.oldValues;
    const cookie = event.netnsCookie;
    const target = Math.min(BUFFER_MAX_CAP, event.newValues[2] ?? 0);
    // Events queued before an earlier one was acted on carry the old limit.
    const current = await ctx.tunable(TUNABLE[side]).get(cookie);
    if (target <= (current[2] ?? 0)) return false;
    const raised = await ctx.set({
      tunable,
      scenario: Scenario.increase,
      netnsCookie: cookie,
      values: [current[0] ?? min, current[1] ?? def, target],
      reason: `${WHAT[side]} buffer of ${data.skBuf} bytes (${familyName(data.family)} socket, pid ${event.pid}) nearly at ${tunable} max ${max}${signalText(side, data)}`,
    });
    if (raised && side === 'rmem' && data.tcpModerateRcvbuf === 0) {
      await ctx.set({
        tunable: TCP_MODERATE_RCVBUF,
        scenario: Scenario.moderateRcvbuf,
        netnsCookie: cookie,
        values: [1],
        reason: `raising ${TCP_RMEM} max while receive buffer auto-tuning is off`,
      });
    }
    return raised;
  }

  /** Drops what is known about namespaces that are gone. */
  retain(alive: ReadonlySet<bigint>): void {
    for (const [key, st] of this.states) if (!alive.has(st.cookie)) this.states.delete(key);
  }

  private latencyRises(st: SideState, rttUs: number): boolean {
    if (st.correlation.count < MIN_CORRELATION_SAMPLES || !st.correlation.exceeds()) return false;
    return rttUs >= st.lowestRttUs * MIN_RTT_RISE_RATIO && rttUs - st.lowestRttUs >= MIN_RTT_RISE_US;
  }

  private async stepBackForLatency(side: BufferSide, event: TunerEvent, data: TcpBufferData, st: SideState): Promise<void> {
    const tunable = TUNABLE[side].name;
    const cookie = event.netnsCookie;
    const current = await this.ctx.tunable(TUNABLE[side]).get(cookie);
    const [min = 0, def = 0, max = 0] = current;
    const r = st.correlation.value();
    st.holdUntil = Date.now() + LATENCY_HOLD_MS;
    st.correlation.reset();
    // Never below the default: that is what every new socket starts with anyway.
    const target = Math.max(def, this.ctx.learning.shrink(max));
    if (target >= max) return;
    await this.ctx.set({
      tunable,
      scenario: Scenario.decreaseLatency,
      netnsCookie: cookie,
      values: [min, def, target],
      reason:
        `smoothed RTT rising with ${tunable} max (correlation ${r.toFixed(2)}, RTT ` +
        `${(st.lowestRttUs / 1000).toFixed(1)} ms -> ${(data.rttUs / 1000).toFixed(1)} ms)`,
    });
  }

  private state(side: BufferSide, cookie: bigint): SideState {
    const key = `${side}@${cookie}`;
    let st = this.states.get(key);
    if (!st) {
      st = { cookie, correlation: new Correlation(), lowestRttUs: Number.POSITIVE_INFINITY, holdUntil: 0 };
      this.states.set(key, st);
    }
    return st;
  }
}
