/**
 * The generated kernel/user contract (sdk/lib/contract.js): a fixture
 * compiled with clang is generated into TypeScript, which must read and
 * write each field at the offset the C layout rules give it; a field
 * renamed in C must then fail tsc for code that used the old name; a type
 * the object's BTF lacks must fail the generator, naming the line to add.
 * Also the core's own contract (struct bpftune_event) and every tuner
 * payload's fit in its data area.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeEvent } from '../src/core/event';
import { BpftuneEvent, BpftuneEventSizes } from '../src/core/bpftune_event.contract';
import { TcpBufferData } from '../src/tuners/tcp_buffer/tcp_buffer.contract';
import { TcpConnEventData } from '../src/tuners/tcp_conn/tcp_conn.contract';
import { NeighTableEventData } from '../src/tuners/neigh_table/neigh_table.contract';
import { NetBufferEventData } from '../src/tuners/net_buffer/net_buffer.contract';
import { SysctlEventData } from '../src/tuners/sysctl/sysctl.contract';

const ROOT = path.resolve(__dirname, '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { generateContract } = require(path.join(ROOT, 'sdk', 'lib', 'contract.js')) as {
  generateContract: (options: { object: string; declarations: string[] }) => string;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftune-contract-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const FIXTURE = `
#include "bpftune.bpf.h"

enum fixture_scenario {
	FIXTURE_SCENARIO_FIRST = 0,
	FIXTURE_SCENARIO_SEVENTH = 7,
};

struct fixture_key {
	__u64 cookie;
	__u16 port;
	__u8 proto;
	__u8 pad;
	__u32 words[2];
};

struct fixture_event_data {
	struct fixture_key key;
	char name[8];
	__u8 raw[3];
	__s32 delta;
	__s64 big;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct fixture_key);
	__type(value, __u32);
} fixture_map SEC(".maps");

BPFTUNE_CONTRACT_STRUCT(fixture_event_data);
BPFTUNE_CONTRACT_ENUM(fixture_scenario);
`;

/** Compiles the fixture source as the Makefile compiles a tuner, and generates its contract. */
function generate(source: string): string {
  const c = path.join(dir, 'fixture.bpf.c');
  const o = path.join(dir, 'fixture.bpf.o');
  fs.writeFileSync(c, source);
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-I', path.join(ROOT, 'dist', 'include'), '-I', path.join(ROOT, 'bpf'), '-c', c, '-o', o]);
  const text = generateContract({ object: o, declarations: [c] });
  fs.writeFileSync(path.join(dir, 'fixture.contract.ts'), text);
  return text;
}

/** tsc over the contract and a file using it; returns its output when it fails. */
function tsc(): { ok: boolean; output: string } {
  const r = spawnSync(
    process.execPath,
    [TSC, '--strict', '--noUnusedLocals', '--target', 'ES2022', '--module', 'commonjs', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'),
      '--outDir', path.join(dir, 'out'), path.join(dir, 'fixture.contract.ts'), path.join(dir, 'use.ts')],
    { encoding: 'utf8' },
  );
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

interface FixtureContract {
  FixtureScenario: Record<string, number>;
  FixtureEventData: { size: number; decode(b: Buffer): Record<string, unknown>; encode(v: unknown): Buffer };
  FixtureKey: { size: number };
  maps: Record<string, { name: string; key: { size: number }; value: { size: number } }>;
}

test('a generated codec reads and writes every field at the offset C lays it out at', () => {
  generate(FIXTURE);
  fs.writeFileSync(path.join(dir, 'use.ts'), "import { FixtureEventData } from './fixture.contract';\nexport const delta: number = FixtureEventData.decode(Buffer.alloc(48)).delta;\n");
  const compiled = tsc();
  assert.ok(compiled.ok, compiled.output);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const contract = require(path.join(dir, 'out', 'fixture.contract.js')) as FixtureContract;

  assert.deepEqual({ ...contract.FixtureScenario }, { FIRST: 0, SEVENTH: 7 });
  // C layout: u64 at 0, u16 at 8, u8 at 10, pad at 11, u32[2] at 12; the struct is 8-aligned (24 bytes).
  assert.equal(contract.FixtureKey.size, 24);
  assert.equal(contract.FixtureEventData.size, 48);
  const value = {
    key: { cookie: 0x1122334455667788n, port: 0xbeef, proto: 6, words: [0xdeadbeef, 7] },
    name: 'eth0',
    raw: Buffer.from([1, 2, 3]),
    delta: -5,
    big: -(2n ** 40n),
  };
  const b = contract.FixtureEventData.encode(value);
  assert.equal(b.readBigUInt64LE(0), 0x1122334455667788n);
  assert.equal(b.readUInt16LE(8), 0xbeef);
  assert.equal(b.readUInt8(10), 6);
  assert.equal(b.readUInt32LE(12), 0xdeadbeef);
  assert.equal(b.readUInt32LE(16), 7);
  assert.equal(b.subarray(24, 32).toString('latin1'), 'eth0\0\0\0\0');
  assert.deepEqual([...b.subarray(32, 35)], [1, 2, 3]);
  assert.equal(b.readInt32LE(36), -5);
  assert.equal(b.readBigInt64LE(40), -(2n ** 40n));
  // Padding is not part of the TypeScript shape, and decoding gives back what was encoded.
  assert.deepEqual(contract.FixtureEventData.decode(b), value);
  assert.throws(() => contract.FixtureEventData.decode(Buffer.alloc(40)), /struct fixture_event_data needs 48 bytes/);

  const map = contract.maps.fixtureMap;
  assert.deepEqual([map?.name, map?.key.size, map?.value.size], ['fixture_map', 24, 4]);
});

test('a field renamed in C fails tsc for the TypeScript that still uses it', () => {
  generate(FIXTURE.replace('__s32 delta;', '__s32 change;'));
  fs.writeFileSync(path.join(dir, 'use.ts'), "import { FixtureEventData } from './fixture.contract';\nexport const delta: number = FixtureEventData.decode(Buffer.alloc(48)).delta;\n");
  const compiled = tsc();
  assert.equal(compiled.ok, false);
  assert.match(compiled.output, /Property 'delta' does not exist on type 'FixtureEventData'/);
});

test('a field widened in C fails tsc where TypeScript treats it as the old type', () => {
  generate(FIXTURE.replace('__s32 delta;', '__s64 delta;'));
  fs.writeFileSync(path.join(dir, 'use.ts'), "import { FixtureEventData } from './fixture.contract';\nexport const delta: number = FixtureEventData.decode(Buffer.alloc(56)).delta;\n");
  const compiled = tsc();
  assert.equal(compiled.ok, false);
  assert.match(compiled.output, /Type 'bigint' is not assignable to type 'number'/);
});

test('a declared type missing from BTF fails the generator with the line that keeps it', () => {
  assert.throws(() => generate(FIXTURE.replace('BPFTUNE_CONTRACT_ENUM(fixture_scenario);', '')), /enum fixture_scenario .* BPFTUNE_CONTRACT_ENUM\(fixture_scenario\);/);
});

test('struct bpftune_event: the core decodes each field and refuses short samples', () => {
  assert.equal(BpftuneEvent.size, 208);
  const buf = BpftuneEvent.encode({
    tunerId: 3,
    scenarioId: 2,
    netnsCookie: 0xfeedn,
    netnsInum: 4026531840,
    pid: 1234,
    ktimeNs: 99n,
    oldValues: [0n, 0n, -1n],
    newValues: [6291456n, 0n, 0n],
    data: Buffer.from('net/core/somaxconn'),
  });
  // Offsets from bpf/bpftune_event.h by the C layout rules.
  assert.equal(buf.readUInt32LE(4), 2);
  assert.equal(buf.readBigUInt64LE(8), 0xfeedn);
  assert.equal(buf.readBigInt64LE(48), -1n);
  assert.equal(buf.subarray(80, 98).toString(), 'net/core/somaxconn');
  const e = decodeEvent(buf);
  assert.deepEqual(
    { ...e, data: e.data.subarray(0, 18).toString() },
    { tunerId: 3, scenarioId: 2, netnsCookie: 0xfeedn, netnsInum: 4026531840, pid: 1234, ktimeNs: 99n, oldValues: [0, 0, -1], newValues: [6291456, 0, 0], data: 'net/core/somaxconn' },
  );
  assert.throws(() => decodeEvent(buf.subarray(0, 100)), /shorter than struct bpftune_event/);
});

test("every tuner's event payload fits in bpftune_event.data", () => {
  for (const payload of [TcpBufferData, TcpConnEventData, NeighTableEventData, NetBufferEventData, SysctlEventData]) {
    assert.ok(payload.size <= BpftuneEventSizes.BPFTUNE_EVENT_DATA_LEN, `${payload.size} bytes`);
  }
});
