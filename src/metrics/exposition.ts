/**
 * Where metrics go, both off by default (no flag, no open port, no file):
 * --metrics ADDR:PORT serves GET /metrics over HTTP for Prometheus to
 * scrape; --metrics-textfile DIR rewrites DIR/bpftune.prom every 15 s for
 * node_exporter's textfile collector. The file is replaced by rename(2), so
 * node_exporter never reads half of one, and removed when the daemon stops,
 * so a stopped daemon's figures do not live on as if current.
 */
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { noteActivity } from '../core/heap';
import { errorText, type Logger } from '../core/log';
import { startTicker } from '../core/ticker';
import { formatListenAddress, type ListenAddress } from './address';
import { BpftuneMetrics } from './registry';
import type { MetricsSource } from './source';

export const TEXTFILE_NAME = 'bpftune.prom';
export const TEXTFILE_INTERVAL_MS = 15_000;
/**
 * Once a minute passes with no change, action or event, the file is
 * rewritten this often instead (only the process metrics, and a value an
 * administrator wrote, would differ); the next change, action or event
 * brings back 15 s at once. A rewrite is a render of every series and a
 * read of each managed sysctl: at 60 s it was ~14 ms of CPU a minute, a
 * third of the idle daemon's (bench/results/report-only-idle.md), so an idle
 * daemon's file is at most 5 minutes old.
 */
export const QUIET_TEXTFILE_INTERVAL_MS = 300_000;
/** How long nothing must happen before the file is rewritten at the quiet interval. */
export const QUIET_TEXTFILE_AFTER_MS = 60_000;
/** Prometheus scrapes one at a time per target; a few more allow a second scraper and a curl. */
const MAX_CONNECTIONS = 16;

export interface MetricsOptions {
  listen?: ListenAddress;
  textfileDir?: string;
}

export interface MetricsExposition {
  /** The HTTP address actually bound (port 0 resolved), when serving. */
  readonly address?: ListenAddress;
  close(): Promise<void>;
}

export async function startMetrics(source: MetricsSource, options: MetricsOptions, log: Logger): Promise<MetricsExposition> {
  const metrics = new BpftuneMetrics(source);
  let server: http.Server | undefined;
  let textfile: TextfileWriter | undefined;
  let address: ListenAddress | undefined;
  try {
    if (options.textfileDir) {
      textfile = new TextfileWriter(metrics, options.textfileDir, log);
      await textfile.start();
    }
    if (options.listen) {
      server = await serve(metrics, options.listen, log);
      const bound = server.address() as AddressInfo;
      address = { host: options.listen.host, port: bound.port };
      log.info(`metrics: serving http://${formatListenAddress(address)}/metrics`);
    }
  } catch (err) {
    await textfile?.stop();
    throw err;
  }
  return {
    address,
    async close() {
      await textfile?.stop();
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

function serve(metrics: BpftuneMetrics, listen: ListenAddress, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('only GET /metrics\n');
      return;
    }
    if (url !== '/metrics' && !url.startsWith('/metrics?')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('bpftune serves its metrics at /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
        noteActivity();
      },
      (err) => {
        log.error(`metrics: collecting for a scrape failed: ${errorText(err)}; the scrape gets a 500`);
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`collecting metrics failed: ${errorText(err)}\n`);
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`cannot serve metrics on ${formatListenAddress(listen)}: ${errorText(err)}; pick another address or port for --metrics`)),
    );
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => log.error(`metrics server: ${errorText(err)}`));
      resolve(server);
    });
  });
}

class TextfileWriter {
  private ticker: { stop(): void; wake(): void } | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastError = '';
  private readonly file: string;
  private readonly temp: string;

  constructor(
    private readonly metrics: BpftuneMetrics,
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dir, TEXTFILE_NAME);
    // Not *.prom: node_exporter reads only those, so it never sees a file being written.
    this.temp = path.join(dir, `.${TEXTFILE_NAME}.${process.pid}.tmp`);
  }

  async start(): Promise<void> {
    const st = await fs.stat(this.dir).catch((err: Error) => {
      throw new Error(`--metrics-textfile ${this.dir}: ${errorText(err)}; give node_exporter's --collector.textfile.directory`);
    });
    if (!st.isDirectory()) throw new Error(`--metrics-textfile ${this.dir}: not a directory; give node_exporter's --collector.textfile.directory`);
    await this.write();
    // On the tuners' timer grid (src/core/ticker.ts), so a write shares their wake-ups where the grids meet.
    let written = this.metrics.activity;
    this.ticker = startTicker(
      TEXTFILE_INTERVAL_MS,
      async () => {
        const activity = this.metrics.activity;
        await (this.writing = this.write());
        const quiet = activity === written;
        written = activity;
        return quiet ? 'quiet' : undefined;
      },
      () => undefined,
      { quietIntervalMs: QUIET_TEXTFILE_INTERVAL_MS, quietAfterMs: QUIET_TEXTFILE_AFTER_MS },
    );
    const ticker = this.ticker;
    this.metrics.onActivity(() => ticker.wake());
    this.log.info(
      `metrics: writing ${this.file} every ${TEXTFILE_INTERVAL_MS / 1000} s (every ${QUIET_TEXTFILE_INTERVAL_MS / 60_000} min once nothing has happened for ${QUIET_TEXTFILE_AFTER_MS / 1000} s)`,
    );
  }

  /** Never throws: a failed write is logged once (until it changes) and retried on the next tick. */
  private async write(): Promise<void> {
    try {
      await fs.writeFile(this.temp, await this.metrics.text(), { mode: 0o644 });
      await fs.rename(this.temp, this.file);
      if (this.lastError) this.log.info(`metrics: writing ${this.file} works again`);
      this.lastError = '';
    } catch (err) {
      const text = errorText(err);
      if (text !== this.lastError) {
        this.log.error(`metrics: cannot write ${this.file}: ${text}; check the directory exists and root can write it; retrying every ${TEXTFILE_INTERVAL_MS / 1000} s`);
      }
      this.lastError = text;
      await fs.rm(this.temp, { force: true }).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.ticker?.stop();
    await this.writing;
    await fs.rm(this.file, { force: true }).catch(() => undefined);
    await fs.rm(this.temp, { force: true }).catch(() => undefined);
  }
}
