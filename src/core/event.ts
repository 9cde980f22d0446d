/**
 * Decoder for struct bpftune_event (bpf/bpftune_event.h). The offsets below
 * mirror the C header; test/event-layout.test.ts checks them against the BTF
 * clang emits, so a change to the header that is not made here fails a test.
 */
export const EVENT_MAX_VALUES = 3;
export const EVENT_DATA_LEN = 128;

export const EVENT_LAYOUT = {
  tuner_id: { offset: 0, size: 4 },
  scenario_id: { offset: 4, size: 4 },
  netns_cookie: { offset: 8, size: 8 },
  netns_inum: { offset: 16, size: 4 },
  pid: { offset: 20, size: 4 },
  ktime_ns: { offset: 24, size: 8 },
  old_values: { offset: 32, size: 8 * EVENT_MAX_VALUES },
  new_values: { offset: 56, size: 8 * EVENT_MAX_VALUES },
  data: { offset: 80, size: EVENT_DATA_LEN },
} as const;

export const EVENT_SIZE = 208;

export interface TunerEvent {
  tunerId: number;
  scenarioId: number;
  netnsCookie: bigint;
  netnsInum: number;
  pid: number;
  /** CLOCK_MONOTONIC ns when BPF posted it (comparable with process.hrtime.bigint()). */
  ktimeNs: bigint;
  oldValues: number[];
  newValues: number[];
  /** Tuner-specific payload (a view into the sample). */
  data: Buffer;
}

function readValues(buf: Buffer, offset: number): number[] {
  const values: number[] = [];
  for (let i = 0; i < EVENT_MAX_VALUES; i++) values.push(Number(buf.readBigInt64LE(offset + 8 * i)));
  return values;
}

export function decodeEvent(buf: Buffer): TunerEvent {
  if (buf.length < EVENT_SIZE) {
    throw new Error(`ring buffer sample of ${buf.length} bytes is shorter than struct bpftune_event (${EVENT_SIZE})`);
  }
  const L = EVENT_LAYOUT;
  return {
    tunerId: buf.readUInt32LE(L.tuner_id.offset),
    scenarioId: buf.readUInt32LE(L.scenario_id.offset),
    netnsCookie: buf.readBigUInt64LE(L.netns_cookie.offset),
    netnsInum: buf.readUInt32LE(L.netns_inum.offset),
    pid: buf.readUInt32LE(L.pid.offset),
    ktimeNs: buf.readBigUInt64LE(L.ktime_ns.offset),
    oldValues: readValues(buf, L.old_values.offset),
    newValues: readValues(buf, L.new_values.offset),
    data: buf.subarray(L.data.offset, L.data.offset + L.data.size),
  };
}

/** A NUL-terminated C string from an event's data area. */
export function dataString(data: Buffer, offset = 0, length = data.length - offset): string {
  const slice = data.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end < 0 ? slice.length : end).toString('utf8');
}
