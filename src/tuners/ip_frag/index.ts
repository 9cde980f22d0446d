/**
 * ip_frag tuner: fragment reassembly memory, per network namespace.
 * When a namespace drops fragments because its reassembly queues are over
 * net.ipv4.ipfrag_high_thresh (net.ipv6.ip6frag_high_thresh for IPv6;
 * BPF: skb:kfree_skb, see ip_frag.bpf.c), raise that threshold in that
 * namespace. Each time, the failure rate since the last change (ReasmFails /
 * ReasmReqds, read in the namespace) is paired with the threshold; when the
 * two rise together (correlation above 0.7) more memory is only holding
 * more bad fragments, so the threshold steps back down instead.
 */
import { Correlation } from '../../core/correlation';
import { errorText } from '../../core/log';
import type { TunerContext, TunerDefinition, TunerEvent } from '../../core/tuner';
import {
  failPercent,
  IPV4_HIGH_THRESH,
  IPV6_HIGH_THRESH,
  parseIp6Reasm,
  parseIpReasm,
  thresholdDecision,
  type ReasmCounters,
} from './reassembly';

/** enum ip_frag_scenario (ip_frag.h). */
export const Scenario = { increase: 0, decrease: 1 } as const;
/** enum ip_frag_family (ip_frag.h). */
export const Family = { ipv4: 4, ipv6: 6 } as const;

/** Offsets in struct ip_frag_event_data (ip_frag.h); checked against BTF by the test. */
export const EVENT_DATA_LAYOUT = { family: 0, mem: 8, high_thresh: 16, window_ns: 24 } as const;

export interface FragDropEvent {
  family: number;
  drops: number;
  mem: number;
  highThresh: number;
}

export function decodeFragDrop(event: TunerEvent): FragDropEvent {
  const d = event.data;
  return {
    family: d.readUInt32LE(EVENT_DATA_LAYOUT.family),
    drops: event.oldValues[0] ?? 0,
    mem: Number(d.readBigInt64LE(EVENT_DATA_LAYOUT.mem)),
    highThresh: Number(d.readBigInt64LE(EVENT_DATA_LAYOUT.high_thresh)),
  };
}

/** What is kept per namespace and family. */
interface FragHistory {
  counters?: ReasmCounters;
  correlation: Correlation;
  /** The threshold before bpftune first raised it: stepping back stops there. */
  floor?: number;
}

class IpFragTuner {
  private queue: Promise<void> = Promise.resolve();
  private readonly history = new Map<string, FragHistory>();
  private readonly declined = new Map<string, number>();

  constructor(private readonly ctx: TunerContext) {}

  serialised(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async counters(family: number, cookie: bigint): Promise<ReasmCounters> {
    return family === Family.ipv4 ? parseIpReasm(await this.ctx.readProcNet('snmp', cookie)) : parseIp6Reasm(await this.ctx.readProcNet('snmp6', cookie));
  }

  async event(event: TunerEvent): Promise<void> {
    const drop = decodeFragDrop(event);
    if (drop.family !== Family.ipv4 && drop.family !== Family.ipv6) return;
    const cookie = event.netnsCookie;
    const ns = await this.ctx.namespaces.seen(cookie, event.netnsInum).catch(() => undefined);
    if (!ns) {
      this.ctx.log.debug(`ip_frag: namespace cookie ${cookie} is gone; ignoring its fragment drops`);
      return;
    }
    this.forgetDeadNamespaces();
    const tunable = drop.family === Family.ipv4 ? IPV4_HIGH_THRESH : IPV6_HIGH_THRESH;
    const key = `${cookie}/${drop.family}`;
    const h = this.history.get(key) ?? { correlation: new Correlation() };
    this.history.set(key, h);
    const [highThresh = 0] = (await this.ctx.get(tunable, cookie)).map(Number);
    if (this.declined.get(key) === highThresh) return;
    let rate: number | undefined;
    try {
      const now = await this.counters(drop.family, cookie);
      if (h.counters) rate = failPercent(h.counters, now);
      h.counters = now;
    } catch (err) {
      this.ctx.log.debug(`ip_frag: cannot read reassembly counters in netns cookie ${cookie}: ${errorText(err)}`);
    }
    if (rate !== undefined) h.correlation.add(highThresh, rate);
    // The kernel keeps high_thresh >= low_thresh, so the starting value is a floor it accepts.
    h.floor ??= highThresh;
    const correlated = h.correlation.exceeds();
    const decision = thresholdDecision(highThresh, h.floor, correlated, this.ctx.learning);
    if ('skip' in decision) {
      this.ctx.log.debug(`ip_frag: not changing ${tunable} in netns cookie ${cookie}: ${decision.skip}`);
      return;
    }
    const place = ns.global ? 'the global netns' : ns.name ? `netns ${ns.name}` : `netns cookie ${cookie}`;
    const evidence =
      `${drop.drops} fragments dropped in ${place} with ${drop.mem} bytes queued for reassembly` +
      (rate !== undefined ? `, ${rate.toFixed(1)}% of reassemblies failing since the last change` : '');
    // The reference's phrases first: operators grep for them.
    const reason =
      decision.direction === 'increase'
        ? `approaching fragmentation maximum threshold (${evidence})`
        : `reassembly failures rising with the fragmentation threshold (correlation ${h.correlation.value().toFixed(2)}; ${evidence})`;
    const changed = await this.ctx.set({
      tunable,
      scenario: decision.direction === 'increase' ? Scenario.increase : Scenario.decrease,
      netnsCookie: cookie,
      values: [decision.to],
      reason,
    });
    if (changed) this.declined.delete(key);
    else this.declined.set(key, highThresh);
  }

  private forgetDeadNamespaces(): void {
    for (const key of this.history.keys()) {
      const cookie = BigInt(key.split('/')[0] ?? '0');
      if (!this.ctx.namespaces.byCookie(cookie)) {
        this.history.delete(key);
        this.declined.delete(key);
      }
    }
  }
}

const tuners = new WeakMap<TunerContext, IpFragTuner>();

const ipFragTuner: TunerDefinition = {
  name: 'ip_frag',
  description: 'Raises a namespace\'s fragment reassembly memory (ipfrag_high_thresh, ip6frag_high_thresh) when fragments are dropped for want of it',
  tunables: [
    { name: IPV4_HIGH_THRESH, namespaced: true, values: 1 },
    { name: IPV6_HIGH_THRESH, namespaced: true, values: 1, optional: true },
  ],
  scenarios: [
    {
      id: Scenario.increase,
      name: 'need to increase IP fragmentation high threshold',
      description: 'Fragments were dropped because reassembly memory reached the high threshold; raise it so that fragmented datagrams can be reassembled',
    },
    {
      id: Scenario.decrease,
      name: 'need to decrease IP fragmentation high threshold',
      description:
        'Reassembly failures rose as the threshold was raised: more memory is holding fragments that never complete (possibly a fragment flood), so lower it',
    },
  ],
  init(ctx) {
    tuners.set(ctx, new IpFragTuner(ctx));
  },
  async event(event, ctx) {
    const tuner = tuners.get(ctx);
    if (tuner) await tuner.serialised(() => tuner.event(event));
  },
  fini(ctx) {
    tuners.delete(ctx);
  },
};

export default ipFragTuner;
