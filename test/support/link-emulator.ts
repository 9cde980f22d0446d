/**
 * An emulated network path between two namespaces, for tests and benchmarks
 * that need delay, random loss or a rate limit (this kernel has no netem).
 *
 *   client ns [emu0 198.18.1.1 fd00:1::1] <-> link-forwarder.py <-> [emu1 198.18.1.2 fd00:1::2] server ns
 *
 * Both ends are point-to-point TUN devices served by one forwarder process
 * (test/support/link-forwarder.py) that holds each packet for half the RTT and
 * drops it with the given probability, in each direction. A rate limit is a
 * tbf qdisc on both devices. close() stops the forwarder (which removes the
 * devices) and deletes both namespaces; the namespaces are also removed on
 * process exit by the netns helpers, like every test namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, TIME_SCALE } from './daemon';
import { createNamespace, deleteNamespace, inNamespace } from './netns';

const FORWARDER = path.join(REPO_ROOT, 'test', 'support', 'link-forwarder.py');
const READY_TIMEOUT_MS = 10_000 * TIME_SCALE;
const STOP_TIMEOUT_MS = 5_000;
const CLIENT_DEV = 'emu0';
const SERVER_DEV = 'emu1';

export interface LinkOptions {
  /** Round-trip time added by the link, split evenly between the directions. */
  rttMs?: number;
  /** Random loss in each direction, in percent. */
  lossPercent?: number;
  /** Rate limit in each direction (tbf); 0 or absent: as fast as the forwarder goes. */
  rateMbit?: number;
  /** MTU of both ends; large by default so the forwarder handles fewer packets. */
  mtu?: number;
  /** Seed for the loss pattern, so a test sees the same drops every run. */
  seed?: number;
}

export interface DirectionCounters {
  forwarded: number;
  dropped: number;
  write_errors: number;
}

export interface LinkCounters {
  clientToServer: DirectionCounters;
  serverToClient: DirectionCounters;
}

export interface EmulatedLink {
  readonly client: string;
  readonly server: string;
  readonly clientAddr4: string;
  readonly serverAddr4: string;
  readonly clientAddr6: string;
  readonly serverAddr6: string;
  readonly clientDevice: string;
  readonly serverDevice: string;
  /** Stops the forwarder and deletes both namespaces; returns the forwarder's counters (once). */
  close(): Promise<LinkCounters | undefined>;
}

const forwarders = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of forwarders) child.kill('SIGKILL');
});
/** Links not closed yet: a running forwarder keeps the test process (and its file) from ever ending. */
const openLinks = new Set<EmulatedLink>();

/** For a test file's after() hook: closes every link a test left open (a failed test, or one that kept it to the end). */
export async function closeAllLinks(): Promise<void> {
  for (const link of [...openLinks]) await link.close();
}

function waitForReady(child: ChildProcess, lines: AsyncIterableIterator<string>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => reject(new Error(`link forwarder did not start within ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`link forwarder exited (${code}) before it was ready: ${stderr.trim()}`));
    });
    lines
      .next()
      .then((first) => {
        clearTimeout(timer);
        if (first.value === 'ready') resolve();
        else reject(new Error(`link forwarder said '${String(first.value)}' instead of 'ready': ${stderr}`));
      })
      .catch(reject);
  });
}

function configureEnd(ns: string, dev: string, local4: string, peer4: string, local6: string, peer6: string, options: Required<LinkOptions>): void {
  inNamespace(ns, 'ip', ['link', 'set', 'dev', dev, 'mtu', String(options.mtu), 'up']);
  inNamespace(ns, 'ip', ['addr', 'add', `${local4}/32`, 'peer', `${peer4}/32`, 'dev', dev]);
  // nodad: a tentative address cannot be used for a second or two.
  inNamespace(ns, 'ip', ['-6', 'addr', 'add', `${local6}/128`, 'peer', `${peer6}/128`, 'dev', dev, 'nodad']);
  if (options.rateMbit > 0) {
    const bytesPerMs = (options.rateMbit * 1e6) / 8 / 1000;
    // A burst of a few ms of traffic, and never below two full-size packets.
    const burst = Math.max(2 * options.mtu, Math.ceil(bytesPerMs * 4));
    inNamespace(ns, 'tc', ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${options.rateMbit}mbit`, 'burst', String(burst), 'latency', '100ms']);
  }
}

export async function createEmulatedLink(options: LinkOptions = {}): Promise<EmulatedLink> {
  const opts: Required<LinkOptions> = {
    rttMs: options.rttMs ?? 0,
    lossPercent: options.lossPercent ?? 0,
    rateMbit: options.rateMbit ?? 0,
    mtu: options.mtu ?? 9000,
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 31),
  };
  if (opts.rttMs < 0 || opts.lossPercent < 0 || opts.lossPercent > 100 || opts.rateMbit < 0) {
    throw new RangeError(`invalid link options ${JSON.stringify(options)}`);
  }
  const client = createNamespace();
  const server = createNamespace();
  const addrs = { clientAddr4: '198.18.1.1', serverAddr4: '198.18.1.2', clientAddr6: 'fd00:1::1', serverAddr6: 'fd00:1::2' };
  const child = spawn(
    'ip',
    ['netns', 'exec', client, 'python3', FORWARDER, '--dev-a', CLIENT_DEV, '--dev-b', SERVER_DEV,
      '--delay-ms', String(opts.rttMs / 2), '--loss-percent', String(opts.lossPercent), '--seed', String(opts.seed)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  forwarders.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let closed = false;

  const close = async (): Promise<LinkCounters | undefined> => {
    if (closed) return undefined;
    closed = true;
    let counters: LinkCounters | undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const last = lines.next();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      try {
        const line = await Promise.race([last, exited.then(() => ({ value: undefined, done: true }))]);
        if (typeof line.value === 'string') {
          const raw = JSON.parse(line.value) as { a_to_b: DirectionCounters; b_to_a: DirectionCounters };
          counters = { clientToServer: raw.a_to_b, serverToClient: raw.b_to_a };
        }
      } catch {
        // No counters from a forwarder that died; the namespaces still go.
      }
      await exited;
      clearTimeout(timer);
    }
    forwarders.delete(child);
    for (const open of openLinks) if (open.close === close) openLinks.delete(open);
    deleteNamespace(client);
    deleteNamespace(server);
    return counters;
  };

  try {
    await waitForReady(child, lines);
    inNamespace(client, 'ip', ['link', 'set', 'dev', SERVER_DEV, 'netns', server]);
    configureEnd(client, CLIENT_DEV, addrs.clientAddr4, addrs.serverAddr4, addrs.clientAddr6, addrs.serverAddr6, opts);
    configureEnd(server, SERVER_DEV, addrs.serverAddr4, addrs.clientAddr4, addrs.serverAddr6, addrs.clientAddr6, opts);
  } catch (err) {
    await close();
    throw err;
  }
  const link: EmulatedLink = { client, server, ...addrs, clientDevice: CLIENT_DEV, serverDevice: SERVER_DEV, close };
  openLinks.add(link);
  return link;
}
