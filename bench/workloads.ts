/**
 * The overhead method's three workloads, each a fixed-length run between the
 * two namespaces of a veth pair, with the CPU it took counted: every process
 * of the workload runs in a cgroup of ours, whose cpu.stat counts their user
 * and system time, including the BPF programs that run in their context (the
 * daemon's tracepoints fire inside tcp_sendmsg and tcp_recvmsg). The daemon's
 * own CPU is added by the caller; the whole machine's busy time is kept too,
 * as a second view that also holds softirq time charged to nobody.
 *
 *   bulk  iperf3, one TCP stream over veth           work: bytes received
 *   sock  stress-ng --sock 1 (loopback, one netns)   work: bogo ops
 *   rr    64-byte request/response, back to back     work: transactions (bench/traffic.ts)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { inNamespace } from '../test/support/netns';
import type { TestCgroup } from '../test/support/cgroup';
import { track } from './cleanup';
import { runToEnd } from './core';
import { runIperf, type VethPair } from './iperf';
import { cpuNs } from './proc';
import type { WorkloadName, WorkloadRun } from './overhead-summary';

export const TRAFFIC_SCRIPT = path.join(__dirname, 'traffic.js');
const RR_PORT = 5301;

/** The whole machine's non-idle time so far, in ns (USER_HZ ticks). */
export function machineBusyNs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const busy = fields.slice(0, 8).reduce((a, v, i) => (i === 3 || i === 4 ? a : a + v), 0);
  return (busy * 1e9) / 100;
}

export function cgroupCpuNs(cgroup: TestCgroup): number {
  const m = /^usage_usec (\d+)/m.exec(readFileSync(path.join(cgroup.dir, 'cpu.stat'), 'utf8'));
  if (!m) throw new Error(`no usage_usec in ${cgroup.dir}/cpu.stat`);
  return Number(m[1]) * 1000;
}

/** A namespace's TCP counters from /proc/net/snmp (RetransSegs, OutSegs, ...). */
export function tcpCounters(ns: string): Record<string, number> {
  const lines = inNamespace(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
  if (lines.length < 2) return {};
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

/** Starts bench/traffic.js's echo server in `ns` (through `wrap`), resolved once it listens; the caller kills it. */
export function startEchoServer(ns: string, addr: string, port: number, wrap: (c: string, a: string[]) => [string, string[]] = (c, a) => [c, a]) {
  const child = track(spawn(...wrap('ip', ['netns', 'exec', ns, process.execPath, TRAFFIC_SCRIPT, 'echo-server', addr, String(port)]), { stdio: ['ignore', 'pipe', 'pipe'] }));
  const ready = new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`echo server in ${ns} did not start: ${text}`)), 10_000);
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (text.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`echo server in ${ns} exited (${code}): ${text}`));
    });
  });
  return { child, ready };
}

interface Readings {
  cpu: number;
  machine: number;
  retrans: number;
  t: bigint;
}

function readAll(pair: VethPair, cgroup: TestCgroup, daemonPid?: number): Readings {
  return { cpu: cgroupCpuNs(cgroup) + (daemonPid ? cpuNs(daemonPid) : 0), machine: machineBusyNs(), retrans: tcpCounters(pair.client).RetransSegs ?? 0, t: process.hrtime.bigint() };
}

function delta(a: Readings, b: Readings, work: number): WorkloadRun {
  return { work, cpuNs: b.cpu - a.cpu, machineNs: b.machine - a.machine, seconds: Number(b.t - a.t) / 1e9, retransmits: b.retrans - a.retrans };
}

/** One run of a workload; with `daemonPid`, the daemon's CPU over the run counts as the workload's. */
export async function runWorkload(name: WorkloadName, pair: VethPair, cgroup: TestCgroup, seconds: number, daemonPid?: number): Promise<WorkloadRun> {
  const wrap = (c: string, a: string[]) => cgroup.wrap(c, a);
  const read = () => readAll(pair, cgroup, daemonPid);
  if (name === 'bulk') {
    let before: Readings | undefined;
    const r = await runIperf(pair, seconds, wrap, () => (before = read()));
    return delta(before as Readings, read(), r.bytes);
  }
  if (name === 'sock') {
    const before = read();
    // stress-ng prints its metrics on stderr.
    const { stderr } = await runToEnd(...wrap('ip', ['netns', 'exec', pair.client, 'stress-ng', '--sock', '1', '-t', `${seconds}s`, '--metrics-brief']), (seconds + 30) * 1000, 'stress-ng --sock');
    const after = read();
    const m = /metrc:.*\bsock\s+(\d+)\s/.exec(stderr);
    if (!m) throw new Error(`stress-ng printed no bogo ops for sock: ${stderr.slice(-400)}`);
    return delta(before, after, Number(m[1]));
  }
  const server = startEchoServer(pair.server, pair.serverAddr, RR_PORT, wrap);
  try {
    await server.ready;
    const before = read();
    const { stdout } = await runToEnd(...wrap('ip', ['netns', 'exec', pair.client, process.execPath, TRAFFIC_SCRIPT, 'rr', pair.serverAddr, String(RR_PORT), String(seconds), '64', '0']), (seconds + 30) * 1000, 'request/response client');
    const after = read();
    return delta(before, after, (JSON.parse(stdout) as { transactions: number }).transactions);
  } finally {
    server.child.kill('SIGKILL');
  }
}
