/**
 * TunerHost: loads tuners (built-in and plugins alike), gives each its own
 * context, dispatches ring buffer events to them by tuner id, and unloads
 * them. A tuner that fails to load, or throws, is logged and left out; the
 * others keep running.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KindProbe } from './attach-kinds';
import { selectPrograms, type SelectedProgram } from './program-selection';
import { attachTargetExists, kernelTargetSources } from './attach-targets';
import { decodeEvent, type TunerEvent } from './event';
import { errorText, type Logger } from './log';
import type { NativeBinding, NativeLink, NativeObject, NativeRingBuffer } from './native';
import type { NetnsRegistry } from './netns';
import type { TunableRegistry } from './tunables';
import type { LearningRate, TunerContext, TunerDefinition, TunerReport } from './tuner';
import { scanTunerDirectory, type TunerModule } from './plugin-dir';
import { LatencyWindow } from './latency';
import { delta, grow, nearlyFull, shrink } from './learning-rate';
import { nativeProcNetReader } from './sysctl-access';

const RING_BUFFER_BYTES = 256 * 1024;
const WATCH_DEBOUNCE_MS = 250;

export interface HostOptions {
  learningRate: number;
  learningShift: number;
  cgroupPath: string;
  legacy: boolean;
  /** Only these tuners when non-empty (-a). */
  allow: string[];
  /** The built-in tuners' directory: installed with the daemon, so the directories above it are not checked. */
  builtinDir: string;
  /** Lazily probes which attach kinds the kernel accepts (needed only for alternatives). */
  probeKinds: () => KindProbe[];
  /** --advise: BPF sides must not act on their own (bpftune_advisory). */
  advisory?: boolean;
}

export interface LoadedTuner {
  id: number;
  definition: TunerDefinition;
  module: TunerModule;
  context: TunerContext;
  object: NativeObject;
  links: NativeLink[];
  timers: NodeJS.Timeout[];
  attachModes: string[];
  programs: SelectedProgram[];
  events: number;
  eventErrors: number;
  latency: LatencyWindow;
}

/** A tuner that could not be loaded from a module (for metrics: its name, or its directory's when unknown). */
export interface FailedTuner {
  tuner: string;
  dir: string;
  reason: string;
}

export class TunerHost {
  private readonly loaded = new Map<string, LoadedTuner>();
  private readonly byId = new Map<number, LoadedTuner>();
  /** Signature of the last failed attempt per module path, so a broken plugin is retried only once it changes. */
  private readonly failed = new Map<string, string>();
  /** By module path, until the module loads or is removed. */
  private readonly failedTuners = new Map<string, FailedTuner>();
  private readonly handledListeners: Array<(tuner: string, seconds: number) => void> = [];
  /** Every tuner name found in the directories, loaded or not (to check -a against). */
  private readonly discovered = new Set<string>();
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly watchTimers = new Map<string, NodeJS.Timeout>();
  private nextId = 1;
  private readonly targets = kernelTargetSources();
  private ring: NativeRingBuffer | undefined;
  private stopping = false;
  private syncing: Promise<void> = Promise.resolve();
  private readonly readProcNet: ReturnType<typeof nativeProcNetReader>;

  constructor(
    private readonly nativeBinding: NativeBinding,
    private readonly registry: TunableRegistry,
    private readonly namespaces: NetnsRegistry,
    private readonly log: Logger,
    private readonly options: HostOptions,
  ) {
    this.readProcNet = nativeProcNetReader(nativeBinding, namespaces);
  }

  start(): void {
    this.ring = this.nativeBinding.createRingBuffer(RING_BUFFER_BYTES, (samples) => this.dispatch(samples));
    if (!this.targets.btf()) {
      this.log.warn(
        'this kernel has no BTF (/sys/kernel/btf/vmlinux): tuners whose programs are tp_btf, fentry or iterators, or read kernel ' +
          'structs through CO-RE, cannot load and are named below; the others run. A kernel built with CONFIG_DEBUG_INFO_BTF=y runs them all',
      );
    }
  }

  tuners(): LoadedTuner[] {
    return [...this.loaded.values()];
  }

  failures(): FailedTuner[] {
    return [...this.failedTuners.values()];
  }

  /** Hears each event whose handler finished without error: seconds from BPF posting it to the handler done. */
  onEventHandled(listener: (tuner: string, seconds: number) => void): void {
    this.handledListeners.push(listener);
  }

  /** Names of every tuner found so far, including those -a left out. */
  discoveredNames(): string[] {
    return [...this.discovered].sort();
  }

  /** Each loaded tuner's report, for those that make one; a failing report is logged and left out. */
  reports(): Array<{ tuner: string; report: TunerReport }> {
    const reports: Array<{ tuner: string; report: TunerReport }> = [];
    for (const t of this.loaded.values()) {
      if (!t.definition.report) continue;
      try {
        reports.push({ tuner: t.definition.name, report: t.definition.report(t.context) });
      } catch (err) {
        this.log.error(`tuner '${t.definition.name}': report failed: ${errorText(err)}; its report is left out`);
      }
    }
    return reports;
  }

  /** Loads every tuner found in the directories; later directories cannot replace earlier names. */
  async loadDirectories(dirs: string[]): Promise<void> {
    for (const dir of dirs) await this.syncDirectory(dir);
  }

  /** Follows plugins being added, changed or removed while running. */
  watch(dirs: string[]): void {
    for (const dir of dirs) {
      try {
        const watcher = fs.watch(dir, { persistent: false }, () => this.scheduleSync(dir));
        watcher.on('error', (err) => this.log.warn(`stopped watching plugin directory ${dir}: ${errorText(err)}`));
        this.watchers.push(watcher);
        // Files replaced inside a tuner's folder do not show up on the parent directory.
        for (const t of this.loaded.values()) {
          if (path.dirname(t.module.dir) === dir) this.watchTunerDir(dir, t.module.dir);
        }
      } catch (err) {
        this.log.debug(`not watching plugin directory ${dir}: ${errorText(err)}`);
      }
    }
  }

  private watchTunerDir(libdir: string, tunerDir: string): void {
    try {
      const watcher = fs.watch(tunerDir, { persistent: false }, () => this.scheduleSync(libdir));
      watcher.on('error', () => watcher.close());
      this.watchers.push(watcher);
    } catch {
      // The directory vanished between scan and watch; the parent's watcher covers that.
    }
  }

  private scheduleSync(dir: string): void {
    if (this.stopping) return;
    clearTimeout(this.watchTimers.get(dir));
    const timer = setTimeout(() => {
      this.watchTimers.delete(dir);
      this.syncing = this.syncing.then(() => this.syncDirectory(dir)).catch((err) => this.log.error(`plugin directory ${dir}: ${errorText(err)}`));
    }, WATCH_DEBOUNCE_MS);
    timer.unref();
    this.watchTimers.set(dir, timer);
  }

  private async syncDirectory(dir: string): Promise<void> {
    if (this.stopping) return;
    const { modules, rejected, ignored } = await scanTunerDirectory(dir, {
      checkAncestors: dir !== this.options.builtinDir,
      xattrExists: (file, name) => this.nativeBinding.xattrExists(file, name),
    });
    for (const r of rejected) {
      if (this.failed.get(r.path) === r.reason) continue;
      this.failed.set(r.path, r.reason);
      this.log.error(
        `refusing untrusted plugin '${r.path}': ${r.reason}; bpftune loads only what no one but root can change ` +
          '(root-owned, not group/other-writable, no ACL, no symbolic link, in such directories all the way from /)',
      );
    }
    for (const r of ignored) {
      if (this.failed.get(r.path) === r.reason) continue;
      this.failed.set(r.path, r.reason);
      this.log.info(`ignoring ${r.path} in the plugin directory: ${r.reason}`);
    }
    const present = new Set(modules.map((m) => m.modulePath));
    for (const [modulePath, f] of this.failedTuners) {
      if (path.dirname(f.dir) === dir && !present.has(modulePath)) this.failedTuners.delete(modulePath);
    }
    for (const t of [...this.loaded.values()]) {
      if (path.dirname(t.module.dir) === dir && !present.has(t.module.modulePath)) {
        this.log.info(`tuner '${t.definition.name}' was removed from ${dir}; unloading it`);
        await this.unload(t.definition.name);
      }
    }
    for (const m of modules) {
      const current = [...this.loaded.values()].find((t) => t.module.modulePath === m.modulePath);
      if (current && current.module.signature === m.signature) continue;
      if (!current && this.failed.get(m.modulePath) === m.signature) continue;
      if (current) {
        this.log.info(`tuner '${current.definition.name}' changed on disk; reloading it`);
        await this.unload(current.definition.name);
      }
      const ok = await this.load(m);
      if (ok) {
        this.failed.delete(m.modulePath);
        if (this.watchers.length) this.watchTunerDir(dir, m.dir);
      } else {
        this.failed.set(m.modulePath, m.signature);
      }
    }
  }

  async load(module: TunerModule): Promise<boolean> {
    let definition: TunerDefinition;
    try {
      definition = requireDefinition(module.modulePath);
    } catch (err) {
      this.log.error(`tuner in ${module.dir}: cannot load ${module.modulePath}: ${errorText(err)}; other tuners are unaffected`);
      this.failedTuners.set(module.modulePath, { tuner: path.basename(module.dir), dir: module.dir, reason: errorText(err) });
      return false;
    }
    const name = definition.name;
    this.discovered.add(name);
    if (this.options.allow.length && !this.options.allow.includes(name)) {
      this.log.debug(`tuner '${name}' not in the allow list (-a); skipping it`);
      return true;
    }
    if (this.loaded.has(name)) {
      this.log.error(`tuner '${name}' in ${module.dir} has the same name as a loaded tuner; not loading it`);
      return false;
    }
    const id = this.nextId++;
    let object: NativeObject | undefined;
    const links: NativeLink[] = [];
    let step = 'open BPF object';
    try {
      object = this.nativeBinding.openObject(path.join(module.dir, definition.bpfObject ?? `${name}.bpf.o`));
      step = 'choose programs';
      const programs = this.choosePrograms(definition, object);
      step = 'set constants';
      this.setConstants(object, id);
      if (object.maps().some((m) => m.name === 'ring_buffer')) {
        if (!this.ring) throw new Error('host not started');
        object.reuseMap('ring_buffer', this.ring.fd);
      }
      step = 'load BPF object';
      object.load();
      for (const p of programs) {
        if (p.kind === 'iter') continue;
        step = `attach program '${p.name}' (${p.section})`;
        links.push(object.attach(p.name, p.kind === 'cgroup' ? this.options.cgroupPath : undefined));
      }
      const loadedObject = object;
      const tuner: LoadedTuner = {
        id,
        definition,
        module,
        object,
        links,
        timers: [],
        programs,
        attachModes: [...new Set(programs.map((p) => p.kind))],
        events: 0,
        eventErrors: 0,
        latency: new LatencyWindow(1024),
        context: undefined as unknown as TunerContext,
      };
      tuner.context = this.createContext(tuner, loadedObject);
      this.registry.register(name, definition.tunables, definition.scenarios);
      this.loaded.set(name, tuner);
      this.byId.set(id, tuner);
      step = 'init';
      await definition.init?.(tuner.context);
      const sections = programs.length ? ` with ${programs.map((p) => p.section).join(', ')}` : '';
      this.log.info(`tuner '${name}' loaded (${tuner.attachModes.join(', ') || 'no programs'})${sections}`);
      this.failedTuners.delete(module.modulePath);
      return true;
    } catch (err) {
      this.log.error(`tuner '${name}': ${step} failed: ${errorText(err)}; bpftune carries on without it`);
      this.failedTuners.set(module.modulePath, { tuner: name, dir: module.dir, reason: `${step} failed: ${errorText(err)}` });
      const partial = this.loaded.get(name);
      if (partial) {
        for (const t of partial.timers) clearInterval(t);
        this.loaded.delete(name);
        this.byId.delete(id);
        this.registry.unregister(name);
      }
      for (const l of links) l.close();
      object?.close();
      return false;
    }
  }

  async unload(name: string): Promise<void> {
    const t = this.loaded.get(name);
    if (!t) return;
    this.loaded.delete(name);
    this.byId.delete(t.id);
    for (const timer of t.timers) clearInterval(timer);
    try {
      await t.definition.fini?.(t.context);
    } catch (err) {
      this.log.error(`tuner '${name}': fini failed: ${errorText(err)}`);
    }
    for (const l of t.links) l.close();
    t.object.close();
    this.registry.unregister(name);
    this.log.debug(`tuner '${name}' unloaded`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.watchers) w.close();
    for (const t of this.watchTimers.values()) clearTimeout(t);
    await this.syncing;
    for (const name of [...this.loaded.keys()].reverse()) await this.unload(name);
    this.ring?.close();
    this.ring = undefined;
  }

  private choosePrograms(definition: TunerDefinition, object: NativeObject): SelectedProgram[] {
    const supported = () => new Set(this.options.probeKinds().filter((k) => k.supported).map((k) => k.kind));
    const exists = (section: string) => attachTargetExists(section, this.targets);
    const { selected, disabled, missing } = selectPrograms(object.programs(), definition.programAlternatives ?? [], supported, this.options.legacy, exists);
    for (const p of missing) {
      this.log.warn(
        `tuner '${definition.name}': this kernel has no target for program '${p.name}' (${p.section}) and the tuner declares no fallback for it; running without it`,
      );
    }
    for (const name of disabled) object.setAutoload(name, false);
    return selected;
  }

  private setConstants(object: NativeObject, id: number): void {
    const constants: Array<[string, number]> = [
      ['bpftune_tuner_id', id],
      ['bpftune_learning_shift', this.options.learningShift],
      ['bpftune_daemon_tgid', process.pid],
      ['bpftune_advisory', this.options.advisory ? 1 : 0],
    ];
    for (const [name, value] of constants) {
      try {
        object.setConst(name, value);
      } catch (err) {
        // An object that does not include bpf/bpftune.bpf.h has no such constants.
        this.log.debug(`${object.name}: constant ${name} not set: ${errorText(err)}`);
      }
    }
  }

  private createContext(tuner: LoadedTuner, object: NativeObject): TunerContext {
    const name = tuner.definition.name;
    const prefix = `${name}: `;
    const log: Logger = {
      debugEnabled: this.log.debugEnabled,
      error: (m) => this.log.error(prefix + m),
      warn: (m) => this.log.warn(prefix + m),
      info: (m) => this.log.info(prefix + m),
      debug: (m) => this.log.debug(prefix + m),
    };
    const registry = this.registry;
    const namespaces = this.namespaces;
    return {
      name,
      log,
      learningRate: this.options.learningRate,
      learningShift: this.options.learningShift,
      learning: learningRateFor(this.options.learningShift),
      bpf: { map: (m) => object.map(m), attachModes: tuner.attachModes },
      namespaces: {
        get global() {
          return namespaces.global;
        },
        byCookie: (c) => namespaces.byCookie(c),
        all: () => namespaces.all(),
        rescan: () => namespaces.rescan(),
        seen: (cookie, inum) => namespaces.seen(cookie, inum),
        verify: () => namespaces.verify(),
      },
      get: (tunable, cookie) => registry.get(name, tunable, cookie),
      readProcNet: async (file, cookie) => {
        const ns = cookie === undefined || cookie === 0n ? namespaces.global : await namespaces.resolve(cookie);
        if (!ns) throw new Error(`network namespace cookie ${cookie} no longer exists`);
        return this.readProcNet(ns, file);
      },
      set: (change) => registry.set(name, change),
      recordAction: (action) => registry.action(name, action),
      manualNamespaces: () => registry.manualNamespaces(name),
      reportExternalWrite: (write) => {
        for (const disabled of registry.externalWrite(write)) this.tellManual(disabled, write.netnsCookie);
      },
      every: (intervalMs, task) => {
        // A slow round (many namespaces to read) skips ticks rather than overlapping itself.
        let running = false;
        const timer = setInterval(() => {
          if (running) return;
          running = true;
          Promise.resolve()
            .then(task)
            .catch((err) => log.error(`timer task failed: ${errorText(err)}`))
            .finally(() => {
              running = false;
            });
        }, intervalMs);
        timer.unref();
        tuner.timers.push(timer);
      },
    };
  }

  /** A tuner's definition hears that its namespaces changed: an administrator took one over, or handed it back. */
  tellManual(name: string, cookie: bigint): void {
    const tuner = this.loaded.get(name);
    if (!tuner?.definition.manual) return;
    Promise.resolve()
      .then(() => tuner.definition.manual?.(cookie, tuner.context))
      .catch((err) => this.log.error(`tuner '${name}': handling the administrator's takeover of netns cookie ${cookie} failed: ${errorText(err)}`));
  }

  private dispatch(samples: Buffer[]): void {
    const received = process.hrtime.bigint();
    for (const sample of samples) {
      let event: TunerEvent;
      try {
        event = decodeEvent(sample);
      } catch (err) {
        this.log.warn(`dropping malformed ring buffer sample: ${errorText(err)}`);
        continue;
      }
      const tuner = this.byId.get(event.tunerId);
      if (!tuner?.definition.event) continue;
      tuner.events++;
      tuner.latency.add(Number(received - event.ktimeNs));
      const t = tuner;
      const ktimeNs = event.ktimeNs;
      const handled = this.handledListeners.length ? () => this.eventHandled(t, ktimeNs) : undefined;
      try {
        const result = t.definition.event?.(event, t.context);
        if (result instanceof Promise) {
          result.then(handled, (err) => this.handlerFailed(t, err));
        } else {
          handled?.();
        }
      } catch (err) {
        this.handlerFailed(t, err);
      }
    }
  }

  private eventHandled(tuner: LoadedTuner, ktimeNs: bigint): void {
    const seconds = Number(process.hrtime.bigint() - ktimeNs) / 1e9;
    for (const listener of this.handledListeners) listener(tuner.definition.name, seconds);
  }

  private handlerFailed(tuner: LoadedTuner, err: unknown): void {
    tuner.eventErrors++;
    this.log.error(`tuner '${tuner.definition.name}': event handler failed: ${errorText(err)}; event dropped, tuner keeps running`);
  }
}

/** Loads a tuner module fresh (a changed plugin must not come from require's cache) and checks its shape. */
function requireDefinition(modulePath: string): TunerDefinition {
  const resolved = require.resolve(modulePath);
  delete require.cache[resolved];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exported = require(resolved) as { default?: unknown; tuner?: unknown };
  const candidate = (exported.default ?? exported.tuner ?? exported) as Partial<TunerDefinition>;
  const problems: string[] = [];
  if (typeof candidate.name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(candidate.name)) problems.push('name must be a lowercase identifier');
  if (typeof candidate.description !== 'string') problems.push('description must be a string');
  if (!Array.isArray(candidate.tunables)) problems.push('tunables must be an array');
  else
    candidate.tunables.forEach((t, i) => {
      if (typeof t?.name !== 'string' || typeof t.namespaced !== 'boolean' || !Number.isInteger(t.values) || t.values < 1) {
        problems.push(`tunables[${i}] needs name (string), namespaced (boolean) and values (positive integer)`);
      }
    });
  if (!Array.isArray(candidate.scenarios)) problems.push('scenarios must be an array');
  else
    candidate.scenarios.forEach((s, i) => {
      if (!Number.isInteger(s?.id) || typeof s.name !== 'string' || typeof s.description !== 'string') {
        problems.push(`scenarios[${i}] needs id (integer), name and description (strings)`);
      }
    });
  for (const hook of ['init', 'event', 'fini', 'report'] as const) {
    if (candidate[hook] !== undefined && typeof candidate[hook] !== 'function') problems.push(`${hook} must be a function`);
  }
  if (problems.length) throw new Error(`not a valid tuner definition: ${problems.join('; ')}`);
  return candidate as TunerDefinition;
}

function learningRateFor(shift: number): LearningRate {
  return {
    delta: (limit) => delta(limit, shift),
    grow: (limit) => grow(limit, shift),
    shrink: (limit) => shrink(limit, shift),
    nearlyFull: (value, limit) => nearlyFull(value, limit, shift),
  };
}
