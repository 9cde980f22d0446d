/**
 * The BPF objects a process holds, through its own file descriptors: each
 * fd whose link is anon_inode:<kind> and the fdinfo text that names the
 * object (prog_id, and for a program its run counters). Reading a process's
 * own fds keeps other daemons on the machine out.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Kinds as the kernel names their anonymous inodes. */
export type BpfFdKind = 'bpf-prog' | 'bpf_link' | 'bpf-map';

/** The fdinfo text of each fd of those kinds; an fd closed between the listing and the read is skipped. */
export function bpfFdinfos(pid: number, kinds: readonly BpfFdKind[]): string[] {
  const texts: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!kinds.some((k) => target === `anon_inode:${k}`)) continue;
      texts.push(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    } catch {
      // closed meanwhile (a tuner unloading, a sampled hook detaching)
    }
  }
  return texts;
}

/** The prog_id each fdinfo names (a program's own id, or a link's program). */
export function progIds(fdinfos: readonly string[]): number[] {
  return fdinfos.flatMap((text) => {
    const m = /^prog_id:\s+(\d+)/m.exec(text);
    return m ? [Number(m[1])] : [];
  });
}
