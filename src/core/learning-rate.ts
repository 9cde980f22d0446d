/**
 * Learning rate r (0..4) sets a bit shift s = 6 - r. A value is "nearly
 * full" when within limit >> s of its limit, and a limit grows (or shrinks)
 * by limit >> s: 25% at r=4 down to 1.5625% at r=0. The BPF side uses the
 * same arithmetic (bpf/bpftune.bpf.h) with the shift the daemon passes in.
 */
export const MIN_LEARNING_RATE = 0;
export const MAX_LEARNING_RATE = 4;
export const DEFAULT_LEARNING_RATE = 4;

export function learningShift(rate: number): number {
  if (!Number.isInteger(rate) || rate < MIN_LEARNING_RATE || rate > MAX_LEARNING_RATE) {
    throw new RangeError(`learning rate ${rate} is outside ${MIN_LEARNING_RATE}-${MAX_LEARNING_RATE}`);
  }
  return 6 - rate;
}

export function delta(limit: number, shift: number): number {
  return Math.floor(limit / 2 ** shift);
}

export function nearlyFull(value: number, limit: number, shift: number): boolean {
  return value + delta(limit, shift) >= limit;
}

export function grow(limit: number, shift: number): number {
  return limit + delta(limit, shift);
}

export function shrink(limit: number, shift: number): number {
  return limit - delta(limit, shift);
}
