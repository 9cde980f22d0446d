/**
 * Sysctl reads and writes through the native addon, which enters the
 * namespace on a worker thread. A namespace path can go stale (its process
 * exited, or the pid was reused): then the registry is rescanned and the call
 * retried once with a current path (no rescan for a namespace a scan has just
 * found gone: see NetnsRegistry.refresh).
 */
import type { NativeBinding } from './native';
import type { Namespace, NetnsRegistry } from './netns';
import type { SysctlAccess } from './tunables';

const STALE_PATH_CODES = new Set(['ESTALE', 'ENOENT', 'ESRCH']);

function isStalePath(err: unknown): boolean {
  return err instanceof Error && STALE_PATH_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

async function inNamespace<T>(namespaces: NetnsRegistry, ns: Namespace, op: (nsPath: string | null, inum: number) => Promise<T>): Promise<T> {
  if (ns.global) return op(null, 0);
  try {
    return await op(ns.path, ns.inum);
  } catch (err) {
    if (!isStalePath(err)) throw err;
    const current = await namespaces.refresh(ns.cookie);
    if (!current) throw new Error(`network namespace cookie ${ns.cookie} no longer exists`);
    return op(current.path, current.inum);
  }
}

export function nativeSysctlAccess(nativeBinding: NativeBinding, namespaces: NetnsRegistry): SysctlAccess {
  return {
    read: (ns, path) => inNamespace(namespaces, ns, (nsPath, inum) => nativeBinding.readSysctl(nsPath, inum, path)),
    write: (ns, path, value) => inNamespace(namespaces, ns, (nsPath, inum) => nativeBinding.writeSysctl(nsPath, inum, path, value)),
    netlink: (ns, protocol, message) => inNamespace(namespaces, ns, (nsPath, inum) => nativeBinding.netlinkRequest(nsPath, inum, protocol, message)),
  };
}

/** Reads /proc/net/<file> inside a namespace (counters such as netstat and snmp are per namespace). */
export function nativeProcNetReader(nativeBinding: NativeBinding, namespaces: NetnsRegistry): (ns: Namespace, file: string) => Promise<string> {
  return (ns, file) => inNamespace(namespaces, ns, (nsPath, inum) => nativeBinding.readProcNet(nsPath, inum, file));
}
