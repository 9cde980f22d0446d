/**
 * A stand-in tuner context for unit tests of tuner logic (the kernel side
 * is covered by each tuner's own end-to-end test): every ability, maps that
 * hold what the tuner wrote as the kernel would (encoded bytes), tunables
 * read from a table, and every set() and recordAction() recorded.
 */
import type { Abilities, ActionRecord, ChangeRequest, MapSpec, StrategyDeclaration, SysctlValue, TickResult, TunerContext, TypedMap } from '../../src/core/tuner';
import { learningRateFor } from '../../src/core/tuner-loader';
import { tunableHandle } from '../../src/core/tunable-handle';

export class FakeMap<K, V> implements TypedMap<K, V> {
  readonly name: string;
  /** Encoded key (hex) -> encoded value, as the BPF side would see them. */
  readonly entries = new Map<string, Buffer>();
  constructor(private readonly spec: MapSpec<K, V>) {
    this.name = spec.name;
  }
  lookup(key: K): V | undefined {
    const value = this.entries.get(this.spec.key.encode(key).toString('hex'));
    return value ? this.spec.value.decode(value) : undefined;
  }
  update(key: K, value: V): void {
    this.entries.set(this.spec.key.encode(key).toString('hex'), this.spec.value.encode(value));
  }
  delete(key: K): boolean {
    return this.entries.delete(this.spec.key.encode(key).toString('hex'));
  }
  keys(): K[] {
    return [...this.entries.keys()].map((k) => this.spec.key.decode(Buffer.from(k, 'hex')));
  }
}

export interface FakeContext {
  ctx: TunerContext & Abilities;
  maps: Map<string, FakeMap<unknown, unknown>>;
  changes: ChangeRequest[];
  actions: ActionRecord[];
  /** Tasks given to ctx.every(), for the test to run when it likes. */
  timers: Array<() => Promise<TickResult> | TickResult>;
  /** What ctx.strategies() was given; the first runs, and switchTo() runs another, as the core would. */
  strategies: FakeStrategies;
}

export interface FakeStrategies {
  declarations: StrategyDeclaration[];
  current: string | undefined;
  switchTo(name: string): Promise<void>;
}

/** tunables: current values by name (global namespace); a set() that returns true updates them. */
export function fakeContext(name: string, tunables: Record<string, SysctlValue[]> = {}, learningShift = 2): FakeContext {
  const maps = new Map<string, FakeMap<unknown, unknown>>();
  const changes: ChangeRequest[] = [];
  const actions: ActionRecord[] = [];
  const timers: Array<() => Promise<TickResult> | TickResult> = [];
  const strategies: FakeStrategies = {
    declarations: [],
    current: undefined,
    async switchTo(name) {
      const next = this.declarations.find((d) => d.name === name);
      if (!next) throw new Error(`no strategy '${name}'`);
      await next.start?.();
      this.current = name;
    },
  };
  const global = { cookie: 1n, inum: 1, path: '/proc/self/ns/net', global: true };
  const ctx: TunerContext & Abilities = {
    name,
    log: { debugEnabled: false, error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
    learning: learningRateFor(learningShift),
    attachModes: [],
    namespaces: { global, byCookie: (c) => (c === global.cookie ? global : undefined), all: () => [global], seen: async () => global },
    tunable: (declaration) =>
      tunableHandle(declaration, async () => {
        const values = tunables[declaration.name];
        if (!values) throw new Error(`no ${declaration.name}`);
        return values;
      }),
    set: async (change) => {
      changes.push(change);
      tunables[change.tunable] = change.values;
      return true;
    },
    map: <K, V>(spec: MapSpec<K, V>) => {
      const map = new FakeMap(spec);
      maps.set(spec.name, map);
      return map;
    },
    every: (_ms, task) => {
      timers.push(task);
      return { wake: () => undefined, intervalMs: _ms };
    },
    manualNamespaces: () => [],
    readProcNet: async () => '',
    // Pure-logic tests: every change (and its first step, if any) is applied and kept, nothing is measured.
    verifyChange: async (change) => {
      const firstMade = change.first ? await change.first() : false;
      if (!(await change.apply())) return { kind: 'not applied', key: change.key, firstMade };
      return { kind: 'kept', key: change.key, benefit: { measure: change.benefit.name, before: 0, after: 0, verdict: 'improved' }, guards: [] };
    },
    netlink: async () => [],
    recordAction: async (action) => {
      actions.push(action);
      return true;
    },
    strategies: async (declarations) => {
      strategies.declarations = [...declarations];
      await strategies.switchTo(declarations[0].name);
      return {
        get current() {
          return strategies.current ?? '';
        },
      };
    },
    reportExternalWrite: () => undefined,
    verifyNamespaces: async () => undefined,
  };
  return { ctx, maps, changes, actions, timers, strategies };
}
