/**
 * The typed boundary to the native addon (native/*.c): libbpf objects, maps,
 * links, the shared ring buffer, per-namespace sysctl access, syslog and
 * capabilities. Nothing else crosses into C, and no tuning logic lives there.
 *
 * Every error thrown by the addon is an Error whose message names the object
 * or program, the libbpf/system call and errno's text
 * ("tcp_buffer.bpf.o: prog 'rcv': bpf_object__load: Permission denied ...")
 * and whose `code` is the errno name (e.g. "EPERM") when there is one.
 */
import * as path from 'node:path';

export interface ProgramInfo {
  name: string;
  /** ELF section, e.g. "tp_btf/tcp_rcv_space_adjust", "sockops", "cgroup/sysctl". */
  section: string;
  /** enum bpf_prog_type value. */
  type: number;
  autoload: boolean;
}

export interface MapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface ProgramStats {
  name: string;
  id: number;
  runTimeNs: bigint;
  runCount: bigint;
}

export interface NativeMap {
  readonly name: string;
  readonly fd: number;
  readonly keySize: number;
  readonly valueSize: number;
  /** Returns a copy of the value, or null when the key is absent. */
  lookup(key: Buffer): Buffer | null;
  /** flags: BPF_ANY (0), BPF_NOEXIST (1), BPF_EXIST (2). */
  update(key: Buffer, value: Buffer, flags?: number): void;
  /** Returns false when the key was absent. */
  delete(key: Buffer): boolean;
  keys(): Buffer[];
}

export interface NativeLink {
  /** Reads an iterator link to its end (iter/* programs only). */
  readIter(): Buffer;
  /** Detaches; safe to call more than once. */
  close(): void;
}

export interface NativeObject {
  readonly name: string;
  programs(): ProgramInfo[];
  maps(): MapInfo[];
  setAutoload(program: string, autoload: boolean): void;
  /** Sets a `const volatile` global in .rodata (before load); size from BTF. */
  setConst(name: string, value: number | bigint): void;
  /** Makes the object use an existing map fd for `map` (before load). */
  reuseMap(map: string, fd: number): void;
  /** Loads every autoload program; a verifier rejection carries the verifier log. */
  load(): void;
  /** Attaches a loaded program; cgroup programs (sockops, cgroup/*) need cgroupPath. */
  attach(program: string, cgroupPath?: string): NativeLink;
  map(name: string): NativeMap;
  programStats(): ProgramStats[];
  /** Destroys the object (its programs and maps); links must be closed first. Idempotent. */
  close(): void;
}

export interface NativeRingBuffer {
  /** fd of the BPF_MAP_TYPE_RINGBUF map, for NativeObject.reuseMap. */
  readonly fd: number;
  /** Stops polling and closes the map. Idempotent. */
  close(): void;
}

export interface NamespaceId {
  cookie: bigint;
  inum: number;
}

export interface Capabilities {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

/** What the addon's load-time constructor did (native/capabilities.c). */
export interface CapabilityState {
  /** This process was relaunched to be narrowed (BPFTUNE_KEEP_CAPS was set). */
  relaunched: boolean;
  /** The step that failed and why, when narrowing failed. */
  failure?: string;
}

export interface NativeBinding {
  libbpfVersion(): string;
  /** Forward libbpf's debug output to stderr (off by default; warnings are kept for errors). */
  setLibbpfDebug(enabled: boolean): void;
  openObject(file: string): NativeObject;
  /**
   * Creates the shared ring buffer map and watches its epoll fd on the libuv
   * loop; each readable wakeup drains it and calls onSamples once with copies.
   */
  createRingBuffer(sizeBytes: number, onSamples: (samples: Buffer[]) => void): NativeRingBuffer;
  /** Cookie and inode of the network namespace at nsPath (setns on a worker thread). */
  netnsId(nsPath: string): Promise<NamespaceId>;
  /**
   * Reads /proc/sys/<name> ("net/ipv4/tcp_rmem") from inside the namespace at
   * nsPath (null: the daemon's own namespace). When expectedInum is non-zero
   * the namespace's inode must match, or the call fails with code ESTALE.
   */
  readSysctl(nsPath: string | null, expectedInum: number, name: string): Promise<string>;
  writeSysctl(nsPath: string | null, expectedInum: number, name: string, value: string): Promise<void>;
  /**
   * One netlink exchange inside the namespace at nsPath (null: the daemon's
   * own; expectedInum as for readSysctl): opens a socket of `protocol`
   * (NETLINK_ROUTE is 0) on a worker thread, sends `message` (one complete
   * nlmsghdr-framed request; NLM_F_ACK is added unless it is a dump) and
   * resolves with every reply message up to the final ACK or NLMSG_DONE,
   * each as its own Buffer starting at its nlmsghdr. An NLMSG_ERROR with a
   * non-zero error rejects with that errno (code e.g. "ENOENT").
   */
  netlinkRequest(nsPath: string | null, expectedInum: number, protocol: number, message: Buffer): Promise<Buffer[]>;
  /** Reads /proc/net/<file> ("rt6_stats") as seen from inside the namespace at nsPath. */
  readProcNet(nsPath: string | null, expectedInum: number, file: string): Promise<string>;
  openlog(ident: string): void;
  /** priority: syslog(3) level (LOG_ERR 3 ... LOG_DEBUG 7), facility LOG_DAEMON. */
  syslog(priority: number, message: string): void;
  /** The calling thread's capability sets. */
  getCapabilities(): Capabilities;
  capabilityState(): CapabilityState;
  /** execve(file, argv, env); returns only by throwing. */
  relaunch(file: string, argv: string[], env: string[]): never;
  /**
   * The network namespace inode of each /proc/<pid> (0: gone or unreadable),
   * read with CAP_SYS_PTRACE raised for the scan.
   */
  netnsInodes(pids: number[]): number[];
  /** mount -t <fstype> [-o options] none <dir>, for the pseudo filesystems bpftune needs. */
  mountFilesystem(fstype: 'cgroup2' | 'tracefs', dir: string, options?: string): void;
  /** umount2(dir, MNT_DETACH). */
  unmount(dir: string): void;
  /**
   * Sends data as one datagram to the unix socket at path ('@name': abstract),
   * for sd_notify and the journal; throws with the errno's code on failure.
   */
  sendUnixDatagram(path: string, data: Buffer): void;
  /** lgetxattr(path, name) found the attribute; false where the filesystem has no xattrs. */
  xattrExists(path: string, name: string): boolean;
  /** malloc_trim(0): freed malloc memory back to the kernel; true when some was. */
  mallocTrim(): boolean;
  /** mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD); false when glibc refused either value. */
  mallocThresholds(mmapThreshold: number, trimThreshold: number): boolean;
}

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

let binding: NativeBinding | undefined;

/** The addon; the path is fixed by node-gyp (build/Release). */
export const ADDON_PATH = path.resolve(__dirname, '../../../build/Release/bpftune_native.node');

/** Loads the addon once. */
export function native(): NativeBinding {
  if (binding === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require(ADDON_PATH) as NativeBinding;
  }
  return binding;
}
