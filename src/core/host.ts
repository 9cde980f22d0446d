/**
 * TunerHost: the tuners the daemon runs, built-in and plugins alike. Three
 * parts do the work: the plugin watcher (plugin-watcher.ts) keeps them in
 * step with the directories, the loader (tuner-loader.ts) turns a module
 * into a running tuner with one close(), and the dispatcher (dispatcher.ts)
 * hands ring buffer events to them. A tuner that fails to load, or throws,
 * is logged and left out; the others keep running.
 */
import * as path from 'node:path';
import type { KindProbe } from './attach-kinds';
import { kernelTargetSources } from './attach-targets';
import { Dispatcher } from './dispatcher';
import type { SamplingSettings } from './hook-sampling';
import { errorText, type Logger } from './log';
import type { NativeBinding } from './native';
import type { NetnsRegistry } from './netns';
import type { TunableRegistry } from './tunables';
import type { Ability, TunerDefinition, TunerReport } from './tuner';
import type { TunerModule } from './plugin-dir';
import { PluginWatcher } from './plugin-watcher';
import { nativeProcNetReader, nativeSysctlAccess } from './sysctl-access';
import { LoadError, loadTuner, requireDefinition, type LoadedTuner, type LoaderServices } from './tuner-loader';

export type { LoadedTuner } from './tuner-loader';

export interface HostOptions {
  learningRate: number;
  learningShift: number;
  cgroupPath: string;
  legacy: boolean;
  /** Only these tuners, and the core services, when non-empty (-a). */
  allow: string[];
  /** The built-in tuners' directory: installed with the daemon, so the directories above it are not checked. */
  builtinDir: string;
  /** Lazily probes which attach kinds the kernel accepts (needed only for alternatives). */
  probeKinds: () => KindProbe[];
  /** --advise: BPF sides must not act on their own (bpftune_advisory). */
  advisory?: boolean;
  /** Replaces every strategy's timeout (BPFTUNE_STRATEGY_TIMEOUT_MS, for tests). */
  strategyTimeoutMs?: number;
  /** BPFTUNE_HOOK_SAMPLING and BPFTUNE_HOOK_PERIOD_MS (hook-sampling.ts); absent: sampling on, declared periods. */
  hookSampling?: SamplingSettings;
  /** Programs to leave out as if their target were missing (BPFTUNE_DISABLE_PROGRAMS). */
  disabledPrograms?: ReadonlySet<string>;
}

/** A tuner that could not be loaded from a module (for metrics: its name, or its directory's when unknown). */
export interface FailedTuner {
  tuner: string;
  dir: string;
  reason: string;
}

export class TunerHost {
  private readonly loaded = new Map<string, LoadedTuner>();
  /** By module path, until the module loads or is removed. */
  private readonly failedTuners = new Map<string, FailedTuner>();
  /** Every tuner name found in the directories, loaded or not (to check -a against). */
  private readonly discovered = new Set<string>();
  private nextId = 1;
  private readonly targets = kernelTargetSources();
  private readonly dispatcher: Dispatcher;
  private readonly watcher: PluginWatcher;
  private readonly services: LoaderServices;

  constructor(
    nativeBinding: NativeBinding,
    registry: TunableRegistry,
    namespaces: NetnsRegistry,
    private readonly log: Logger,
    private readonly options: HostOptions,
  ) {
    this.dispatcher = new Dispatcher(nativeBinding, log, (cookie) => namespaces.alive(cookie));
    this.watcher = new PluginWatcher(
      {
        loaded: () => this.tuners().map((t) => ({ name: t.definition.name, module: t.module })),
        load: (m) => this.load(m),
        unload: (name) => this.unload(name),
        vanished: (dir, present) => {
          for (const [modulePath, f] of this.failedTuners) {
            if (path.dirname(f.dir) === dir && !present.has(modulePath)) this.failedTuners.delete(modulePath);
          }
        },
      },
      log,
      options.builtinDir,
      (file, name) => nativeBinding.xattrExists(file, name),
    );
    const readProcNet = nativeProcNetReader(nativeBinding, namespaces);
    const kernel = nativeSysctlAccess(nativeBinding, namespaces);
    this.services = {
      nativeBinding,
      registry,
      namespaces,
      log,
      targets: this.targets,
      ringFd: () => this.dispatcher.ringFd(),
      tellManual: (tuner, cookie) => this.tellManual(tuner, cookie),
      abilities: {
        readProcNet: async (file, cookie) => {
          const ns = cookie === undefined || cookie === 0n ? namespaces.global : await namespaces.resolve(cookie);
          if (!ns) throw new Error(`network namespace cookie ${cookie} no longer exists`);
          return readProcNet(ns, file);
        },
        netlink: kernel.netlink,
        verifyNamespaces: () => namespaces.verify(),
      },
    };
  }

  start(): void {
    this.dispatcher.start();
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
    this.dispatcher.onEventHandled(listener);
  }

  /** Names of every tuner found so far, including those -a left out. */
  discoveredNames(): string[] {
    return [...this.discovered].sort();
  }

  /** Each loaded tuner's report, for those that make one; a failing report is logged and left out. */
  reports(): Array<{ tuner: string; report: TunerReport }> {
    const reports: Array<{ tuner: string; report: TunerReport }> = [];
    for (const t of this.loaded.values()) {
      if (!t.instance.report) continue;
      try {
        reports.push({ tuner: t.definition.name, report: t.instance.report() });
      } catch (err) {
        this.log.error(`tuner '${t.definition.name}': report failed: ${errorText(err)}; its report is left out`);
      }
    }
    return reports;
  }

  /** Loads every tuner found in the directories; later directories cannot replace earlier names. */
  async loadDirectories(dirs: string[]): Promise<void> {
    for (const dir of dirs) await this.watcher.sync(dir);
  }

  /** Follows plugins being added, changed or removed while running. */
  watch(dirs: string[]): void {
    this.watcher.watch(dirs);
  }

  async load(module: TunerModule): Promise<boolean> {
    let definition: TunerDefinition<Ability>;
    const builtin = path.dirname(module.dir) === this.options.builtinDir;
    try {
      definition = requireDefinition(module.modulePath, builtin);
    } catch (err) {
      this.log.error(`tuner in ${module.dir}: cannot load ${module.modulePath}: ${errorText(err)}; other tuners are unaffected`);
      this.failedTuners.set(module.modulePath, { tuner: path.basename(module.dir), dir: module.dir, reason: errorText(err) });
      return false;
    }
    const name = definition.name;
    this.discovered.add(name);
    if (this.options.allow.length && !this.options.allow.includes(name) && !definition.service) {
      this.log.debug(`tuner '${name}' not in the allow list (-a); skipping it`);
      return true;
    }
    if (this.loaded.has(name)) {
      this.log.error(`tuner '${name}' in ${module.dir} has the same name as a loaded tuner; not loading it`);
      return false;
    }
    try {
      const tuner = await loadTuner(module, definition, this.nextId++, this.services, this.options);
      this.loaded.set(name, tuner);
      this.dispatcher.add(tuner);
      const sections = tuner.programs.length ? ` with ${tuner.programs.map((p) => p.section).join(', ')}` : '';
      this.log.info(`tuner '${name}' loaded (${tuner.attachModes.join(', ') || 'no programs'})${sections}`);
      this.failedTuners.delete(module.modulePath);
      return true;
    } catch (err) {
      const reason = err instanceof LoadError ? err.message : errorText(err);
      this.log.error(`tuner '${name}': ${reason}; bpftune carries on without it`);
      this.failedTuners.set(module.modulePath, { tuner: name, dir: module.dir, reason });
      return false;
    }
  }

  async unload(name: string): Promise<void> {
    const t = this.loaded.get(name);
    if (!t) return;
    this.loaded.delete(name);
    this.dispatcher.remove(t);
    await t.close();
    this.log.debug(`tuner '${name}' unloaded`);
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
    for (const name of [...this.loaded.keys()].reverse()) await this.unload(name);
    this.dispatcher.close();
  }

  /** A tuner hears that its namespaces changed: an administrator took one over, or handed it back. */
  tellManual(name: string, cookie: bigint): void {
    const tuner = this.loaded.get(name);
    if (!tuner?.instance.manual) return;
    Promise.resolve()
      .then(() => tuner.instance.manual?.(cookie))
      .catch((err) => this.log.error(`tuner '${name}': handling the administrator's takeover of netns cookie ${cookie} failed: ${errorText(err)}`));
  }
}
