#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
Link emulator data path for tests and benchmarks (see link-emulator.ts).

This kernel has no netem, so delay and random loss between two network
namespaces are made here, in user space: two TUN devices are created in the
namespace this process starts in, the caller moves one of them to the other
namespace, and every packet read from one device is written to the other
after a fixed one-way delay, unless it is dropped at random. Rate limits are
left to the kernel (tbf on the devices), which does them far better.

Python's standard library does the TUN ioctl and the select loop with nothing
to build, and keeps this test tool out of the daemon's native addon.

Protocol with the parent: prints "ready" once both devices exist, then
forwards until SIGTERM or until its stdin closes (the parent died); on exit
prints one JSON line of counters.
"""
import argparse
import collections
import errno
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    """Packets read from `src`, held for the delay, then written to `dst`."""

    def __init__(self, name, src, dst, delay, loss):
        self.name = name
        self.src = src
        self.dst = dst
        self.delay = delay
        self.loss = loss
        # The delay is the same for every packet, so a FIFO keeps them in
        # due order (and in sending order, as a real link would).
        self.queue = collections.deque()
        self.forwarded = 0
        self.dropped = 0
        self.write_errors = 0

    def read_all(self, now):
        while True:
            try:
                packet = os.read(self.src, MAX_PACKET)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EBADFD:  # device not up yet
                    return
                raise
            if self.loss > 0 and random.random() < self.loss:
                self.dropped += 1
                continue
            self.queue.append((now + self.delay, packet))

    def flush_due(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.dst, packet)
                self.forwarded += 1
            except OSError:
                # The peer device is down or its queue is full: a real link
                # loses the packet too.
                self.write_errors += 1

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def counters(self):
        return {"forwarded": self.forwarded, "dropped": self.dropped, "write_errors": self.write_errors}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev-a", required=True)
    parser.add_argument("--dev-b", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each direction")
    parser.add_argument("--loss-percent", type=float, default=0.0, help="random loss, each direction")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)

    fd_a = open_tun(args.dev_a)
    fd_b = open_tun(args.dev_b)
    delay = args.delay_ms / 1000.0
    loss = args.loss_percent / 100.0
    directions = [
        Direction("a_to_b", fd_a, fd_b, delay, loss),
        Direction("b_to_a", fd_b, fd_a, delay, loss),
    ]
    by_fd = {d.src: d for d in directions}

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    print("ready", flush=True)

    stdin = sys.stdin.fileno()
    watched = [fd_a, fd_b, stdin]
    while not stopping:
        now = time.monotonic()
        dues = [d.next_due() for d in directions if d.next_due() is not None]
        timeout = max(0.0, min(dues) - now) if dues else 1.0
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            if fd == stdin:
                if not os.read(stdin, 4096):
                    stopping.append(True)
                continue
            by_fd[fd].read_all(now)
        for d in directions:
            d.flush_due(now)

    print(json.dumps({d.name: d.counters() for d in directions}), flush=True)


if __name__ == "__main__":
    main()
