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
import type { ContextWith, TunableDeclaration, TunerDefinition, TunerEvent } from '../../core/tuner';
import { IpFragEventData, IpFragFamily, IpFragScenario } from './ip_frag.contract';
import { failPercent, IPV4_HIGH_THRESH, IPV6_HIGH_THRESH, parseIp6Reasm, parseIpReasm, thresholdDecision, type ReasmCounters } from './reassembly';

const IPV4_TUNABLE = { name: IPV4_HIGH_THRESH, namespaced: true, values: 1 } satisfies TunableDeclaration;
const IPV6_TUNABLE = { name: IPV6_HIGH_THRESH, namespaced: true, values: 1, optional: true } satisfies TunableDeclaration;

type IpFragContext = ContextWith<'readProcNet'>;

/**
 * Samples (one per change, threshold against the failure rate since the
 * last one) the correlation looks back over. Eight changes span a sixfold
 * range of thresholds at 25% steps: enough for a trend, short enough that
 * it is the current one. With the default 32, a flood that began after
 * raising had helped (failures first falling from ~99% as the threshold
 * rose, then climbing again as junk grew) was hidden by the earlier,
 * opposite samples until the threshold had outgrown the flood and drops,
 * hence samples, stopped: no step back at all (ip_frag.test.ts).
 */
const CORRELATION_WINDOW = 8;

export interface FragDropEvent {
  family: number;
  drops: number;
  mem: number;
  highThresh: number;
}

export function decodeFragDrop(event: TunerEvent): FragDropEvent {
  const d = IpFragEventData.decode(event.data);
  return { family: d.family, drops: event.oldValues[0] ?? 0, mem: Number(d.mem), highThresh: Number(d.highThresh) };
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

  constructor(private readonly ctx: IpFragContext) {}

  serialised(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async counters(family: number, cookie: bigint): Promise<ReasmCounters> {
    return family === IpFragFamily.IPV4 ? parseIpReasm(await this.ctx.readProcNet('snmp', cookie)) : parseIp6Reasm(await this.ctx.readProcNet('snmp6', cookie));
  }

  async event(event: TunerEvent): Promise<void> {
    const drop = decodeFragDrop(event);
    if (drop.family !== IpFragFamily.IPV4 && drop.family !== IpFragFamily.IPV6) return;
    const cookie = event.netnsCookie;
    const ns = await this.ctx.namespaces.seen(cookie, event.netnsInum).catch(() => undefined);
    if (!ns) {
      this.ctx.log.debug(`namespace cookie ${cookie} is gone; ignoring its fragment drops`);
      return;
    }
    this.forgetDeadNamespaces();
    const declaration = drop.family === IpFragFamily.IPV4 ? IPV4_TUNABLE : IPV6_TUNABLE;
    const tunable = declaration.name;
    const key = `${cookie}/${drop.family}`;
    const h = this.history.get(key) ?? { correlation: new Correlation(CORRELATION_WINDOW) };
    this.history.set(key, h);
    const [highThresh = 0] = await this.ctx.tunable(declaration).get(cookie);
    if (this.declined.get(key) === highThresh) return;
    let rate: number | undefined;
    try {
      const now = await this.counters(drop.family, cookie);
      if (h.counters) rate = failPercent(h.counters, now);
      h.counters = now;
    } catch (err) {
      this.ctx.log.debug(`cannot read reassembly counters in netns cookie ${cookie}: ${errorText(err)}`);
    }
    if (rate !== undefined) h.correlation.add(highThresh, rate);
    // The kernel keeps high_thresh >= low_thresh, so the starting value is a floor it accepts.
    const floor = (h.floor ??= highThresh);
    const decision = thresholdDecision(highThresh, floor, h.correlation.exceeds(), this.ctx.learning);
    if ('skip' in decision) {
      this.ctx.log.debug(`not changing ${tunable} in netns cookie ${cookie}: ${decision.skip}`);
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
      scenario: decision.direction === 'increase' ? IpFragScenario.INCREASE : IpFragScenario.DECREASE,
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

const ipFragTuner: TunerDefinition<'readProcNet'> = {
  name: 'ip_frag',
  description: 'Raises a namespace\'s fragment reassembly memory (ipfrag_high_thresh, ip6frag_high_thresh) when fragments are dropped for want of it',
  tunables: [IPV4_TUNABLE, IPV6_TUNABLE],
  abilities: ['readProcNet'],
  scenarios: [
    {
      id: IpFragScenario.INCREASE,
      name: 'need to increase IP fragmentation high threshold',
      description: 'Fragments were dropped because reassembly memory reached the high threshold; raise it so that fragmented datagrams can be reassembled',
    },
    {
      id: IpFragScenario.DECREASE,
      name: 'need to decrease IP fragmentation high threshold',
      description:
        'Reassembly failures rose as the threshold was raised: more memory is holding fragments that never complete (possibly a fragment flood), so lower it',
    },
  ],
  create(ctx) {
    const tuner = new IpFragTuner(ctx);
    return { event: (event) => tuner.serialised(() => tuner.event(event)) };
  },
};

export default ipFragTuner;
