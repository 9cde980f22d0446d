/**
 * net_buffer tuner: the per-CPU input backlog and NAPI polling budget.
 * - Backlog drops (BPF: kfree_skb with reason CPU_BACKLOG) above
 *   netdev_max_backlog / 32 in a minute: grow net.core.netdev_max_backlog,
 *   and set the dropping CPU's bit in net.core.flow_limit_cpu_bitmap so one
 *   heavy flow cannot take the whole backlog.
 * - softnet time_squeeze rising (slow timer on /proc/net/softnet_stat): grow
 *   net.core.netdev_budget and netdev_budget_usecs; when budget increases
 *   go together with rising scheduler wait time, shrink them again.
 * The timer's idle cost: each sysctl read through ctx.tunable() is a
 * worker-thread round trip (a wake-up of its own), so a sample reads only
 * softnet_stat and the wait time (synchronous, a few hundred bytes) unless
 * the counters say a rule has something to judge: the backlog threshold is
 * re-read when backlog drops moved, the budgets when polls were squeezed or
 * bpftune has grown them (the back-off then needs every sample).
 * All four sysctls are global (one value for the whole system).
 */
import type { ChangeRequest, SysctlValue, TunableDeclaration, TunerContext, TunerDefinition, TunerEvent } from '../../core/tuner';
import { NetBufferEventData, NetBufferScenario, maps } from './net_buffer.contract';
import { BudgetPolicy, hasCpu, parseSoftnetStat, readProcText, WAIT_SOURCES, withCpu, type SoftnetTotals, type WaitSource } from './softnet';

const MAX_BACKLOG_TUNABLE = { name: 'net.core.netdev_max_backlog', namespaced: false, values: 1 } satisfies TunableDeclaration;
/** Only in kernels built with CONFIG_NET_FLOW_LIMIT (Debian's are; some cloud and VM kernels are not). */
const FLOW_LIMIT_TUNABLE = { name: 'net.core.flow_limit_cpu_bitmap', namespaced: false, values: 1, string: true, optional: true } satisfies TunableDeclaration;
const BUDGET_TUNABLE = { name: 'net.core.netdev_budget', namespaced: false, values: 1 } satisfies TunableDeclaration;
const BUDGET_USECS_TUNABLE = { name: 'net.core.netdev_budget_usecs', namespaced: false, values: 1 } satisfies TunableDeclaration;
const MAX_BACKLOG = MAX_BACKLOG_TUNABLE.name;
const FLOW_LIMIT = FLOW_LIMIT_TUNABLE.name;
const BUDGET = BUDGET_TUNABLE.name;
const BUDGET_USECS = BUDGET_USECS_TUNABLE.name;

const { BACKLOG_DROPS: SCENARIO_BACKLOG_DROPS, FLOW_LIMIT: SCENARIO_FLOW_LIMIT, BUDGET_INCREASE: SCENARIO_BUDGET_INCREASE, BUDGET_DECREASE: SCENARIO_BUDGET_DECREASE } =
  NetBufferScenario;

/*
 * Upper bounds: a backlog of 128Ki packets per CPU can pin hundreds of MB;
 * a softirq running 3000 packets or 20 ms at a stretch starves tasks more
 * than squeezed polls cost.
 */
const MAX_BACKLOG_CAP = 131072;
const BUDGET_CAP = 3000;
const BUDGET_USECS_CAP = 20000;
const SOFTNET_INTERVAL_MS = 10_000;

async function readSoftnet(): Promise<SoftnetTotals> {
  return parseSoftnetStat(await readProcText('/proc/net/softnet_stat'));
}

function atLeastOneStep(grown: number, current: number): number {
  return Math.max(current + 1, grown);
}

class NetBufferTuner {
  private queue: Promise<void> = Promise.resolve();
  private readonly policy = new BudgetPolicy();
  private previous?: { at: number; softnet: SoftnetTotals; waitNs: number | undefined };
  private waitSource?: WaitSource;
  /** netdev_budget and _usecs before bpftune grew them: shrinking stops there. */
  private budgetFloor?: [number, number];
  /** The threshold last written to the BPF map: an unchanged one is not written again. */
  private thresholdWritten?: number;
  /** Backlog drops (softnet_stat column 1) when the threshold was last synced. */
  private dropsAtSync?: number;
  /** The kernel has per-CPU flow limits (net.core.flow_limit_cpu_bitmap exists). */
  private flowLimits = true;

  /**
   * Value at which a change was declined (an administrator took the sysctl
   * over, or the write failed), per tunable: not retried until it changes,
   * so a drop storm does not mean a "Skipping update" line per event.
   */
  private readonly declined = new Map<string, string>();

  constructor(private readonly ctx: TunerContext) {}

  private async change(request: ChangeRequest, current: SysctlValue): Promise<boolean> {
    if (this.declined.get(request.tunable) === String(current)) return false;
    const changed = await this.ctx.set(request);
    if (changed) this.declined.delete(request.tunable);
    else this.declined.set(request.tunable, String(current));
    return changed;
  }

  async init(): Promise<void> {
    for (const source of WAIT_SOURCES) {
      if ((await source.read().catch(() => undefined)) !== undefined) {
        this.waitSource = source;
        break;
      }
    }
    if (!this.waitSource) {
      this.ctx.log.info('no scheduler wait time (/proc/pressure/cpu, /proc/schedstat): netdev_budget increases will not be checked against it');
    }
    try {
      await this.ctx.tunable(FLOW_LIMIT_TUNABLE).get();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.flowLimits = false;
      this.ctx.log.info(`no ${FLOW_LIMIT} (kernel built without CONFIG_NET_FLOW_LIMIT): backlog drops will grow ${MAX_BACKLOG} only`);
    }
    await this.sampleSoftnet();
  }

  /** One change at a time: backlog events come in bursts and the timer shares the sysctls. */
  private serialised(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task);
    // The caller (event dispatch, timer) logs a failure; the chain only has to survive it.
    this.queue = next.catch(() => undefined);
    return next;
  }

  event(event: TunerEvent): Promise<void> {
    return this.serialised(() => this.backlogDrops(event));
  }

  tick(): Promise<void> {
    return this.serialised(() => this.sampleSoftnet());
  }

  /**
   * The BPF side compares drops with netdev_max_backlog / 32; keep it current
   * (an administrator may change it). On the timer only once backlog drops
   * moved: the threshold matters only for drops, and an administrator's
   * change with no drops since is picked up at the first sample that sees some.
   */
  private async syncThreshold(limit?: number): Promise<void> {
    const [backlog = 0] = limit === undefined ? await this.ctx.tunable(MAX_BACKLOG_TUNABLE).get() : [limit];
    const threshold = backlog >> 5;
    if (threshold === this.thresholdWritten) return;
    this.ctx.map(maps.backlogThreshold).update(0, threshold);
    this.thresholdWritten = threshold;
  }

  private async backlogDrops(event: TunerEvent): Promise<void> {
    const { cpu, windowNs } = NetBufferEventData.decode(event.data);
    const windowMs = Number(windowNs) / 1e6;
    const within = windowMs < 1000 ? `${Math.round(windowMs)} ms` : `${(windowMs / 1000).toFixed(1)} s`;
    const [drops = 0] = event.oldValues;
    const [backlog = 0] = await this.ctx.tunable(MAX_BACKLOG_TUNABLE).get();
    // Posted against an older, smaller limit (a burst): the grown one is judged on new drops.
    if (drops <= backlog >> 5) return;
    const target = Math.min(MAX_BACKLOG_CAP, atLeastOneStep(this.ctx.learning.grow(backlog), backlog));
    const why = `${drops} packets dropped at CPU ${cpu}'s full input backlog within ${within} (more than netdev_max_backlog/32 = ${backlog >> 5})`;
    if (target > backlog) {
      const changed = await this.change({ tunable: MAX_BACKLOG, scenario: SCENARIO_BACKLOG_DROPS, values: [target], reason: why }, backlog);
      if (changed) await this.syncThreshold(target);
    } else {
      this.ctx.log.debug(`not growing ${MAX_BACKLOG} past ${MAX_BACKLOG_CAP}: ${why}`);
    }
    if (!this.flowLimits) return;
    const [mask = '0'] = await this.ctx.tunable(FLOW_LIMIT_TUNABLE).get();
    if (!hasCpu(mask, cpu)) {
      await this.change(
        {
          tunable: FLOW_LIMIT,
          scenario: SCENARIO_FLOW_LIMIT,
          values: [withCpu(mask, cpu)],
          reason: `backlog drops on CPU ${cpu}`,
        },
        mask,
      );
    }
  }

  private async sampleSoftnet(): Promise<void> {
    const softnet = await readSoftnet();
    if (softnet.dropped !== this.dropsAtSync) {
      await this.syncThreshold();
      this.dropsAtSync = softnet.dropped;
    }
    const waitNs = await this.waitSource?.read().catch(() => undefined);
    const at = Date.now();
    const previous = this.previous;
    this.previous = { at, softnet, waitNs };
    if (!previous) return;
    const seconds = (at - previous.at) / 1000;
    const squeezes = softnet.timeSqueeze - previous.softnet.timeSqueeze;
    // No squeezed poll and budgets bpftune never grew: the rule would hold
    // (nothing to grow for, nothing of ours to shrink), so no sysctl is read.
    // The back-off's correlation then sees samples from the first squeezed
    // interval on, and every sample once bpftune has grown the budgets.
    if (squeezes === 0 && !this.budgetFloor) return;
    const [budget = 0] = await this.ctx.tunable(BUDGET_TUNABLE).get();
    const [usecs = 0] = await this.ctx.tunable(BUDGET_USECS_TUNABLE).get();
    const decision = this.policy.decide({
      squeezes,
      seconds,
      budget,
      waitNs: waitNs !== undefined && previous.waitNs !== undefined ? waitNs - previous.waitNs : undefined,
    });
    if (decision === 'grow') await this.growBudget(budget, usecs, squeezes, seconds);
    else if (decision === 'shrink') await this.shrinkBudget(budget, usecs);
  }

  private async growBudget(budget: number, usecs: number, squeezes: number, seconds: number): Promise<void> {
    const nextBudget = Math.min(BUDGET_CAP, atLeastOneStep(this.ctx.learning.grow(budget), budget));
    const nextUsecs = Math.min(BUDGET_USECS_CAP, atLeastOneStep(this.ctx.learning.grow(usecs), usecs));
    if (nextBudget <= budget && nextUsecs <= usecs) return;
    this.budgetFloor ??= [budget, usecs];
    const reason = `${squeezes} squeezed NAPI polls (time_squeeze) in ${seconds.toFixed(0)} s`;
    if (nextBudget > budget) await this.change({ tunable: BUDGET, scenario: SCENARIO_BUDGET_INCREASE, values: [nextBudget], reason }, budget);
    if (nextUsecs > usecs) await this.change({ tunable: BUDGET_USECS, scenario: SCENARIO_BUDGET_INCREASE, values: [nextUsecs], reason }, usecs);
  }

  private async shrinkBudget(budget: number, usecs: number): Promise<void> {
    const [floorBudget, floorUsecs] = this.budgetFloor ?? [budget, usecs];
    const nextBudget = Math.max(floorBudget, this.ctx.learning.shrink(budget));
    const nextUsecs = Math.max(floorUsecs, this.ctx.learning.shrink(usecs));
    const reason = `scheduler wait time rising with netdev_budget (correlation above 0.7)`;
    if (nextBudget < budget) await this.change({ tunable: BUDGET, scenario: SCENARIO_BUDGET_DECREASE, values: [nextBudget], reason }, budget);
    if (nextUsecs < usecs) await this.change({ tunable: BUDGET_USECS, scenario: SCENARIO_BUDGET_DECREASE, values: [nextUsecs], reason }, usecs);
  }
}

const netBufferTuner: TunerDefinition = {
  name: 'net_buffer',
  description: 'Grows the per-CPU input backlog on backlog drops (with flow limits) and the NAPI budget on squeezed polls',
  tunables: [
    MAX_BACKLOG_TUNABLE,
    FLOW_LIMIT_TUNABLE,
    BUDGET_TUNABLE,
    BUDGET_USECS_TUNABLE,
  ],
  scenarios: [
    {
      id: SCENARIO_BACKLOG_DROPS,
      name: 'need to increase max backlog size',
      description: "Packets were dropped because a CPU's input backlog was full; grow netdev_max_backlog so bursts are queued rather than dropped",
    },
    {
      id: SCENARIO_FLOW_LIMIT,
      name: 'need to enable flow limits for a CPU',
      description: 'A CPU dropped backlog packets; enable flow limits there so one heavy flow cannot fill the backlog for every other flow',
    },
    {
      id: SCENARIO_BUDGET_INCREASE,
      name: 'need to increase # of packets processed per NAPI poll',
      description: 'NAPI polls keep running out of budget with packets waiting (time_squeeze); grow netdev_budget and netdev_budget_usecs',
    },
    {
      id: SCENARIO_BUDGET_DECREASE,
      name: 'need to decrease # of packets processed per NAPI poll',
      description: 'Scheduler wait time rises with netdev_budget increases: time in softirq delays tasks; shrink netdev_budget and netdev_budget_usecs',
    },
  ],
  async create(ctx) {
    const tuner = new NetBufferTuner(ctx);
    await tuner.init();
    ctx.every(SOFTNET_INTERVAL_MS, () => tuner.tick());
    return { event: (event) => tuner.event(event) };
  },
};

export default netBufferTuner;
