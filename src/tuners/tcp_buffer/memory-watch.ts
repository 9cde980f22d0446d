/**
 * Push and pull on TCP memory. Near tcp_mem[1] (pressure) raise tcp_mem, as
 * far as free buffer pages allow. Near tcp_mem[2] (exhaustion, allocations
 * being refused) retreat in the namespace whose socket was refused: shrink
 * its buffer maxima, stop caching per-destination metrics there, and stop
 * high-order page allocations for socket data; undo the latter once TCP's use
 * drops below tcp_mem[0]. While near pressure no buffer limit is raised.
 */
import { errorText } from '../../core/log';
import type { SysctlValue, TunableDeclaration, TunerContext } from '../../core/tuner';
import { freeBufferPages, grownTcpMem, tcpPagesAllocated } from './memory';
import { Scenario, Tunable } from './scenarios';

/** Sysctls set to survive exhaustion, with the values to restore afterwards. */
interface Retreat {
  cookie: bigint;
  restore: Array<{ tunable: string; values: SysctlValue[] }>;
}

export class MemoryWatch {
  private pagesAllocated = 0;
  private tcpMem: number[] = [];
  private freePages: number | undefined;
  /** Namespaces (and the global high-order switch, cookie 0) changed for exhaustion. */
  private readonly retreats = new Map<bigint, Retreat>();

  constructor(
    private readonly ctx: TunerContext,
    readonly sockstatPath = '/proc/net/sockstat',
  ) {}

  /**
   * Near pressure, or retreating from exhaustion until memory recovers:
   * raising buffer limits now would only add to it. (Once the kernel refuses
   * allocations, TCP's use can fall well below the thresholds while the
   * shortage lasts, so the counter alone would say "fine" too early.)
   */
  get constrained(): boolean {
    const pressure = this.tcpMem[1];
    if (this.retreats.size > 0) return true;
    return pressure !== undefined && this.ctx.learning.nearlyFull(this.pagesAllocated, pressure);
  }

  /** Far from any TCP memory threshold, with nothing to undo: polling can slow down. */
  get calm(): boolean {
    const [low = 0] = this.tcpMem;
    return this.retreats.size === 0 && low > 0 && this.pagesAllocated < low / 2;
  }

  async check(): Promise<void> {
    this.pagesAllocated = tcpPagesAllocated(this.sockstatPath);
    this.tcpMem = await this.ctx.tunable(Tunable.mem).get();
    const [low = 0, pressure = 0] = this.tcpMem;
    if (this.ctx.learning.nearlyFull(this.pagesAllocated, pressure)) await this.raiseTcpMem();
    else if (this.pagesAllocated < low && this.retreats.size) await this.recover();
  }

  /** sock:sock_exceed_buf_limit: the kernel refused a TCP socket memory in namespace `cookie`. */
  async allocationRefused(cookie: bigint, allocated: number, tcpMem: number[]): Promise<void> {
    const max = tcpMem[2] ?? 0;
    this.pagesAllocated = Math.max(this.pagesAllocated, allocated);
    if (!max || !this.ctx.learning.nearlyFull(allocated, max)) return;
    const reason = `TCP memory use of ${allocated} pages near tcp_mem max ${max}`;
    await this.raiseTcpMem();
    for (const tunable of [Tunable.rmem, Tunable.wmem]) await this.shrinkMax(tunable, cookie, reason);
    await this.retreat(cookie, Tunable.noMetricsSave, 1, reason);
    await this.retreat(cookie, Tunable.noSsthreshMetricsSave, 1, reason);
    await this.retreat(0n, Tunable.highOrderAllocDisable, 1, reason);
  }

  private async raiseTcpMem(): Promise<void> {
    const mem = await this.ctx.tunable(Tunable.mem).get();
    this.freePages ??= await freeBufferPages();
    const grown = grownTcpMem(mem, this.freePages, (v) => this.ctx.learning.grow(v));
    if (grown.every((v, i) => v === mem[i])) {
      this.ctx.log.debug(`tcp_mem (${mem.join(' ')}) is at its cap for ${this.freePages} free buffer pages`);
      return;
    }
    await this.ctx.set({
      tunable: Tunable.mem.name,
      scenario: Scenario.memPressure,
      values: grown,
      reason: `TCP memory use of ${this.pagesAllocated} pages near pressure threshold ${mem[1]}`,
    });
    this.tcpMem = grown;
  }

  private async shrinkMax(declaration: TunableDeclaration, cookie: bigint, reason: string): Promise<void> {
    const tunable = declaration.name;
    const [min = 0, def = 0, max = 0] = await this.ctx.tunable(declaration).get(cookie);
    const target = Math.max(def, this.ctx.learning.shrink(max));
    if (target >= max) return;
    await this.ctx.set({ tunable, scenario: Scenario.decrease, netnsCookie: cookie, values: [min, def, target], reason });
  }

  private async retreat(cookie: bigint, declaration: TunableDeclaration, value: number, reason: string): Promise<void> {
    const tunable = declaration.name;
    let before: SysctlValue[];
    try {
      before = await this.ctx.tunable(declaration).get(cookie);
    } catch (err) {
      // Optional tunables (tcp_no_ssthresh_metrics_save, high_order_alloc_disable) are missing on older kernels.
      this.ctx.log.debug(`cannot read ${tunable}: ${errorText(err)}`);
      return;
    }
    if (Number(before[0]) === value) return;
    const changed = await this.ctx.set({ tunable, scenario: Scenario.memExhaustion, netnsCookie: cookie, values: [value], reason });
    if (!changed) return;
    const r = this.retreats.get(cookie) ?? { cookie, restore: [] };
    r.restore.push({ tunable, values: before });
    this.retreats.set(cookie, r);
  }

  private async recover(): Promise<void> {
    const reason = `TCP memory use of ${this.pagesAllocated} pages below tcp_mem min ${this.tcpMem[0]}`;
    for (const r of [...this.retreats.values()]) {
      this.retreats.delete(r.cookie);
      for (const { tunable, values } of r.restore) {
        await this.ctx.set({ tunable, scenario: Scenario.memRecovered, netnsCookie: r.cookie, values, reason });
      }
    }
  }
}
