/**
 * Capabilities of every thread of a real daemon (/proc/<pid>/task/<tid>/status),
 * after start-up and after it wrote a sysctl inside a network namespace that
 * needs each kept capability to reach: a namespace with no name, owned by a
 * user namespace of uid 1000 and held only by that user's process (so opening
 * /proc/<pid>/ns/net takes CAP_SYS_PTRACE, setns takes CAP_SYS_ADMIN, and the
 * write shows no CAP_DAC_* is needed). The change comes from the sample
 * tuner listen_backlog: a real listen() in that namespace asking for a longer
 * backlog than its net.core.somaxconn. That trigger is exact. An earlier
 * version grew tcp_rmem with loopback iperf3 traffic, but a loopback path
 * carries scheduling noise per round trip, and tcp_buffer rightly grows
 * nothing for a path that needs nothing (two clean-clone CI runs saw no
 * change in 30 s).
 */
import { after, afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { DaemonProcess, SAMPLES_LIBDIR, stopAllDaemons } from './support/daemon';
import { capabilityMask, capabilityNames } from '../src/core/capabilities';

const UNPRIVILEGED_UID = '1000';
const LOW_SOMAXCONN = '128';
const REQUESTED_BACKLOG = '1000';
const CAP_DAC_OVERRIDE = 1n << 1n;
const CAP_DAC_READ_SEARCH = 1n << 2n;
const CAP_SYS_PTRACE = 1n << 19n;

const holders: ChildProcess[] = [];

afterEach(async () => {
  await stopAllDaemons();
  for (const h of holders.splice(0)) h.kill('SIGKILL');
});
after(stopAllDaemons);

interface ThreadCaps {
  tid: string;
  effective: bigint;
  permitted: bigint;
  bounding: bigint;
  inheritable: bigint;
  ambient: bigint;
  noNewPrivs: string;
}

function field(status: string, name: string): string {
  const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status);
  if (!m) throw new Error(`no ${name} line in a /proc status file`);
  return m[1];
}

function threadCaps(pid: number): ThreadCaps[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const hex = (name: string) => BigInt(`0x${field(status, name)}`);
    return {
      tid,
      effective: hex('CapEff'),
      permitted: hex('CapPrm'),
      bounding: hex('CapBnd'),
      inheritable: hex('CapInh'),
      ambient: hex('CapAmb'),
      noNewPrivs: field(status, 'NoNewPrivs'),
    };
  });
}

/*
 * A thread may be inside a raise (a few microseconds around one system call)
 * at the moment we read it: a thread at rest reads empty within a few tries.
 */
async function threadsAtRest(pid: number): Promise<ThreadCaps[]> {
  let threads = threadCaps(pid);
  for (let tries = 0; tries < 20 && threads.some((t) => t.effective !== 0n); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    threads = threadCaps(pid);
  }
  return threads;
}

function describe(threads: ThreadCaps[]): string {
  return threads
    .map((t) => `tid ${t.tid}: CapEff ${t.effective.toString(16)} CapPrm ${t.permitted.toString(16)} CapBnd ${t.bounding.toString(16)}`)
    .join('\n');
}

function assertNarrow(threads: ThreadCaps[], expected: bigint, when: string): void {
  const text = describe(threads);
  // Node's platform and signal threads plus libuv's pool: all narrowed, not only the main thread.
  assert.ok(threads.length >= 6, `${when}: expected node's threads, got ${threads.length}:\n${text}`);
  for (const t of threads) {
    assert.equal(t.effective, 0n, `${when}: tid ${t.tid} has effective ${capabilityNames(t.effective)}\n${text}`);
    assert.equal(t.permitted, expected, `${when}: tid ${t.tid} permitted ${capabilityNames(t.permitted)}\n${text}`);
    assert.equal(t.bounding, expected, `${when}: tid ${t.tid} bounding set ${t.bounding.toString(16)}\n${text}`);
    assert.equal(t.inheritable, 0n, `${when}: tid ${t.tid} inheritable`);
    assert.equal(t.ambient, 0n, `${when}: tid ${t.tid} ambient`);
    assert.equal(t.noNewPrivs, '1', `${when}: tid ${t.tid} no_new_privs`);
    assert.equal(t.permitted & (CAP_DAC_OVERRIDE | CAP_DAC_READ_SEARCH), 0n);
  }
}

/** uid 1000's own user and network namespace, loopback up and somaxconn low; resolves with the holder's pid. */
async function foreignNamespace(): Promise<number> {
  const script = `ip link set lo up && echo ${LOW_SOMAXCONN} > /proc/sys/net/core/somaxconn && echo ready && exec sleep 600`;
  const holder = spawn('setpriv', ['--reuid', UNPRIVILEGED_UID, '--regid', UNPRIVILEGED_UID, '--clear-groups', 'unshare', '-U', '-n', '-r', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  holders.push(holder);
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    holder.on('exit', (code) => reject(new Error(`the namespace holder exited (${code})`)));
  });
  return holder.pid ?? -1;
}

function inForeign(pid: number, args: string[]): string {
  return execFileSync('nsenter', ['-t', String(pid), '-n', ...args], { encoding: 'utf8', timeout: 30_000 });
}

function foreignSomaxconn(pid: number): string {
  return inForeign(pid, ['cat', '/proc/sys/net/core/somaxconn']).trim();
}

test('every thread holds only the kept capabilities, none effective, after start-up and after a change in a foreign namespace', async (t) => {
  const holderPid = await foreignNamespace();
  assert.equal(foreignSomaxconn(holderPid), LOW_SOMAXCONN);
  const ownBounding = BigInt(`0x${field(readFileSync('/proc/self/status', 'utf8'), 'CapBnd')}`);
  const expected = capabilityMask() & ownBounding;

  const daemon = new DaemonProcess(['-a', 'listen_backlog', '-l', SAMPLES_LIBDIR]);
  await daemon.started();
  assert.match(daemon.log, /capabilities: permitted .*CAP_SYS_PTRACE.*; effective empty on every thread/);
  const atStart = await threadsAtRest(daemon.pid);
  t.diagnostic(`after start-up:\n${describe(atStart)}`);
  assertNarrow(atStart, expected, 'after start-up');
  // Kept, so the foreign namespace below is reachable at all (its holder is another uid's process).
  assert.notEqual(expected & CAP_SYS_PTRACE, 0n);

  // A listener asking for more than the namespace's somaxconn: the sample tuner raises it there.
  inForeign(holderPid, ['python3', '-c', `import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(${REQUESTED_BACKLOG})`]);
  await daemon.waitFor(new RegExp(`change net\\.core\\.somaxconn from \\(${LOW_SOMAXCONN}\\) -> \\(${REQUESTED_BACKLOG}\\)`), 30_000);
  assert.equal(foreignSomaxconn(holderPid), REQUESTED_BACKLOG, 'somaxconn grew in the foreign namespace');
  assert.doesNotMatch(daemon.log, /EPERM|EACCES|not permitted|Permission denied/, 'no call lacked a capability');

  const afterChange = await threadsAtRest(daemon.pid);
  t.diagnostic(`after the change:\n${describe(afterChange)}`);
  assertNarrow(afterChange, expected, 'after the change');
  assert.equal(await daemon.stop(), 0);
});
