/**
 * neigh_table end to end: real neighbour entries in a test namespace fill a
 * table whose thresholds were lowered; the daemon grows that table only (as
 * `ip ntable show` reports), within the device's plausible neighbours, and
 * shrinks it back once the entries are gone. Neighbour tables are one per
 * family for the whole system (the kernel accepts threshold changes only in
 * the initial namespace), so the tests save both tables' thresholds first
 * and restore them in `after`, also when a test fails.
 */
import { after, afterEach, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cleanupNamespaces, createNamespace, removeStaleNamespaces } from '../../../test/support/netns';
import { DaemonProcess, stopAllDaemons } from '../../../test/support/daemon';
import { native } from '../../core/native';
import { AF_INET, NETLINK_ROUTE, setNeighTableRequest } from './rtnetlink';

interface Thresholds {
  thresh1: number;
  thresh2: number;
  thresh3: number;
}

function ip(args: string[], input?: string): string {
  return execFileSync('ip', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function thresholds(table: string): Thresholds {
  const m = /thresh1 (\d+) thresh2 (\d+) thresh3 (\d+)/.exec(ip(['ntable', 'show', 'name', table]));
  assert.ok(m, `ip ntable show name ${table} prints thresholds`);
  return { thresh1: Number(m[1]), thresh2: Number(m[2]), thresh3: Number(m[3]) };
}

function setThresholds(table: string, t: Thresholds): void {
  ip(['ntable', 'change', 'name', table, 'thresh1', String(t.thresh1), 'thresh2', String(t.thresh2), 'thresh3', String(t.thresh3)]);
}

const saved = new Map<string, Thresholds>();

before(() => {
  removeStaleNamespaces();
  for (const table of ['arp_cache', 'ndisc_cache']) saved.set(table, thresholds(table));
});

function restoreTables(): void {
  for (const [table, t] of saved) setThresholds(table, t);
}

afterEach(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
  restoreTables();
});

after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
  restoreTables();
});

/** A namespace with a veth pair (both ends inside), the address on veth0. */
function namespaceWithVeth(address: string): string {
  const ns = createNamespace();
  ip(['-n', ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'vc0']);
  ip(['-n', ns, 'link', 'set', 'veth0', 'up']);
  ip(['-n', ns, 'link', 'set', 'vc0', 'up']);
  ip(['-n', ns, 'addr', 'add', address, 'dev', 'veth0', ...(address.includes(':') ? ['nodad'] : [])]);
  return ns;
}

/** Entries subject to garbage collection (not permanent), so they count against the thresholds. */
function addNeighbours(ns: string, addresses: string[]): void {
  const batch = addresses.map((a) => `neigh add ${a} lladdr 02:00:5e:00:53:01 dev veth0 nud stale`).join('\n');
  ip(['-n', ns, '-batch', '-'], `${batch}\n`);
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

async function growAndShrink(table: string, other: string, ns: string, addresses: string[], flushArgs: string[]): Promise<void> {
  const otherBefore = thresholds(other);
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  assert.match(daemon.log, /tuner 'neigh_table' loaded \(tp_btf\)/);

  // 100 entries: past 3/4 of thresh3 128, the "nearly full" point at learning rate 4.
  addNeighbours(ns, addresses);
  const growth = new RegExp(
    `Due to neighbour table '${table}' nearly full \\(\\d+ of gc_thresh3 128 entries subject to garbage collection; ` +
      `new entry on veth0 in non-global ns\\) change ${table}\\(thresh1 thresh2 thresh3\\) from \\(32 64 128\\) -> \\(40 80 160\\)`,
  );
  await daemon.waitFor(growth);
  assert.match(
    daemon.log,
    new RegExp(`Scenario 'neighbour table nearly full' occurred for tunable '${table}' in global ns\\. A neighbour table is close to gc_thresh3`),
  );
  assert.deepEqual(thresholds(table), { thresh1: 40, thresh2: 80, thresh3: 160 });
  assert.deepEqual(thresholds(other), otherBefore, `only ${table} changes`);

  ip(['-n', ns, ...flushArgs]);
  await daemon.waitFor(new RegExp(`Due to neighbour table '${table}' nearly empty .* change ${table}\\(thresh1 thresh2 thresh3\\) from \\(40 80 160\\) -> \\(32 64 128\\)`));
  assert.deepEqual(thresholds(table), { thresh1: 32, thresh2: 64, thresh3: 128 });

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, new RegExp(`# tunable '${table}' changed from \\(32 64 128 \\) -> \\(32 64 128 \\)`));
  assert.match(daemon.log, new RegExp(`ip ntable change name ${table} thresh1 32 thresh2 64 thresh3 128`));
}

test('IPv4: a nearly full arp_cache grows (arp_cache only) and shrinks back once emptied', async () => {
  const ns = namespaceWithVeth('198.18.0.1/24');
  setThresholds('arp_cache', { thresh1: 32, thresh2: 64, thresh3: 128 });
  await growAndShrink(
    'arp_cache',
    'ndisc_cache',
    ns,
    range(10, 100).map((i) => `198.18.0.${i}`),
    ['neigh', 'flush', 'dev', 'veth0'],
  );
});

test('IPv6: a nearly full ndisc_cache grows (ndisc_cache only) and shrinks back once emptied', async () => {
  const ns = namespaceWithVeth('fd00:10::1/64');
  setThresholds('ndisc_cache', { thresh1: 32, thresh2: 64, thresh3: 128 });
  await growAndShrink(
    'ndisc_cache',
    'arp_cache',
    ns,
    range(16, 100).map((i) => `fd00:10::${i.toString(16)}`),
    ['-6', 'neigh', 'flush', 'dev', 'veth0'],
  );
});

test('growth stops at what the device prefixes make plausible, and says so', async () => {
  // A /27 holds 30 hosts, one of them this device: at most 29 neighbours on veth0.
  const ns = namespaceWithVeth('198.18.2.1/27');
  setThresholds('arp_cache', { thresh1: 8, thresh2: 16, thresh3: 32 });
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  addNeighbours(
    ns,
    range(2, 26).map((i) => `198.18.2.${i}`),
  );
  const bound = await daemon.waitFor(
    /neighbour table 'arp_cache' is nearly full \(\d+ of 32\), but growth stops at (\d+) entries: veth0 \(198\.18\.2\.1\/27\) can have at most 29 neighbours, and other devices hold (\d+) entries/,
  );
  const limit = Number(bound[1]);
  assert.equal(limit, 29 + Number(bound[2]));
  const now = thresholds('arp_cache');
  // Unbounded, one step would have made thresh3 40; it is held at the bound (or left alone when the bound is not above 32).
  assert.equal(now.thresh3, Math.max(32, Math.min(40, limit)));
  assert.equal(await daemon.stop(), 0);
  // -R put back what bpftune changed.
  assert.deepEqual(thresholds('arp_cache'), { thresh1: 8, thresh2: 16, thresh3: 32 });
});

test('the kernel takes table thresholds only from the initial namespace (why changes are made there)', async () => {
  const ns = createNamespace();
  const current = thresholds('arp_cache');
  const message = setNeighTableRequest(AF_INET, 'arp_cache', current);
  await assert.rejects(native().netlinkRequest(`/var/run/netns/${ns}`, 0, NETLINK_ROUTE, message), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOENT');
    assert.match(err.message, /netlink request type 67 in \/var\/run\/netns\/\S+: kernel replied with an error: No such file or directory/);
    return true;
  });
  // The same request from the daemon's (initial) namespace is acknowledged: no reply messages, no change.
  assert.deepEqual(await native().netlinkRequest(null, 0, NETLINK_ROUTE, message), []);
  assert.deepEqual(thresholds('arp_cache'), current);
});

test('someone else changing a table bpftune grew: bpftune stops tuning it and -R leaves it alone', async () => {
  const ns = namespaceWithVeth('198.18.4.1/24');
  setThresholds('arp_cache', { thresh1: 32, thresh2: 64, thresh3: 128 });
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  addNeighbours(
    ns,
    range(10, 100).map((i) => `198.18.4.${i}`),
  );
  await daemon.waitFor(/change arp_cache\(thresh1 thresh2 thresh3\) from \(32 64 128\) -> \(40 80 160\)/);
  setThresholds('arp_cache', { thresh1: 40, thresh2: 80, thresh3: 170 });
  // Past the BPF side's 100 ms per-table event interval, so the next batch's entries are not rate-limited.
  await new Promise((r) => setTimeout(r, 200));
  // Nearly full again (>= 128 of 170): the next event finds thresholds bpftune did not set.
  addNeighbours(
    ns,
    range(110, 30).map((i) => `198.18.4.${i}`),
  );
  await daemon.waitFor(
    /neighbour table 'arp_cache' thresholds are \(40 80 170\), not the \(40 80 160\) bpftune set: someone else changed them, so bpftune no longer tunes 'arp_cache'/,
  );
  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, /Not rolling back 'arp_cache' in global ns: it is \(40 80 170\), not the \(40 80 160\) bpftune set/);
  assert.deepEqual(thresholds('arp_cache'), { thresh1: 40, thresh2: 80, thresh3: 170 });
});
