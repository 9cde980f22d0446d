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

/** Bytes after a type's 12-byte header, by kind (include/uapi/linux/btf.h). */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: // INT
    case 14: // VAR
    case 17: // DECL_TAG
      return 4;
    case 3: // ARRAY
      return 12;
    case 4: // STRUCT
    case 5: // UNION
    case 15: // DATASEC
    case 19: // ENUM64
      return vlen * 12;
    case 6: // ENUM
    case 13: // FUNC_PROTO
      return vlen * 8;
    default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
      return 0;
  }
}

export interface BtfNames {
  /** Tracepoints with a BTF-typed prototype (what tp_btf and raw_tp attach to). */
  tracepoints: Set<string>;
  functions: Set<string>;
}

/** The tracepoint and function names in a raw BTF blob (such as /sys/kernel/btf/vmlinux). */
export function parseBtfNames(blob: Buffer): BtfNames {
  if (blob.length < 24 || blob.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not a little-endian BTF blob');
  const hdrLen = blob.readUInt32LE(4);
  const typeStart = hdrLen + blob.readUInt32LE(8);
  const typeEnd = typeStart + blob.readUInt32LE(12);
  const strStart = hdrLen + blob.readUInt32LE(16);
  const strEnd = strStart + blob.readUInt32LE(20);
  if (typeEnd > blob.length || strEnd > blob.length) throw new Error('BTF blob is truncated');
  const name = (off: number): string => {
    const start = strStart + off;
    const end = blob.indexOf(0, start);
    return blob.toString('latin1', start, end < 0 || end > strEnd ? strEnd : end);
  };
  const names: BtfNames = { tracepoints: new Set(), functions: new Set() };
  for (let pos = typeStart; pos + 12 <= typeEnd; ) {
    const nameOff = blob.readUInt32LE(pos);
    const info = blob.readUInt32LE(pos + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === KIND_FUNC) names.functions.add(name(nameOff));
    else if (kind === KIND_TYPEDEF && nameOff !== 0) {
      const n = name(nameOff);
      if (n.startsWith('btf_trace_')) names.tracepoints.add(n.slice('btf_trace_'.length));
    }
    pos += 12 + extraBytes(kind, info & 0xffff);
  }
  return names;
}

export interface TargetSources {
  btf(): BtfNames | undefined;
  kallsyms(): Set<string> | undefined;
  tracefsEvent(category: string, name: string): boolean | undefined;
}

/**
 * How long a source read stays cached after its last use. The vmlinux BTF's
 * names are ~70,000 strings (about 4 MB of V8 heap); they are asked about
 * while tuners load, at start-up and when a plugin appears, and held for
 * the daemon's life they were a quarter of its idle heap. Forgotten after
 * this, they are read again (tens of ms) if a later load needs them. Short,
 * so that start-up's one memory release (heap.ts) can come soon after it.
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
