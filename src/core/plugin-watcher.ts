/**
 * Keeps the loaded tuners in step with the plugin directories: scans a
 * directory (trust rules in plugin-dir.ts), loads what is new, reloads what
 * changed on disk, unloads what was removed, and follows changes while the
 * daemon runs. A module that failed is retried only once it changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorText, type Logger } from './log';
import { scanTunerDirectory, type TunerModule } from './plugin-dir';

const WATCH_DEBOUNCE_MS = 250;

/** What the watcher asks of the host. */
export interface PluginHandlers {
  loaded(): Array<{ name: string; module: TunerModule }>;
  /** false: failed (logged); retried once the module changes. */
  load(module: TunerModule): Promise<boolean>;
  unload(name: string): Promise<void>;
  /** These module paths are no longer in dir. */
  vanished(dir: string, present: ReadonlySet<string>): void;
}

export class PluginWatcher {
  /** Signature of the last failed attempt (or the reason for a rejection) per path. */
  private readonly failed = new Map<string, string>();
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private syncing: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    private readonly handlers: PluginHandlers,
    private readonly log: Logger,
    /** The built-in directory is installed with the daemon: the directories above it are not checked. */
    private readonly builtinDir: string,
    private readonly xattrExists: (file: string, name: string) => boolean,
  ) {}

  async sync(dir: string): Promise<void> {
    if (this.stopping) return;
    const { modules, rejected, ignored } = await scanTunerDirectory(dir, {
      checkAncestors: dir !== this.builtinDir,
      xattrExists: this.xattrExists,
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
    this.handlers.vanished(dir, present);
    for (const t of this.handlers.loaded()) {
      if (path.dirname(t.module.dir) === dir && !present.has(t.module.modulePath)) {
        this.log.info(`tuner '${t.name}' was removed from ${dir}; unloading it`);
        await this.handlers.unload(t.name);
      }
    }
    for (const m of modules) {
      const current = this.handlers.loaded().find((t) => t.module.modulePath === m.modulePath);
      if (current && current.module.signature === m.signature) continue;
      if (!current && this.failed.get(m.modulePath) === m.signature) continue;
      if (current) {
        this.log.info(`tuner '${current.name}' changed on disk; reloading it`);
        await this.handlers.unload(current.name);
      }
      if (await this.handlers.load(m)) {
        this.failed.delete(m.modulePath);
        if (this.watchers.length) this.watchTunerDir(dir, m.dir);
      } else {
        this.failed.set(m.modulePath, m.signature);
      }
    }
  }

  /** Follows plugins being added, changed or removed while running. */
  watch(dirs: string[]): void {
    for (const dir of dirs) {
      try {
        const watcher = fs.watch(dir, { persistent: false }, () => this.schedule(dir));
        watcher.on('error', (err) => this.log.warn(`stopped watching plugin directory ${dir}: ${errorText(err)}`));
        this.watchers.push(watcher);
        // Files replaced inside a tuner's folder do not show up on the parent directory.
        for (const t of this.handlers.loaded()) {
          if (path.dirname(t.module.dir) === dir) this.watchTunerDir(dir, t.module.dir);
        }
      } catch (err) {
        this.log.debug(`not watching plugin directory ${dir}: ${errorText(err)}`);
      }
    }
  }

  /** Stops watching and waits for a sync under way. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.watchers) w.close();
    for (const t of this.timers.values()) clearTimeout(t);
    await this.syncing;
  }

  private watchTunerDir(libdir: string, tunerDir: string): void {
    try {
      const watcher = fs.watch(tunerDir, { persistent: false }, () => this.schedule(libdir));
      watcher.on('error', () => watcher.close());
      this.watchers.push(watcher);
    } catch {
      // The directory vanished between scan and watch; the parent's watcher covers that.
    }
  }

  private schedule(dir: string): void {
    if (this.stopping) return;
    clearTimeout(this.timers.get(dir));
    const timer = setTimeout(() => {
      this.timers.delete(dir);
      this.syncing = this.syncing.then(() => this.sync(dir)).catch((err) => this.log.error(`plugin directory ${dir}: ${errorText(err)}`));
    }, WATCH_DEBOUNCE_MS);
    timer.unref();
    this.timers.set(dir, timer);
  }
}
