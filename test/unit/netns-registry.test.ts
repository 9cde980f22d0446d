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
      const inum = p === '/proc/self/ns/net' ? 1 : paths.get(p);
      if (inum === undefined) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
      return { cookie: BigInt(inum) * 1000n, inum };
    },
    inodeOf: async (p) => (p === '/proc/self/ns/net' ? 1 : paths.get(p)),
  };
  return { src, paths, idCalls };
}

test('namespaces are found, identified once, followed when their path moves, and dropped when gone', async () => {
  const { src, paths, idCalls } = source({ '/proc/self/ns/net': 1, '/proc/50/ns/net': 5, '/var/run/netns/a': 5, '/proc/60/ns/net': 6 });
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
  const { src } = source({ '/proc/self/ns/net': 1 });
  let scans = 0;
  const counting: NamespaceSource = { ...src, listPaths: async () => (scans++, src.listPaths()) };
  const registry = new NetnsRegistry(counting, quiet);
  await registry.init();
  scans = 0;
  await Promise.all([registry.rescan(), registry.rescan(), registry.rescan()]);
  assert.equal(scans, 1);
});

test('a reused inode is recognised as a new namespace, by its cookie', async () => {
  const { src, paths } = source({ '/proc/self/ns/net': 1, '/var/run/netns/a': 5 });
  let generation = 0n;
  const reusing: NamespaceSource = {
    ...src,
    netnsId: async (p) => ({ ...(await src.netnsId(p)), cookie: p === '/proc/self/ns/net' ? 1000n : 5000n + generation }),
  };
  const registry = new NetnsRegistry(reusing, quiet);
  const events: string[] = [];
  registry.onChange((ns, change) => events.push(`${change} ${ns.cookie}`));
  await registry.init();
  // `ip netns del a; ip netns add b`: b gets a's freed inode and a new cookie.
  paths.delete('/var/run/netns/a');
  paths.set('/var/run/netns/b', 5);
  generation = 1n;
  await registry.rescan();
  assert.equal(registry.byCookie(5000n), undefined);
  assert.equal(registry.byCookie(5001n)?.name, 'b');
  // Same name, same inode, new cookie: only the creation event can tell.
  generation = 2n;
  assert.equal((await registry.seen(5002n, 5))?.cookie, 5002n);
  assert.equal(registry.byCookie(5001n), undefined);
  assert.deepEqual(events, ['added 5000', 'removed 5000', 'added 5001', 'removed 5001', 'added 5002']);
});

test('a namespace that only changes path keeps its identity and state', async () => {
  const { src, paths } = source({ '/proc/self/ns/net': 1, '/proc/40/ns/net': 4 });
  const registry = new NetnsRegistry(src, quiet);
  const events: string[] = [];
  registry.onChange((ns, change) => events.push(`${change} ${ns.cookie}`));
  await registry.init();
  paths.set('/var/run/netns/named', 4);
  await registry.rescan();
  assert.equal(registry.byCookie(4000n)?.path, '/var/run/netns/named');
  assert.deepEqual(events, ['added 4000']);
});

test('a namespace a scan found gone is not scanned for again on every lookup, until an event shows it alive', async () => {
  const { src, paths } = source({ '/proc/self/ns/net': 1, '/proc/30/ns/net': 3 });
  let scans = 0;
  const counting: NamespaceSource = { ...src, listPaths: async () => (scans++, src.listPaths()) };
  const registry = new NetnsRegistry(counting, quiet);
  await registry.init();
  paths.delete('/proc/30/ns/net');
  await registry.rescan();
  assert.equal(registry.byCookie(3000n), undefined);
  scans = 0;
  // A change being verified there goes on reading its counters: no scan each time.
  for (let i = 0; i < 5; i++) {
    assert.equal(await registry.resolve(3000n), undefined);
    assert.equal(await registry.refresh(3000n), undefined);
  }
  assert.equal(scans, 0);
  // Never seen at all: one scan, then the same hold.
  assert.equal(await registry.resolve(8000n), undefined);
  assert.equal(await registry.resolve(8000n), undefined);
  assert.equal(scans, 1);
  // An event from it (it was only out of sight, e.g. held by an fd): the next lookup scans and finds it.
  paths.set('/proc/31/ns/net', 3);
  registry.alive(3000n);
  assert.equal((await registry.resolve(3000n))?.path, '/proc/31/ns/net');
  assert.equal(scans, 2);
});
