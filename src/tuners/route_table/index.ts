/**
 * route_table tuner: when a namespace's IPv6 destination entries near
 * net.ipv6.route.max_size, grow max_size in that namespace. The count comes
 * from /proc/net/rt6_stats, read inside each known namespace on a slow
 * timer: a kernel counter is cheaper than any hook on destination creation
 * (see README.md for the choice).
 */
import { errorText } from '../../core/log';
import type { ContextWith, Namespace, TickResult, TunableDeclaration, TunerContext, TunerDefinition } from '../../core/tuner';
import { parseRt6Stats, type Rt6Stats } from './rt6-stats';

const MAX_SIZE = { name: 'net.ipv6.route.max_size', namespaced: true, values: 1 } satisfies TunableDeclaration;
const SCENARIO_NEARLY_FULL = 0;
/** The sysctl is an int. */
const MAX_SIZE_CAP = 0x7fffffff;
const CHECK_INTERVAL_MS = 5_000;
/** While every namespace holds less than a quarter of its max_size. */
const QUIET_CHECK_INTERVAL_MS = 30_000;

/** The smallest max_size above `limit` at which `entries` is no longer nearly full. */
export function roomyMaxSize(entries: number, limit: number, ctx: Pick<TunerContext, 'learning'>): number {
  let target = Math.max(1, limit);
  while (target < MAX_SIZE_CAP && ctx.learning.nearlyFull(entries, target)) {
    target = Math.min(MAX_SIZE_CAP, Math.max(target + 1, ctx.learning.grow(target)));
  }
  return target;
}

class RouteTableTuner {
  /** max_size at which a change was declined (administrator took over), per namespace: not retried until it changes. */
  private readonly declined = new Map<bigint, number>();

  constructor(private readonly ctx: ContextWith<'readProcNet'>) {}

  /**
   * Runs on ctx.every(), which never overlaps a slow round with the next;
   * 'quiet' (read less often) while every namespace holds less than a
   * quarter of its max_size.
   */
  async check(): Promise<TickResult> {
    const namespaces = this.ctx.namespaces.all();
    const alive = new Set(namespaces.map((ns) => ns.cookie));
    for (const cookie of this.declined.keys()) if (!alive.has(cookie)) this.declined.delete(cookie);
    let quiet = true;
    for (const ns of namespaces) if (!(await this.checkNamespace(ns))) quiet = false;
    return quiet ? 'quiet' : undefined;
  }

  /** Whether the namespace's entries are far (under a quarter) from its max_size. */
  private async checkNamespace(ns: Namespace): Promise<boolean> {
    let stats: Rt6Stats;
    let limit: number;
    try {
      stats = parseRt6Stats(await this.ctx.readProcNet('rt6_stats', ns.global ? undefined : ns.cookie));
      [limit = 0] = await this.ctx.tunable(MAX_SIZE).get(ns.cookie);
    } catch (err) {
      // Namespaces come and go between the list and the read; IPv6 may be disabled in one.
      this.ctx.log.debug(`cannot read IPv6 destination count in netns cookie ${ns.cookie}: ${errorText(err)}`);
      return true;
    }
    if (stats.dstEntries < limit / 4) return true;
    if (!this.ctx.learning.nearlyFull(stats.dstEntries, limit)) return false;
    if (this.declined.get(ns.cookie) === limit) return false;
    const target = roomyMaxSize(stats.dstEntries, limit, this.ctx);
    if (target <= limit) return false;
    const changed = await this.ctx.set({
      tunable: MAX_SIZE.name,
      scenario: SCENARIO_NEARLY_FULL,
      netnsCookie: ns.cookie,
      values: [target],
      reason: `${stats.dstEntries} IPv6 destination entries (${stats.fibRtCache} cached routes) near max_size ${limit}`,
    });
    if (changed) this.declined.delete(ns.cookie);
    else this.declined.set(ns.cookie, limit);
    return false;
  }
}

const routeTableTuner: TunerDefinition<'readProcNet'> = {
  name: 'route_table',
  description: 'Grows net.ipv6.route.max_size in a namespace whose IPv6 destination entries near it',
  tunables: [MAX_SIZE],
  abilities: ['readProcNet'],
  scenarios: [
    {
      id: SCENARIO_NEARLY_FULL,
      name: 'IPv6 destination table nearly full',
      description:
        'The IPv6 destination entries (cached routes such as PMTU exceptions) are close to net.ipv6.route.max_size, beyond which older kernels refuse new ones; grow max_size',
    },
  ],
  create(ctx) {
    const tuner = new RouteTableTuner(ctx);
    ctx.every(CHECK_INTERVAL_MS, () => tuner.check(), { quietIntervalMs: QUIET_CHECK_INTERVAL_MS });
    return {};
  },
};

export default routeTableTuner;
