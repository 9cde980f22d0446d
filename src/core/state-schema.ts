/**
 * The state file's format (version 1) and its validation: a file is trusted
 * only once every field has its type, so a truncated, hand-edited or foreign
 * file is rejected as a whole (and moved aside by state-restore.ts).
 */
import type { Namespace } from './netns';
import type { SysctlValue } from './sysctl-values';

export const STATE_VERSION = 1;

export interface StoredChange {
  tuner: string;
  tunable: string;
  original: SysctlValue[];
  lastSet: SysctlValue[];
  /**
   * What the tunable held before the last change: if bpftune dies between
   * writing the state and writing the tunable, the tunable still holds this.
   */
  previousSet: SysctlValue[];
  changes: number;
  /** Scenario name -> how many changes it caused. */
  scenarios: Record<string, number>;
  reason: string;
  first: string;
  last: string;
  /** For tunables that are not sysctls (set over netlink): the commands that set the original and the last value. */
  commands?: { original: string; lastSet: string };
}

export interface StoredScenario {
  tuner: string;
  tunable: string;
  id: number;
  name: string;
  description: string;
  count: number;
  first: string;
  last: string;
}

export interface StoredTakeover {
  tuner: string;
  /** Path below /proc/sys the administrator wrote, e.g. net/ipv4/tcp_rmem. */
  sysctl: string;
  pid: number;
  command: string;
  at: string;
}

export interface StoredNamespace {
  /** "global", "netns NAME" or "cookie N". */
  key: string;
  global: boolean;
  name?: string;
  cookie: string;
  /** An unnamed namespace: nothing can find it after it is gone, so it is dropped then and at a new boot. */
  ephemeral: boolean;
  changes: StoredChange[];
  scenarios: StoredScenario[];
  takeovers: StoredTakeover[];
}

export interface PreviousBoot {
  bootId: string;
  lastRun: string;
  namespaces: StoredNamespace[];
}

export interface BpftuneState {
  version: number;
  bootId: string;
  pid: number;
  startedAt: string;
  updatedAt: string;
  /** The run was started with -R. */
  rollback: boolean;
  advisory: boolean;
  /** The run exited cleanly; with -R, after its rollback. */
  finished: boolean;
  namespaces: StoredNamespace[];
  previousBoots: PreviousBoot[];
}

/** A stable name for a namespace, in the state file and in advice ids. */
export function namespaceKey(ns: Pick<Namespace, 'global' | 'name' | 'cookie'>): string {
  if (ns.global) return 'global';
  return ns.name !== undefined ? `netns ${ns.name}` : `cookie ${ns.cookie}`;
}

function fail(where: string, what: string): never {
  throw new Error(`${where}: expected ${what}`);
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'an object');
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, where: string): string {
  if (typeof o[k] !== 'string') fail(`${where}.${k}`, 'a string');
  return o[k];
}

function num(o: Record<string, unknown>, k: string, where: string): number {
  if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) fail(`${where}.${k}`, 'a number');
  return o[k];
}

function bool(o: Record<string, unknown>, k: string, where: string): boolean {
  if (typeof o[k] !== 'boolean') fail(`${where}.${k}`, 'true or false');
  return o[k];
}

function list<T>(o: Record<string, unknown>, k: string, where: string, item: (v: unknown, where: string) => T): T[] {
  const v = o[k];
  if (!Array.isArray(v)) fail(`${where}.${k}`, 'an array');
  return v.map((x, i) => item(x, `${where}.${k}[${i}]`));
}

function values(v: unknown, where: string): SysctlValue[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)))) {
    fail(where, 'an array of numbers or strings');
  }
  return v as SysctlValue[];
}

function change(v: unknown, where: string): StoredChange {
  const o = obj(v, where);
  const scenarios = obj(o.scenarios, `${where}.scenarios`);
  for (const k of Object.keys(scenarios)) num(scenarios, k, `${where}.scenarios`);
  const c: StoredChange = {
    tuner: str(o, 'tuner', where),
    tunable: str(o, 'tunable', where),
    original: values(o.original, `${where}.original`),
    lastSet: values(o.lastSet, `${where}.lastSet`),
    previousSet: values(o.previousSet, `${where}.previousSet`),
    changes: num(o, 'changes', where),
    scenarios: scenarios as Record<string, number>,
    reason: str(o, 'reason', where),
    first: str(o, 'first', where),
    last: str(o, 'last', where),
  };
  if (o.commands !== undefined) {
    const cmd = obj(o.commands, `${where}.commands`);
    c.commands = { original: str(cmd, 'original', `${where}.commands`), lastSet: str(cmd, 'lastSet', `${where}.commands`) };
  }
  return c;
}

function scenario(v: unknown, where: string): StoredScenario {
  const o = obj(v, where);
  return {
    tuner: str(o, 'tuner', where),
    tunable: str(o, 'tunable', where),
    id: num(o, 'id', where),
    name: str(o, 'name', where),
    description: str(o, 'description', where),
    count: num(o, 'count', where),
    first: str(o, 'first', where),
    last: str(o, 'last', where),
  };
}

function takeover(v: unknown, where: string): StoredTakeover {
  const o = obj(v, where);
  return { tuner: str(o, 'tuner', where), sysctl: str(o, 'sysctl', where), pid: num(o, 'pid', where), command: str(o, 'command', where), at: str(o, 'at', where) };
}

function storedNamespace(v: unknown, where: string): StoredNamespace {
  const o = obj(v, where);
  const ns: StoredNamespace = {
    key: str(o, 'key', where),
    global: bool(o, 'global', where),
    cookie: str(o, 'cookie', where),
    ephemeral: bool(o, 'ephemeral', where),
    changes: list(o, 'changes', where, change),
    scenarios: list(o, 'scenarios', where, scenario),
    takeovers: list(o, 'takeovers', where, takeover),
  };
  if (!/^\d+$/.test(ns.cookie)) fail(`${where}.cookie`, 'a decimal namespace cookie');
  if (o.name !== undefined) ns.name = str(o, 'name', where);
  return ns;
}

export function validateState(v: unknown): BpftuneState {
  const o = obj(v, 'state');
  const version = num(o, 'version', 'state');
  if (version !== STATE_VERSION) throw new Error(`state.version: this bpftune reads version ${STATE_VERSION}, the file is version ${version}`);
  return {
    version,
    bootId: str(o, 'bootId', 'state'),
    pid: num(o, 'pid', 'state'),
    startedAt: str(o, 'startedAt', 'state'),
    updatedAt: str(o, 'updatedAt', 'state'),
    rollback: bool(o, 'rollback', 'state'),
    advisory: bool(o, 'advisory', 'state'),
    finished: bool(o, 'finished', 'state'),
    namespaces: list(o, 'namespaces', 'state', storedNamespace),
    previousBoots: list(o, 'previousBoots', 'state', (b, where) => {
      const p = obj(b, where);
      return { bootId: str(p, 'bootId', where), lastRun: str(p, 'lastRun', where), namespaces: list(p, 'namespaces', where, storedNamespace) };
    }),
  };
}
