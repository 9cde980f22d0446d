/**
 * Tuner directories: each tuner is a subdirectory holding index.js (its
 * TunerDefinition) and its compiled BPF object. Because the daemon runs that
 * code as root, a directory or file that is not root-owned, is writable by
 * group or others, or is a symlink is refused (as the reference does).
 */
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';

export interface TunerModule {
  name: string;
  dir: string;
  modulePath: string;
  /** Changes when index.js or any .bpf.o in the directory changes. */
  signature: string;
}

export interface RejectedEntry {
  path: string;
  reason: string;
}

export function unsafeReason(st: Stats, what: string): string | undefined {
  if (st.isSymbolicLink()) return `${what} is a symbolic link`;
  if (st.uid !== 0) return `${what} is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

export async function scanTunerDirectory(libdir: string): Promise<{ modules: TunerModule[]; rejected: RejectedEntry[] }> {
  const modules: TunerModule[] = [];
  const rejected: RejectedEntry[] = [];
  const top = await fs.lstat(libdir).catch(() => undefined);
  if (!top) return { modules, rejected };
  const topReason = unsafeReason(top, `plugin directory ${libdir}`) ?? (top.isDirectory() ? undefined : `${libdir} is not a directory`);
  if (topReason) return { modules, rejected: [{ path: libdir, reason: topReason }] };

  for (const entry of (await fs.readdir(libdir)).sort()) {
    const dir = path.join(libdir, entry);
    const st = await fs.lstat(dir).catch(() => undefined);
    if (!st || (!st.isDirectory() && !st.isSymbolicLink())) continue;
    const reason = unsafeReason(st, `tuner directory ${dir}`);
    if (reason) {
      rejected.push({ path: dir, reason });
      continue;
    }
    const modulePath = path.join(dir, 'index.js');
    const files = await fs.readdir(dir);
    if (!files.includes('index.js')) continue;
    const signatureParts: string[] = [];
    let fileReason: string | undefined;
    for (const f of files.filter((f) => f === 'index.js' || f.endsWith('.bpf.o')).sort()) {
      const fst = await fs.lstat(path.join(dir, f));
      fileReason = unsafeReason(fst, path.join(dir, f));
      if (fileReason) break;
      signatureParts.push(`${f}:${fst.size}:${fst.mtimeMs}`);
    }
    if (fileReason) {
      rejected.push({ path: dir, reason: fileReason });
      continue;
    }
    modules.push({ name: entry, dir, modulePath, signature: signatureParts.join(',') });
  }
  return { modules, rejected };
}
