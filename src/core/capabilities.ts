/**
 * The daemon's capabilities. Before anything else the daemon relaunches
 * itself (an execve of the same node, same pid) so that native code narrows
 * the process while it still has one thread (native/capabilities.c says why
 * it must be then: capabilities are per thread). From then on every thread
 * has permitted = the kept set below (those of them it had), effective and
 * inheritable empty, ambient empty, a bounding set of the kept set, and the
 * securebits NOROOT and NO_CAP_AMBIENT_RAISE locked with no_new_privs, so an
 * execve() by the daemon would start with no capabilities.
 * A capability is raised in the calling thread's effective set only around
 * the system call that needs it, in the addon, and lowered right after.
 *
 * Which call needs which, measured on Linux 6.18 (test/capabilities.test.ts
 * runs the daemon like this and reads every thread's sets):
 */
import type { CapabilityState, NativeBinding } from './native';

export const CAPABILITIES_KEPT: Readonly<Record<string, number>> = {
  // Loading sockops and cgroup/sysctl programs; attaching them to the cgroup;
  // netlink requests that change something (RTM_SETNEIGHTBL).
  CAP_NET_ADMIN: 12,
  // Opening /proc/<pid>/ns/net of another process: the ptrace access check
  // compares the target's permitted set with our (empty) effective one.
  // Named namespaces (/var/run/netns) need nothing.
  CAP_SYS_PTRACE: 19,
  // setns() into a namespace and back; mount/umount of cgroup2 and tracefs.
  CAP_SYS_ADMIN: 21,
  // Only if present (systemd's unit does not grant it): libbpf raises
  // RLIMIT_MEMLOCK on kernels before 5.11, which charge BPF memory to it.
  CAP_SYS_RESOURCE: 24,
  // Loading tracing programs (tp_btf, raw_tp, iter), perf_event_open of tracepoints.
  CAP_PERFMON: 38,
  // bpf(): maps (the ring buffer), BTF, programs.
  CAP_BPF: 39,
};
/*
 * Not kept: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. uid 0 writes any
 * namespace's /proc/sys/net files as their owner (net_ctl_permissions), also
 * for namespaces owned by another user namespace, and the daemon's own files
 * are root's.
 */

export const KEEP_CAPS_ENV = 'BPFTUNE_KEEP_CAPS';

export function capabilityMask(caps: Readonly<Record<string, number>> = CAPABILITIES_KEPT): bigint {
  return Object.values(caps).reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);
}

/** "CAP_BPF CAP_NET_ADMIN" for the kept bits in mask, or "none". */
export function capabilityNames(mask: bigint): string {
  const names = Object.entries(CAPABILITIES_KEPT)
    .filter(([, bit]) => (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
  const unknown = mask & ~capabilityMask();
  if (unknown) names.push(`0x${unknown.toString(16)}`);
  return names.length ? names.join(' ') : 'none';
}

export interface Relaunch {
  file: string;
  argv: string[];
  env: string[];
}

/**
 * The execve that narrows: the same node and script and arguments, with the
 * addon preloaded (its constructor runs before node starts a thread) and the
 * set to keep in the environment; or why it cannot be done.
 */
export function relaunchCommand(
  addonPath: string,
  execPath: string,
  nodeArgs: readonly string[],
  env: NodeJS.ProcessEnv,
): Relaunch | { cannot: string } {
  // ld.so splits LD_PRELOAD at spaces and colons.
  if (/[\s:]/.test(addonPath)) return { cannot: `the addon's path ${addonPath} contains a space or colon (LD_PRELOAD cannot name it)` };
  const preload = env.LD_PRELOAD ? `${addonPath}:${env.LD_PRELOAD}` : addonPath;
  const vars = { ...env, LD_PRELOAD: preload, [KEEP_CAPS_ENV]: capabilityMask().toString(16) };
  return {
    file: execPath,
    argv: [execPath, ...nodeArgs],
    env: Object.entries(vars)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`),
  };
}

/**
 * Run first when starting the daemon. Relaunches (and does not return) when
 * this process has not been narrowed yet; otherwise returns a line for the
 * log: what the process holds, or why it could not be narrowed (the daemon
 * then runs with what it has, as before).
 */
export function narrowCapabilities(
  nativeBinding: Pick<NativeBinding, 'capabilityState' | 'getCapabilities' | 'relaunch'>,
  addonPath: string,
  nodeArgs: readonly string[],
): { ok: boolean; message: string } {
  const state: CapabilityState = nativeBinding.capabilityState();
  if (!state.relaunched) {
    if (process.env[KEEP_CAPS_ENV] !== undefined) {
      // We did relaunch, but ld.so did not preload the addon (secure-execution mode?).
      delete process.env[KEEP_CAPS_ENV];
      return { ok: false, message: 'could not narrow capabilities: the relaunched process did not preload the addon; running with all of them' };
    }
    const command = relaunchCommand(addonPath, process.execPath, nodeArgs, process.env);
    if ('cannot' in command) return { ok: false, message: `could not narrow capabilities: ${command.cannot}; running with all of them` };
    try {
      nativeBinding.relaunch(command.file, command.argv, command.env);
    } catch (err) {
      return { ok: false, message: `could not narrow capabilities: ${(err as Error).message}; running with all of them` };
    }
  }
  const caps = nativeBinding.getCapabilities();
  if (state.failure !== undefined) {
    return { ok: false, message: `could not fully narrow capabilities (${state.failure}); permitted now: ${capabilityNames(caps.permitted)}` };
  }
  if (caps.effective !== 0n) {
    return { ok: false, message: `capabilities not narrowed: effective set is ${capabilityNames(caps.effective)}` };
  }
  return {
    ok: true,
    message: `capabilities: permitted ${capabilityNames(caps.permitted)}; effective empty on every thread, raised only around the call that needs one`,
  };
}
