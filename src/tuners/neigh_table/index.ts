/**
 * neigh_table tuner: when a neighbour table (arp_cache for IPv4, ndisc_cache
 * for IPv6) nears gc_thresh3, above which the kernel refuses new neighbours
 * ("neighbour table overflow"), grow that table's thresh1..3 over netlink
 * (RTM_SETNEIGHTBL, what `ip ntable change` sends), no further than the
 * device's prefixes make plausible; when a table bpftune grew is nearly
 * empty again, shrink it back towards where it was.
 *
 * The kernel keeps one table per family for the whole system and accepts
 * threshold changes only from the initial namespace (elsewhere RTM_SETNEIGHTBL
 * fails with ENOENT), so changes are made there ("global ns") whichever
 * namespace the entries were created in; the reason line names it.
 */
import { errorText } from '../../core/log';
import type { ContextWith, KernelIo, Namespace, NetlinkRequest, SysctlValue, TunableAccess, TunerDefinition, TunerEvent } from '../../core/tuner';
import {
  AF_INET,
  AF_INET6,
  countNeighboursByDevice,
  getAddressesRequest,
  getNeighboursRequest,
  getNeighTablesRequest,
  NETLINK_ROUTE,
  parseAddresses,
  parseNeighTables,
  setNeighTableRequest,
  type NeighTableInfo,
  type NeighThresholds,
} from './rtnetlink';
import { formatAddress, plausibleNeighbours } from './plausible';
import { NeighTableEventData, NeighTableScenario, NeighTableSlot, maps } from './neigh_table.contract';

const { NEARLY_FULL: SCENARIO_NEARLY_FULL, NEARLY_EMPTY: SCENARIO_NEARLY_EMPTY } = NeighTableScenario;
/*
 * Whatever the prefixes say (an IPv6 /64 says "unbounded"), no table grows
 * past this: ~50 MB of entries, and a neighbour-discovery scan of a /64
 * must not turn into unbounded kernel memory.
 */
const THRESH3_CAP = 131072;
/** How often a table bpftune grew is checked for having emptied without removal events. */
const RECHECK_INTERVAL_MS = 10_000;

interface TableSpec {
  family: number;
  name: string;
  /** Index in the BPF neigh_table_floor map. */
  slot: number;
}

const TABLES: TableSpec[] = [
  { family: AF_INET, name: 'arp_cache', slot: NeighTableSlot.ARP },
  { family: AF_INET6, name: 'ndisc_cache', slot: NeighTableSlot.NDISC },
];

type Context = ContextWith<'netlink'>;

async function readTable(spec: TableSpec, netlink: NetlinkRequest, global: Namespace): Promise<NeighTableInfo> {
  // Thresholds live in the initial namespace's view only (see above).
  const table = parseNeighTables(await netlink(global, NETLINK_ROUTE, getNeighTablesRequest(spec.family))).find((t) => t.name === spec.name);
  if (!table) throw new Error(`RTM_GETNEIGHTBL: the kernel reported no neighbour table '${spec.name}'`);
  return table;
}

function tableAccess(spec: TableSpec): TunableAccess {
  return {
    // A global tunable: the core passes the initial namespace.
    async read(ns: Namespace, kernel: KernelIo) {
      const t = await readTable(spec, kernel.netlink, ns);
      return [t.thresh1, t.thresh2, t.thresh3];
    },
    async write(ns: Namespace, values: readonly SysctlValue[], kernel: KernelIo) {
      const [thresh1, thresh2, thresh3] = values.map(Number);
      if (thresh1 === undefined || thresh2 === undefined || thresh3 === undefined) throw new Error(`${spec.name} takes 3 thresholds`);
      try {
        await kernel.netlink(ns, NETLINK_ROUTE, setNeighTableRequest(spec.family, spec.name, { thresh1, thresh2, thresh3 }));
      } catch (err) {
        throw new Error(`RTM_SETNEIGHTBL for '${spec.name}': ${errorText(err)}`);
      }
    },
    command: (values) => `ip ntable change name ${spec.name} thresh1 ${values[0]} thresh2 ${values[1]} thresh3 ${values[2]}`,
  };
}

function thresholdsOf(t: NeighThresholds): number[] {
  return [t.thresh1, t.thresh2, t.thresh3];
}

function same(a: NeighThresholds, b: NeighThresholds): boolean {
  return a.thresh1 === b.thresh1 && a.thresh2 === b.thresh2 && a.thresh3 === b.thresh3;
}

/** Grows each threshold by a learning-rate step, keeping thresh1 <= thresh2 <= thresh3 <= cap. */
export function grownThresholds(t: NeighThresholds, grow: (n: number) => number, cap: number): NeighThresholds {
  const thresh3 = Math.min(cap, grow(t.thresh3));
  const thresh2 = Math.min(thresh3, grow(t.thresh2));
  const thresh1 = Math.min(thresh2, grow(t.thresh1));
  return { thresh1, thresh2, thresh3 };
}

/**
 * Shrinks step by step while the table would still be at most a quarter
 * used, never below the floor (the thresholds before bpftune grew them).
 */
export function shrunkThresholds(t: NeighThresholds, floor: NeighThresholds, used: number, shrink: (n: number) => number): NeighThresholds {
  let current = { ...t };
  for (;;) {
    const next = {
      thresh1: Math.max(floor.thresh1, shrink(current.thresh1)),
      thresh2: Math.max(floor.thresh2, shrink(current.thresh2)),
      thresh3: Math.max(floor.thresh3, shrink(current.thresh3)),
    };
    if (same(next, current)) return current;
    current = next;
    if (used > current.thresh3 >> 2) return current;
  }
}

interface TableState {
  /** Thresholds before bpftune first grew the table: the shrink floor and the rollback target. */
  floor?: NeighThresholds;
  /** What bpftune last wrote; anything else found there was written by someone else. */
  lastSet?: NeighThresholds;
  handsOff: boolean;
  /** The bound last reported as stopping growth, so it is logged once. */
  boundLogged?: number;
}

interface Bound {
  limit: number;
  why: string;
}

class NeighTableTuner {
  private readonly state = new Map<number, TableState>();
  /** One decision at a time per table: events arrive in bursts. */
  private queue = new Map<number, Promise<void>>();

  constructor(private readonly ctx: Context) {}

  /** A table's state, made on first use. */
  private stateOf(spec: TableSpec): TableState {
    let state = this.state.get(spec.family);
    if (!state) {
      state = { handsOff: false };
      this.state.set(spec.family, state);
    }
    return state;
  }

  handle(event: TunerEvent): Promise<void> {
    const data = NeighTableEventData.decode(event.data);
    const spec = TABLES.find((t) => t.family === data.family);
    if (!spec) return Promise.resolve();
    return this.serialised(spec, async (state, table) => {
      if (event.scenarioId === SCENARIO_NEARLY_FULL) await this.grow(spec, state, table, event, data);
      else if (event.scenarioId === SCENARIO_NEARLY_EMPTY) await this.shrink(spec, state, table, data.gcEntries, 'entries subject to garbage collection');
    });
  }

  /**
   * Removal events stop when the table stops emptying, possibly before it
   * has shrunk all the way back; this slow check finishes the job. It
   * counts every entry (netlink reports no other count), which errs towards
   * shrinking less.
   */
  async recheck(): Promise<void> {
    for (const spec of TABLES) {
      const state = this.stateOf(spec);
      if (!state.floor || !state.lastSet || state.handsOff || same(state.lastSet, state.floor)) continue;
      await this.serialised(spec, async (current, table) => {
        if (table.entries <= table.thresh3 >> 2) await this.shrink(spec, current, table, table.entries, 'entries');
      });
    }
  }

  /** One decision at a time per table, on its current thresholds; none once someone else has changed them. */
  private serialised(spec: TableSpec, decide: (state: TableState, table: NeighTableInfo) => Promise<void>): Promise<void> {
    const previous = this.queue.get(spec.family) ?? Promise.resolve();
    const next = previous.then(async () => {
      const state = this.stateOf(spec);
      if (state.handsOff) return;
      const table = await readTable(spec, this.ctx.netlink, this.ctx.namespaces.global);
      if (state.lastSet && !same(state.lastSet, table)) {
        state.handsOff = true;
        this.setFloor(spec, 0);
        this.ctx.log.info(
          `neighbour table '${spec.name}' thresholds are (${thresholdsOf(table).join(' ')}), not the (${thresholdsOf(state.lastSet).join(' ')}) ` +
            `bpftune set: someone else changed them, so bpftune no longer tunes '${spec.name}'`,
        );
        return;
      }
      await decide(state, table);
    });
    this.queue.set(spec.family, next.catch(() => undefined));
    return next;
  }

  private async grow(spec: TableSpec, state: TableState, table: NeighTableInfo, event: TunerEvent, data: NeighTableEventData): Promise<void> {
    // An earlier event in the same burst may have grown it already.
    if (!data.overflow && !this.ctx.learning.nearlyFull(data.gcEntries, table.thresh3)) return;
    const ns = await this.ctx.namespaces.seen(event.netnsCookie, event.netnsInum);
    const plausible = ns ? await this.bound(spec, ns, data, table).catch((err: unknown) => this.unbounded(err, data)) : undefined;
    const bound: Bound =
      plausible && plausible.limit < THRESH3_CAP
        ? plausible
        : { limit: THRESH3_CAP, why: `bpftune grows no neighbour table past ${THRESH3_CAP} entries` };
    const proposed = grownThresholds(table, (n) => this.ctx.learning.grow(n), bound.limit);
    if (proposed.thresh3 < this.ctx.learning.grow(table.thresh3)) {
      if (state.boundLogged !== bound.limit) {
        state.boundLogged = bound.limit;
        this.ctx.log.info(
          `neighbour table '${spec.name}' is nearly full (${data.gcEntries} of ${table.thresh3}), but growth stops at ${bound.limit} entries: ${bound.why}`,
        );
      }
      if (proposed.thresh3 <= table.thresh3) return;
    }
    const where = ns ? (ns.global ? 'global ns' : 'non-global ns') : `netns cookie ${event.netnsCookie}`;
    const reason =
      `neighbour table '${spec.name}' ${data.overflow ? 'refusing new entries' : 'nearly full'} (${data.gcEntries} of gc_thresh3 ${table.thresh3} ` +
      `entries subject to garbage collection; new entry on ${data.dev} in ${where})`;
    const floor = state.floor ?? { thresh1: table.thresh1, thresh2: table.thresh2, thresh3: table.thresh3 };
    const changed = await this.ctx.set({ tunable: spec.name, scenario: SCENARIO_NEARLY_FULL, values: thresholdsOf(proposed), reason });
    if (!changed) return;
    state.floor = floor;
    state.lastSet = proposed;
    this.setFloor(spec, floor.thresh3);
  }

  private async shrink(spec: TableSpec, state: TableState, table: NeighTableInfo, used: number, counted: string): Promise<void> {
    if (!state.floor) return;
    const proposed = shrunkThresholds(table, state.floor, used, (n) => this.ctx.learning.shrink(n));
    if (same(proposed, table)) return;
    const reason = `neighbour table '${spec.name}' nearly empty (${used} of gc_thresh3 ${table.thresh3} ${counted})`;
    const changed = await this.ctx.set({ tunable: spec.name, scenario: SCENARIO_NEARLY_EMPTY, values: thresholdsOf(proposed), reason });
    if (!changed) return;
    state.lastSet = proposed;
    state.boundLogged = undefined;
    if (same(proposed, state.floor)) this.setFloor(spec, 0);
  }

  /**
   * Entries on other devices (any namespace) plus the hosts this device's
   * prefixes can hold: more than that cannot all be real neighbours.
   */
  private async bound(spec: TableSpec, ns: Namespace, data: NeighTableEventData, table: NeighTableInfo): Promise<Bound> {
    const addresses = parseAddresses(await this.ctx.netlink(ns, NETLINK_ROUTE, getAddressesRequest(spec.family))).filter(
      (a) => a.ifindex === data.ifindex && a.family === spec.family,
    );
    const plausible = plausibleNeighbours(addresses);
    // Counting the device's entries means dumping them; pointless when its prefixes bound nothing.
    const onDevice =
      plausible >= THRESH3_CAP ? 0 : (countNeighboursByDevice(await this.ctx.netlink(ns, NETLINK_ROUTE, getNeighboursRequest(spec.family))).get(data.ifindex) ?? 0);
    const elsewhere = Math.max(0, table.entries - onDevice);
    const limit = Math.min(Number.MAX_SAFE_INTEGER, plausible + elsewhere);
    const prefixes = addresses.map(formatAddress).join(', ') || 'no addresses';
    return {
      limit,
      why: `${data.dev} (${prefixes}) can have at most ${plausible} neighbours, and other devices hold ${elsewhere} entries`,
    };
  }

  private unbounded(err: unknown, data: NeighTableEventData): undefined {
    this.ctx.log.warn(`cannot read the prefixes of ${data.dev} to bound neighbour table growth: ${errorText(err)}; growing without a bound`);
    return undefined;
  }

  private setFloor(spec: TableSpec, thresh3: number): void {
    try {
      this.ctx.map(maps.neighTableFloor).update(spec.slot, thresh3);
    } catch (err) {
      this.ctx.log.warn(`cannot tell the BPF side the shrink floor of '${spec.name}': ${errorText(err)}; it will not shrink back`);
    }
  }
}

const neighTableTuner: TunerDefinition<'netlink'> = {
  name: 'neigh_table',
  description: 'Grows a neighbour table (arp_cache, ndisc_cache) near gc_thresh3, within what the device prefixes make plausible',
  tunables: TABLES.map((spec) => ({
    name: spec.name,
    namespaced: false,
    values: 3,
    labels: ['thresh1', 'thresh2', 'thresh3'],
    access: tableAccess(spec),
  })),
  scenarios: [
    {
      id: SCENARIO_NEARLY_FULL,
      name: 'neighbour table nearly full',
      description:
        'A neighbour table is close to gc_thresh3, above which the kernel refuses new neighbours ("neighbour table overflow") and drops their traffic; grow the table\'s thresholds',
    },
    {
      id: SCENARIO_NEARLY_EMPTY,
      name: 'neighbour table nearly empty',
      description: 'A neighbour table bpftune grew is mostly empty again; shrink its thresholds back towards their earlier values',
    },
  ],
  abilities: ['netlink'],
  create(ctx) {
    const tuner = new NeighTableTuner(ctx);
    ctx.every(RECHECK_INTERVAL_MS, () => tuner.recheck());
    return { event: (event) => tuner.handle(event) };
  },
};

export default neighTableTuner;
