/**
 * Plugin directories must be root-controlled on every directory from / down
 * (as the reference requires), which /tmp and a checkout below it are not.
 * Tests that hand the daemon a plugin directory make it here, under /run,
 * and it is removed when the test process exits; directories left by a
 * test process that died are removed by the next one.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';

const TRUSTED_ROOT = '/run/bpftune-test';
const made: string[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes a directory, first detaching what a daemon killed hard left mounted in it (its cgroup2). */
export function removeWithMounts(dir: string): void {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`));
  for (const mountPoint of mounted) spawnSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

function removeLeftovers(): void {
  for (const entry of readdirSync(TRUSTED_ROOT)) {
    const pid = Number(/-(\d+)-[^-]+$/.exec(entry)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) removeWithMounts(path.join(TRUSTED_ROOT, entry));
  }
}

/** A new empty directory only root can write to, all the way from /. */
export function trustedTempDir(prefix: string): string {
  mkdirSync(TRUSTED_ROOT, { recursive: true, mode: 0o755 });
  if (!made.length) removeLeftovers();
  const dir = mkdtempSync(path.join(TRUSTED_ROOT, `${prefix}-${process.pid}-`));
  made.push(dir);
  return dir;
}

/** A copy of `source`'s contents in a trusted directory. */
export function trustedCopy(source: string, prefix: string): string {
  const dir = trustedTempDir(prefix);
  cpSync(source, dir, { recursive: true });
  return dir;
}

export function removeTrustedDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  made.splice(made.indexOf(dir) >>> 0, 1);
}

process.on('exit', () => {
  for (const dir of made) removeWithMounts(dir);
  try {
    rmdirSync(TRUSTED_ROOT);
  } catch {
    // Another test process still has directories there.
  }
});
