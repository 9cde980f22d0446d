/**
 * The event layout is defined once, in bpf/bpftune_event.h. This checks the
 * TypeScript decoder's offsets against the BTF clang emitted for it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { EVENT_LAYOUT, EVENT_SIZE, decodeEvent } from '../src/core/event';
import { btfStruct } from './support/btf';

const OBJECT = path.resolve(__dirname, '..', 'bpf', 'event_layout.bpf.o');

test('struct bpftune_event in BTF matches the TypeScript decoder', () => {
  const layout = btfStruct(OBJECT, 'bpftune_event');
  assert.equal(layout.size, EVENT_SIZE);
  assert.deepEqual(Object.fromEntries(Object.entries(EVENT_LAYOUT).map(([name, f]) => [name, f.offset])), layout.offsets);
});

test('decodeEvent reads each field at its offset and refuses short samples', () => {
  const buf = Buffer.alloc(EVENT_SIZE);
  buf.writeUInt32LE(3, EVENT_LAYOUT.tuner_id.offset);
  buf.writeUInt32LE(2, EVENT_LAYOUT.scenario_id.offset);
  buf.writeBigUInt64LE(0xfeedn, EVENT_LAYOUT.netns_cookie.offset);
  buf.writeUInt32LE(4026531840, EVENT_LAYOUT.netns_inum.offset);
  buf.writeUInt32LE(1234, EVENT_LAYOUT.pid.offset);
  buf.writeBigUInt64LE(99n, EVENT_LAYOUT.ktime_ns.offset);
  buf.writeBigInt64LE(-1n, EVENT_LAYOUT.old_values.offset + 16);
  buf.writeBigInt64LE(6291456n, EVENT_LAYOUT.new_values.offset);
  buf.write('net/core/somaxconn', EVENT_LAYOUT.data.offset);
  const e = decodeEvent(buf);
  assert.deepEqual(
    { ...e, data: e.data.subarray(0, 18).toString() },
    {
      tunerId: 3,
      scenarioId: 2,
      netnsCookie: 0xfeedn,
      netnsInum: 4026531840,
      pid: 1234,
      ktimeNs: 99n,
      oldValues: [0, 0, -1],
      newValues: [6291456, 0, 0],
      data: 'net/core/somaxconn',
    },
  );
  assert.throws(() => decodeEvent(buf.subarray(0, 100)), /shorter than struct bpftune_event/);
});
