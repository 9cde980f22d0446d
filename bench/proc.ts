/**
 * What /proc says about a process: CPU time per thread and where its
 * resident memory is. The breakdowns explain a missed footprint target
 * (which thread burns the CPU, which mapping holds the memory).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export interface ThreadCpu {
  tid: number;
  comm: string;
  ns: number;
}

/** CPU time of every thread, in ns (schedstat: clock ticks are too coarse for idle figures). */
export function threadCpu(pid: number): ThreadCpu[] {
  const threads: ThreadCpu[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      threads.push({ tid: Number(tid), comm, ns });
    } catch {
      // The thread exited between readdir and read: its time is gone with it.
    }
  }
  return threads;
}

export function cpuNs(pid: number): number {
  return threadCpu(pid).reduce((sum, t) => sum + t.ns, 0);
}

/** CPU used per thread name between two snapshots (threads of one name summed: V8 has several workers). */
export function threadCpuDelta(before: ThreadCpu[], after: ThreadCpu[]): Array<{ comm: string; ns: number }> {
  const start = new Map(before.map((t) => [t.tid, t.ns]));
  const byComm = new Map<string, number>();
  for (const t of after) byComm.set(t.comm, (byComm.get(t.comm) ?? 0) + t.ns - (start.get(t.tid) ?? 0));
  return [...byComm.entries()].map(([comm, ns]) => ({ comm, ns })).sort((a, b) => b.ns - a.ns);
}

export interface SchedWait {
  /** Time runnable but waiting for a CPU, summed over threads (schedstat's second field). */
  waitNs: number;
  /** Times a thread was put on a CPU (third field). */
  slices: number;
}

/** Run-queue wait of a process: how long it was ready to run but another task had the CPU. */
export function schedWait(pid: number): SchedWait {
  let waitNs = 0;
  let slices = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [, wait, count] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      waitNs += wait;
      slices += count;
    } catch {
      // thread gone
    }
  }
  return { waitNs, slices };
}

export interface MemoryStatus {
  rss: number;
  /** Peak RSS over the process's life (VmHWM). */
  peakRss: number;
  anon: number;
  file: number;
}

export function memoryStatus(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), peakRss: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

export function rssBytes(pid: number): number {
  return memoryStatus(pid).rss;
}

/**
 * Resident bytes per mapping from the text of /proc/PID/smaps, grouped by
 * what is mapped: a file's base name, or [heap], [stack], [anon] (which in
 * Node.js is mostly the V8 heap).
 */
export function smapsBreakdown(smaps: string): Array<{ mapping: string; bytes: number }> {
  const totals = new Map<string, number>();
  let current = '[anon]';
  for (const line of smaps.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1].trim();
      current = name === '' ? '[anon]' : name.startsWith('[') ? name.replace(/:.*\]$/, ']') : path.basename(name.replace(/ \(deleted\)$/, ''));
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) totals.set(current, (totals.get(current) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...totals.entries()].map(([mapping, bytes]) => ({ mapping, bytes })).sort((a, b) => b.bytes - a.bytes);
}

export function processSmaps(pid: number): Array<{ mapping: string; bytes: number }> {
  return smapsBreakdown(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
}
