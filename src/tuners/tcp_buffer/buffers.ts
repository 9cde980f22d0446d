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
 * namespace opens a growth episode through the core's change verifier (see
 * startEpisode for how each side is measured). On the receive side further
 * events raise the limit step by step while it is judged; the send side
 * judges one step at a time. At the end the whole episode is judged: kept,
 * or the limit goes back to where the episode started
 * (scenario 'TCP buffer increase did not help') and is not raised again in
 * that namespace for a hold-off that doubles with each undo.
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
    return `, sender limited by it ${pct}% of its busy time${data.pipe > 0 ? `, path carrying ${data.pipe} bytes per round trip` : ''}`;
  }
  return data.bdp > 0 ? `, path carrying ${data.bdp} bytes per round trip` : '';
}

/**
 * The rate a receiving socket was reading at when it asked: the most it read
 * in one receiver RTT over that RTT, in Mbit/s (bytes per us x 8); undefined
 * when the event does not say.
 */
export function socketReadMbit(data: TcpBufferData): number | undefined {
  return data.rcvSpace > 0 && data.rttUs > 0 ? (data.rcvSpace * 8) / data.rttUs : undefined;
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
    await this.act(side, event, data, st);
  }

  /** What a socket pressing on the limit leads to, its sample taken: nothing while held, a step back, a step, or a note for later. */
  private async act(side: BufferSide, event: TunerEvent, data: TcpBufferData, st: SideState): Promise<void> {
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
      // Send: one judged step at a time; a socket still pressing opens the next episode once it is kept.
      if (side === 'wmem') st.pending = { event, data };
      else await this.raise(side, event, data);
      return;
    }
    this.startEpisode(side, event, data, st);
  }

  /**
   * Opens a growth episode in the background (the event handler must not
   * wait out the windows), judged by the core's verifier as one change. The
   * two sides differ in what a pause costs:
   *  - receive: a live connection whose limit stands still settles at it, and
   *    the kernel then never grows its buffer again (it grows it only when
   *    the reads per round trip grow; seen on a 40 ms path: a connection at a
   *    131072 limit stayed there through raises to 163840 and 204800). So no
   *    window before: the limit is raised at once and growth goes on, judged
   *    against the rate the socket was reading at when it asked (its
   *    rcvq_space per receiver RTT, carried by the event);
   *  - send: the kernel grows a send buffer into a raised limit on the next
   *    ACK while the application is short of space, so a pause costs only
   *    time. The first step is taken at once (when the namespace's last
   *    episode was kept), the window before is measured with it in place
   *    while events only note that a socket still presses on the limit, and
   *    the step after is the change judged, the only one: a sender grows
   *    into a raised limit within a round trip or two and its losses come
   *    after, so steps taken while judged outran the verdict (7-10 of them,
   *    to 128-312 MB on a 40 ms path, all undone with the ones that had
   *    helped). A socket pressing meanwhile opens the next episode once the
   *    step is kept, the kept window after being its baseline.
   * Either way the verdict waits until a socket's buffer grew past the limit
   * the judged growth started from (else no verdict: nothing used it).
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
    const readRate = side === 'rmem' ? socketReadMbit(data) : undefined;
    // The limit where the episode started (what an undo goes back to); read once, before the first step.
    const note = async () => {
      from ??= await ctx.tunable(TUNABLE[side]).get(cookie);
    };
    void ctx
      .verifyChange({
        key: `${tunable}@${cookie}`,
        description: `growth of ${tunable} max from ${event.oldValues[2] ?? 0}`,
        benefit,
        guards,
        signalBaseline: readRate,
        first:
          readRate === undefined
            ? async () => {
                await note();
                firstMade = await this.raise(side, event, data);
                return firstMade;
              }
            : undefined,
        apply: async () => {
          await note();
          // Without a first step the limit is still the one just noted: no second read (each one
          // enters the namespace on a worker thread, and this is the reaction's path).
          const current = firstMade ? await ctx.tunable(TUNABLE[side]).get(cookie) : (from as number[]);
          // After a first step, only a socket that pressed on the new limit asks for more.
          const next = firstMade ? st.pending : (st.pending ?? { event, data });
          st.pending = undefined;
          const raised = next !== undefined && (await this.raise(side, next.event, next.data, current));
          if (raised) {
            st.episode = 'growing';
            st.judgedFrom = current[2];
          }
          return raised;
        },
        exercised: () => st.exercised === true,
        undo: (verdict) => this.undo(side, cookie, from, verdict),
      })
      .then((outcome) => {
        if (outcome.kind === 'held off') {
          ctx.log.debug(`not raising ${tunable} (cookie ${cookie}): an increase there did not help, held off until ${new Date(outcome.untilMs).toISOString()}`);
        }
        return outcome;
      })
      .catch((err) => {
        ctx.log.warn(`verifying ${tunable} growth (cookie ${cookie}) failed: ${errorText(err)}`);
        return undefined;
      })
      .then((outcome) => {
        const next = st.pending;
        st.episode = undefined;
        st.pending = undefined;
        // Growth goes on from a kept step at once (its window after being the next one's baseline),
        // through the same checks the socket met when it was noted, TCP memory's among them.
        if (outcome?.kind === 'kept' && next && side === 'wmem' && !this.memory.constrained) {
          void this.act(side, next.event, next.data, st).catch((err) => ctx.log.warn(`raising ${tunable} (cookie ${cookie}) failed: ${errorText(err)}`));
        }
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

  /** One step up, from the limit the event saw; `known` is the namespace's limit if the caller has just read it. */
  private async raise(side: BufferSide, event: TunerEvent, data: TcpBufferData, known?: number[]): Promise<boolean> {
    const ctx = this.ctx;
    const tunable = TUNABLE[side].name;
    const [min = 0, def = 0, max = 0] = event.oldValues;
    const cookie = event.netnsCookie;
    const target = Math.min(BUFFER_MAX_CAP, event.newValues[2] ?? 0);
    // Events queued before an earlier one was acted on carry the old limit.
    const current = known ?? (await ctx.tunable(TUNABLE[side]).get(cookie));
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
