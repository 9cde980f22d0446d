/**
 * Keeping a long-running daemon's memory near its live data (a few MB).
 * Measured here (Node 20, every built-in tuner, --metrics, 10 scrapes and
 * 10 status/jstatus queries a second; /proc/PID/smaps per mapping and V8's
 * heap statistics; bench/results/query-load.md):
 *
 * - V8's young generation grew its semi-spaces from 1 to 16 MiB under
 *   allocation bursts and kept them; old space grew its limit in big steps.
 *   Fixed by two V8 flags (below), set at run time.
 * - Old space then still grew by ~6 MiB a minute of load, all of it garbage:
 *   V8 starts a full collection only when the old generation reaches a
 *   limit far above this daemon's live data, and its idle-time memory
 *   reducer never runs while queries keep coming. So after activity, once
 *   the heap has grown by HEAP_GROWTH_BYTES since the last collection, the
 *   daemon collects it itself (a full GC of a ~8 MB heap: a few ms, at most
 *   once per COLLECT_MIN_INTERVAL_MS).
 * - glibc's main heap held ~10 MiB freed at start-up (the BTF and ELF
 *   parsing of the BPF loads) below its top, so it could not shrink:
 *   malloc_trim(0) after start-up and after each collection returns the
 *   free pages.
 * - Each worker thread that allocated got a glibc arena of its own (7 MiB
 *   of arenas under load, 1.8 MiB with two). glibc fixes the arena limit
 *   when the first thread arena is made, before any JavaScript runs, so
 *   mallopt() from here is too late (measured): MALLOC_ARENA_MAX=1 is set
 *   in the environment by bin/bpftune's #! line and by the systemd unit,
 *   with MALLOC_TRIM_THRESHOLD_=131072 and MALLOC_MMAP_THRESHOLD_=65536:
 *   fixed thresholds stop glibc raising them as large blocks come and go
 *   (socket reads allocate 64 KiB each), so those go back to the kernel
 *   when freed and the heap's free top is returned without waiting for a
 *   trim. Together with --no-opt: glibc's main heap 6.8 -> 3.8 MB and V8's
 *   14.1 -> 12.1 MB at the end of a one-minute query load.
 * - Those thresholds made start-up slow: libbpf parses the kernel's BTF
 *   afresh for each object it loads, and each parse's buffers became new
 *   mappings, faulted in and unmapped again. So they are raised while the
 *   tuners load and set back once they have (LOADING_MALLOC_THRESHOLDS).
 *
 * The V8 flags are set at run time, not as node command-line flags, so they
 * hold however the daemon is started (bin/bpftune, the packaged link, a
 * unit file running node directly).
 *
 * - The rest was node's own binary: ~39.5 MB of its pages resident, of which
 *   ~4.5 MB were V8's compilers (Sparkplug, Maglev, the code generators):
 *   --lite-mode (V8's "performance for memory" mode: no compiler at all,
 *   only the bytecode interpreter, feedback vectors allocated lazily) left
 *   35.0 MB and the V8 heap ~1 MB smaller. It must be on node's command line
 *   (the isolate is made before any JavaScript runs), so it is in NODE_FLAGS,
 *   which the daemon's capability relaunch (an execve of itself it makes
 *   anyway, src/core/capabilities.ts) adds: again however it is started.
 *   It disables WebAssembly (no executable memory); --no-expose-wasm says so
 *   to V8, which otherwise warns on stderr. Measured cost in
 *   bench/results/query-load.md and README.md (Memory under load).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { SOURCE_KEEP_MS } from './attach-targets';
import type { NativeBinding } from './native';

export const HEAP_FLAGS = [
  // Semi-spaces keep their initial size (1 MiB) instead of doubling up to 16 MiB under load.
  '--semi-space-growth-factor=1',
  // Smaller old-space growth steps and earlier release of free pages.
  '--optimize-for-size',
  // gc() for the collections below; it is reachable only through vm, never as a global.
  '--expose-gc',
  // No optimizing compiler: its code and compile zones were ~2 MB of the heap under query load,
  // for a daemon whose JavaScript runs in short bursts (the load's CPU did not rise, measured).
  '--no-opt',
];
/**
 * node command-line flags the daemon relaunches itself with (see above). A
 * flag already given, or its --no- form (`node --no-lite-mode bin/bpftune`:
 * a plugin that needs WebAssembly), is left as the command line has it.
 */
export const NODE_FLAGS = ['--lite-mode', '--no-expose-wasm'];

/** execArgv with NODE_FLAGS added where it says nothing of them. */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const base = (arg: string) => arg.replace(/^--(no-)?/, '').replace(/=.*$/, '').replace(/_/g, '-');
  const given = new Set(execArgv.map(base));
  return [...execArgv, ...NODE_FLAGS.filter((flag) => !given.has(base(flag)))];
}

/** Heap growth (committed bytes) since the last collection that makes the daemon collect. */
export const HEAP_GROWTH_BYTES = 1024 * 1024;
/** A collection happens at most this often, so a query storm costs a few ms per 2 s at worst. */
export const COLLECT_MIN_INTERVAL_MS = 2_000;
/** Activity is checked this long after it happens: one timer per burst, none while idle. */
const CHECK_DELAY_MS = 1_000;

type MemoryNative = Pick<NativeBinding, 'mallocTrim' | 'mallocThresholds'>;

export interface MallocThresholds {
  /** Blocks from this size get a mapping of their own, unmapped when freed. */
  mmap: number;
  /** Free space at the heap's top beyond this goes back to the kernel at a free. */
  trim: number;
}

/** The running daemon's: what bin/bpftune's #! line and the unit set (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_). */
export const RUNNING_MALLOC_THRESHOLDS: MallocThresholds = { mmap: 65_536, trim: 131_072 };

/**
 * While the tuners load, so that what one BPF load frees stays in the heap
 * for the next. libbpf parses /sys/kernel/btf/vmlinux (5.5 MB, 126k types on
 * 6.18) for every object it loads: 11 times at start with every built-in
 * tuner, counting the attach-kind probes. Measured (btf__load_vmlinux_btf in
 * a loop): 52 ms a parse under the running thresholds, every time; 40 ms for
 * the first and 3.4 ms for each next one with its buffers from the heap.
 * 32 MiB is glibc's ceiling for the mmap threshold on 64-bit; the trim
 * threshold keeps the heap's top through the loads. releaseStartupMemory()
 * sets the running ones back and returns what the loads freed.
 */
export const LOADING_MALLOC_THRESHOLDS: MallocThresholds = { mmap: 32 * 1024 * 1024, trim: 256 * 1024 * 1024 };

export interface HeapCollector {
  /** Committed V8 heap bytes now. */
  heapBytes(): number;
  /** A full collection. */
  collect(): void;
}

function v8Collector(): HeapCollector {
  const gc = vm.runInNewContext('gc') as () => void;
  return { heapBytes: () => v8.getHeapStatistics().total_heap_size, collect: () => gc() };
}

/**
 * Decides when to collect and trim: after activity (a query, a scrape),
 * not on a clock, so an idle daemon is never woken for it.
 */
export class MemoryKeeper {
  private baseline: number;
  private lastCollect = 0;
  private timer: NodeJS.Timeout | undefined;
  collections = 0;

  constructor(
    private readonly collector: HeapCollector,
    private readonly trim: () => void,
    private readonly now: () => number = Date.now,
  ) {
    this.baseline = collector.heapBytes();
  }

  /** Something allocated (a query answered, a scrape served): check the heap a little later. */
  noteActivity(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, CHECK_DELAY_MS);
    this.timer.unref();
  }

  /** Collects when the heap grew past the baseline and the last collection is old enough; true if it did. */
  check(): boolean {
    const now = this.now();
    if (this.collector.heapBytes() < this.baseline + HEAP_GROWTH_BYTES) return false;
    if (now - this.lastCollect < COLLECT_MIN_INTERVAL_MS) {
      // Too soon: look again once the interval has passed, in case the load has stopped by then.
      this.noteActivity();
      return false;
    }
    this.release();
    return true;
  }

  /** A full collection and malloc_trim, then the heap's size is the new baseline. */
  release(): void {
    this.collector.collect();
    this.trim();
    this.lastCollect = this.now();
    this.baseline = this.collector.heapBytes();
    this.collections++;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

let keeper: MemoryKeeper | undefined;
let memoryNative: MemoryNative | undefined;

/**
 * Sets the V8 flags and the loading malloc thresholds; from then on
 * noteActivity() may collect. Call first thing in the daemon. A threshold
 * glibc refuses only costs start-up time, so the result is not checked.
 */
export function keepHeapSmall(binding: MemoryNative): void {
  for (const flag of HEAP_FLAGS) v8.setFlagsFromString(flag);
  memoryNative = binding;
  binding.mallocThresholds(LOADING_MALLOC_THRESHOLDS.mmap, LOADING_MALLOC_THRESHOLDS.trim);
  keeper = new MemoryKeeper(v8Collector(), () => binding.mallocTrim());
}

/**
 * Start-up done: the running malloc thresholds are set back at once, and a
 * little later (after attach-targets.ts has forgotten the kernel's BTF) a
 * full collection and malloc_trim return what the loads freed. The
 * collection is needed: the BTF file's 5.5 MB buffer, read during the
 * loads, came from the heap under the loading thresholds, and is freed only
 * when V8 collects its ArrayBuffer. Trimmed without collecting, it stayed
 * resident (54.3 MB RSS 15 s after start, against 48.9 MB with the
 * collection, every built-in tuner). V8 frees an ArrayBuffer's memory on a
 * background task after the collection that found it dead, so a second
 * malloc_trim follows (STARTUP_TRIM_AFTER_COLLECT_MS): one trim right after
 * the collection left the 5.5 MB resident in 1 of 3 runs, the later one in
 * none of 4 (48.7 MB). The collection also moves V8's memory
 * reducer, which runs compacting collections about 8 s after start-up's
 * last one: measured with --trace-gc, without it 3 collections at 8.4-9.6 s
 * (41 and 17 ms of CPU in those seconds), with it 2 at 10.5-11.1 s (26 ms);
 * both well before the suite's steady idle window (from 90 s).
 */
export const STARTUP_RELEASE_DELAY_MS = SOURCE_KEEP_MS + 1_000;

export const STARTUP_TRIM_AFTER_COLLECT_MS = 500;

export function releaseStartupMemory(): void {
  memoryNative?.mallocThresholds(RUNNING_MALLOC_THRESHOLDS.mmap, RUNNING_MALLOC_THRESHOLDS.trim);
  setTimeout(() => {
    keeper?.release();
    setTimeout(() => memoryNative?.mallocTrim(), STARTUP_TRIM_AFTER_COLLECT_MS).unref();
  }, STARTUP_RELEASE_DELAY_MS).unref();
}

/** Called by the query server and the metrics exposition after each request they answer. */
export function noteActivity(): void {
  keeper?.noteActivity();
}
