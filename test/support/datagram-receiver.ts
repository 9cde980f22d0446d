/**
 * A unix datagram socket a test binds (Node cannot), standing in for
 * systemd's notify socket or journald's: a python3 child binds the path
 * ('@name' for an abstract one) and prints each datagram it receives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { OutputWaiters } from './waiters';

const RECEIVER = `
import base64, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print('ready', flush=True)
while True:
    sys.stdout.write(base64.b64encode(s.recv(1 << 20)).decode() + '\\n')
    sys.stdout.flush()
`;

export class DatagramReceiver {
  readonly datagrams: Buffer[] = [];
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private pending = '';
  private readonly waiters = new OutputWaiters();

  constructor(readonly address: string) {
    this.child = spawn('python3', ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`datagram receiver for ${address} exited (${code})`)));
      this.child.stdout?.on('data', (chunk: Buffer) => {
        this.pending += chunk.toString('utf8');
        const lines = this.pending.split('\n');
        this.pending = lines.pop() ?? '';
        for (const line of lines) {
          if (line === 'ready') resolve();
          else this.datagrams.push(Buffer.from(line, 'base64'));
        }
        this.waiters.poke();
      });
    });
  }

  /** Resolves once the socket is bound. */
  listening(): Promise<void> {
    return this.ready;
  }

  /** Resolves with the first datagram for which match() is true. */
  waitFor(match: (d: Buffer) => boolean, timeoutMs = 15_000): Promise<Buffer> {
    return this.waiters.wait(
      () => this.datagrams.find(match),
      timeoutMs,
      () => new Error(`no matching datagram on ${this.address} within ${timeoutMs} ms; got ${this.datagrams.length}`),
    );
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}

/** Reads a journal native-protocol entry back into fields (the inverse of encodeJournalEntry). */
export function decodeJournalEntry(data: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(0x0a, at);
    if (nl < 0) throw new Error(`journal entry: no newline after offset ${at}`);
    const line = data.subarray(at, nl).toString('utf8');
    const eq = line.indexOf('=');
    if (eq >= 0) {
      fields[line.slice(0, eq)] = line.slice(eq + 1);
      at = nl + 1;
    } else {
      const length = Number(data.readBigUInt64LE(nl + 1));
      const start = nl + 9;
      fields[line] = data.subarray(start, start + length).toString('utf8');
      if (data[start + length] !== 0x0a) throw new Error(`journal entry: binary field '${line}' not followed by a newline`);
      at = start + length + 1;
    }
  }
  return fields;
}
