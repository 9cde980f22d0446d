/**
 * What recording a change in the state file costs: StateStore.beforeChange()
 * runs before every change bpftune makes (temporary file, rename; synchronous
 * calls unless an asynchronous write is under way), so it adds
 * to the change's latency; the sync (fsync of the file before the rename and
 * of the directory after) follows off the change's path, within 5 s, and is
 * timed here on its own after each change. Measured on
 * the filesystem of /var/lib (where /var/lib/bpftune lives), for a state
 * holding 1, 10 and 100 namespaces with three changed tunables each.
 *
 *   node dist/bench/state-write.js [--iterations N] [--dir DIR]
 *
 * Prints a Markdown table of p50/p99/max latency per state size.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLogger } from '../src/core/log';
import type { Namespace } from '../src/core/netns';
import { StateStore } from '../src/core/state';
import { writeFileAtomic, writeFileAtomicSync } from '../src/core/state-file';
import { percentile } from './stats';

const TUNABLES = ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem', 'net.core.somaxconn'];

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function namespace(i: number): Namespace {
  return i === 0
    ? { cookie: 1n, inum: 1, path: '/proc/self/ns/net', global: true }
    : { cookie: BigInt(4096 + i), inum: 4026531000 + i, path: `/var/run/netns/bench-${i}`, name: `bench-${i}`, global: false };
}

interface Measured {
  times: number[];
  /** The durable write that follows (store.flush()), timed on its own. */
  synced: number[];
  /** Serialising the state alone, in the same loop: the part that grows with the state. */
  serialize: number[];
  bytes: number;
}

async function measure(dir: string, namespaces: number, iterations: number): Promise<Measured> {
  const file = path.join(dir, `state-${namespaces}.json`);
  const store = new StateStore(file, { bootId: 'bench', rollback: true, advisory: false }, createLogger(() => undefined, false));
  store.markOpened();
  const scenario = { id: 0, name: 'need to increase TCP buffer size(s)', description: 'Need to increase buffer size(s) to maximize throughput' };
  const change = (i: number, value: number) => ({
    ns: namespace(i % namespaces),
    tuner: 'tcp_buffer',
    tunable: TUNABLES[i % TUNABLES.length],
    scenario,
    reason: `receive buffer of ${value} bytes (IPv4 socket, pid 4242) nearly at net.ipv4.tcp_rmem max ${value}`,
    old: [4096, 131072, value],
    values: [4096, 131072, value + (value >> 2)],
  });
  // Fill the state to its size first, so every measured write carries all of it.
  for (let i = 0; i < namespaces * TUNABLES.length; i++) await store.beforeChange(change(i, 6291456));
  await store.flush();
  const times: number[] = [];
  const synced: number[] = [];
  const serialize: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = process.hrtime.bigint();
    await store.beforeChange(change(i, 6291456 + i));
    const written = process.hrtime.bigint();
    JSON.stringify(store.snapshot);
    const serialized = process.hrtime.bigint();
    await store.flush();
    times.push(Number(written - started) / 1e3);
    serialize.push(Number(serialized - written) / 1e3);
    synced.push(Number(process.hrtime.bigint() - serialized) / 1e3);
  }
  return { times, synced, serialize, bytes: statSync(file).size };
}

/**
 * The floor: the same atomic write of a 2-byte file, unsynced and synced (the
 * disk's part); unsynced both with synchronous calls (what a change waits for)
 * and through the thread pool (what it waited for before).
 */
async function floor(dir: string, iterations: number, how: 'sync' | 'async' | 'durable'): Promise<number[]> {
  const times: number[] = [];
  const file = path.join(dir, 'floor.json');
  for (let i = 0; i < iterations; i++) {
    const started = process.hrtime.bigint();
    if (how === 'sync') writeFileAtomicSync(file, '{}');
    else await writeFileAtomic(file, '{}', how === 'durable');
    times.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  return times;
}

async function main(): Promise<void> {
  const iterations = Number(option('--iterations', '500'));
  const base = option('--dir', '/var/lib');
  const dir = mkdtempSync(path.join(base, 'bpftune-bench-state-'));
  try {
    const fs = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
    console.log(`# State file write latency (StateStore.beforeChange: write, rename; then the sync: write, fsync, rename, fsync dir)`);
    console.log(`\n${os.type()} ${os.release()}, ${os.cpus().length} CPUs, ${fs} at ${base}, ${iterations} writes per row, node ${process.version}, ${new Date().toISOString()}\n`);
    const ms = (values: number[], p: number) => `${(percentile(values, p) / 1000).toFixed(2)} ms`;
    console.log('| state | file size | before the change: p50 | p99 | max | of which JSON.stringify p50 | the sync after: p50 | p99 |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    const bare = await floor(dir, iterations, 'sync');
    const bareAsync = await floor(dir, iterations, 'async');
    const bareSynced = await floor(dir, iterations, 'durable');
    console.log(`| floor: atomic write of 2 bytes | 2 B | ${ms(bare, 50)} | ${ms(bare, 99)} | ${ms(bare, 100)} | - | ${ms(bareSynced, 50)} | ${ms(bareSynced, 99)} |`);
    console.log(`| floor, unsynced write through the thread pool (what a change waited for before) | 2 B | ${ms(bareAsync, 50)} | ${ms(bareAsync, 99)} | ${ms(bareAsync, 100)} | - | - | - |`);
    for (const namespaces of [1, 10, 100]) {
      const { times, synced, serialize, bytes } = await measure(dir, namespaces, iterations);
      const label = `${namespaces} namespace(s), ${namespaces * TUNABLES.length} changed tunables`;
      console.log(`| ${label} | ${(bytes / 1024).toFixed(1)} KiB | ${ms(times, 50)} | ${ms(times, 99)} | ${ms(times, 100)} | ${ms(serialize, 50)} | ${ms(synced, 50)} | ${ms(synced, 99)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`state-write benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
