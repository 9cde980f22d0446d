/**
 * The state store, the advice book and the export as pure logic: a temporary
 * directory for the file, an in-memory sysctl table for the write path.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdviceBook } from '../../src/core/advice';
import { exportEntries, sysctlDropIn } from '../../src/core/export';
import { createLogger } from '../../src/core/log';
import type { Namespace, NetnsRegistry } from '../../src/core/netns';
import { StateStore, validateState, type BpftuneState } from '../../src/core/state';
import { readJsonFile, removeStaleTemporaries } from '../../src/core/state-file';
import { openState } from '../../src/core/state-restore';
import { TunableRegistry } from '../../src/core/tunables';

const GLOBAL: Namespace = { cookie: 1n, inum: 1, path: '/proc/self/ns/net', global: true };
const NAMED: Namespace = { cookie: 9n, inum: 9, path: '/var/run/netns/web', name: 'web', global: false };
const SCENARIO = { id: 0, name: 'need to increase TCP buffer size(s)', description: 'Need to increase buffer size(s) to maximize throughput' };
const RMEM = { name: 'net.ipv4.tcp_rmem', namespaced: true, values: 3, labels: ['min', 'default', 'max'] };

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-unit-state-'));
  dirs.push(dir);
  return path.join(dir, 'state.json');
}

function logLines(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger((level, m) => lines.push(`${level} ${m}`), true) };
}

function store(file: string, rollback = false): StateStore {
  const s = new StateStore(file, { bootId: 'boot-a', rollback, advisory: false }, logLines().log);
  s.markOpened();
  return s;
}

function onDisk(file: string): BpftuneState {
  return validateState(JSON.parse(readFileSync(file, 'utf8')));
}

/** A registry over an in-memory sysctl table; `order` records state writes and sysctl writes in sequence. */
function registryWith(ext: ConstructorParameters<typeof TunableRegistry>[3], order: string[] = []) {
  const values = new Map([['1 net/ipv4/tcp_rmem', '4096 131072 6291456'], ['9 net/ipv4/tcp_rmem', '4096 131072 131072']]);
  const sysctl = {
    read: async (ns: Namespace, p: string) => values.get(`${ns.cookie} ${p}`) ?? '',
    netlink: async () => [],
    write: async (ns: Namespace, p: string, v: string) => {
      order.push(`sysctl ${v}`);
      values.set(`${ns.cookie} ${p}`, v);
    },
  };
  const namespaces = { global: GLOBAL, resolve: async (c: bigint) => [GLOBAL, NAMED].find((n) => n.cookie === c) };
  const registry = new TunableRegistry(sysctl, namespaces, logLines().log, ext);
  registry.register('tcp_buffer', [RMEM], [SCENARIO]);
  return { registry, values };
}

test('the original is on disk before the sysctl is written, and stays the first original over later changes', async () => {
  const file = tempFile();
  const order: string[] = [];
  const state = store(file);
  const realBefore = state.beforeChange.bind(state);
  state.beforeChange = async (c) => {
    await realBefore(c);
    order.push(`state ${onDisk(file).namespaces[0].changes[0].lastSet.join(' ')}`);
  };
  const { registry } = registryWith({ state }, order);
  for (const max of [163840, 204800]) {
    assert.equal(await registry.set('tcp_buffer', { tunable: RMEM.name, scenario: 0, netnsCookie: 9n, values: [4096, 131072, max], reason: 'r' }), true);
  }
  assert.deepEqual(order, ['state 4096 131072 163840', 'sysctl 4096 131072 163840', 'state 4096 131072 204800', 'sysctl 4096 131072 204800']);
  const ns = onDisk(file).namespaces[0];
  assert.equal(ns.key, 'netns web');
  assert.deepEqual(ns.changes[0].original, [4096, 131072, 131072]);
  assert.deepEqual(ns.changes[0].previousSet, [4096, 131072, 163840]);
  assert.equal(ns.changes[0].scenarios[SCENARIO.name], 2);
});

test('each change is on disk when it is applied and stays there, while durable writes of older states are under way', async () => {
  const file = tempFile();
  const state = store(file);
  const lastSet = () => onDisk(file).namespaces[0].changes[0].lastSet[0];
  for (let i = 1; i <= 40; i++) {
    // A durable write (the lazy sync's) of the state before this change, started and mid-way when the change comes.
    const durable = state.flush();
    await new Promise((r) => setImmediate(r));
    await state.beforeChange({ ns: GLOBAL, tuner: 't', tunable: 'x', scenario: SCENARIO, reason: 'r', old: [0], values: [i] });
    assert.equal(lastSet(), i, `change ${i} is on disk before it is applied`);
    await durable;
    await new Promise((r) => setTimeout(r, 1));
    assert.equal(lastSet(), i, `no older write landed over change ${i}`);
  }
  await state.finish();
  assert.equal(lastSet(), 40);
  assert.deepEqual(readdirSync(path.dirname(file)), ['state.json'], 'no temporary file is left');
});

test('no change is made when its original cannot be recorded', async () => {
  const state = store(path.join(path.dirname(tempFile()), 'missing', 'parent', 'state.json'));
  const { registry, values } = registryWith({ state });
  assert.equal(await registry.set('tcp_buffer', { tunable: RMEM.name, scenario: 0, values: [4096, 131072, 7864320], reason: 'r' }), false);
  assert.equal(values.get('1 net/ipv4/tcp_rmem'), '4096 131072 6291456');
});

test('a clean -R exit leaves no changes in the state; without -R they are kept for the next run', async () => {
  for (const rollback of [true, false]) {
    const file = tempFile();
    const state = store(file, rollback);
    await state.beforeChange({ ns: GLOBAL, tuner: 't', tunable: 'x', scenario: SCENARIO, reason: 'r', old: [1], values: [2] });
    assert.equal(onDisk(file).finished, false);
    await state.finish();
    assert.equal(onDisk(file).finished, true);
    assert.equal(onDisk(file).namespaces[0].changes.length, rollback ? 0 : 1);
  }
});

test('nothing is written before the previous file was read, so a failed start cannot overwrite it', async () => {
  const file = tempFile();
  writeFileSync(file, 'previous');
  const state = new StateStore(file, { bootId: 'b', rollback: true, advisory: false }, logLines().log);
  await state.finish();
  assert.equal(readFileSync(file, 'utf8'), 'previous');
});

test("temporary files of writes a killed run did not finish are removed; a running writer's and others are left", async () => {
  const file = tempFile();
  const dir = path.dirname(file);
  const names = ['state.json', '.state.json.4242.tmp', '.state.json.4242.now.tmp', '.state.json.77.tmp', `.state.json.${process.pid}.now.tmp`, '.state.json.x.tmp', 'notes.4242.tmp'];
  for (const name of names) writeFileSync(path.join(dir, name), '{}');
  const removed = await removeStaleTemporaries(file, (pid) => pid === 77);
  assert.deepEqual(removed.sort(), ['.state.json.4242.now.tmp', '.state.json.4242.tmp']);
  assert.deepEqual(readdirSync(dir).sort(), ['.state.json.77.tmp', `.state.json.${process.pid}.now.tmp`, '.state.json.x.tmp', 'notes.4242.tmp', 'state.json'].sort());
  assert.deepEqual(await removeStaleTemporaries(path.join(dir, 'missing-dir', 'state.json')), []);
});

test('unreadable or malformed state files are moved aside with the reason', async () => {
  for (const [content, reason] of [
    ['{"version":1,', /^not valid JSON/],
    ['{"version":2}', /this bpftune reads version 1, the file is version 2/],
    ['{"version":1,"bootId":"b","pid":1,"startedAt":"","updatedAt":"","rollback":true,"advisory":false,"finished":false,"namespaces":[{"key":"global"}],"previousBoots":[]}', /state\.namespaces\[0\]\.global: expected true or false/],
  ] as const) {
    const file = tempFile();
    writeFileSync(file, content);
    const r = await readJsonFile(file, validateState, new Date('2026-01-02T03:04:05Z'));
    assert.equal(r.kind, 'corrupt');
    assert.match(r.kind === 'corrupt' ? r.reason : '', reason);
    assert.deepEqual(readdirSync(path.dirname(file)), ['state.json.corrupt-2026-01-02T03-04-05-000Z']);
  }
  assert.equal((await readJsonFile(path.join(os.tmpdir(), 'bpftune-no-such-state.json'), validateState)).kind, 'none');
});

test('advice: nothing is written, one entry per id with a count, logged once, and it stays put while the value does', async () => {
  const { lines, log } = logLines();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const advice = new AdviceBook(log, () => new Date((clock += 1000)));
  const { registry, values } = registryWith({ advice });
  for (let i = 0; i < 5; i++) {
    // A tuner computing "current + delta" from the unchanged current value proposes the same each time.
    const [min, def, max] = (values.get('9 net/ipv4/tcp_rmem') ?? '').split(' ').map(Number);
    const changed = await registry.set('tcp_buffer', { tunable: RMEM.name, scenario: 0, netnsCookie: 9n, values: [min, def, max + (max >> 2)], reason: `buffer ${i}` });
    assert.equal(changed, false);
  }
  assert.equal(values.get('9 net/ipv4/tcp_rmem'), '4096 131072 131072');
  const [a] = advice.list();
  assert.equal(advice.list().length, 1);
  assert.equal(a.id, 'tcp_buffer/net.ipv4.tcp_rmem/0/netns web');
  assert.deepEqual([a.from, a.to, a.count, a.reason], [[4096, 131072, 131072], [4096, 131072, 163840], 5, 'buffer 4']);
  assert.equal(a.firstSeen, '2026-01-01T00:00:01.000Z');
  assert.equal(a.lastSeen, '2026-01-01T00:00:05.000Z');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('info Due to')),
    ['info Due to buffer 0 would change net.ipv4.tcp_rmem(min default max) from (4096 131072 131072) -> (4096 131072 163840) [advice tcp_buffer/net.ipv4.tcp_rmem/0/netns web]'],
  );
});

test('sysctl.d export: global changes as key = value with why; non-sysctl tunables as a commented command', () => {
  const rec = (tunable: string, command?: (v: readonly unknown[]) => string) => ({
    tuner: 't', tunable, ns: GLOBAL, original: [128], current: [1024], changes: 2, command, reason: 'listen() backlog 1024',
    scenarios: { 'listen backlog truncated': 2 }, first: Date.parse('2026-01-01T00:00:00Z'), last: Date.parse('2026-01-01T01:00:00Z'),
  });
  const entries = exportEntries(
    [rec('net.core.somaxconn'), rec('arp_cache', (v) => `ip ntable change name arp_cache thresh3 ${v.join(' ')}`), { ...rec('net.ipv4.tcp_rmem'), ns: NAMED }],
    [],
  );
  assert.deepEqual(entries.map((e) => e.tunable), ['arp_cache', 'net.core.somaxconn']);
  const text = sysctlDropIn(entries, 'host1', new Date('2026-01-02T00:00:00Z'));
  assert.match(text, /^# net\.core\.somaxconn \(tuner t\): changed 2 times, first 2026-01-01T00:00:00\.000Z, last 2026-01-01T01:00:00\.000Z\n# scenario: 'listen backlog truncated' \(2 times\)\n# reason: listen\(\) backlog 1024\n# original value: 128\nnet\.core\.somaxconn = 1024$/m);
  assert.match(text, /^# ip ntable change name arp_cache thresh3 1024$/m);
  assert.doesNotMatch(text, /^arp_cache/m);
});

/** A previous run's state file for openState(), with the namespaces given. */
function previousState(file: string, over: Partial<BpftuneState>): void {
  const base: BpftuneState = {
    version: 1, bootId: 'boot-a', pid: 4242, startedAt: '', updatedAt: '2026-01-01T00:00:00Z',
    rollback: true, advisory: false, finished: false, namespaces: [], previousBoots: [],
  };
  writeFileSync(file, JSON.stringify({ ...base, ...over }));
}

function storedChange(tunable: string, original: number[], previousSet: number[], lastSet: number[], commands?: { original: string; lastSet: string }) {
  return { tuner: 'tcp_buffer', tunable, original, previousSet, lastSet, changes: 2, scenarios: {}, reason: 'r', first: '', last: '', ...(commands ? { commands } : {}) };
}

async function open(file: string, bootId: string, values: Map<string, string>) {
  const { lines, log } = logLines();
  const state = new StateStore(file, { bootId, rollback: false, advisory: false }, log);
  const sysctl = {
    read: async (ns: Namespace, p: string) => values.get(`${ns.cookie} ${p}`) ?? '',
    netlink: async () => [],
    write: async (ns: Namespace, p: string, v: string) => void values.set(`${ns.cookie} ${p}`, v),
  };
  const byCookie = (c: bigint) => [GLOBAL, NAMED].find((n) => n.cookie === c);
  const namespaces = { global: GLOBAL, byCookie, resolve: async (c: bigint) => byCookie(c) };
  const registry = new TunableRegistry(sysctl, namespaces, log, { state });
  await openState({ store: state, registry, namespaces: namespaces as unknown as NetnsRegistry, sysctl, log });
  return { lines, registry, state };
}

test('start after a killed -R run: restores what still holds a value bpftune set (also the one before its last change), keeps what others wrote', async () => {
  const file = tempFile();
  previousState(file, {
    namespaces: [{
      key: 'netns web', global: false, name: 'web', cookie: '9', ephemeral: false, scenarios: [], takeovers: [],
      changes: [
        storedChange('net.ipv4.tcp_rmem', [4096, 131072, 131072], [4096, 131072, 163840], [4096, 131072, 204800]),
        storedChange('net.ipv4.tcp_wmem', [4096, 16384, 65536], [4096, 16384, 65536], [4096, 16384, 81920]),
        storedChange('net.core.somaxconn', [128], [128], [160]),
        storedChange('arp_cache', [128, 512, 1024], [128, 512, 1024], [160, 640, 1280], { original: 'ip ntable ... 1024', lastSet: 'ip ntable ... 1280' }),
      ],
    }],
  });
  // tcp_rmem: killed between writing the state and the sysctl; tcp_wmem: as set; somaxconn: an administrator wrote 200.
  const values = new Map([['9 net/ipv4/tcp_rmem', '4096 131072 163840'], ['9 net/ipv4/tcp_wmem', '4096 16384 81920'], ['9 net/core/somaxconn', '200']]);
  // And killed once mid-write, by a writer no pid can name again (above the kernel's largest pid_max, 2^22).
  const unfinished = `.state.json.${2 ** 22 + 1}.now.tmp`;
  writeFileSync(path.join(path.dirname(file), unfinished), '{"torn');
  const { lines, registry, state } = await open(file, 'boot-a', values);
  assert.ok(lines.includes(`info removed 1 temporary file(s) of state writes an earlier run did not finish (it was killed mid-write): ${unfinished}`), lines.join('\n'));
  assert.ok(!readdirSync(path.dirname(file)).includes(unfinished));
  assert.equal(values.get('9 net/ipv4/tcp_rmem'), '4096 131072 131072');
  assert.equal(values.get('9 net/ipv4/tcp_wmem'), '4096 16384 65536');
  assert.equal(values.get('9 net/core/somaxconn'), '200');
  assert.ok(lines.includes("info Restored 'net.ipv4.tcp_rmem' in netns web from (4096 131072 163840) -> (4096 131072 131072): bpftune (pid 4242, run with -R) stopped before it could roll back"));
  assert.ok(lines.includes("info Not restoring 'net.core.somaxconn' in netns web: it is (200), not the (160) bpftune set, so someone changed it since; their value stays"));
  // The neighbour thresholds wait for the tuner that knows how to write them.
  let arp = [160, 640, 1280];
  registry.register('neigh_table', [{ name: 'arp_cache', namespaced: false, values: 3, access: { read: async () => arp, write: async (_ns, v) => void (arp = [...v] as number[]), command: () => '' } }], []);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(arp, [128, 512, 1024]);
  assert.deepEqual(registry.changes(), [], 'restored changes are no longer bpftune\'s');
  assert.equal(onDisk(file).pid, process.pid, 'this run is on disk at once');
  assert.deepEqual(state.snapshot.namespaces[0].changes, []);
});

test('start after a run without -R: its originals and takeovers carry over; after another boot they are history only', async () => {
  const file = tempFile();
  const web = {
    key: 'netns web', global: false, name: 'web', cookie: '9', ephemeral: false, scenarios: [],
    takeovers: [{ tuner: 'listen_backlog', sysctl: 'net/core/somaxconn', pid: 7, command: 'sysctl -w net.core.somaxconn=256', at: 't' }],
    changes: [storedChange('net.ipv4.tcp_rmem', [4096, 131072, 131072], [4096, 131072, 163840], [4096, 131072, 204800])],
  };
  previousState(file, { rollback: false, finished: true, namespaces: [web] });
  const values = new Map([['9 net/ipv4/tcp_rmem', '4096 131072 204800']]);
  const { registry } = await open(file, 'boot-a', values);
  assert.equal(values.get('9 net/ipv4/tcp_rmem'), '4096 131072 204800', 'nothing restored');
  assert.deepEqual(registry.changes().map((c) => [c.original, c.current, c.inherited]), [[[4096, 131072, 131072], [4096, 131072, 204800], true]]);
  registry.register('listen_backlog', [{ name: 'net.core.somaxconn', namespaced: true, values: 1 }], []);
  assert.equal(registry.state('listen_backlog', 9n), 'manual');
  await registry.rollback();
  assert.equal(values.get('9 net/ipv4/tcp_rmem'), '4096 131072 131072', '-R restores the true original');

  previousState(file, { rollback: true, finished: false, namespaces: [web] });
  values.set('9 net/ipv4/tcp_rmem', '4096 131072 204800');
  const other = await open(file, 'boot-b', values);
  assert.equal(values.get('9 net/ipv4/tcp_rmem'), '4096 131072 204800', 'another boot: nothing restored');
  assert.deepEqual(other.registry.changes(), []);
  assert.deepEqual(other.state.snapshot.previousBoots.map((b) => [b.bootId, b.namespaces[0].key]), [['boot-a', 'netns web']]);
});
