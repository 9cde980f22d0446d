import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { TunableRegistry, type SysctlAccess } from '../../src/core/tunables';
import type { Namespace } from '../../src/core/netns';
import { rollbackText, summaryText } from '../../src/core/summary';
import type { Logger } from '../../src/core/log';

const GLOBAL: Namespace = { cookie: 1n, inum: 100, path: '/proc/self/ns/net', global: true };
const CONTAINER: Namespace = { cookie: 7n, inum: 107, path: '/var/run/netns/c1', name: 'c1', global: false };

function fixture() {
  const values = new Map<string, string>([
    ['1:net/ipv4/tcp_rmem', '4096\t131072\t6291456'],
    ['7:net/ipv4/tcp_rmem', '4096\t131072\t6291456'],
  ]);
  const failWrites = new Set<string>();
  const access: SysctlAccess = {
    read: async (ns, p) => {
      const v = values.get(`${ns.cookie}:${p}`);
      if (v === undefined) throw new Error(`no ${p}`);
      return v;
    },
    write: async (ns, p, v) => {
      if (failWrites.has(p)) throw Object.assign(new Error('Invalid argument'), { code: 'EINVAL' });
      values.set(`${ns.cookie}:${p}`, v);
    },
    netlink: async () => [],
  };
  const namespaces = {
    global: GLOBAL,
    resolve: async (c: bigint) => [GLOBAL, CONTAINER].find((n) => n.cookie === c),
  };
  const lines: string[] = [];
  const log: Logger = {
    debugEnabled: true,
    error: (m) => lines.push(`E ${m}`),
    warn: (m) => lines.push(`W ${m}`),
    info: (m) => lines.push(m),
    debug: () => undefined,
  };
  const registry = new TunableRegistry(access, namespaces, log);
  registry.register(
    'tcp_buffer',
    [{ name: 'net.ipv4.tcp_rmem', namespaced: true, values: 3, labels: ['min', 'default', 'max'] }],
    [{ id: 1, name: 'need to increase TCP buffer size(s)', description: 'Need to increase buffer size(s) to maximize throughput' }],
  );
  return { registry, values, lines, failWrites };
}

test('a change is written in its namespace and logged with the compat lines', async () => {
  const { registry, values, lines } = fixture();
  const ok = await registry.set('tcp_buffer', {
    tunable: 'net.ipv4.tcp_rmem',
    scenario: 1,
    netnsCookie: 7n,
    values: [4096, 131072, 7864320],
    reason: 'need to increase max buffer size to maximize throughput',
  });
  assert.equal(ok, true);
  assert.equal(values.get('7:net/ipv4/tcp_rmem'), '4096 131072 7864320');
  assert.equal(values.get('1:net/ipv4/tcp_rmem'), '4096\t131072\t6291456');
  assert.deepEqual(lines, [
    "Scenario 'need to increase TCP buffer size(s)' occurred for tunable 'net.ipv4.tcp_rmem' in non-global ns. Need to increase buffer size(s) to maximize throughput",
    'Due to need to increase max buffer size to maximize throughput change net.ipv4.tcp_rmem(min default max) from (4096 131072 6291456) -> (4096 131072 7864320)',
  ]);
});

test('an external write disables the tuner only in that namespace, and later writes there are skipped', async () => {
  const { registry, values, lines } = fixture();
  const disabled = registry.externalWrite({ sysctl: 'net/ipv4/tcp_rmem', netnsCookie: 7n, pid: 42, command: 'sysctl -w net.ipv4.tcp_rmem=1 2 3' });
  assert.deepEqual(disabled, ['tcp_buffer']);
  assert.equal(
    lines[0],
    "pid 42, cmd 'sysctl -w net.ipv4.tcp_rmem=1 2 3' modified sysctl 'ipv4/tcp_rmem' that tuner 'tcp_buffer' uses; disabling 'tcp_buffer' for namespace cookie 7",
  );
  assert.equal(registry.state('tcp_buffer', 7n), 'manual');
  assert.equal(registry.state('tcp_buffer', 1n), 'active');
  const change = { tunable: 'net.ipv4.tcp_rmem', scenario: 1, values: [4096, 131072, 9000000], reason: 'x' };
  assert.equal(await registry.set('tcp_buffer', { ...change, netnsCookie: 7n }), false);
  assert.equal(lines[1], "Skipping update of 'net.ipv4.tcp_rmem' ; tuner 'tcp_buffer' is disabled in netns (cookie 7)");
  assert.equal(await registry.set('tcp_buffer', { ...change, netnsCookie: 1n }), true);
  assert.equal(values.get('1:net/ipv4/tcp_rmem'), '4096 131072 9000000');
  // A write to a sysctl no tuner manages changes nothing.
  assert.deepEqual(registry.externalWrite({ sysctl: 'net/core/somaxconn', netnsCookie: 1n, pid: 1, command: 'x' }), []);
});

test('a failed write is logged with what failed and leaves no record', async () => {
  const { registry, lines, failWrites } = fixture();
  failWrites.add('net/ipv4/tcp_rmem');
  const ok = await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, values: [1, 2, 3], reason: 'x' });
  assert.equal(ok, false);
  assert.match(lines[0] ?? '', /^E tuner 'tcp_buffer': failed to change 'net.ipv4.tcp_rmem' from \(4096 131072 6291456\) to \(1 2 3\) in global ns \(cookie 1\): Invalid argument/);
  assert.deepEqual(registry.changes(), []);
});

test('undeclared tunables, unknown scenarios and wrong value counts are rejected', async () => {
  const { registry, lines } = fixture();
  assert.equal(await registry.set('tcp_buffer', { tunable: 'net.core.somaxconn', scenario: 1, values: [1], reason: 'x' }), false);
  assert.equal(await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 9, values: [1, 2, 3], reason: 'x' }), false);
  assert.equal(await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, values: [1], reason: 'x' }), false);
  assert.equal(lines.filter((l) => l.startsWith('E ')).length, 3);
});

test('concurrent changes to one tunable are serialised and the original is kept for rollback', async () => {
  const { registry, values } = fixture();
  const change = (max: number) =>
    registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, netnsCookie: 7n, values: [4096, 131072, max], reason: 'x' });
  await Promise.all([change(7000000), change(8000000), change(9000000)]);
  const [rec] = registry.changes();
  assert.deepEqual(rec?.original, [4096, 131072, 6291456]);
  assert.deepEqual(rec?.current, [4096, 131072, 9000000]);
  assert.equal(rec?.changes, 3);
  const [scenario] = registry.scenarios();
  assert.equal(scenario?.count, 3);
  await registry.rollback();
  assert.equal(values.get('7:net/ipv4/tcp_rmem'), '4096 131072 6291456');
});

test('rollback leaves alone what an administrator changed since', async () => {
  const { registry, values, lines } = fixture();
  await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, values: [4096, 131072, 7000000], reason: 'x' });
  registry.externalWrite({ sysctl: 'net/ipv4/tcp_rmem', netnsCookie: 1n, pid: 5, command: 'sysctl' });
  values.set('1:net/ipv4/tcp_rmem', '1 2 3');
  await registry.rollback();
  assert.equal(values.get('1:net/ipv4/tcp_rmem'), '1 2 3');
  assert.match(lines.at(-1) ?? '', /Not rolling back 'net.ipv4.tcp_rmem' in global ns/);
});

test('summary and rollback text follow the reference format', async () => {
  const { registry } = fixture();
  await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, values: [4096, 131072, 7864320], reason: 'x' });
  await registry.set('tcp_buffer', { tunable: 'net.ipv4.tcp_rmem', scenario: 1, netnsCookie: 7n, values: [4096, 131072, 7864320], reason: 'x' });
  const summary = summaryText(registry.scenarios(), registry.changes());
  assert.equal(
    summary,
    [
      "# Summary: scenario 'need to increase TCP buffer size(s)' occurred 1 times for tunable 'net.ipv4.tcp_rmem' in global ns. Need to increase buffer size(s) to maximize throughput",
      "# Summary: scenario 'need to increase TCP buffer size(s)' occurred 1 times for tunable 'net.ipv4.tcp_rmem' in non-global ns. Need to increase buffer size(s) to maximize throughput",
      "# sysctl 'net.ipv4.tcp_rmem' changed from (4096 131072 6291456 ) -> (4096 131072 7864320 )",
      '# To replicate this change on another system, run the following as a privileged user in a terminal:',
      'sysctl -w net.ipv4.tcp_rmem="4096 131072 7864320 "',
      "# sysctl 'net.ipv4.tcp_rmem' changed from (4096 131072 6291456 ) -> (4096 131072 7864320 )",
      '# (in network namespace cookie 7)',
      '# To replicate this change on another system, run the following as a privileged user in a terminal:',
      'ip netns exec c1 sysctl -w net.ipv4.tcp_rmem="4096 131072 7864320 "',
      '',
    ].join('\n'),
  );
  assert.equal(
    rollbackText(registry.changes()),
    [
      "# To roll back changes to 'net.ipv4.tcp_rmem', run the following as a privileged user in a terminal:",
      'sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"',
      "# To roll back changes to 'net.ipv4.tcp_rmem', run the following as a privileged user in a terminal:",
      'ip netns exec c1 sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"',
      '',
    ].join('\n'),
  );
});

test('an action outside the write path is logged with the compat lines and counted, with nothing to roll back', async () => {
  const { registry, values, lines } = fixture();
  const action = { tunable: 'net.ipv4.tcp_rmem', scenario: 1, netnsCookie: 7n, reason: "loss events for 198.18.1.2, specify 'bbr' congestion control algorithm" };
  assert.equal(await registry.action('tcp_buffer', action), true);
  assert.equal(await registry.action('tcp_buffer', action), true);
  assert.deepEqual(lines.slice(0, 2), [
    "Scenario 'need to increase TCP buffer size(s)' occurred for tunable 'net.ipv4.tcp_rmem' in non-global ns. Need to increase buffer size(s) to maximize throughput",
    "Due to loss events for 198.18.1.2, specify 'bbr' congestion control algorithm",
  ]);
  assert.equal(values.get('7:net/ipv4/tcp_rmem'), '4096\t131072\t6291456', 'nothing was written');
  assert.equal(registry.writeCount, 0);
  assert.deepEqual(registry.changes(), []);
  assert.equal(registry.scenarios()[0]?.count, 2);
  assert.equal(await registry.action('tcp_buffer', { ...action, scenario: 9 }), false);
  assert.match(lines.at(-1) ?? '', /^E tuner 'tcp_buffer': rejected action: tuner 'tcp_buffer' did not declare scenario 9/);
  assert.equal(await registry.action('tcp_buffer', { ...action, netnsCookie: 99n }), false, 'the namespace is gone');
});

test("tuners' reports follow the summary, each line prefixed with the tuner's name", () => {
  const reports = [
    { tuner: 'tcp_conn', report: { text: 'remote host  algorithm\n198.18.1.2   bbr' } },
    { tuner: 'quiet', report: { text: '' } },
  ];
  assert.equal(
    summaryText([], [], reports),
    ['# Summary: bpftune made no changes', '# Summary: tcp_conn: remote host  algorithm', '# Summary: tcp_conn: 198.18.1.2   bbr', ''].join('\n'),
  );
});
