/**
 * Reads a struct's layout from the BTF clang emitted into a BPF object, so a
 * test can hold a TypeScript decoder to the C definition it mirrors (the
 * layout is written once, in a C header, and checked rather than trusted).
 */
import { execFileSync } from 'node:child_process';
import * as assert from 'node:assert/strict';

interface BtfType {
  kind: string;
  name: string;
  size?: number;
  members?: Array<{ name: string; bits_offset: number }>;
}

export interface StructLayout {
  /** sizeof(struct), in bytes. */
  size: number;
  /** Byte offset of each member, by name. */
  offsets: Record<string, number>;
}

export function btfStruct(object: string, name: string): StructLayout {
  const dump = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' })) as { types: BtfType[] };
  const struct = dump.types.find((t) => t.kind === 'STRUCT' && t.name === name);
  assert.ok(struct?.members, `struct ${name} is in the BTF of ${object}`);
  return { size: struct.size ?? 0, offsets: Object.fromEntries(struct.members.map((m) => [m.name, m.bits_offset / 8])) };
}
