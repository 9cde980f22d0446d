/**
 * Loads one tuner module: checks its definition, opens, loads and attaches
 * its BPF object, builds its context (granting only the abilities it asks
 * for) and calls create(). What it returns is one handle whose close() undoes
 * whatever was done, in reverse; the same close() serves a load that failed
 * half way and an unload.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { KindProbe } from './attach-kinds';
import { attachTargetExists, type kernelTargetSources } from './attach-targets';
import { kernelFacts, planPrograms, type SelectedProgram } from './program-selection';
import { errorText, type Logger } from './log';
import type { NativeBinding, NativeLink, NativeObject } from './native';
import type { NetnsRegistry } from './netns';
import type { TunableRegistry } from './tunables';
import type { Abilities, Ability, LearningRate, TunerContext, TunerDefinition, TunerInstance } from './tuner';
import { tunableHandle } from './tunable-handle';
import type { TunerModule } from './plugin-dir';
import { LatencyWindow } from './latency';
import { delta, grow, nearlyFull, shrink } from './learning-rate';
import { typedMap } from './typed-map';
import { StrategyRunner, type ProgramSwitch, type StrategyStatus } from './strategy';
import { startTicker } from './ticker';
import { ChangeVerifier, verifierTimings } from './change-verifier';
import { HookSampler, periodStretches, sampledHookProblems, sampledProgram, withPeriod, type SamplingSettings } from './hook-sampling';

export interface LoaderOptions {
  learningShift: number;
  cgroupPath: string;
  legacy: boolean;
  advisory?: boolean;
  /** Lazily probes which attach kinds the kernel accepts (needed only for alternatives). */
  probeKinds: () => KindProbe[];
  /** Replaces every strategy's timeout (BPFTUNE_STRATEGY_TIMEOUT_MS, for tests). */
  strategyTimeoutMs?: number;
  /** BPFTUNE_HOOK_SAMPLING and BPFTUNE_HOOK_PERIOD_MS (hook-sampling.ts); absent: sampling on, declared periods. */
  hookSampling?: SamplingSettings;
  /** Programs to leave out as if their target were missing (BPFTUNE_DISABLE_PROGRAMS). */
  disabledPrograms?: ReadonlySet<string>;
}

/** What the loader needs from the daemon; the abilities are lent to the tuners that ask. */
export interface LoaderServices {
  nativeBinding: NativeBinding;
  registry: TunableRegistry;
  namespaces: NetnsRegistry;
  log: Logger;
  targets: ReturnType<typeof kernelTargetSources>;
  /** The shared ring buffer's fd, for objects that post events. */
  ringFd(): number;
  abilities: Omit<Abilities, 'recordAction' | 'strategies' | 'reportExternalWrite' | 'verifyChange'>;
  /** Tells the tuners an administrator wrote in that namespace took it over. */
  tellManual(tuner: string, cookie: bigint): void;
}

export interface LoadedTuner {
  id: number;
  definition: TunerDefinition<Ability>;
  module: TunerModule;
  instance: TunerInstance;
  object: NativeObject;
  attachModes: string[];
  programs: SelectedProgram[];
  events: number;
  eventErrors: number;
  latency: LatencyWindow;
  /** Its strategies and their scores, for a tuner that runs strategies. */
  strategies(): StrategyStatus | undefined;
  /** Its sampled hooks (see hook-sampling.ts): the dispatcher tells them of each event. */
  samplers: HookSampler[];
  /** Undoes the load: timers, the instance, links, the object, the registration. Idempotent. */
  close(): Promise<void>;
}

export class LoadError extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`${step} failed: ${errorText(cause)}`);
  }
}

const ABILITIES: readonly Ability[] = ['readProcNet', 'netlink', 'recordAction', 'strategies', 'verifyChange', 'reportExternalWrite', 'verifyNamespaces'];
/** Abilities only a core service (built in) is lent. */
const SERVICE_ABILITIES: readonly Ability[] = ['reportExternalWrite', 'verifyNamespaces'];
const KNOWN: ReadonlySet<unknown> = new Set(ABILITIES);
const SERVICE_ONLY: ReadonlySet<unknown> = new Set(SERVICE_ABILITIES);

/** Loads a tuner module fresh (a changed plugin must not come from require's cache) and checks its shape. */
export function requireDefinition(modulePath: string, builtin: boolean): TunerDefinition<Ability> {
  const resolved = require.resolve(modulePath);
  delete require.cache[resolved];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exported: unknown = require(resolved);
  const candidate = pickExport(exported);
  const problems: string[] = [];
  const name: unknown = candidate.name;
  if (typeof name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(name)) problems.push('name must be a lowercase identifier');
  if (typeof candidate.description !== 'string') problems.push('description must be a string');
  const tunables: unknown = candidate.tunables;
  if (!Array.isArray(tunables)) problems.push('tunables must be an array');
  else
    tunables.forEach((t: Record<string, unknown> | undefined, i) => {
      if (typeof t?.name !== 'string' || typeof t.namespaced !== 'boolean' || !Number.isInteger(t.values) || Number(t.values) < 1) {
        problems.push(`tunables[${i}] needs name (string), namespaced (boolean) and values (positive integer)`);
      }
    });
  const scenarios: unknown = candidate.scenarios;
  if (!Array.isArray(scenarios)) problems.push('scenarios must be an array');
  else
    scenarios.forEach((s: Record<string, unknown> | undefined, i) => {
      if (!Number.isInteger(s?.id) || typeof s?.name !== 'string' || typeof s.description !== 'string') {
        problems.push(`scenarios[${i}] needs id (integer), name and description (strings)`);
      }
    });
  if (typeof candidate.create !== 'function') problems.push('create must be a function (create(ctx) returns { event?, manual?, report?, close? })');
  const abilities: unknown = candidate.abilities ?? [];
  if (!Array.isArray(abilities) || abilities.some((a) => !KNOWN.has(a))) {
    problems.push(`abilities must list some of ${ABILITIES.join(', ')}`);
  } else if (!builtin && abilities.some((a) => SERVICE_ONLY.has(a))) {
    problems.push(`${SERVICE_ABILITIES.join(' and ')} are lent to built-in core services only`);
  }
  if (candidate.service !== undefined && !builtin) problems.push('only a built-in tuner can be a core service');
  if (problems.length) throw new Error(`not a valid tuner definition: ${problems.join('; ')}`);
  return candidate as unknown as TunerDefinition<Ability>;
}

function pickExport(exported: unknown): Record<string, unknown> {
  const record = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined);
  const module = record(exported) ?? {};
  return record(module.default) ?? record(module.tuner) ?? module;
}

export function learningRateFor(shift: number): LearningRate {
  return {
    shift,
    delta: (limit) => delta(limit, shift),
    grow: (limit) => grow(limit, shift),
    shrink: (limit) => shrink(limit, shift),
    nearlyFull: (value, limit) => nearlyFull(value, limit, shift),
  };
}

export async function loadTuner(
  module: TunerModule,
  definition: TunerDefinition<Ability>,
  id: number,
  services: LoaderServices,
  options: LoaderOptions,
): Promise<LoadedTuner> {
  const name = definition.name;
  /** By program name, so a strategy can detach and re-attach one. */
  const links = new Map<string, NativeLink>();
  const timers: Array<{ stop(): void }> = [];
  const strategies: StrategyHolder = { runner: undefined };
  let object: NativeObject | undefined;
  let registered = false;
  let instance: TunerInstance | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      for (const t of timers) t.stop();
      strategies.runner?.stop();
      try {
        await instance?.close?.();
      } catch (err) {
        services.log.error(`tuner '${name}': close failed: ${errorText(err)}`);
      }
      for (const l of links.values()) l.close();
      object?.close();
      if (registered) services.registry.unregister(name);
    })());

  let step = 'open BPF object';
  try {
    object = services.nativeBinding.openObject(path.join(module.dir, definition.bpfObject ?? `${name}.bpf.o`));
    step = 'choose programs';
    const { programs, flags } = choosePrograms(definition, object, services, options);
    const problems = sampledHookProblems(definition.sampledHooks ?? [], programs.map((p) => p.name));
    if (problems.length) throw new Error(`invalid sampledHooks: ${problems.join('; ')}`);
    step = 'set constants';
    setConstants(object, id, options, services.log, flags);
    if (object.maps().some((m) => m.name === 'ring_buffer')) object.reuseMap('ring_buffer', services.ringFd());
    step = 'load BPF object';
    object.load();
    for (const p of programs) {
      if (p.kind === 'iter') continue;
      step = `attach program '${p.name}' (${p.section})`;
      links.set(p.name, object.attach(p.name, p.kind === 'cgroup' ? options.cgroupPath : undefined));
    }
    const attachModes = [...new Set(programs.map((p) => p.kind))];
    services.registry.register(name, [...definition.tunables], [...definition.scenarios]);
    registered = true;
    step = 'create';
    const loadedObject = object;
    const programSwitch: ProgramSwitch = {
      loaded: () => programs.filter((p) => p.kind !== 'iter').map((p) => p.name),
      attached: (program) => links.has(program),
      attach: (program) => {
        const p = programs.find((q) => q.name === program);
        if (!p || links.has(program)) return;
        links.set(program, loadedObject.attach(p.name, p.kind === 'cgroup' ? options.cgroupPath : undefined));
        services.log.debug(`tuner '${name}': attached program '${program}' (${p.section})`);
      },
      detach: (program) => {
        links.get(program)?.close();
        if (links.delete(program)) services.log.debug(`tuner '${name}': detached program '${program}'`);
      },
    };
    const ctx = createContext(definition, object, attachModes, timers, services, options, { holder: strategies, programs: programSwitch });
    instance = await definition.create(ctx);
    step = 'start sampled hooks';
    const samplers = startSamplers(definition, programSwitch, services.log, options.hookSampling);
    timers.push(...samplers);
    return {
      id,
      definition,
      module,
      instance,
      object,
      attachModes,
      programs,
      events: 0,
      eventErrors: 0,
      latency: new LatencyWindow(1024),
      strategies: () => strategies.runner?.status(),
      samplers,
      close,
    };
  } catch (err) {
    await close();
    throw new LoadError(step, err);
  }
}

/** A sampler for each declared hook whose program was loaded (and attached above). */
function startSamplers(
  definition: TunerDefinition<Ability>,
  programs: ProgramSwitch,
  log: Logger,
  settings: SamplingSettings = { sampling: true, periodMs: undefined },
): HookSampler[] {
  const hooks = definition.sampledHooks ?? [];
  const loaded = programs.loaded();
  const samplers: HookSampler[] = [];
  for (const hook of hooks) {
    const program = sampledProgram(hook, loaded);
    if (program === undefined) continue;
    if (!settings.sampling) {
      log.info(`tuner '${definition.name}': program '${program}' stays attached (BPFTUNE_HOOK_SAMPLING=off)`);
      continue;
    }
    const sampler = new HookSampler(withPeriod(hook, settings.periodMs), program, {
      tuner: definition.name,
      log,
      programs,
      stretch: periodStretches(settings),
    });
    sampler.start();
    samplers.push(sampler);
  }
  return samplers;
}

function choosePrograms(
  definition: TunerDefinition<Ability>,
  object: NativeObject,
  services: LoaderServices,
  options: LoaderOptions,
): { programs: SelectedProgram[]; flags: string[] } {
  const supported = () => new Set(options.probeKinds().filter((k) => k.supported).map((k) => k.kind));
  const exists = (section: string) => attachTargetExists(section, services.targets);
  const plan = planPrograms(object.programs(), definition, kernelFacts(os.release()), supported, options.legacy, exists, options.disabledPrograms ?? new Set());
  const { selected, missing, conditions } = plan;
  for (const name of plan.leftOut) services.log.info(`tuner '${definition.name}': program '${name}' left out (BPFTUNE_DISABLE_PROGRAMS)`);
  for (const p of missing) {
    services.log.warn(
      `tuner '${definition.name}': this kernel has no target for program '${p.name}' (${p.section}) and the tuner declares no fallback for it; running without it`,
    );
  }
  for (const name of plan.notLoaded) object.setAutoload(name, false);
  const flags: string[] = [];
  for (const n of conditions.needed) {
    const chosen = selected.find((p) => p.name === n.program);
    if (!chosen) continue; // named as missing above
    services.log.info(`tuner '${definition.name}': loading '${n.program}' (${chosen.section}) because ${n.because}`);
    if (n.flag) flags.push(n.flag);
  }
  return { programs: selected, flags };
}

function setConstants(object: NativeObject, id: number, options: LoaderOptions, log: Logger, flags: readonly string[]): void {
  // A conditional program's flag is the tuner's own: failing to set it must fail the load.
  for (const flag of flags) object.setConst(flag, 1);
  const constants: Array<[string, number]> = [
    ['bpftune_tuner_id', id],
    ['bpftune_learning_shift', options.learningShift],
    ['bpftune_daemon_tgid', process.pid],
    ['bpftune_advisory', options.advisory ? 1 : 0],
  ];
  for (const [name, value] of constants) {
    try {
      object.setConst(name, value);
    } catch (err) {
      // An object that does not include bpf/bpftune.bpf.h has no such constants.
      log.debug(`${object.name}: constant ${name} not set: ${errorText(err)}`);
    }
  }
}

/** The tuner's strategy runner, once create() asked for one; the load's close() stops it. */
interface StrategyHolder {
  runner: StrategyRunner | undefined;
}

function createContext(
  definition: TunerDefinition<Ability>,
  object: NativeObject,
  attachModes: string[],
  timers: Array<{ stop(): void }>,
  services: LoaderServices,
  options: LoaderOptions,
  strategy: { holder: StrategyHolder; programs: ProgramSwitch },
): TunerContext & Abilities {
  const name = definition.name;
  const prefix = `${name}: `;
  const { registry, namespaces, abilities } = services;
  const log: Logger = {
    debugEnabled: services.log.debugEnabled,
    error: (m) => services.log.error(prefix + m),
    warn: (m) => services.log.warn(prefix + m),
    info: (m) => services.log.info(prefix + m),
    debug: (m) => services.log.debug(prefix + m),
  };
  const granted = new Set<Ability>(definition.abilities ?? []);
  let verifier: ChangeVerifier | undefined;
  // Every ability is in the object, so it has one type; one not requested refuses, saying what to declare.
  const need = (ability: Ability): void => {
    if (!granted.has(ability)) throw new Error(`tuner '${name}' did not request the '${ability}' ability: add it to the definition's abilities`);
  };
  return {
    name,
    log,
    learning: learningRateFor(options.learningShift),
    attachModes,
    namespaces: {
      get global() {
        return namespaces.global;
      },
      byCookie: (c) => namespaces.byCookie(c),
      all: () => namespaces.all(),
      seen: (cookie, inum) => namespaces.seen(cookie, inum),
    },
    tunable: (declaration) => tunableHandle(declaration, (cookie) => registry.get(name, declaration.name, cookie)),
    set: (change) => registry.set(name, change),
    map: (spec) => typedMap(object.map(spec.name), spec),
    manualNamespaces: () => registry.manualNamespaces(name),
    every: (intervalMs, task, tickerOptions) => {
      // A slow round (many namespaces to read) delays the next rather than overlapping itself.
      const ticker = startTicker(intervalMs, task, (err) => log.error(`timer task failed: ${errorText(err)}`), tickerOptions);
      timers.push(ticker);
      return ticker;
    },
    readProcNet: (file, cookie) => {
      need('readProcNet');
      return abilities.readProcNet(file, cookie);
    },
    netlink: (ns, protocol, message) => {
      need('netlink');
      return abilities.netlink(ns, protocol, message);
    },
    verifyNamespaces: () => {
      need('verifyNamespaces');
      return abilities.verifyNamespaces();
    },
    verifyChange: (change) => {
      need('verifyChange');
      // Windows never keep the process alive: an exit while a change is being verified is not held up.
      const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
      verifier ??= new ChangeVerifier({ ...verifierTimings(), log: (line) => log.info(line), sleep });
      return verifier.verify(change);
    },
    recordAction: (action) => {
      need('recordAction');
      return registry.action(name, action);
    },
    strategies: async (declarations, strategyOptions = {}) => {
      need('strategies');
      if (strategy.holder.runner) throw new Error(`tuner '${name}' asked for strategies twice: declare them all in one call`);
      const runner = new StrategyRunner(declarations, strategyOptions, {
        tuner: name,
        log: services.log,
        programs: strategy.programs,
        timeoutOverrideMs: options.strategyTimeoutMs,
        advisory: options.advisory,
      });
      await runner.start();
      strategy.holder.runner = runner;
      // The tuner sees which one runs, not the runner's controls.
      return {
        get current() {
          return runner.current;
        },
      };
    },
    reportExternalWrite: (write) => {
      need('reportExternalWrite');
      for (const disabled of registry.externalWrite(write)) services.tellManual(disabled, write.netnsCookie);
    },
  };
}
