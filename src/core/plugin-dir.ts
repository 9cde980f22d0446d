/**
 * Tuner directories: each tuner is a subdirectory holding index.js (its
 * TunerDefinition) and its compiled BPF object. The daemon runs that code as
 * root, so it refuses what someone other than root could have written, as
 * the reference does since its plugin-path fixes: every directory from / down
 * to a plugin directory, each tuner directory and each file must be
 * root-owned, not writable by group or others, not a symbolic link, and carry
 * no POSIX ACL (an ACL can grant write access the mode bits do not show).
 * Hidden entries and editor leftovers ("x~", "#x#", ".x.swp") are skipped,
 * so saving a file in an editor never loads a half-written copy.
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

export interface ScanOptions {
  /**
   * Check every directory above libdir too. Off for the built-in directory:
   * it sits beside the daemon's own code, which whoever can write there
   * could already change.
   */
  checkAncestors: boolean;
  /** lgetxattr probe (the native addon's); ACLs are stored as xattrs. */
  xattrExists: (path: string, name: string) => boolean;
}

export interface ScanResult {
  modules: TunerModule[];
  rejected: RejectedEntry[];
  /** Hidden or editor temporary entries, with why they were passed over. */
  ignored: RejectedEntry[];
}

const ACL_XATTRS = [
  ['system.posix_acl_access', 'an access ACL'],
  ['system.posix_acl_default', 'a default ACL'],
] as const;

export function unsafeReason(st: Stats, what: string): string | undefined {
  if (st.isSymbolicLink()) return `${what} is a symbolic link`;
  if (st.uid !== 0) return `${what} is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

function aclReason(file: string, what: string, xattrExists: ScanOptions['xattrExists']): string | undefined {
  for (const [name, description] of ACL_XATTRS) {
    try {
      if (xattrExists(file, name)) return `${what} has ${description}`;
    } catch (err) {
      return `cannot inspect the ACL of ${what}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return undefined;
}

async function untrustedReason(file: string, what: string, options: ScanOptions): Promise<string | undefined> {
  const st = await fs.lstat(file).catch(() => undefined);
  if (!st) return `${what} cannot be inspected`;
  return unsafeReason(st, what) ?? aclReason(file, what, options.xattrExists);
}

/** Editors write these next to the file being edited; loading one would run a stale or partial copy. */
export function temporaryEntryReason(name: string): string | undefined {
  if (name.startsWith('.')) return 'hidden entry';
  if (name.endsWith('~') || /^#.*#$/.test(name) || /\.(swp|swo|swx|tmp|bak|orig|dpkg-[a-z]+)$/.test(name)) {
    return 'editor or package manager temporary file';
  }
  return undefined;
}

async function ancestorReason(libdir: string, options: ScanOptions): Promise<string | undefined> {
  const parts = libdir.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    const reason = await untrustedReason(dir, `directory ${dir} above the plugin directory`, options);
    if (reason) return reason;
  }
  return undefined;
}

export async function scanTunerDirectory(libdir: string, options: ScanOptions): Promise<ScanResult> {
  const result: ScanResult = { modules: [], rejected: [], ignored: [] };
  const top = await fs.lstat(libdir).catch(() => undefined);
  if (!top) return result;
  const topReason =
    (options.checkAncestors ? await ancestorReason(libdir, options) : undefined) ??
    unsafeReason(top, `plugin directory ${libdir}`) ??
    (top.isDirectory() ? undefined : `${libdir} is not a directory`) ??
    aclReason(libdir, `plugin directory ${libdir}`, options.xattrExists);
  if (topReason) return { ...result, rejected: [{ path: libdir, reason: topReason }] };

  for (const entry of (await fs.readdir(libdir)).sort()) {
    const dir = path.join(libdir, entry);
    const skip = temporaryEntryReason(entry);
    if (skip) {
      result.ignored.push({ path: dir, reason: skip });
      continue;
    }
    const st = await fs.lstat(dir).catch(() => undefined);
    if (!st || (!st.isDirectory() && !st.isSymbolicLink())) continue;
    const reason = unsafeReason(st, `tuner directory ${dir}`) ?? aclReason(dir, `tuner directory ${dir}`, options.xattrExists);
    if (reason) {
      result.rejected.push({ path: dir, reason });
      continue;
    }
    const modulePath = path.join(dir, 'index.js');
    const files = await fs.readdir(dir);
    if (!files.includes('index.js')) continue;
    const signatureParts: string[] = [];
    let fileReason: string | undefined;
    for (const f of files.filter((f) => f === 'index.js' || f.endsWith('.bpf.o')).sort()) {
      const file = path.join(dir, f);
      fileReason = await untrustedReason(file, file, options);
      if (fileReason) break;
      const fst = await fs.lstat(file);
      signatureParts.push(`${f}:${fst.size}:${fst.mtimeMs}`);
    }
    if (fileReason) {
      result.rejected.push({ path: dir, reason: fileReason });
      continue;
    }
    result.modules.push({ name: entry, dir, modulePath, signature: signatureParts.join(',') });
  }
  return result;
}
