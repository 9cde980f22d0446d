/**
 * TCP traffic for the overhead and harm benchmarks, run inside a namespace
 * (`ip netns exec NS node dist/bench/traffic.js MODE ...`). Debian 12 has no
 * netperf (it is non-free), so request/response, many small flows and many
 * idle connections are made here. Only Node.js built-ins: this file runs on
 * its own, outside the benchmark process.
 *
 *   echo-server ADDR PORT                     echoes every byte; prints "ready" once listening
 *   rr ADDR PORT SECONDS SIZE INTERVAL_MS     one connection: SIZE bytes out, SIZE back, repeated;
 *                                             INTERVAL_MS 0 is back to back, else one request per interval
 *   flows ADDR PORT SECONDS CONCURRENCY SIZE  short connections: connect, SIZE bytes out and back, close
 *   idle ADDR PORT SECONDS CONNECTIONS ACTIVE_PER_SECOND SIZE
 *                                             CONNECTIONS held open; each second ACTIVE_PER_SECOND of them
 *                                             make one SIZE-byte exchange
 *
 * Every client mode prints one JSON line (TrafficResult) and exits 0; it
 * stops by itself after SECONDS (connection set-up of `idle` not counted).
 */
import * as net from 'node:net';

export interface TrafficResult {
  /** Completed transactions (rr, idle) or flows (flows). */
  transactions: number;
  bytes: number;
  errors: number;
  seconds: number;
  /** Transaction (or whole-flow) latency quantiles in microseconds; null without samples. */
  p50Us: number | null;
  p99Us: number | null;
  maxUs: number | null;
  /** idle: connections established, and how long that took. */
  connections?: number;
  setupSeconds?: number;
}

function quantileOf(sorted: Float64Array, q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

class Latencies {
  private values: number[] = [];
  add(us: number): void {
    this.values.push(us);
  }
  summary(): Pick<TrafficResult, 'p50Us' | 'p99Us' | 'maxUs'> {
    const sorted = Float64Array.from(this.values).sort();
    return { p50Us: quantileOf(sorted, 0.5), p99Us: quantileOf(sorted, 0.99), maxUs: sorted.length ? sorted[sorted.length - 1] : null };
  }
}

const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connect(addr: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: addr, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Sends `size` bytes and resolves once as many have come back. */
function exchange(socket: net.Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got >= payload.length) {
        cleanup();
        resolve();
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('connection closed mid-exchange'));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(payload);
  });
}

function echoServer(addr: string, port: number): void {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  server.on('error', (err) => {
    process.stderr.write(`echo server: ${err.message}\n`);
    process.exit(1);
  });
  server.listen({ host: addr, port, backlog: 4096 }, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
}

async function requestResponse(addr: string, port: number, seconds: number, size: number, intervalMs: number): Promise<TrafficResult> {
  const socket = await connect(addr, port);
  const payload = Buffer.alloc(size, 0x61);
  const lat = new Latencies();
  let transactions = 0;
  let errors = 0;
  const start = nowUs();
  const end = start + seconds * 1e6;
  let next = start;
  while (nowUs() < end) {
    if (intervalMs > 0) {
      const wait = (next - nowUs()) / 1000;
      if (wait > 0) await sleep(wait);
      next += intervalMs * 1000;
    }
    const t0 = nowUs();
    try {
      await exchange(socket, payload);
    } catch {
      errors++;
      break;
    }
    lat.add(nowUs() - t0);
    transactions++;
  }
  const elapsed = (nowUs() - start) / 1e6;
  socket.destroy();
  return { transactions, bytes: transactions * size * 2, errors, seconds: elapsed, ...lat.summary() };
}

async function shortFlows(addr: string, port: number, seconds: number, concurrency: number, size: number): Promise<TrafficResult> {
  const payload = Buffer.alloc(size, 0x62);
  const lat = new Latencies();
  let flows = 0;
  let errors = 0;
  const start = nowUs();
  const end = start + seconds * 1e6;
  const worker = async () => {
    while (nowUs() < end) {
      const t0 = nowUs();
      try {
        const socket = await connect(addr, port);
        await exchange(socket, payload);
        socket.destroy();
        lat.add(nowUs() - t0);
        flows++;
      } catch {
        errors++;
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { transactions: flows, bytes: flows * size * 2, errors, seconds: (nowUs() - start) / 1e6, ...lat.summary() };
}

async function idleConnections(addr: string, port: number, seconds: number, count: number, activePerSecond: number, size: number): Promise<TrafficResult> {
  const sockets: net.Socket[] = [];
  let errors = 0;
  const setupStart = nowUs();
  // A few hundred connects in flight at once: the listener's accept queue is not what this measures.
  let started = 0;
  const opener = async () => {
    while (started < count) {
      started++;
      try {
        const s = await connect(addr, port);
        s.on('error', () => {});
        sockets.push(s);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: 200 }, opener));
  const setupSeconds = (nowUs() - setupStart) / 1e6;
  // The caller starts its measured window on this line.
  process.stderr.write(`connected ${sockets.length} in ${setupSeconds.toFixed(2)} s\n`);
  const payload = Buffer.alloc(size, 0x63);
  const lat = new Latencies();
  let transactions = 0;
  const start = nowUs();
  const end = start + seconds * 1e6;
  let cursor = 0;
  while (nowUs() < end && sockets.length) {
    const tick = nowUs();
    const batch: Array<Promise<void>> = [];
    for (let i = 0; i < activePerSecond; i++) {
      // A stride walk touches every connection in turn rather than the same few.
      const socket = sockets[(cursor = (cursor + 7919) % sockets.length)];
      const t0 = nowUs();
      batch.push(
        exchange(socket, payload).then(
          () => {
            lat.add(nowUs() - t0);
            transactions++;
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await Promise.all(batch);
    const left = 1000 - (nowUs() - tick) / 1000;
    if (left > 0) await sleep(Math.min(left, (end - nowUs()) / 1000));
  }
  const elapsed = (nowUs() - start) / 1e6;
  for (const s of sockets) s.destroy();
  return { transactions, bytes: transactions * size * 2, errors, seconds: elapsed, connections: sockets.length, setupSeconds, ...lat.summary() };
}

async function main(argv: string[]): Promise<void> {
  const [mode, addr, portText, ...rest] = argv;
  const port = Number(portText);
  const n = rest.map(Number);
  let result: TrafficResult;
  switch (mode) {
    case 'echo-server':
      echoServer(addr, port);
      return;
    case 'rr':
      result = await requestResponse(addr, port, n[0], n[1], n[2]);
      break;
    case 'flows':
      result = await shortFlows(addr, port, n[0], n[1], n[2]);
      break;
    case 'idle':
      result = await idleConnections(addr, port, n[0], n[1], n[2], n[3]);
      break;
    default:
      throw new Error(`unknown mode '${mode}' (echo-server, rr, flows, idle)`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`traffic: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
