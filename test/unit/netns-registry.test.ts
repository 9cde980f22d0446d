import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { NetnsRegistry, type NamespaceSource } from '../../src/core/netns';
import type { Logger } from '../../src/core/log';

const quiet: Logger = { debugEnabled: false, error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

function source(initial: Record<string, number>) {
  const paths = new Map<string, number>(Object.entries(initial));
  const idCalls: string[] = [];
  const src: NamespaceSource = {
    listPaths: async () => {
      const byInum = new Map<number, string[]>();
      for (const [p, inum] of paths) byInum.set(inum, [...(byInum.get(inum) ?? []), p]);
      return byInum;
    },
    netnsId: async (p) => {
      idCalls.push(p);
      const inum = p === '/proc/1/ns/net' ? 1 : paths.get(p);
      if (inum === undefined) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
      return { cookie: BigInt(inum) * 1000n, inum };
    },
    inodeOf: async (p) => (p === '/proc/1/ns/net' ? 1 : paths.get(p)),
  };
  return { src, paths, idCalls };
}

test('namespaces are found, identified once, followed when their path moves, and dropped when gone', async () => {
  const { src, paths, idCalls } = source({ '/proc/1/ns/net': 1, '/proc/50/ns/net': 5, '/var/run/netns/a': 5, '/proc/60/ns/net': 6 });
  const registry = new NetnsRegistry(src, quiet);
  const events: string[] = [];
  registry.onChange((ns, change) => events.push(`${change} ${ns.cookie}`));
  await registry.init();
  assert.equal(registry.global.cookie, 1000n);
  assert.deepEqual(registry.all().map((n) => n.cookie).sort(), [1000n, 5000n, 6000n]);
  assert.equal(registry.byCookie(5000n)?.name, 'a');

  const before = idCalls.length;
  await registry.rescan();
  assert.equal(idCalls.length, before, 'known namespaces are not identified again');

  paths.delete('/proc/60/ns/net');
  paths.set('/proc/61/ns/net', 6);
  await registry.verify();
  assert.equal(registry.byCookie(6000n)?.path, '/proc/61/ns/net');

  paths.delete('/proc/61/ns/net');
  await registry.verify();
  assert.equal(registry.byCookie(6000n), undefined);
  assert.deepEqual(events, ['added 5000', 'added 6000', 'removed 6000']);

  paths.set('/proc/70/ns/net', 7);
  assert.equal((await registry.resolve(7000n))?.path, '/proc/70/ns/net');
  assert.equal(await registry.resolve(99n), undefined);
});

test('concurrent rescans share one scan', async () => {
  const { src } = source({ '/proc/1/ns/net': 1 });
  let scans = 0;
  const counting: NamespaceSource = { ...src, listPaths: async () => (scans++, src.listPaths()) };
  const registry = new NetnsRegistry(counting, quiet);
  await registry.init();
  scans = 0;
  await Promise.all([registry.rescan(), registry.rescan(), registry.rescan()]);
  assert.equal(scans, 1);
});
