/**
 * Pseudo filesystems bpftune needs and may have to mount itself:
 * - cgroup v2, for sockops and cgroup/sysctl programs. Mounting it again
 *   elsewhere gives the same hierarchy, so its root still covers every task.
 *   There is one cgroup2 superblock, and a mount of it applies its options
 *   to it: on Debian's 6.1, a plain mount (even in a private mount namespace)
 *   turned systemd's nsdelegate and memory_recursiveprot off for the whole
 *   machine (test/vm/results/6.1-service-cgroup2-control.md). So a second
 *   mount passes the options the first one shows.
 * - tracefs at /sys/kernel/tracing: libbpf attaches `tracepoint/` programs by
 *   reading the event id from it (tp_btf and raw_tp do not need it).
 * What this process mounted it unmounts on exit; an existing mount is used as
 * it is and left alone.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { NativeBinding } from './native';
import { readProcText } from './proc-text';

export type PseudoFs = 'cgroup2' | 'tracefs';

export const TRACEFS_DIR = '/sys/kernel/tracing';

export interface MountEntry {
  mountPoint: string;
  fstype: string;
  /** The superblock's options (mountinfo's last field), e.g. "rw,nsdelegate,memory_recursiveprot". */
  superOptions: string;
}

/** /proc/self/mountinfo's entries, oldest first. */
async function mountEntries(): Promise<MountEntry[]> {
  const mountinfo = await readProcText('/proc/self/mountinfo');
  const entries: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const [fstype, , superOptions = ''] = right?.split(' ') ?? [];
    if (mountPoint !== undefined && fstype !== undefined) entries.push({ mountPoint, fstype, superOptions });
  }
  return entries;
}

/** The filesystem types mounted at dir, oldest first. */
async function fstypesAt(dir: string, entries?: readonly MountEntry[]): Promise<string[]> {
  const target = await fs.realpath(dir).catch(() => dir);
  return (entries ?? (await mountEntries())).filter((e) => e.mountPoint === target).map((e) => e.fstype);
}

/**
 * The options a new mount of fstype must pass to leave an existing mount's
 * superblock as it is (read-only/read-write is per mount, not passed).
 */
export function keptSuperOptions(entries: readonly MountEntry[], fstype: PseudoFs): string | undefined {
  const existing = entries.find((e) => e.fstype === fstype);
  if (!existing) return undefined;
  const options = existing.superOptions.split(',').filter((o) => o && o !== 'rw' && o !== 'ro');
  return options.length ? options.join(',') : undefined;
}

export class Mounts {
  private readonly mounted: Array<{ dir: string; firstCreated: string | undefined }> = [];

  constructor(private readonly nativeBinding: NativeBinding) {}

  /** Mounts fstype at dir unless it is there already. */
  async ensure(fstype: PseudoFs, dir: string, hint: string): Promise<void> {
    const entries = await mountEntries();
    if ((await fstypesAt(dir, entries)).includes(fstype)) return;
    const firstCreated = await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    try {
      this.nativeBinding.mountFilesystem(fstype, dir, fstype === 'cgroup2' ? keptSuperOptions(entries, fstype) : undefined);
    } catch (err) {
      const there = await fstypesAt(dir).catch(() => undefined);
      // Another process (a second bpftune starting, systemd) mounted it since we looked: use theirs.
      if (there?.includes(fstype)) return;
      await removeCreated(dir, firstCreated);
      // What is there already, so that a refusal (EBUSY) can be told from a missing directory.
      const described = there === undefined ? 'unknown' : there.length ? there.join(', ') : 'nothing';
      throw new Error(`cannot mount ${fstype} at ${dir}: ${(err as Error).message} (mounted there: ${described}); ${hint}`);
    }
    this.mounted.push({ dir, firstCreated });
  }

  /** Unmounts, newest first, what ensure() mounted (and removes directories it made); returns what could not be. */
  async release(): Promise<string[]> {
    const failed: string[] = [];
    for (const { dir, firstCreated } of this.mounted.splice(0).reverse()) {
      try {
        this.nativeBinding.unmount(dir);
        await removeCreated(dir, firstCreated);
      } catch (err) {
        failed.push(`${dir}: ${(err as Error).message}`);
      }
    }
    return failed;
  }
}

/** Removes the directories mkdir -p made for a mount point, deepest first. */
async function removeCreated(dir: string, firstCreated: string | undefined): Promise<void> {
  if (firstCreated === undefined) return;
  for (let d = dir; d.startsWith(firstCreated); d = path.dirname(d)) {
    if ((await fs.rmdir(d).then(() => true, () => false)) === false) return;
    if (d === firstCreated) return;
  }
}
