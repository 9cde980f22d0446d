/**
 * UDP traffic for udp_buffer's test and benchmark: a receiver that drains
 * its socket only every few milliseconds (a slow reader) and opens a new
 * socket every quarter second (so a grown rmem_max or rmem_default reaches
 * it: the kernel sizes a buffer when the socket is made or SO_RCVBUF is
 * set), and a sender that floods it in bursts over a veth. Python, because
 * Node's dgram cannot read slowly: it drains the socket whenever the loop runs.
 * Drops are the receiving namespace's UDP RcvbufErrors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { inNamespace } from '../../../test/support/netns';

const RECEIVER = `
import socket, sys, time
addr, port, request, seconds, reopen, drain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
family = socket.AF_INET6 if ':' in addr else socket.AF_INET
end = time.monotonic() + seconds
received = 0
first = True
while time.monotonic() < end:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if request:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, request)
    s.bind((addr, port))
    s.setblocking(False)
    if first:
        print('ready', flush=True)
        first = False
    print('rcvbuf', s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)
    until = min(end, time.monotonic() + reopen)
    while time.monotonic() < until:
        time.sleep(drain)
        try:
            while True:
                s.recv(65536)
                received += 1
        except BlockingIOError:
            pass
    s.close()
print('received', received, flush=True)
`;

const SENDER = `
import socket, sys, time
addr, port, burst, size, interval, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
family = socket.AF_INET6 if ':' in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
payload = b'x' * size
sent = 0
start = time.monotonic()
tick = start
while tick - start < seconds:
    for _ in range(burst):
        try:
            s.sendto(payload, (addr, port))
            sent += 1
        except OSError:
            pass
    tick += interval
    delay = tick - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(sent, flush=True)
`;

export interface FloodOptions {
  /** SO_RCVBUF the receiver asks for; 0 keeps rmem_default. */
  rcvbufRequest: number;
  seconds: number;
  /** Datagrams per burst, one burst per `intervalMs`. */
  burst?: number;
  size?: number;
  intervalMs?: number;
  /** How long the receiver sleeps between drains. */
  drainMs?: number;
}

export interface FloodResult {
  sent: number;
  received: number;
  /** The receiving namespace's RcvbufErrors (UDP and UDP6) during the flood. */
  drops: number;
  /** sk_rcvbuf of each socket the receiver opened, in order. */
  rcvbufs: number[];
}

export interface UdpCounters {
  rcvbufErrors: number;
  memErrors: number;
}

/** RcvbufErrors and MemErrors, IPv4 and IPv6 together, inside `ns`. */
export function udpCounters(ns: string): UdpCounters {
  const snmp = inNamespace(ns, 'cat', ['/proc/net/snmp']);
  const udp = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (udp[0] ?? '').split(/\s+/);
  const values = (udp[1] ?? '').split(/\s+/);
  const v4 = (name: string): number => Number(values[names.indexOf(name)] ?? 0);
  const snmp6 = inNamespace(ns, 'cat', ['/proc/net/snmp6']);
  const v6 = (name: string): number => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(snmp6)?.[1] ?? 0);
  return {
    rcvbufErrors: v4('RcvbufErrors') + v6('Udp6RcvbufErrors'),
    memErrors: v4('MemErrors') + v6('Udp6MemErrors'),
  };
}

function lines(child: ChildProcess): Promise<string[]> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout?.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.on('close', () => resolve(text.split('\n').filter(Boolean)));
  });
}

/** Bursts from `senderNs` to a slow receiver at `address` in `receiverNs`; both processes end by themselves. */
export async function udpFlood(senderNs: string, receiverNs: string, address: string, port: number, o: FloodOptions): Promise<FloodResult> {
  const drain = (o.drainMs ?? 20) / 1000;
  const receiver = spawn('ip', ['netns', 'exec', receiverNs, 'python3', '-c', RECEIVER, address, String(port), String(o.rcvbufRequest), String(o.seconds + 0.5), '0.25', String(drain)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const receiverLines = lines(receiver);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`UDP receiver in ${receiverNs} not ready within 10 s`)), 10_000);
    receiver.stdout?.on('data', (c: Buffer) => {
      if (c.toString('utf8').includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    receiver.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`UDP receiver in ${receiverNs} exited (${code}) before it was ready`));
    });
  });
  const before = udpCounters(receiverNs);
  // Not spawnSync: the test's daemon must keep being read while the flood runs.
  const sender = spawn(
    'ip',
    ['netns', 'exec', senderNs, 'python3', '-c', SENDER, address, String(port), String(o.burst ?? 100), String(o.size ?? 1000), String((o.intervalMs ?? 20) / 1000), String(o.seconds)],
    { stdio: ['ignore', 'pipe', 'inherit'], timeout: (o.seconds + 30) * 1000 },
  );
  const [sent] = await lines(sender);
  const out = await receiverLines;
  const after = udpCounters(receiverNs);
  return {
    sent: Number(sent) || 0,
    received: Number(out.find((l) => l.startsWith('received '))?.split(' ')[1] ?? 0),
    drops: after.rcvbufErrors - before.rcvbufErrors,
    rcvbufs: out.filter((l) => l.startsWith('rcvbuf ')).map((l) => Number(l.split(' ')[1])),
  };
}

/** Drops per 1000 datagrams sent. */
export function dropsPerThousand(r: Pick<FloodResult, 'drops' | 'sent'>): number {
  return r.sent > 0 ? (1000 * r.drops) / r.sent : NaN;
}
