/**
 * Network namespaces by cookie. BPF events carry the namespace's cookie and
 * nsfs inode; writes need a path to setns into. Paths are re-found on demand
 * rather than held open: an open nsfs fd would keep a dead namespace alive.
 */
import { promises as fs } from 'node:fs';
import type { NamespaceId, NativeBinding } from './native';
import { errorText, type Logger } from './log';

export interface Namespace {
  cookie: bigint;
  inum: number;
  /** A path that refers to it: /var/run/netns/<name> or /proc/<pid>/ns/net (the daemon's own for the global one). */
  path: string;
  /** Name under /var/run/netns, when it has one. */
  name?: string;
  global: boolean;
}

export interface NamespaceSource {
  /** Every nsfs path a network namespace is reachable by, grouped by inode. */
  listPaths(): Promise<Map<number, string[]>>;
  netnsId(path: string): Promise<NamespaceId>;
  /** The namespace inode a path leads to now, or undefined. */
  inodeOf(path: string): Promise<number | undefined>;
}

export type NamespaceListener = (ns: Namespace, change: 'added' | 'removed') => void;

const NAMED_NETNS_DIR = '/var/run/netns';
/*
 * The daemon's own namespace is "global", as in the reference: it is where
 * the daemon runs (the host's), and global writes need no setns. pid 1's link
 * is not used: it may be unreadable even to root (a protected init).
 */
const GLOBAL_NETNS_PATH = '/proc/self/ns/net';

/**
 * /proc/<pid>/ns/net of another process is behind a ptrace access check, so
 * its inode comes from the addon (netnsInodes), which raises CAP_SYS_PTRACE
 * for that scan only; a plain readlink here would run without it.
 */
export function procNamespaceSource(nativeBinding: Pick<NativeBinding, 'netnsId' | 'netnsInodes'>): NamespaceSource {
  return {
    netnsId: (path) => nativeBinding.netnsId(path),
    async inodeOf(path) {
      const pid = /^\/proc\/(\d+)\/ns\/net$/.exec(path);
      if (pid) return nativeBinding.netnsInodes([Number(pid[1])])[0] || undefined;
      return (await fs.stat(path).catch(() => undefined))?.ino;
    },
    async listPaths() {
      const paths = new Map<number, string[]>();
      const add = (inum: number, path: string) => {
        const list = paths.get(inum);
        if (list) list.push(path);
        else paths.set(inum, [path]);
      };
      // Named namespaces first: their paths outlive any process.
      const named = await fs.readdir(NAMED_NETNS_DIR).catch(() => [] as string[]);
      await Promise.all(
        named.map(async (name) => {
          const path = `${NAMED_NETNS_DIR}/${name}`;
          const st = await fs.stat(path).catch(() => undefined);
          if (st) add(st.ino, path);
        }),
      );
      const pids = (await fs.readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
      const inodes = nativeBinding.netnsInodes(pids);
      pids.forEach((pid, i) => {
        if (inodes[i]) add(inodes[i], `/proc/${pid}/ns/net`);
      });
      return paths;
    },
  };
}

/** How long a cookie a scan did not find is not scanned for again, and how many such cookies are kept. */
export const MISSING_HOLD_MS = 10_000;
const MISSING_KEPT = 256;

export class NetnsRegistry {
  private readonly byInum = new Map<number, Namespace>();
  private readonly byCookieMap = new Map<bigint, Namespace>();
  private readonly listeners: NamespaceListener[] = [];
  private pendingScan: Promise<void> | undefined;
  private globalNs: Namespace | undefined;
  /**
   * Cookies a scan did not find (gone, or never seen), until when a lookup
   * of them does not scan again. A vanished namespace is still asked about
   * for a while (a change being verified there reads its counters every few
   * hundred ms), and each scan reads every process's namespace link: without
   * this, every such read rescanned the whole of /proc. A BPF event from the
   * cookie (seen()) always scans: it proves the namespace is alive.
   */
  private readonly missing = new Map<bigint, number>();

  constructor(
    private readonly source: NamespaceSource,
    private readonly log: Logger,
  ) {}

  async init(): Promise<void> {
    const id = await this.source.netnsId(GLOBAL_NETNS_PATH);
    this.globalNs = { cookie: id.cookie, inum: id.inum, path: GLOBAL_NETNS_PATH, global: true };
    this.byInum.set(id.inum, this.globalNs);
    this.byCookieMap.set(id.cookie, this.globalNs);
    await this.rescan();
  }

  get global(): Namespace {
    if (!this.globalNs) throw new Error('namespace registry used before init()');
    return this.globalNs;
  }

  onChange(listener: NamespaceListener): void {
    this.listeners.push(listener);
  }

  byCookie(cookie: bigint): Namespace | undefined {
    return this.byCookieMap.get(cookie);
  }

  all(): Namespace[] {
    return [...this.byInum.values()];
  }

  /** Known namespace, or a rescan to find it; undefined when it no longer exists. */
  async resolve(cookie: bigint): Promise<Namespace | undefined> {
    const known = this.byCookieMap.get(cookie);
    if (known) return known;
    return this.refresh(cookie);
  }

  /**
   * The namespace as a fresh scan finds it (its known path no longer leads
   * to it, or it is not known); undefined when it is gone. A cookie a scan
   * missed within MISSING_HOLD_MS is not scanned for again.
   */
  async refresh(cookie: bigint): Promise<Namespace | undefined> {
    const until = this.missing.get(cookie);
    if (until !== undefined && until > Date.now()) return undefined;
    await this.rescan();
    const found = this.byCookieMap.get(cookie);
    if (!found) this.noteMissing(cookie);
    return found;
  }

  /** A BPF event came from this namespace: it exists, so a lookup of it may scan again. */
  alive(cookie: bigint): void {
    if (this.missing.size) this.missing.delete(cookie);
  }

  private noteMissing(cookie: bigint): void {
    const now = Date.now();
    if (this.missing.size >= MISSING_KEPT) {
      for (const [c, until] of this.missing) if (until <= now) this.missing.delete(c);
      // Still full: the oldest go first (a Map iterates in insertion order).
      for (const c of this.missing.keys()) {
        if (this.missing.size < MISSING_KEPT) break;
        this.missing.delete(c);
      }
    }
    this.missing.set(cookie, now + MISSING_HOLD_MS);
  }

  /**
   * Cheap liveness check, one readlink or stat per known namespace; a full
   * rescan only when a path no longer leads to its namespace. There is no
   * tracepoint for namespace teardown, so this runs on a slow timer.
   */
  async verify(): Promise<void> {
    for (const ns of this.byInum.values()) {
      if (ns.global) continue;
      if ((await this.source.inodeOf(ns.path)) !== ns.inum) {
        await this.rescan();
        return;
      }
    }
  }

  /** Coalesces concurrent callers into one scan. */
  rescan(): Promise<void> {
    if (!this.pendingScan) {
      this.pendingScan = this.scan().finally(() => {
        this.pendingScan = undefined;
      });
    }
    return this.pendingScan;
  }

  /**
   * A namespace with this cookie and inode exists now (a BPF event said so).
   * nsfs inode numbers are reused once a namespace is freed, so a known entry
   * with the same inode and another cookie is a dead namespace: drop it.
   */
  async seen(cookie: bigint, inum: number): Promise<Namespace | undefined> {
    const known = this.byInum.get(inum);
    if (known && known.cookie !== cookie && !known.global) this.remove(known);
    this.alive(cookie);
    return this.resolve(cookie);
  }

  private async scan(): Promise<void> {
    const paths = new Map([...(await this.source.listPaths())].map(([inum, list]) => [inum, namedFirst(list)]));
    for (const [inum, ns] of [...this.byInum]) {
      if (ns.global) continue;
      const candidates = paths.get(inum);
      if (!candidates) {
        this.remove(ns);
        continue;
      }
      const better = candidates[0] ?? ns.path;
      const moved = !candidates.includes(ns.path) || (ns.name === undefined && namedNetns(better) !== undefined);
      if (!moved) continue;
      // Its process exited or it was given a name. Same inode may still be another
      // namespace (inodes are reused once one is freed), so ask for the cookie again.
      const found = await this.identify(inum, candidates);
      if (found?.cookie === ns.cookie) {
        ns.path = found.path;
        ns.name = found.name;
      } else {
        this.remove(ns);
        if (found) this.add(found);
      }
    }
    for (const [inum, candidates] of paths) {
      if (this.byInum.has(inum)) continue;
      const found = await this.identify(inum, candidates);
      if (found) this.add(found);
    }
  }

  private async identify(inum: number, candidates: string[]): Promise<Namespace | undefined> {
    for (const path of candidates) {
      try {
        const id = await this.source.netnsId(path);
        // The process behind a /proc path may have moved or exited meanwhile.
        if (id.inum === inum) return { cookie: id.cookie, inum, path, name: namedNetns(path), global: false };
      } catch (err) {
        this.log.debug(`netns: cannot identify namespace ${inum} via ${path}: ${errorText(err)}`);
      }
    }
    return undefined;
  }

  private add(ns: Namespace): void {
    this.byInum.set(ns.inum, ns);
    this.byCookieMap.set(ns.cookie, ns);
    this.log.debug(`netns: found namespace cookie ${ns.cookie} (${ns.path})`);
    for (const listener of this.listeners) listener(ns, 'added');
  }

  private remove(ns: Namespace): void {
    this.byInum.delete(ns.inum);
    this.byCookieMap.delete(ns.cookie);
    this.noteMissing(ns.cookie);
    this.log.debug(`netns: namespace cookie ${ns.cookie} is gone`);
    // The reference's wording, which its users grep debug logs for.
    this.log.debug(`netns destroyed (cookie ${ns.cookie})`);
    for (const listener of this.listeners) listener(ns, 'removed');
  }
}

/** Named paths outlive any process, so they are preferred. */
function namedFirst(paths: string[]): string[] {
  return [...paths].sort((a, b) => Number(namedNetns(b) !== undefined) - Number(namedNetns(a) !== undefined));
}

function namedNetns(path: string): string | undefined {
  return path.startsWith(`${NAMED_NETNS_DIR}/`) ? path.slice(NAMED_NETNS_DIR.length + 1) : undefined;
}

/** "global ns" / "non-global ns", as the reference's log lines say. */
export function nsDescription(ns: Namespace): string {
  return ns.global ? 'global ns' : 'non-global ns';
}
