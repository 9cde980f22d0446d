/**
 * A real Prometheus server (Debian's package) and node_exporter for tests:
 * each listens on 127.0.0.1 only, on a port picked free, with its data in a
 * temporary directory. stop() kills them and removes the data; a process
 * exit hook does the same should a test die first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const running = new Set<ServerProcess>();

/** A port free on 127.0.0.1 now (the server that is given it binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

class ServerProcess {
  readonly dir: string;
  private readonly child: ChildProcess;
  private output = '';

  constructor(
    readonly name: string,
    command: string,
    args: (dir: string) => string[],
    readonly port: number,
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), `bpftune-test-${name}-`));
    this.child = spawn(command, args(this.dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (c: Buffer) => (this.output = (this.output + c.toString('utf8')).slice(-20_000));
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    running.add(this);
  }

  get log(): string {
    return this.output;
  }

  /** Waits until GET path answers 200; a server that never does is stopped. */
  async ready(readyPath: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode}):\n${this.output}`);
      const ok = await fetch(`http://127.0.0.1:${this.port}${readyPath}`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) {
        // A server that never became ready is stopped here, so no caller leaves it running.
        await this.stop();
        throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
    running.delete(this);
  }

  killNow(): void {
    try {
      this.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface PrometheusServer {
  readonly port: number;
  /** Instant query; returns the result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Waits until the query returns at least one series (and `accept` likes them). */
  waitFor(expr: string, accept?: (values: number[]) => boolean, timeoutMs?: number): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
  readonly log: string;
}

/** Prometheus scraping each target every second; targets are `job -> host:port`. */
export async function startPrometheus(targets: Record<string, string>): Promise<PrometheusServer> {
  const port = await freePort();
  const server = new ServerProcess(
    'prometheus',
    'prometheus',
    (dir) => {
      const scrapes = Object.entries(targets)
        .map(([job, target]) => `  - job_name: ${job}\n    static_configs:\n      - targets: ['${target}']\n`)
        .join('');
      writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n${scrapes}`);
      return [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ];
    },
    port,
  );
  await server.ready('/-/ready');
  const query = async (expr: string) => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== 'success' || !body.data) throw new Error(`query '${expr}' failed: ${body.error ?? r.status}`);
    return body.data.result;
  };
  return {
    port,
    query,
    async waitFor(expr, accept = () => true, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const result = await query(expr);
        if (result.length && accept(result.map((s) => Number(s.value[1])))) return result;
        if (Date.now() > deadline) throw new Error(`'${expr}' returned ${JSON.stringify(result)} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    stop: () => server.stop(),
    get log() {
      return server.log;
    },
  };
}

/** node_exporter with only its textfile collector, reading `dir`. */
export async function startNodeExporter(textfileDir: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const server = new ServerProcess(
    'node-exporter',
    'prometheus-node-exporter',
    () => ['--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${textfileDir}`, `--web.listen-address=127.0.0.1:${port}`],
    port,
  );
  await server.ready('/metrics');
  return { port, stop: () => server.stop() };
}

export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}

process.on('exit', () => {
  for (const s of running) s.killNow();
});
