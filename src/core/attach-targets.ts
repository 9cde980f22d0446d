/**
 * Whether the kernel function or tracepoint a program hooks exists on this
 * kernel. The attach-kind probe (attach-kinds.ts) says whether tp_btf or
 * fentry work at all; this says whether *this* tracepoint or function is
 * there: tcp:tcp_sendmsg_locked, for one, is in 6.18 but not in 6.1 or 6.12,
 * and libbpf refuses the whole object when one program's target is missing.
 *
 * Read from the kernel's own descriptions, without loading anything:
 * tracepoints and functions from the vmlinux BTF (btf_trace_<name> typedefs
 * and FUNC entries), kprobe targets from /proc/kallsyms, classic tracepoints
 * from tracefs. When a source cannot be read the answer is "unknown", and
 * the load itself decides.
 */
import { readFileSync } from 'node:fs';

const BTF_MAGIC = 0xeb9f;
const KIND_TYPEDEF = 8;
const KIND_FUNC = 12;

/** Words (4 bytes) after a type's 12-byte header, by kind (include/uapi/linux/btf.h). */
function extraWords(kind: number, vlen: number): number {
  switch (kind) {
    case 1: // INT
    case 14: // VAR
    case 17: // DECL_TAG
      return 1;
    case 3: // ARRAY
      return 3;
    case 4: // STRUCT
    case 5: // UNION
    case 15: // DATASEC
    case 19: // ENUM64
      return vlen * 3;
    case 6: // ENUM
    case 13: // FUNC_PROTO
      return vlen * 2;
    default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
      return 0;
  }
}

/** What attachTargetExists asks of a set of names. */
export interface NameSet {
  has(name: string): boolean;
}

export interface BtfNames {
  /** Tracepoints with a BTF-typed prototype (what tp_btf and raw_tp attach to). */
  tracepoints: NameSet;
  functions: NameSet;
  functionCount: number;
}

/** True when the sorted offsets hold off. */
function holds(sorted: Uint32Array, off: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < off) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === off;
}

/**
 * The tracepoint and function names in a raw BTF blob (such as
 * /sys/kernel/btf/vmlinux), looked up on demand. The walk keeps only the
 * string offsets of FUNC and TYPEDEF entries; a name asked about is found in
 * the string section (a byte search) and its offset looked up. Decoding every
 * name into a Set was 70,000 strings, about 120 ms of the daemon's start in
 * V8's interpreter and 4 MB of heap; this walk is about 27 ms.
 */
export function parseBtfNames(blob: Buffer): BtfNames {
  if (blob.length < 24 || blob.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not a little-endian BTF blob');
  const hdrLen = blob.readUInt32LE(4);
  const typeStart = hdrLen + blob.readUInt32LE(8);
  const typeEnd = typeStart + blob.readUInt32LE(12);
  const strStart = hdrLen + blob.readUInt32LE(16);
  const strEnd = strStart + blob.readUInt32LE(20);
  if (typeEnd > blob.length || strEnd > blob.length) throw new Error('BTF blob is truncated');
  // A word view needs 4-byte alignment; a blob from Buffer's pool may not have it.
  const typeBytes = (blob.byteOffset + typeStart) % 4 === 0 ? blob : Buffer.from(blob.subarray(typeStart, typeEnd));
  const base = typeBytes === blob ? blob.byteOffset + typeStart : typeBytes.byteOffset;
  const words = new Uint32Array(typeBytes.buffer, base, (typeEnd - typeStart) >>> 2);
  const functions: number[] = [];
  const typedefs: number[] = [];
  for (let i = 0; i + 3 <= words.length; ) {
    const info = words[i + 1];
    const kind = (info >>> 24) & 0x1f;
    if (kind === KIND_FUNC) functions.push(words[i]);
    else if (kind === KIND_TYPEDEF) typedefs.push(words[i]);
    i += 3 + extraWords(kind, info & 0xffff);
  }
  const functionOffsets = Uint32Array.from(functions).sort();
  const typedefOffsets = Uint32Array.from(typedefs).sort();
  /** Whether a string equal to name sits at one of the offsets (strings need not be deduplicated). */
  const named = (offsets: Uint32Array, name: string): boolean => {
    if (!name) return false;
    const pattern = Buffer.from(`\0${name}\0`, 'latin1');
    for (let at = blob.indexOf(pattern, strStart); at >= 0 && at + pattern.length <= strEnd; at = blob.indexOf(pattern, at + 1)) {
      if (holds(offsets, at + 1 - strStart)) return true;
    }
    return false;
  };
  return {
    tracepoints: { has: (name) => named(typedefOffsets, `btf_trace_${name}`) },
    functions: { has: (name) => named(functionOffsets, name) },
    functionCount: functionOffsets.length,
  };
}

export interface TargetSources {
  btf(): BtfNames | undefined;
  kallsyms(): Set<string> | undefined;
  tracefsEvent(category: string, name: string): boolean | undefined;
}

/**
 * How long a source read stays cached after its last use. The vmlinux BTF
 * (5.5 MB on 6.18, outside V8's heap) and its walk's offsets are asked about
 * while tuners load, at start-up and when a plugin appears; held for the
 * daemon's life they would outweigh its idle heap. Forgotten after this,
 * they are read again (tens of ms) if a later load needs them. Short, so
 * that start-up's one memory release (heap.ts) can come soon after it.
 */
export const SOURCE_KEEP_MS = 1_000;

/** Reads on first use and keeps the value until keepMs pass without a use. */
export function cachedForAWhile<T>(read: () => T, keepMs: number): () => T | undefined {
  let done = false;
  let value: T | undefined;
  let timer: NodeJS.Timeout | undefined;
  const forget = () => {
    done = false;
    value = undefined;
    timer = undefined;
  };
  return () => {
    if (!done) {
      done = true;
      try {
        value = read();
      } catch {
        value = undefined;
      }
    }
    if (timer) timer.refresh();
    else {
      timer = setTimeout(forget, keepMs);
      timer.unref();
    }
    return value;
  };
}

/** This machine's kernel: each source read on first use and kept while it is being asked (SOURCE_KEEP_MS). */
export function kernelTargetSources(): TargetSources {
  return {
    btf: cachedForAWhile(() => parseBtfNames(readFileSync('/sys/kernel/btf/vmlinux')), SOURCE_KEEP_MS),
    kallsyms: cachedForAWhile(() => {
      const names = new Set<string>();
      // "<addr> <type> <name>[\t[module]]": text symbols only (kprobes hook code).
      for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
        const [, type, symbol] = line.split(' ');
        if (symbol && (type === 't' || type === 'T')) names.add(symbol.split('\t')[0] ?? symbol);
      }
      return names;
    }, SOURCE_KEEP_MS),
    tracefsEvent: (category, name) => {
      for (const root of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
        try {
          readFileSync(`${root}/events/${category}/${name}/id`);
          return true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            try {
              readFileSync(`${root}/events/enable`);
              return false; // tracefs is there, the event is not
            } catch {
              // tracefs not mounted here: try the next place
            }
          }
        }
      }
      return undefined;
    },
  };
}

/**
 * True or false when this kernel's descriptions say whether the program in
 * `section` has something to attach to; undefined when they cannot tell (no
 * BTF, no tracefs, a section kind that needs no kernel target).
 */
export function attachTargetExists(section: string, sources: TargetSources): boolean | undefined {
  const [prefix, ...rest] = section.split('/');
  const target = rest.join('/');
  if (!target) return undefined;
  switch (prefix) {
    case 'tp_btf':
    case 'raw_tp':
    case 'raw_tracepoint':
      return sources.btf()?.tracepoints.has(target);
    case 'fentry':
    case 'fexit':
    case 'fmod_ret':
      return sources.btf()?.functions.has(target);
    case 'kprobe':
    case 'kretprobe':
      return sources.kallsyms()?.has(target.split('+')[0] ?? target);
    case 'tp':
    case 'tracepoint': {
      const [category, name] = rest;
      return category && name ? sources.tracefsEvent(category, name) : undefined;
    }
    default:
      return undefined;
  }
}
