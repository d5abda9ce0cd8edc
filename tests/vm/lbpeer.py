#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Traffic for the load-balancer VM tests (tests/vm/t50-lb.sh).

  lbpeer.py serve NAME PORT...      TCP and UDP servers on each PORT, until
                                    killed. A TCP client gets the line
                                    "NAME <its address>", then each line it
                                    sends comes back as "NAME <line>". A UDP
                                    datagram gets "NAME <its address> <text>".
  lbpeer.py connect IP PORT COUNT [SPORT]
                                    COUNT TCP connections one after another
                                    (from source port SPORT if given);
                                    prints each greeting ("NAME <address>"),
                                    "-" for a connection that got none.
  lbpeer.py hold IP PORT COUNT DIR [SPORT]
                                    COUNT TCP connections kept open (the
                                    first from source port SPORT). Writes
                                    DIR/before (the NAME of each), then each
                                    time DIR/go<N> appears (N = 1, 2, ...)
                                    sends a line on each connection and writes
                                    DIR/after<N> (the NAME in each echo, "-"
                                    if the connection broke); ends when
                                    DIR/close appears, closing them all.
  lbpeer.py udp IP PORT TEXT        one datagram; prints the reply or "-".
"""
import os
import socket
import socketserver
import sys
import threading
import time

# Seconds a connect or a read may take. Generous: under TCG on a loaded
# 2-core machine a SYN, its retransmission or a reply can take seconds, and
# no check here relies on a timeout expiring (a connection that breaks gets
# a RST, and a dropped one fails anyway, only later).
TIMEOUT = 10


def serve(name, ports):
    class Tcp(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(("%s %s\n" % (name, self.client_address[0]))
                             .encode())
            for line in self.rfile:
                self.wfile.write(("%s %s\n" % (name, line.decode().strip()))
                                 .encode())

    class Udp(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            sock.sendto(("%s %s %s" % (name, self.client_address[0],
                                       data.decode().strip())).encode(),
                        self.client_address)

    class TcpServer(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    servers = []
    for port in ports:
        servers.append(TcpServer(("0.0.0.0", port), Tcp))
        servers.append(socketserver.UDPServer(("0.0.0.0", port), Udp))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


def open_tcp(ip, port, sport=None):
    """A TCP connection, from source port @sport if given (shared with
    other sockets that ask for it too: SO_REUSEADDR)."""
    if sport is None:
        s = socket.create_connection((ip, port), timeout=TIMEOUT)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(TIMEOUT)
        s.bind(("0.0.0.0", sport))
        s.connect((ip, port))
    s.settimeout(TIMEOUT)
    return s


def greet(sock):
    """The first line from the server, or None."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            return None
        buf += chunk
    return buf.decode().strip()


def connect(ip, port, count, sport=None):
    for _ in range(count):
        line = None
        try:
            with open_tcp(ip, port, sport) as s:
                line = greet(s)
        except OSError:
            pass
        print(line or "-", flush=True)


def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.1)


def hold(ip, port, count, ctl, sport=None):
    conns = []
    names = []
    for i in range(count):
        s = open_tcp(ip, port, sport if i == 0 else None)
        line = greet(s)
        conns.append(s)
        names.append(line.split()[0] if line else "-")
    with open(os.path.join(ctl, "before.tmp"), "w") as f:
        f.write("\n".join(names) + "\n")
    os.rename(os.path.join(ctl, "before.tmp"), os.path.join(ctl, "before"))
    rnd = 1
    while True:
        go = os.path.join(ctl, "go%d" % rnd)
        close = os.path.join(ctl, "close")
        while not os.path.exists(go) and not os.path.exists(close):
            time.sleep(0.1)
        if os.path.exists(close):
            break
        out = []
        for i, s in enumerate(conns):
            name = "-"
            try:
                s.sendall(b"ping %d\n" % i)
                line = greet(s)
                if line and line.split()[1:] == ["ping", str(i)]:
                    name = line.split()[0]
            except OSError:
                pass
            out.append(name)
        tmp = os.path.join(ctl, "after%d.tmp" % rnd)
        with open(tmp, "w") as f:
            f.write("\n".join(out) + "\n")
        os.rename(tmp, os.path.join(ctl, "after%d" % rnd))
        rnd += 1
    for s in conns:
        s.close()


def udp(ip, port, text):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.connect((ip, port))
        s.send(text.encode())
        try:
            print(s.recv(512).decode().strip())
        except OSError:
            print("-")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    what, args = sys.argv[1], sys.argv[2:]
    if what == "serve" and len(args) >= 2:
        serve(args[0], [int(p) for p in args[1:]])
    elif what == "connect" and len(args) in (3, 4):
        connect(args[0], int(args[1]), int(args[2]),
                int(args[3]) if len(args) == 4 else None)
    elif what == "hold" and len(args) in (4, 5):
        hold(args[0], int(args[1]), int(args[2]), args[3],
             int(args[4]) if len(args) == 5 else None)
    elif what == "udp" and len(args) == 3:
        udp(args[0], int(args[1]), args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
