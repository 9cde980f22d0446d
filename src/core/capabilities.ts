/**
 * After start-up the daemon keeps only the capabilities it still uses, so a
 * bug in a tuner cannot, say, load kernel modules or change file ownership.
 * Linux capabilities are per thread and capset(2) changes only the caller:
 * this narrows the main JavaScript thread, where tuner code runs; libuv's
 * worker threads, already started, keep theirs (they do the setns work).
 * CAP_SYS_RESOURCE is kept only if we had it: it is not required (libbpf
 * raises RLIMIT_MEMLOCK only on kernels that still charge BPF memory to it).
 */
import type { Capabilities } from './native';

export const CAPABILITIES_KEPT: Record<string, number> = {
  CAP_DAC_OVERRIDE: 1, // /proc/sys files of other namespaces
  CAP_DAC_READ_SEARCH: 2,
  CAP_NET_ADMIN: 12, // net sysctls, netlink table changes
  CAP_SYS_PTRACE: 19, // /proc/<pid>/ns/net of other users' processes
  CAP_SYS_ADMIN: 21, // setns, cgroup attach, bpf on older kernels
  CAP_SYS_RESOURCE: 24,
  CAP_PERFMON: 38, // tracing programs
  CAP_BPF: 39, // loading plugins while running
};

export function keptCapabilities(current: Capabilities): Capabilities {
  const mask = Object.values(CAPABILITIES_KEPT).reduce((m, bit) => m | (1n << BigInt(bit)), 0n);
  return { effective: current.effective & mask, permitted: current.permitted & mask, inheritable: 0n };
}
