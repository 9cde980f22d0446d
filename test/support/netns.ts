/**
 * Network namespaces for tests, named bpftune-test-<pid>-<n> so that leftovers
 * of a crashed run are recognisable and removed by the next one. Every
 * namespace a test makes is deleted in cleanup(), which tests call from
 * `after`, and again from a process exit hook should a test die first.
 * Addresses come from 198.18.0.0/15 and fd00::/8 only.
 */
import { execFileSync, spawnSync } from 'node:child_process';

const PREFIX = 'bpftune-test-';
const created = new Set<string>();
let counter = 0;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function createNamespace(): string {
  const name = `${PREFIX}${process.pid}-${counter++}`;
  ip(['netns', 'add', name]);
  created.add(name);
  ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Runs a command inside a namespace; throws with its stderr on failure. */
export function inNamespace(ns: string, command: string, args: string[], input?: string): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8', input, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} in ${ns} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export function sysctlIn(ns: string | null, name: string): string {
  const args = ['-n', name];
  const out = ns === null ? execFileSync('sysctl', args, { encoding: 'utf8' }) : inNamespace(ns, 'sysctl', args);
  return out.trim().split(/\s+/).join(' ');
}

export function setSysctlIn(ns: string, name: string, value: string): void {
  inNamespace(ns, 'sysctl', ['-q', '-w', `${name}=${value}`]);
}

export function deleteNamespace(name: string): void {
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  created.delete(name);
}

export function cleanupNamespaces(): void {
  for (const name of [...created]) deleteNamespace(name);
}

/** Removes namespaces left by earlier runs whose process is gone. */
export function removeStaleNamespaces(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!m) continue;
    const alive = spawnSync('kill', ['-0', m[1]], { stdio: 'ignore' }).status === 0;
    if (!alive || Number(m[1]) === process.pid) deleteNamespace(name);
  }
}

process.on('exit', cleanupNamespaces);
