/**
 * The cgroup v2 directory sockops and cgroup/sysctl programs attach to. An
 * existing cgroup2 mount is used as it is; otherwise one is mounted there
 * (the same hierarchy, so its root covers every task) and unmounted on exit.
 */
import { promises as fs } from 'node:fs';
import type { NativeBinding } from './native';

export async function isCgroup2Mount(dir: string): Promise<boolean> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const target = await fs.realpath(dir).catch(() => dir);
  return mountinfo.split('\n').some((line) => {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const fsType = right?.split(' ')[0];
    return mountPoint === target && fsType === 'cgroup2';
  });
}

/** Returns true when this call mounted it (so the caller unmounts it on exit). */
export async function ensureCgroup2(nativeBinding: NativeBinding, dir: string): Promise<boolean> {
  if (await isCgroup2Mount(dir)) return false;
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  try {
    nativeBinding.mountCgroup2(dir);
  } catch (err) {
    throw new Error(`cannot mount cgroup v2 at ${dir}: ${(err as Error).message}; pass an existing cgroup v2 mount with -c DIR`);
  }
  return true;
}
