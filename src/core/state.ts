/**
 * What bpftune must not forget across a crash or a restart, per network
 * namespace: each changed tunable's original and last-set values, how often
 * each scenario occurred, and which tunables an administrator took over; plus
 * the boot it belongs to and whether the run rolls back on exit (-R).
 *
 * StateStore keeps that in memory and writes it to the state file (see
 * state-file.ts) before every change is applied, so no crash can lose an
 * original. That write is atomic but not synced: an original matters only
 * while the kernel still holds bpftune's value, i.e. within this boot, and
 * within a boot the page cache outlives any process (kill, crash, OOM). Only
 * a machine that goes down loses unsynced data, and its next boot starts
 * from the kernel's defaults anyway. So the sync (a few ms on a disk, tens
 * on a slow VM, which every change waited for) follows within seconds, off
 * the change's path, to keep the history across power loss. Scenario counts
 * are history, not safety: they are written with the next change, or within
 * a few seconds. The write before a change is made with synchronous calls
 * (writeNow()), half the time of asynchronous ones at p50 and a sixth at
 * p99, unless an asynchronous write is under way: that one could land after it.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { errorText, type Logger } from './log';
import type { Namespace } from './netns';
import { writeFileAtomic, writeFileAtomicSync } from './state-file';
import { namespaceKey, STATE_VERSION, type BpftuneState, type StoredNamespace, type StoredTakeover } from './state-schema';
import type { SysctlValue } from './sysctl-values';

export * from './state-schema';

/** Boots kept for reporting once a new boot starts. */
const PREVIOUS_BOOTS_KEPT = 4;
const LAZY_FLUSH_MS = 5000;

export interface RunInfo {
  bootId: string;
  rollback: boolean;
  advisory: boolean;
}

/** What a change is, as the write path knows it just before applying it. */
export interface PendingChange {
  ns: Namespace;
  tuner: string;
  tunable: string;
  scenario: { id: number; name: string; description: string };
  reason: string;
  old: SysctlValue[];
  values: SysctlValue[];
  /** For non-sysctl tunables: the command that sets given values. */
  command?: (values: readonly SysctlValue[]) => string;
}

export class StateStore {
  readonly file: string;
  private readonly state: BpftuneState;
  /** Live namespaces' entries by cookie. */
  private readonly byCookie = new Map<string, StoredNamespace>();
  /** Bumped by every modification; a write covers every modification made before it started. */
  private generation = 0;
  private written = 0;
  /** The generation last written durably (synced). */
  private synced = 0;
  private writing: Promise<void> = Promise.resolve();
  /**
   * An asynchronous write has taken its snapshot and not yet renamed it into
   * place: a write made now would be overwritten by that older snapshot.
   */
  private asyncWriteInFlight = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  /**
   * Nothing is written before the previous run's file has been read: a
   * daemon that fails to start must not overwrite what a killed one left.
   */
  private opened = false;

  constructor(
    file: string,
    run: RunInfo,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.file = file;
    const at = this.now().toISOString();
    this.state = {
      version: STATE_VERSION,
      bootId: run.bootId,
      pid: process.pid,
      startedAt: at,
      updatedAt: at,
      rollback: run.rollback,
      advisory: run.advisory,
      finished: false,
      namespaces: [],
      previousBoots: [],
    };
  }

  /** The previous run's file has been dealt with (state-restore.ts): from now on, this run's state is written. */
  markOpened(): void {
    this.opened = true;
    this.generation++;
  }

  get snapshot(): Readonly<BpftuneState> {
    return this.state;
  }

  /**
   * Carries the history of earlier boots over; a previous run of another boot
   * becomes history itself, for reporting only (the kernel has its defaults again).
   */
  keepHistory(previous: BpftuneState, sameBoot: boolean): void {
    const boots = sameBoot
      ? previous.previousBoots
      : [{ bootId: previous.bootId, lastRun: previous.updatedAt, namespaces: previous.namespaces.filter((n) => !n.ephemeral) }, ...previous.previousBoots];
    this.state.previousBoots = boots.filter((b) => b.namespaces.length > 0).slice(0, PREVIOUS_BOOTS_KEPT);
    this.generation++;
  }

  /** Adopts a namespace entry from an earlier run of this boot (its namespace still exists). */
  adopt(ns: Namespace, stored: Pick<StoredNamespace, 'changes' | 'scenarios' | 'takeovers'>): void {
    const entry = this.entry(ns);
    entry.changes.push(...stored.changes);
    entry.scenarios.push(...stored.scenarios);
    entry.takeovers.push(...stored.takeovers);
    this.generation++;
  }

  /**
   * Records a change before it is applied and writes the state file. Throws
   * when the file cannot be written: the caller must not make a change whose
   * original could be lost.
   */
  async beforeChange(c: PendingChange): Promise<void> {
    const entry = this.entry(c.ns);
    const at = this.now().toISOString();
    let stored = entry.changes.find((x) => x.tunable === c.tunable);
    if (!stored) {
      stored = { tuner: c.tuner, tunable: c.tunable, original: [...c.old], lastSet: [], previousSet: [], changes: 0, scenarios: {}, reason: '', first: at, last: at };
      entry.changes.push(stored);
    }
    stored.previousSet = [...c.old];
    stored.lastSet = [...c.values];
    stored.changes++;
    stored.scenarios[c.scenario.name] = (stored.scenarios[c.scenario.name] ?? 0) + 1;
    stored.reason = c.reason;
    stored.last = at;
    if (c.command) stored.commands = { original: c.command(stored.original), lastSet: c.command(c.values) };
    this.generation++;
    if (!this.writeNow()) await this.flush(true, false);
    this.syncSoon();
  }

  /**
   * The write a change waits for, made synchronously (see writeFileAtomicSync)
   * when no asynchronous write could land after it. Returns false to leave it
   * to flush(): one is in flight, or the directory is missing (flush creates
   * it). Throws, as a strict flush does, when the file cannot be written.
   */
  private writeNow(): boolean {
    if (!this.opened || this.asyncWriteInFlight) return false;
    const generation = this.generation;
    try {
      writeFileAtomicSync(this.file, this.fileText());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      this.writeFailed(err, true);
    }
    this.written = generation;
    this.writeSucceeded();
    return true;
  }

  /** The change was not applied after all: the tunable still holds previousSet. */
  changeFailed(ns: Namespace, tunable: string): void {
    const entry = this.byCookie.get(String(ns.cookie));
    const stored = entry?.changes.find((x) => x.tunable === tunable);
    if (!entry || !stored) return;
    stored.changes--;
    if (stored.changes <= 0) entry.changes.splice(entry.changes.indexOf(stored), 1);
    else stored.lastSet = [...stored.previousSet];
    this.touch();
  }

  scenarioOccurred(ns: Namespace, tuner: string, tunable: string, s: { id: number; name: string; description: string }): void {
    const entry = this.entry(ns);
    const at = this.now().toISOString();
    const found = entry.scenarios.find((x) => x.tuner === tuner && x.tunable === tunable && x.id === s.id);
    if (found) {
      found.count++;
      found.last = at;
    } else {
      entry.scenarios.push({ tuner, tunable, id: s.id, name: s.name, description: s.description, count: 1, first: at, last: at });
    }
    this.touch();
  }

  /** An administrator's takeover is written at once: a restart must not override it. */
  async takeover(ns: Namespace, t: StoredTakeover): Promise<void> {
    const entry = this.entry(ns);
    if (!entry.takeovers.some((x) => x.tuner === t.tuner)) entry.takeovers.push(t);
    this.generation++;
    await this.flush(false);
  }

  /** The administrator handed tuners back; returns the takeovers removed. */
  async release(ns: Namespace, tuners: readonly string[]): Promise<StoredTakeover[]> {
    const entry = this.byCookie.get(String(ns.cookie));
    if (!entry) return [];
    const removed = entry.takeovers.filter((t) => tuners.includes(t.tuner));
    entry.takeovers = entry.takeovers.filter((t) => !tuners.includes(t.tuner));
    this.generation++;
    await this.flush(false);
    return removed;
  }

  takeovers(ns: Namespace): StoredTakeover[] {
    return this.byCookie.get(String(ns.cookie))?.takeovers ?? [];
  }

  /** A namespace is gone: an unnamed one can never be found again, so it is dropped. */
  forgetNamespace(cookie: bigint): void {
    const key = String(cookie);
    const entry = this.byCookie.get(key);
    if (!entry) return;
    this.byCookie.delete(key);
    this.state.namespaces = this.state.namespaces.filter((n) => n !== entry);
    this.touch();
  }

  /** A clean exit. With -R the changes were rolled back (or left to an administrator), so none remain bpftune's. */
  async finish(): Promise<void> {
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (this.state.rollback) for (const n of this.state.namespaces) n.changes = [];
    this.state.finished = true;
    this.generation++;
    await this.flush(false);
  }

  /**
   * Writes the state if anything changed since the last write (durable: or
   * since the last synced one). Concurrent callers share writes: each waits
   * for one that started after its change. strict: throw on failure (before a
   * change); else log it. durable: sync it too (see the top of this file for
   * why a change does not wait for that).
   */
  async flush(strict = false, durable = true): Promise<void> {
    if (!this.opened) return;
    const wanted = this.generation;
    const task = this.writing.then(async () => {
      if (this.written >= wanted && (!durable || this.synced >= wanted)) return;
      const generation = this.generation;
      const text = this.fileText();
      this.asyncWriteInFlight = true;
      try {
        await writeFileAtomic(this.file, text, durable).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
          // The first write: create the directory (systemd's StateDirectory= does it for the unit). Not recursive:
          // Node's recursive mkdir can spin on a parent that refuses children (e.g. below /proc).
          await mkdir(path.dirname(this.file), { mode: 0o755 });
          await writeFileAtomic(this.file, text, durable);
        });
      } finally {
        this.asyncWriteInFlight = false;
      }
      // A synchronous write may have put a newer generation in place meanwhile: never count backwards.
      this.written = Math.max(this.written, generation);
      if (durable) this.synced = generation;
      this.writeSucceeded();
    });
    this.writing = task.catch(() => undefined);
    try {
      await task;
    } catch (err) {
      this.writeFailed(err, strict);
    }
  }

  /** The state as the file holds it, stamped with the time of this write. */
  private fileText(): string {
    this.state.updatedAt = this.now().toISOString();
    return `${JSON.stringify(this.state)}\n`;
  }

  private writeSucceeded(): void {
    if (this.lastError !== undefined) this.log.info(`state file ${this.file} written again`);
    this.lastError = undefined;
  }

  /** Logs a failed write, once per distinct failure; strict: throws too. */
  private writeFailed(err: unknown, strict: boolean): void {
    const message = `cannot write the state file ${this.file}: ${errorText(err)}`;
    // One line per distinct failure, not one per attempted change.
    if (message !== this.lastError) {
      this.log.error(`${message}; bpftune makes no change whose original it cannot keep: free space or fix ${path.dirname(this.file)} (BPFTUNE_STATEDIR)`);
    }
    this.lastError = message;
    if (strict) throw new Error(message);
  }

  private touch(): void {
    this.generation++;
    this.syncSoon();
  }

  /** A durable write within LAZY_FLUSH_MS, unless one is already due. */
  private syncSoon(): void {
    if (this.lazyTimer) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = undefined;
      void this.flush(false);
    }, LAZY_FLUSH_MS);
    this.lazyTimer.unref();
  }

  private entry(ns: Namespace): StoredNamespace {
    const cookie = String(ns.cookie);
    let entry = this.byCookie.get(cookie);
    if (!entry) {
      entry = { key: '', global: ns.global, cookie, ephemeral: false, changes: [], scenarios: [], takeovers: [] };
      this.byCookie.set(cookie, entry);
      this.state.namespaces.push(entry);
    }
    // A namespace may be given a name (ip netns attach) after it was first seen.
    entry.key = namespaceKey(ns);
    entry.ephemeral = !ns.global && ns.name === undefined;
    if (ns.name !== undefined) entry.name = ns.name;
    return entry;
  }
}
