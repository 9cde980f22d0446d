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

/** Every entry in the table, all namespaces (`ip -s ntable`'s "entries"). */
function entries(table: string): number {
  const m = /entries (\d+)/.exec(ip(['-s', 'ntable', 'show', 'name', table]));
  assert.ok(m, `ip -s ntable show name ${table} prints the entry count`);
  return Number(m[1]);
}

/**
 * The entry count once earlier namespaces' teardown (asynchronous in the
 * kernel) has let go of their entries: the table is shared with everything
 * else on the machine, so the tests size thresholds from what is there.
 */
async function settledEntries(table: string): Promise<number> {
  let last = entries(table);
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = entries(table);
    if (now === last) return now;
    last = now;
  }
  return last;
}

const grow = (n: number) => n + (n >> 2);

/**
 * Thresholds (t3/4, t3/2, t3) with 100 more entries past 3/4 of t3 (nearly
 * full) but short of t3 (no overflow) and of 3/4 of one step more.
 */
function thresholdsFor(existing: number): Thresholds {
  const thresh3 = 4 * Math.round(0.3 * (existing + 100));
  return { thresh1: thresh3 / 4, thresh2: thresh3 / 2, thresh3 };
}

function grown(t: Thresholds): Thresholds {
  return { thresh1: grow(t.thresh1), thresh2: grow(t.thresh2), thresh3: grow(t.thresh3) };
}

function shown(t: Thresholds): string {
  return `\\(${t.thresh1} ${t.thresh2} ${t.thresh3}\\)`;
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
  const start = thresholdsFor(await settledEntries(table));
  setThresholds(table, start);
  const otherBefore = thresholds(other);
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  assert.match(daemon.log, /tuner 'neigh_table' loaded \(tp_btf\)/);

  // 100 entries: past 3/4 of thresh3, the "nearly full" point at learning rate 4.
  addNeighbours(ns, addresses);
  const growth = new RegExp(
    `Due to neighbour table '${table}' nearly full \\(\\d+ of gc_thresh3 ${start.thresh3} entries subject to garbage collection; ` +
      `new entry on veth0 in non-global ns\\) change ${table}\\(thresh1 thresh2 thresh3\\) from ${shown(start)} -> ${shown(grown(start))}`,
  );
  await daemon.waitFor(growth);
  assert.match(
    daemon.log,
    new RegExp(`Scenario 'neighbour table nearly full' occurred for tunable '${table}' in global ns\\. A neighbour table is close to gc_thresh3`),
  );
  assert.deepEqual(thresholds(table), grown(start));
  assert.deepEqual(thresholds(other), otherBefore, `only ${table} changes`);

  ip(['-n', ns, ...flushArgs]);
  await daemon.waitFor(new RegExp(`Due to neighbour table '${table}' nearly empty .* change ${table}\\(thresh1 thresh2 thresh3\\) from ${shown(grown(start))} -> ${shown(start)}`));
  assert.deepEqual(thresholds(table), start);

  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, new RegExp(`# tunable '${table}' changed from \\(${start.thresh1} ${start.thresh2} ${start.thresh3} \\) -> \\(${start.thresh1} ${start.thresh2} ${start.thresh3} \\)`));
  assert.match(daemon.log, new RegExp(`ip ntable change name ${table} thresh1 ${start.thresh1} thresh2 ${start.thresh2} thresh3 ${start.thresh3}`));
}

test('IPv4: a nearly full arp_cache grows (arp_cache only) and shrinks back once emptied', async () => {
  const ns = namespaceWithVeth('198.18.0.1/24');
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
  await growAndShrink(
    'ndisc_cache',
    'arp_cache',
    ns,
    range(16, 100).map((i) => `fd00:10::${i.toString(16)}`),
    ['-6', 'neigh', 'flush', 'dev', 'veth0'],
  );
});

test('growth stops at what the device prefixes make plausible, and says so', async () => {
  // A /26 holds 62 hosts, one of them this device: at most 61 neighbours on veth0. With thresh3
  // 64 above what the table holds already, 50 more entries make it nearly full, and the bound
  // (61 plus the entries elsewhere) is below even the current thresh3.
  const ns = namespaceWithVeth('198.18.2.1/26');
  const existing = await settledEntries('arp_cache');
  const start = { thresh1: 16, thresh2: existing + 32, thresh3: existing + 64 };
  setThresholds('arp_cache', start);
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  addNeighbours(
    ns,
    range(2, 50).map((i) => `198.18.2.${i}`),
  );
  const bound = await daemon.waitFor(
    /neighbour table 'arp_cache' is nearly full \(\d+ of \d+\), but growth stops at (\d+) entries: veth0 \(198\.18\.2\.1\/26\) can have at most 61 neighbours, and other devices hold (\d+) entries/,
  );
  const limit = Number(bound[1]);
  assert.equal(limit, 61 + Number(bound[2]));
  // Unbounded, one step would have grown thresh3 by a quarter; it is held at the bound.
  assert.equal(thresholds('arp_cache').thresh3, Math.max(start.thresh3, Math.min(grow(start.thresh3), limit)));
  assert.equal(await daemon.stop(), 0);
  // -R put back anything bpftune changed.
  assert.deepEqual(thresholds('arp_cache'), start);
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
  const start = thresholdsFor(await settledEntries('arp_cache'));
  setThresholds('arp_cache', start);
  const daemon = new DaemonProcess(['-a', 'neigh_table', '-R']);
  await daemon.started();
  addNeighbours(
    ns,
    range(10, 100).map((i) => `198.18.4.${i}`),
  );
  await daemon.waitFor(new RegExp(`change arp_cache\\(thresh1 thresh2 thresh3\\) from ${shown(start)} -> ${shown(grown(start))}`));
  const theirs = { ...grown(start), thresh3: grown(start).thresh3 + 8 };
  setThresholds('arp_cache', theirs);
  // Past the BPF side's 50 ms per-table event interval, so the next batch's entries are not rate-limited.
  await new Promise((r) => setTimeout(r, 200));
  // Nearly full again: the next event finds thresholds bpftune did not set.
  addNeighbours(
    ns,
    range(110, 40).map((i) => `198.18.4.${i}`),
  );
  await daemon.waitFor(
    new RegExp(
      `neighbour table 'arp_cache' thresholds are ${shown(theirs)}, not the ${shown(grown(start))} bpftune set: someone else changed them, so bpftune no longer tunes 'arp_cache'`,
    ),
  );
  assert.equal(await daemon.stop(), 0);
  assert.match(daemon.log, new RegExp(`Not rolling back 'arp_cache' in global ns: it is ${shown(theirs)}, not the ${shown(grown(start))} bpftune set`));
  assert.deepEqual(thresholds('arp_cache'), theirs);
});

test("an administrator's sysctl -w of gc_thresh1 makes the tuner stand down: a nearly full table is then left at their thresholds", async () => {
  const ns = namespaceWithVeth('198.18.6.1/24');
  const start = thresholdsFor(await settledEntries('arp_cache'));
  setThresholds('arp_cache', start);
  const daemon = new DaemonProcess(['-d', '-a', 'neigh_table', '-R']);
  await daemon.started();
  // The usual way administrators set the thresholds (only the initial namespace has these sysctls).
  const theirs = { ...start, thresh1: start.thresh1 + 4 };
  execFileSync('sysctl', ['-q', '-w', `net.ipv4.neigh.default.gc_thresh1=${theirs.thresh1}`]);
  const takeover = await daemon.waitFor(
    // The command line, or just "sysctl" when it exited before the daemon could read it.
    /cmd 'sysctl[^']*' modified sysctl 'ipv4\/neigh\/default\/gc_thresh1' that tuner 'neigh_table' uses; disabling 'neigh_table' for namespace cookie (\d+)/,
  );
  const cookie = takeover[1];
  await daemon.waitFor(new RegExp(`setting state of netns \\(cookie ${cookie}\\) to manual for 'neigh_table'`));

  // Nearly full, as in the growth tests: the tuner would grow it, and says it may not.
  addNeighbours(
    ns,
    range(10, 100).map((i) => `198.18.6.${i}`),
  );
  await daemon.waitFor(new RegExp(`Skipping update of 'arp_cache' ; tuner 'neigh_table' is disabled in netns \\(cookie ${cookie}\\)`));
  assert.deepEqual(thresholds('arp_cache'), theirs);
  assert.doesNotMatch(daemon.log, /change arp_cache\(thresh1 thresh2 thresh3\)/);
  assert.equal(await daemon.stop(), 0);
  assert.deepEqual(thresholds('arp_cache'), theirs, '-R leaves their thresholds');
});

test('an IPv6 gc_thresh sysctl write is a takeover too', async () => {
  const daemon = new DaemonProcess(['-a', 'neigh_table']);
  await daemon.started();
  const current = thresholds('ndisc_cache');
  execFileSync('sysctl', ['-q', '-w', `net.ipv6.neigh.default.gc_thresh3=${current.thresh3}`]);
  await daemon.waitFor(/modified sysctl 'ipv6\/neigh\/default\/gc_thresh3' that tuner 'neigh_table' uses; disabling 'neigh_table' for namespace cookie \d+/);
  assert.equal(await daemon.stop(), 0);
});
