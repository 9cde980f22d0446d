/**
 * SYN floods, from the counters the kernel already keeps per namespace
 * (/proc/net/netstat TcpExt, /proc/net/snmp Tcp), read on the tuner's tick:
 * every 2 s while a SYN queue overflows somewhere, every 30 s once none has
 * for 10 s (an idle host reads them twice a minute; a burst there is seen at
 * the next read, with every overflow since the last one counted). No
 * tracepoint marks a SYN-queue overflow, and the function that counts one
 * (tcp_conn_request) needs fentry or kprobes, which not every kernel offers.
 * Only netstat is read while nothing overflows (one read of ~100 us per
 * namespace); snmp joins while it does.
 *
 * A SYN-queue overflow is legitimate load when it goes with connections being
 * accepted (handshakes completing, PassiveOpens): then a longer queue,
 * tcp_max_syn_backlog, lets them in. Overflows with nothing accepted are a
 * flood: a longer queue would only hold more of it, so shrink it. SYN cookies
 * that never come back valid only cost CPU: turn them off; when the backlog
 * cannot grow further, they are all that is left: turn them on.
 */
import { Correlation, MIN_CORRELATION_SAMPLES } from '../../core/correlation';
import { errorText } from '../../core/log';
import type { ContextWith } from '../../core/tuner';
import { Scenario, TCP_MAX_SYN_BACKLOG, TCP_SYNCOOKIES, Tunable } from './scenarios';

/** Beyond this the SYN queue is no longer what limits (the listen backlog is capped at 65535 too). */
export const SYN_BACKLOG_MAX = 65535;
/** Never shrink below the kernel's own minimum default (128). */
export const SYN_BACKLOG_MIN = 128;
/** Cookies sent with none validated before concluding they never will be. */
export const COOKIES_WITHOUT_ANSWER = 256;

export interface SynCounters {
  /** SYNs that found the SYN queue full (answered with a cookie or dropped). */
  overflows: number;
  cookiesSent: number;
  /** Handshakes completed with a valid cookie. */
  cookiesValid: number;
}

/** "Prefix: name name ...\nPrefix: value value ..." pairs, as /proc/net/netstat and snmp have them. */
export function parseProcNetCounters(text: string, prefix: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(`${prefix}:`));
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] ?? '').split(/\s+/).slice(1);
    const values = (lines[i + 1] ?? '').split(/\s+/).slice(1);
    names.forEach((n, j) => out.set(n, Number(values[j] ?? 0)));
  }
  return out;
}

export function synCounters(netstat: string): SynCounters {
  const ext = parseProcNetCounters(netstat, 'TcpExt');
  const get = (k: string) => ext.get(k) ?? 0;
  return {
    overflows: get('TCPReqQFullDoCookies') + get('TCPReqQFullDrop'),
    cookiesSent: get('SyncookiesSent'),
    cookiesValid: get('SyncookiesRecv'),
  };
}

/** Handshakes completed on listeners (Tcp PassiveOpens in /proc/net/snmp). */
export function passiveOpens(snmp: string): number {
  return parseProcNetCounters(snmp, 'Tcp').get('PassiveOpens') ?? 0;
}

interface NsSynState {
  last: SynCounters;
  /** PassiveOpens at the last read, while overflows go on. */
  lastPassiveOpens: number | undefined;
  correlation: Correlation;
  /** Cookies sent since one last came back valid. */
  unansweredCookies: number;
}

export class SynFloodWatch {
  private readonly states = new Map<bigint, NsSynState>();

  constructor(private readonly ctx: ContextWith<'readProcNet'>) {}

  /**
   * Runs on the tuner's ctx.every() tick, which never overlaps a slow round
   * with the next. True when a SYN queue overflowed somewhere since the last
   * check: the tick must stay fast.
   */
  async check(): Promise<boolean> {
    let overflowing = false;
    const namespaces = [this.ctx.namespaces.global, ...this.ctx.namespaces.all().filter((n) => !n.global)];
    const alive = new Set<bigint>();
    for (const ns of namespaces) {
      alive.add(ns.cookie);
      try {
        if (await this.checkNamespace(ns.global ? 0n : ns.cookie)) overflowing = true;
      } catch (err) {
        // A namespace that went away between listing and reading is not worth a warning.
        this.ctx.log.debug(`SYN counters of netns cookie ${ns.cookie}: ${errorText(err)}`);
      }
    }
    for (const cookie of this.states.keys()) if (cookie !== 0n && !alive.has(cookie)) this.states.delete(cookie);
    return overflowing;
  }

  /** Whether the namespace's SYN queue overflowed since the last read. */
  private async checkNamespace(cookie: bigint): Promise<boolean> {
    const now = synCounters(await this.ctx.readProcNet('netstat', cookie));
    const st = this.states.get(cookie);
    if (!st) {
      this.states.set(cookie, { last: now, lastPassiveOpens: undefined, correlation: new Correlation(), unansweredCookies: 0 });
      return false;
    }
    const overflows = now.overflows - st.last.overflows;
    const validCookies = now.cookiesValid - st.last.cookiesValid;
    if (validCookies > 0) st.unansweredCookies = 0;
    else st.unansweredCookies += now.cookiesSent - st.last.cookiesSent;
    st.last = now;
    if (overflows <= 0) {
      st.lastPassiveOpens = undefined;
      return false;
    }
    // In the first overflowing interval there is no PassiveOpens baseline yet; handshakes
    // completed with a cookie are accepted connections too (all of them, while cookies answer the overflow).
    const opens = passiveOpens(await this.ctx.readProcNet('snmp', cookie));
    const accepted = st.lastPassiveOpens === undefined ? validCookies : opens - st.lastPassiveOpens;
    st.lastPassiveOpens = opens;
    st.correlation.add(overflows, accepted);
    const legitimate =
      accepted > 0 && (st.correlation.count < MIN_CORRELATION_SAMPLES || st.correlation.value() > 0.7 || accepted >= overflows);
    if (legitimate) await this.legitimateLoad(cookie, overflows, accepted);
    else await this.flood(cookie, overflows, accepted, st);
    return true;
  }

  private async legitimateLoad(cookie: bigint, overflows: number, accepted: number): Promise<void> {
    const [backlog = 0] = await this.ctx.tunable(Tunable.maxSynBacklog).get(cookie);
    if (backlog < SYN_BACKLOG_MAX) {
      await this.ctx.set({
        tunable: TCP_MAX_SYN_BACKLOG,
        scenario: Scenario.synBacklogIncrease,
        netnsCookie: cookie,
        values: [Math.min(SYN_BACKLOG_MAX, this.ctx.learning.grow(backlog))],
        reason: `${overflows} SYN queue overflows while ${accepted} connections were accepted in the last interval`,
      });
      return;
    }
    const [cookies = 0] = await this.ctx.tunable(Tunable.syncookies).get(cookie);
    if (cookies === 0) {
      await this.ctx.set({
        tunable: TCP_SYNCOOKIES,
        scenario: Scenario.syncookiesEnable,
        netnsCookie: cookie,
        values: [1],
        reason: `${overflows} SYN queue overflows with ${TCP_MAX_SYN_BACKLOG} at its cap ${SYN_BACKLOG_MAX}`,
      });
    }
  }

  private async flood(cookie: bigint, overflows: number, accepted: number, st: NsSynState): Promise<void> {
    const [backlog = 0] = await this.ctx.tunable(Tunable.maxSynBacklog).get(cookie);
    const target = Math.max(SYN_BACKLOG_MIN, this.ctx.learning.shrink(backlog));
    if (target < backlog) {
      await this.ctx.set({
        tunable: TCP_MAX_SYN_BACKLOG,
        scenario: Scenario.synBacklogDecrease,
        netnsCookie: cookie,
        values: [target],
        reason: `${overflows} SYN queue overflows but ${accepted} connections accepted in the last interval (correlation ${st.correlation.value().toFixed(2)})`,
      });
    }
    if (st.unansweredCookies >= COOKIES_WITHOUT_ANSWER) {
      const [cookies = 0] = await this.ctx.tunable(Tunable.syncookies).get(cookie);
      if (cookies !== 0) {
        await this.ctx.set({
          tunable: TCP_SYNCOOKIES,
          scenario: Scenario.syncookiesDisable,
          netnsCookie: cookie,
          values: [0],
          reason: `${st.unansweredCookies} SYN cookies sent and none came back valid`,
        });
      }
    }
  }
}
