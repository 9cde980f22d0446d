/** Metrics logic without a daemon: the --metrics address, labels, and a namespace's series going with it. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../../src/cli/args';
import { parseListenAddress } from '../../src/metrics/address';
import { BpftuneMetrics } from '../../src/metrics/registry';
import type { MetricsSource } from '../../src/metrics/source';
import type { Namespace } from '../../src/core/netns';
import type { RecordedEvent } from '../../src/core/tunables';

test('--metrics takes IPV4:PORT or [IPV6]:PORT and nothing looser', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9845'), { host: '127.0.0.1', port: 9845 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  for (const bad of [':9845', '9845', 'localhost:9845', '127.0.0.1:70000', '::1:9845', '127.0.0.1']) {
    assert.throws(() => parseListenAddress(bad), /invalid address/, bad);
  }
  assert.deepEqual(parseArgs(['--metrics', '127.0.0.1:9845', '--metrics-textfile=/tmp/x']).metrics, { host: '127.0.0.1', port: 9845 });
  assert.equal(parseArgs(['--metrics-textfile', '/tmp/x']).metricsTextfile, '/tmp/x');
  assert.throws(() => parseArgs(['--metrics', 'nowhere']), UsageError);
  assert.equal(parseArgs([]).metrics, undefined, 'off by default');
});

function fakeSource(): { source: MetricsSource; record(e: RecordedEvent): void; remove(ns: Namespace): void; namespaces: Map<bigint, Namespace> } {
  const global: Namespace = { cookie: 1n, inum: 1, path: '/proc/self/ns/net', global: true };
  const namespaces = new Map<bigint, Namespace>([[1n, global]]);
  const recordListeners: Array<(e: RecordedEvent) => void> = [];
  const removedListeners: Array<(ns: Namespace) => void> = [];
  const source: MetricsSource = {
    version: '0.1.0',
    kernel: '6.18',
    mode: 'full',
    global,
    namespace: (c) => namespaces.get(c),
    namespaceCount: () => namespaces.size,
    tuners: () => [{ name: 'listen_backlog', attachModes: ['tracepoint'], events: 3, eventErrors: 0, manualNamespaces: [], programStats: () => [] }],
    failedTuners: () => ['broken'],
    readTunables: async () => [...namespaces.values()].map((ns) => ({ tunable: 'net.core.somaxconn', ns, values: [4096] })),
    onRecord: (l) => recordListeners.push(l),
    onEventHandled: () => undefined,
    onNamespaceRemoved: (l) => removedListeners.push(l),
  };
  return {
    source,
    namespaces,
    record: (e) => recordListeners.forEach((l) => l(e)),
    remove: (ns) => {
      namespaces.delete(ns.cookie);
      removedListeners.forEach((l) => l(ns));
    },
  };
}

test('netns label is global, the name, or the cookie; a namespace that goes takes its series along', async () => {
  const fake = fakeSource();
  const metrics = new BpftuneMetrics(fake.source);
  const named: Namespace = { cookie: 4097n, inum: 2, path: '/var/run/netns/blue', name: 'blue', global: false };
  const unnamed: Namespace = { cookie: 4098n, inum: 3, path: '/proc/42/ns/net', global: false };
  fake.namespaces.set(named.cookie, named);
  fake.namespaces.set(unnamed.cookie, unnamed);
  const scenario = { id: 1, name: 'listen backlog truncated', description: '' };
  for (const ns of [fake.source.global, named, unnamed, named]) fake.record({ kind: 'change', tuner: 'listen_backlog', tunable: 'net.core.somaxconn', scenario, ns });
  fake.record({ kind: 'action', tuner: 'listen_backlog', tunable: 'net.core.somaxconn', scenario, ns: named });

  let text = await metrics.text();
  assert.match(text, /^bpftune_changes_total\{tuner="listen_backlog",tunable="net.core.somaxconn",scenario="listen backlog truncated",netns="global"\} 1$/m);
  assert.match(text, /^bpftune_changes_total\{[^}]*netns="blue"\} 2$/m);
  assert.match(text, /^bpftune_changes_total\{[^}]*netns="4098"\} 1$/m);
  assert.match(text, /^bpftune_actions_total\{tuner="listen_backlog",scenario="listen backlog truncated"\} 1$/m);
  assert.match(text, /^bpftune_tuner_state\{tuner="broken",netns="global",state="failed"\} 1$/m);
  assert.match(text, /^bpftune_tunable_value\{tunable="net.core.somaxconn",netns="blue",index="0"\} 4096$/m);
  assert.match(text, /^bpftune_info\{version="0.1.0",kernel="6.18",mode="full"\} 1$/m);

  // A namespace going drops the cached tunable readings (read at most once a minute otherwise).
  fake.remove(named);
  text = await metrics.text();
  assert.doesNotMatch(text, /netns="blue"/);
  assert.match(text, /netns="4098"/);
});
