/**
 * Answers queries on TCP localhost (the port is written to
 * /var/run/bpftune/server-port, as the reference does) and on a Unix socket
 * only root can open. A client sends one line, the query; the reply is text
 * (at most 64 KiB) and the connection is closed.
 */
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import { noteActivity } from '../core/heap';
import { errorText, type Logger } from '../core/log';
import { querySocketPath, serverPortFile } from '../core/paths';
import type { QueryTable } from './queries';

export const MAX_REPLY_BYTES = 64 * 1024;
const MAX_REQUEST_BYTES = 1024;
const CONNECTION_TIMEOUT_MS = 5000;

export class QueryServer {
  private tcp: net.Server | undefined;
  private unix: net.Server | undefined;

  constructor(
    private readonly queries: QueryTable,
    private readonly log: Logger,
  ) {}

  async listen(port: number): Promise<void> {
    this.tcp = await this.open(port === 0 ? { host: '127.0.0.1', port: 0 } : { host: '127.0.0.1', port }, `127.0.0.1:${port}`, '-p PORT', false);
    const address = this.tcp.address() as net.AddressInfo;
    await fs.writeFile(serverPortFile(), `${address.port}\n`, { mode: 0o644 });
    const socketPath = querySocketPath();
    await fs.rm(socketPath, { force: true });
    this.unix = await this.open({ path: socketPath }, socketPath, 'the run directory', true);
    await fs.chmod(socketPath, 0o600);
    this.log.debug(`queries: listening on 127.0.0.1:${address.port} and ${socketPath}`);
  }

  get port(): number | undefined {
    return (this.tcp?.address() as net.AddressInfo | null)?.port;
  }

  /** privileged: only root can connect (the Unix socket), so queries that change something are allowed. */
  private open(options: net.ListenOptions, where: string, hint: string, privileged: boolean): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.serve(socket, privileged));
      server.once('error', (err) => reject(new Error(`cannot listen for queries on ${where}: ${errorText(err)}; check ${hint}`)));
      server.listen(options, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log.error(`query server on ${where}: ${errorText(err)}`));
        resolve(server);
      });
    });
  }

  private serve(socket: net.Socket, privileged: boolean): void {
    let request = '';
    let answered = false;
    socket.setTimeout(CONNECTION_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const answer = (line: string) => {
      if (answered) return;
      answered = true;
      this.answer(line.trim(), privileged)
        .then((reply) => socket.end(truncate(reply)))
        .catch((err) => socket.end(`error: query failed: ${errorText(err)}\n`))
        .finally(noteActivity);
    };
    socket.on('data', (chunk) => {
      request += chunk.toString('utf8');
      const newline = request.indexOf('\n');
      if (newline >= 0) answer(request.slice(0, newline));
      else if (request.length > MAX_REQUEST_BYTES) answer('');
    });
    socket.on('end', () => answer(request));
  }

  async answer(line: string, privileged = false): Promise<string> {
    const [name = '', ...args] = line.split(/\s+/);
    const query = this.queries.get(name);
    if (!query) {
      return `error: unknown query '${name}'; known queries: ${[...this.queries.keys()].join(', ')}\n`;
    }
    return query.run(args, { privileged });
  }

  async close(): Promise<void> {
    const closing = [this.tcp, this.unix].map(
      (s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve())),
    );
    await Promise.all(closing);
    await fs.rm(querySocketPath(), { force: true });
    await fs.rm(serverPortFile(), { force: true });
  }
}

function truncate(reply: string): string {
  const buf = Buffer.from(reply, 'utf8');
  if (buf.length <= MAX_REPLY_BYTES) return reply;
  const note = '\n... (reply truncated at 64 KiB)\n';
  return buf.subarray(0, MAX_REPLY_BYTES - note.length).toString('utf8') + note;
}
