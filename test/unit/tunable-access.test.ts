/**
 * Tunables that are not /proc/sys files (TunableAccess, e.g. a neighbour
 * table's thresholds set over netlink) go through the same write path:
 * compat log lines, records, summary with the tunable's own command, and a
 * rollback that leaves alone a value someone else has changed since.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { TunableRegistry, type SysctlAccess } from '../../src/core/tunables';
import type { Namespace } from '../../src/core/netns';
import { rollbackText, summaryText } from '../../src/core/summary';
import type { Logger } from '../../src/core/log';
import type { SysctlValue, TunableAccess } from '../../src/core/tuner';

const GLOBAL: Namespace = { cookie: 1n, inum: 100, path: '/proc/self/ns/net', global: true };

function fixture() {
  let table: SysctlValue[] = [128, 512, 1024];
  const sysctl: SysctlAccess = {
    read: () => Promise.reject(new Error('not a sysctl')),
    write: () => Promise.reject(new Error('not a sysctl')),
    netlink: () => Promise.reject(new Error('not used')),
  };
  const access: TunableAccess = {
    read: async () => [...table],
    write: async (_ns, values) => {
      table = [...values];
    },
    command: (values) => `ip ntable change name arp_cache thresh1 ${values[0]} thresh2 ${values[1]} thresh3 ${values[2]}`,
  };
  const lines: string[] = [];
  const log: Logger = {
    debugEnabled: false,
    error: (m) => lines.push(`E ${m}`),
    warn: (m) => lines.push(`W ${m}`),
    info: (m) => lines.push(m),
    debug: () => undefined,
  };
  const registry = new TunableRegistry(sysctl, { global: GLOBAL, resolve: async () => GLOBAL }, log);
  registry.register(
    'neigh_table',
    [{ name: 'arp_cache', namespaced: false, values: 3, labels: ['thresh1', 'thresh2', 'thresh3'], access }],
    [{ id: 0, name: 'neighbour table nearly full', description: 'Grow it' }],
  );
  return {
    registry,
    lines,
    get table() {
      return table;
    },
    set table(v: SysctlValue[]) {
      table = v;
    },
  };
}

test('a non-sysctl tunable is read and written through its access, logged and summarised with its command', async () => {
  const f = fixture();
  assert.deepEqual(await f.registry.get('neigh_table', 'arp_cache'), [128, 512, 1024]);
  const ok = await f.registry.set('neigh_table', { tunable: 'arp_cache', scenario: 0, values: [160, 640, 1280], reason: 'table nearly full' });
  assert.equal(ok, true);
  assert.deepEqual(f.table, [160, 640, 1280]);
  assert.deepEqual(f.lines, [
    "Scenario 'neighbour table nearly full' occurred for tunable 'arp_cache' in global ns. Grow it",
    'Due to table nearly full change arp_cache(thresh1 thresh2 thresh3) from (128 512 1024) -> (160 640 1280)',
  ]);
  const summary = summaryText(f.registry.scenarios(), f.registry.changes());
  assert.match(summary, /# tunable 'arp_cache' changed from \(128 512 1024 \) -> \(160 640 1280 \)\n/);
  assert.match(summary, /\nip ntable change name arp_cache thresh1 160 thresh2 640 thresh3 1280\n/);
  assert.match(rollbackText(f.registry.changes()), /\nip ntable change name arp_cache thresh1 128 thresh2 512 thresh3 1024\n/);

  await f.registry.rollback();
  assert.deepEqual(f.table, [128, 512, 1024]);
  assert.match(f.lines.at(-1) ?? '', /Rolled back 'arp_cache' in global ns from \(160 640 1280\) -> \(128 512 1024\)/);
});

test('rollback leaves a non-sysctl tunable alone when someone else changed it since', async () => {
  const f = fixture();
  await f.registry.set('neigh_table', { tunable: 'arp_cache', scenario: 0, values: [160, 640, 1280], reason: 'table nearly full' });
  f.table = [256, 1024, 4096];
  await f.registry.rollback();
  assert.deepEqual(f.table, [256, 1024, 4096]);
  assert.match(f.lines.at(-1) ?? '', /Not rolling back 'arp_cache' in global ns: it is \(256 1024 4096\), not the \(160 640 1280\) bpftune set/);
});
