/**
 * The one record every tuner's BPF side posts (struct bpftune_event in
 * bpf/bpftune_event.h), decoded by the codec the build generates from its
 * BTF (bpftune_event.contract.ts): a field changed in C changes the codec,
 * and code here that does not follow fails to compile.
 */
import { BpftuneEvent } from './bpftune_event.contract';

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
  /** Tuner-specific payload: decode it with the tuner's generated contract. */
  data: Buffer;
}

export function decodeEvent(buf: Buffer): TunerEvent {
  if (buf.length < BpftuneEvent.size) {
    throw new Error(`ring buffer sample of ${buf.length} bytes is shorter than struct bpftune_event (${BpftuneEvent.size})`);
  }
  const e = BpftuneEvent.decode(buf);
  return { ...e, oldValues: e.oldValues.map(Number), newValues: e.newValues.map(Number) };
}
