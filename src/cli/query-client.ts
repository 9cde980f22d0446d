/** `bpftune -q QUERY`: asks the running daemon over the Unix socket, or TCP localhost with -p or the port file. */
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import { querySocketPath, serverPortFile } from '../core/paths';

const QUERY_TIMEOUT_MS = 10_000;

export class NoDaemonError extends Error {}

function ask(options: net.NetConnectOpts, query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options);
    let reply = '';
    socket.setTimeout(QUERY_TIMEOUT_MS, () => socket.destroy(new Error('no reply within 10 s')));
    socket.on('connect', () => socket.write(`${query}\n`));
    socket.on('data', (chunk) => (reply += chunk.toString('utf8')));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

export async function query(queryText: string, port?: number): Promise<string> {
  if (port !== undefined) {
    return ask({ host: '127.0.0.1', port }, queryText).catch((err: Error) => {
      throw new NoDaemonError(`no bpftune daemon answers on 127.0.0.1:${port} (${err.message}); is it running with -p ${port}?`);
    });
  }
  const socketPath = querySocketPath();
  try {
    return await ask({ path: socketPath }, queryText);
  } catch {
    // Fall back to TCP: the socket is root-only, the port file is what the reference uses.
  }
  const portFile = serverPortFile();
  let portText: string;
  try {
    portText = await fs.readFile(portFile, 'utf8');
  } catch (err) {
    throw new NoDaemonError(`no bpftune daemon is running (cannot read ${portFile}: ${(err as NodeJS.ErrnoException).code}); start it with 'bpftune' first`);
  }
  const filePort = Number(portText.trim());
  return ask({ host: '127.0.0.1', port: filePort }, queryText).catch((err: Error) => {
    throw new NoDaemonError(`no bpftune daemon answers on 127.0.0.1:${filePort} from ${portFile} (${err.message}); start it with 'bpftune' first`);
  });
}
