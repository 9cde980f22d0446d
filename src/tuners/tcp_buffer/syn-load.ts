/**
 * Test traffic for the SYN-flood path, as small Python programs run inside a
 * test namespace, each bounded in time:
 *  - a listener with a short backlog that accepts and closes everything;
 *  - bursts of real connections to it (legitimate load that overflows the
 *    SYN queue but completes its handshakes);
 *  - a SYN flood from a raw socket whose SYN-ACKs are never answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';

function python(ns: string, script: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, 'python3', '-c', script, ...args], { stdio: 'ignore' });
}

const LISTENER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(int(sys.argv[3]))
s.settimeout(0.2)
end = time.time() + float(sys.argv[4])
while time.time() < end:
    try:
        c, _ = s.accept()
        c.close()
    except socket.timeout:
        pass
`;

/** A listener that accepts (and closes) connections for `seconds`, with a short listen backlog. */
export function startListener(ns: string, addr: string, port: number, backlog: number, seconds: number): ChildProcess {
  return python(ns, LISTENER, [addr, String(port), String(backlog), String(seconds)]);
}

const BURSTS = `
import socket, sys, time, select
addr, port, burst, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
end = time.time() + seconds
while time.time() < end:
    socks = []
    for _ in range(burst):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((addr, port))
        except BlockingIOError:
            pass
        socks.append(c)
    select.select([], socks, [], 1.0)
    for c in socks:
        c.close()
    time.sleep(0.05)
`;

/** Bursts of `burst` simultaneous connections, for `seconds`. */
export function startConnectBursts(ns: string, addr: string, port: number, burst: number, seconds: number): ChildProcess {
  return python(ns, BURSTS, [addr, String(port), String(burst), String(seconds)]);
}

const FLOOD = `
import socket, struct, sys, time, random
src, dst, port, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def csum(data):
    if len(data) % 2:
        data += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, socket.IPPROTO_TCP, 20)
end = time.time() + seconds
interval = 1.0 / rate
while time.time() < end:
    sport = random.randint(1024, 65535)
    seq = random.randint(0, 2**32 - 1)
    hdr = struct.pack('!HHIIBBHHH', sport, port, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    c = csum(pseudo + hdr)
    hdr = hdr[:16] + struct.pack('!H', c) + hdr[18:]
    sock.sendto(hdr, (dst, 0))
    time.sleep(interval)
`;

/**
 * SYNs at `rate` per second for `seconds` from `src` (an address of `ns`).
 * The caller must keep `ns` from answering the SYN-ACKs (drop its RSTs).
 */
export function startSynFlood(ns: string, src: string, dst: string, port: number, rate: number, seconds: number): ChildProcess {
  return python(ns, FLOOD, [src, dst, String(port), String(rate), String(seconds)]);
}
