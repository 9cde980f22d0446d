/**
 * net_buffer end to end, and its pure parts. The backlog test overflows a
 * CPU's input backlog for real: a UDP flood from a sender pinned to CPU 0,
 * over a veth whose receive side steers packets (RPS) to CPU 1, with
 * net.core.netdev_max_backlog lowered to 16. These sysctls are global (the
 * kernel has no per-namespace value), so the test saves them first and
 * restores them in `after`, also when it fails, and keeps the low value for
 * as short a time as it can.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cleanupNamespaces, createNamespace, inNamespace, removeStaleNamespaces, sysctlIn } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { TestCgroup } from '../../../test/support/cgroup';
import { globalTunables } from '../../../test/support/global-sysctls';
import netBufferTuner from './index';
import { BudgetPolicy, hasCpu, parsePressureWaitNs, parseSchedstatWaitNs, parseSoftnetStat, withCpu } from './softnet';

const GLOBALS = globalTunables(netBufferTuner);
/** Kernels built without CONFIG_NET_FLOW_LIMIT have no flow_limit_cpu_bitmap: the tuner grows the backlog alone there. */
const FLOW_LIMITS = GLOBALS.includes('net.core.flow_limit_cpu_bitmap');
const saved = new Map<string, string>();
const servers: number[] = [];

function setGlobal(name: string, value: string): void {
  execFileSync('sysctl', ['-q', '-w', `${name}=${value}`]);
}

function restoreGlobals(): void {
  for (const [name, value] of saved) {
    try {
      setGlobal(name, value);
    } catch (err) {
      console.error(`could not restore ${name}=${value}: ${String(err)}`);
    }
  }
}

before(() => {
  removeStaleNamespaces();
  for (const name of GLOBALS) saved.set(name, sysctlIn(null, name));
});

after(async () => {
  restoreGlobals();
  await stopAllDaemons();
  for (const pid of servers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already exited
    }
  }
  cleanupNamespaces();
  restoreGlobals();
});

process.on('exit', restoreGlobals);

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

let port = 5299;

/**
 * Two namespaces joined by a veth (<prefix>.1 sender, <prefix>.2 receiver) and an iperf3
 * server on the receiver. veth delivers through netif_rx(), i.e. the per-CPU backlog, and
 * RPS on the receiving queue moves that backlog to CPU 1.
 */
function floodPair(prefix: string): { sender: string; receiver: string; port: number } {
  const sender = createNamespace();
  const receiver = createNamespace();
  ip(['-n', sender, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'vc0', 'netns', receiver]);
  ip(['-n', sender, 'link', 'set', 'veth0', 'up']);
  ip(['-n', receiver, 'link', 'set', 'vc0', 'up']);
  ip(['-n', sender, 'addr', 'add', `${prefix}.1/24`, 'dev', 'veth0']);
  ip(['-n', receiver, 'addr', 'add', `${prefix}.2/24`, 'dev', 'vc0']);
  inNamespace(receiver, 'sh', ['-c', 'echo 2 > /sys/class/net/vc0/queues/rx-0/rps_cpus']);
  port++;
  const server = spawn('ip', ['netns', 'exec', receiver, 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  if (server.pid) servers.push(server.pid);
  waitForListener(receiver, port);
  return { sender, receiver, port };
}

/** iperf3 needs its control connection: a flood sent before the server listens sends nothing. */
function waitForListener(ns: string, listenPort: number): void {
  for (let i = 0; i < 100; i++) {
    if (inNamespace(ns, 'ss', ['-Htln', `sport = :${listenPort}`]).trim()) return;
    spawnSync('sleep', ['0.05']);
  }
  throw new Error(`iperf3 server in ${ns} is not listening on port ${listenPort} after 5 s`);
}

/** Small UDP packets as fast as they go, from CPU 0, to the last floodPair's server. */
function flood(sender: string, address: string, seconds: number): void {
  spawnSync(
    'ip',
    ['netns', 'exec', sender, 'taskset', '-c', '0', 'iperf3', '-c', address, '-p', String(port), '-u', '-b', '0', '-l', '64', '-P', '2', '-t', String(seconds)],
    { stdio: 'ignore', timeout: 30_000 },
  );
}

test(`backlog drops grow netdev_max_backlog${FLOW_LIMITS ? ' and set the CPU flow-limit bit; -R restores both' : ' (no flow limits in this kernel: said once at start); -R restores it'}`, async (t) => {
  if (Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) < 2) {
    t.skip('needs two CPUs to steer packets to another CPU');
    return;
  }
  const { sender } = floodPair('198.18.3');
  setGlobal('net.core.netdev_max_backlog', '16');
  if (FLOW_LIMITS) setGlobal('net.core.flow_limit_cpu_bitmap', '0');
  const daemon = new DaemonProcess(['-a', 'net_buffer', '-R']);
  try {
    await daemon.started();
    assert.match(daemon.log, /tuner 'net_buffer' loaded \(tp_btf\)/);
    flood(sender, '198.18.3.2', 2);
    const grown = await daemon.waitFor(
      /Due to (\d+) packets dropped at CPU (\d+)'s full input backlog within [\d.]+ m?s \(more than netdev_max_backlog\/32 = 0\) change net\.core\.netdev_max_backlog from \(16\) -> \(20\)/,
    );
    assert.match(daemon.log, /Scenario 'need to increase max backlog size' occurred for tunable 'net\.core\.netdev_max_backlog' in global ns\./);
    const cpu = Number(grown[2]);
    if (FLOW_LIMITS) {
      const bit = await daemon.waitFor(/Due to backlog drops on CPU (\d+) change net\.core\.flow_limit_cpu_bitmap from \(0\) -> \((\S+)\)/);
      assert.equal(Number(bit[1]), cpu);
      const mask = sysctlIn(null, 'net.core.flow_limit_cpu_bitmap');
      assert.ok(hasCpu(mask, cpu), `flow_limit_cpu_bitmap ${mask} has CPU ${cpu}`);
    } else {
      assert.equal(daemon.log.match(/no net\.core\.flow_limit_cpu_bitmap \(kernel built without CONFIG_NET_FLOW_LIMIT\)/g)?.length, 1, daemon.log);
    }
    assert.ok(Number(sysctlIn(null, 'net.core.netdev_max_backlog')) >= 20);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  // -R put back the values the daemon found.
  assert.match(daemon.log, /Rolled back 'net\.core\.netdev_max_backlog' in global ns from \(\d+\) -> \(16\)/);
  if (FLOW_LIMITS) assert.equal(sysctlIn(null, 'net.core.flow_limit_cpu_bitmap'), '0');
  // No event failed on the way (as it did when the handler read a flow_limit_cpu_bitmap the kernel does not have).
  assert.doesNotMatch(daemon.log, /event handler failed/);
  restoreGlobals();
});

test('squeezed NAPI polls grow netdev_budget and netdev_budget_usecs; -R restores them', async (t) => {
  if (Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) < 2) {
    t.skip('needs two CPUs to steer packets to another CPU');
    return;
  }
  const { sender } = floodPair('198.18.5');
  const budget = Number(saved.get('net.core.netdev_budget'));
  const usecs = Number(saved.get('net.core.netdev_budget_usecs'));
  // The sysctl core service watches only the writes made in -c's cgroup: this test's own
  // writes below (it provokes the squeezes) are not an administrator taking net_buffer over.
  const cgroup = new TestCgroup();
  const daemon = new DaemonProcess(['-a', 'net_buffer', '-R', '-c', cgroup.mountPoint]);
  try {
    await daemon.started();
    // A 32-packet budget is used up by one backlog poll (64 packets), so each softirq round
    // under the flood ends squeezed; the budget goes back before the daemon's next 10 s sample.
    setGlobal('net.core.netdev_budget', '32');
    try {
      flood(sender, '198.18.5.2', 3);
    } finally {
      setGlobal('net.core.netdev_budget', String(budget));
    }
    await daemon.waitFor(
      new RegExp(`Due to (\\d+) squeezed NAPI polls \\(time_squeeze\\) in \\d+ s change net\\.core\\.netdev_budget from \\(${budget}\\) -> \\(${budget + (budget >> 2)}\\)`),
      20_000,
    );
    await daemon.waitFor(new RegExp(`change net\\.core\\.netdev_budget_usecs from \\(${usecs}\\) -> \\(${usecs + (usecs >> 2)}\\)`));
    assert.match(daemon.log, /Scenario 'need to increase # of packets processed per NAPI poll' occurred for tunable 'net\.core\.netdev_budget' in global ns\./);
    assert.equal(sysctlIn(null, 'net.core.netdev_budget'), String(budget + (budget >> 2)));
  } finally {
    assert.equal(await daemon.stop(), 0);
    cgroup.remove();
    restoreGlobals();
  }
  assert.match(daemon.log, new RegExp(`Rolled back 'net\\.core\\.netdev_budget' in global ns from \\(\\d+\\) -> \\(${budget}\\)`));
});

test('after an administrator writes netdev_max_backlog, backlog drops change nothing and say so once', async (t) => {
  if (Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) < 2) {
    t.skip('needs two CPUs to steer packets to another CPU');
    return;
  }
  const { sender } = floodPair('198.18.13');
  const daemon = new DaemonProcess(['-a', 'net_buffer', '-R']);
  try {
    await daemon.started();
    setGlobal('net.core.netdev_max_backlog', '16');
    await daemon.waitFor(/modified sysctl 'core\/netdev_max_backlog' that tuner 'net_buffer' uses; disabling 'net_buffer' for namespace cookie \d+/);
    flood(sender, '198.18.13.2', 2);
    await daemon.waitFor(/Skipping update of 'net\.core\.netdev_max_backlog' ; tuner 'net_buffer' is disabled in netns \(cookie \d+\)/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(daemon.log.match(/Skipping update of 'net\.core\.netdev_max_backlog'/g)?.length, 1);
    assert.equal(sysctlIn(null, 'net.core.netdev_max_backlog'), '16');
  } finally {
    assert.equal(await daemon.stop(), 0);
    restoreGlobals();
  }
  assert.doesNotMatch(daemon.log, /change net\.core\.netdev_max_backlog/);
});

test('softnet_stat, PSI and schedstat parsing', () => {
  const softnet = ['0000000a 00000001 00000003 00000000', '00000014 00000002 00000004 00000000'].join('\n');
  assert.deepEqual(parseSoftnetStat(softnet), { processed: 30, dropped: 3, timeSqueeze: 7 });
  assert.equal(parsePressureWaitNs('some avg10=1.00 avg60=0.50 avg300=0.10 total=1234\nfull avg10=0 avg60=0 avg300=0 total=0\n'), 1234000);
  assert.equal(parseSchedstatWaitNs('version 15\ntimestamp 1\ncpu0 0 0 0 0 0 0 100 200 3\ncpu1 0 0 0 0 0 0 100 300 3\ndomain0 3 1'), 500);
});

test('cpumask: set a CPU keeping the kernel format', () => {
  assert.equal(withCpu('0', 0), '1');
  assert.equal(withCpu('1', 1), '3');
  assert.equal(withCpu('00000000,00000001', 33), '00000002,00000001');
  assert.ok(hasCpu('3', 1));
  assert.ok(!hasCpu('00000002,00000001', 1));
});

test('budget policy: grow on squeezes; shrink once budget and scheduler wait rise together', () => {
  const policy = new BudgetPolicy();
  assert.equal(policy.decide({ squeezes: 0, seconds: 10, budget: 300, waitNs: 1e6 }), 'hold');
  assert.equal(policy.decide({ squeezes: 50, seconds: 10, budget: 300, waitNs: 1e6 }), 'grow');
  // Budget increases met by rising wait: correlation above 0.7 turns it around.
  assert.equal(policy.decide({ squeezes: 50, seconds: 10, budget: 375, waitNs: 2e6 }), 'grow');
  assert.equal(policy.decide({ squeezes: 50, seconds: 10, budget: 468, waitNs: 3e6 }), 'shrink');
  // Evidence is spent on one step: squeezes alone grow again.
  assert.equal(policy.decide({ squeezes: 50, seconds: 10, budget: 375, waitNs: 3e6 }), 'grow');
  // Wait unrelated to the budget does not stop growth.
  const unrelated = new BudgetPolicy();
  const waits = [5e6, 1e6, 4e6, 2e6, 6e6, 1e6];
  waits.forEach((waitNs, i) => assert.equal(unrelated.decide({ squeezes: 50, seconds: 10, budget: 300 + 10 * i, waitNs: i % 2 ? waitNs : 7e6 - waitNs }), 'grow'));
});
