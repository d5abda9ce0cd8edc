#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""swaprecv.py - the middlebox end of tests/vm/t68-atomic-swap.sh.

    swaprecv.py OUTFILE PORT...    (run in the middlebox's netns)

Receives the pktgen frames that reached the middlebox on the UDP PORTs and,
on SIGTERM, drains its sockets and writes one line per frame to OUTFILE:
"PORT SEQ", SEQ being pktgen's sequence number (the pktgen header that
follows the UDP header: magic 0xbe9be955, then the number, big-endian).
Frames without the header are counted on a line "other N".
"""
import select
import signal
import socket
import struct
import sys

MAGIC = 0xBE9BE955


def main():
    out, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    socks = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        s.bind(("0.0.0.0", p))
        s.setblocking(False)
        socks[s.fileno()] = (s, p)
    got = []
    other = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    idle = 0
    while not stop or idle < 2:
        ev = poller.poll(500)
        if not ev:
            idle += 1
            continue
        idle = 0
        for fd, _ in ev:
            s, p = socks[fd]
            while True:
                try:
                    data = s.recv(256)
                except BlockingIOError:
                    break
                if len(data) >= 8 and struct.unpack_from("!I", data)[0] == MAGIC:
                    got.append((p, struct.unpack_from("!I", data, 4)[0]))
                else:
                    other += 1
    with open(out, "w") as f:
        for p, seq in got:
            f.write("%d %d\n" % (p, seq))
        f.write("other %d\n" % other)


if __name__ == "__main__":
    main()
