#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TEST-ONLY ivshmem server for the mbshm VM tests. Not for production:
mbhostd is the real server. It trusts its clients and its control socket.

Implements the server side of QEMU's ivshmem client-server protocol
(docs/specs/ivshmem-spec.rst in QEMU): every message is one little-endian
int64, some with one file descriptor (SCM_RIGHTS). To each new client:

    0                       protocol version
    ID                      the client's peer ID (lowest free, from 0)
    -1 + shm fd             the shared memory
    P + fd, N times         for every other peer P: its N eventfds
    ID + fd, N times        the client's own N eventfds (interrupt setup)

and to every other client "ID + fd" N times (connect notification); when a
client goes, the others get "ID" without a descriptor (disconnect).

The server can also act as a peer itself (--host-id): it is announced to
every client like a connected peer with N eventfds of its own, so a guest
that rings that peer's doorbell increments a counter here. That is how the
host side of a test sees a guest's doorbell, and how mbhostd will.

Control socket (--control, a UNIX stream socket, one command per
connection, one reply line):

    peers                   the client IDs, space separated
    notify ID VECTOR        interrupt client ID on VECTOR -> "ok"
    doorbells VECTOR        doorbells rung on --host-id VECTOR so far
    wait-doorbells VECTOR N [SECS]
                            wait (default 30 s) until at least N -> count

Usage: ivshmem_server.py --socket PATH --control PATH --shm PATH
                         [--size BYTES] [--vectors N] [--host-id ID]
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

PROTOCOL_VERSION = 0


def log(msg):
    print(f"ivshmem_server: {msg}", file=sys.stderr, flush=True)


class Peer:
    def __init__(self, pid, sock, vectors):
        self.id = pid
        self.sock = sock
        # Non-blocking: QEMU's eventfds are too, and our own reads must
        # never hang the loop.
        self.eventfds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                         for _ in range(vectors)]

    def close(self):
        for fd in self.eventfds:
            os.close(fd)
        if self.sock:
            self.sock.close()


class Server:
    def __init__(self, args):
        self.vectors = args.vectors
        self.peers = {}
        self.host = None
        self.doorbells = [0] * args.vectors
        fd = os.open(args.shm, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size < args.size:
            os.ftruncate(fd, args.size)
        self.shm_fd = fd
        if args.host_id is not None:
            self.host = Peer(args.host_id, None, args.vectors)
        self.listener = self._listen(args.socket)
        self.control = self._listen(args.control)

    @staticmethod
    def _listen(path):
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(8)
        return s

    @staticmethod
    def _send(sock, value, fd=None):
        data = struct.pack("<q", value)
        if fd is None:
            sock.sendall(data)
        else:
            socket.send_fds(sock, [data], [fd])

    def _send_peer(self, sock, peer):
        for fd in peer.eventfds:
            self._send(sock, peer.id, fd)

    def _free_id(self):
        used = set(self.peers)
        if self.host:
            used.add(self.host.id)
        pid = 0
        while pid in used:
            pid += 1
        if pid > 65535:
            raise RuntimeError("no free peer ID")
        return pid

    def accept(self):
        sock, _ = self.listener.accept()
        peer = Peer(self._free_id(), sock, self.vectors)
        try:
            self._send(sock, PROTOCOL_VERSION)
            self._send(sock, peer.id)
            self._send(sock, -1, self.shm_fd)
            others = list(self.peers.values())
            if self.host:
                others.append(self.host)
            for other in others:
                self._send_peer(sock, other)
            self._send_peer(sock, peer)
        except OSError as e:
            log(f"client {peer.id}: setup failed: {e}")
            peer.close()
            return
        for other in self.peers.values():
            try:
                self._send_peer(other.sock, peer)
            except OSError as e:
                log(f"client {other.id}: connect notification failed: {e}")
        self.peers[peer.id] = peer
        log(f"client {peer.id} connected")

    def drop(self, peer):
        del self.peers[peer.id]
        peer.close()
        for other in self.peers.values():
            try:
                self._send(other.sock, peer.id)
            except OSError:
                pass
        log(f"client {peer.id} disconnected")

    def count_doorbells(self):
        if not self.host:
            return
        for v, fd in enumerate(self.host.eventfds):
            try:
                self.doorbells[v] += os.eventfd_read(fd)
            except BlockingIOError:
                pass

    def command(self, line):
        words = line.split()
        if words == ["peers"]:
            return " ".join(str(p) for p in sorted(self.peers))
        if len(words) == 3 and words[0] == "notify":
            pid, vec = int(words[1]), int(words[2])
            peer = self.peers.get(pid)
            if peer is None or not 0 <= vec < self.vectors:
                return f"error: no client {pid} or vector {vec}"
            os.eventfd_write(peer.eventfds[vec], 1)
            return "ok"
        if len(words) == 2 and words[0] == "doorbells":
            self.count_doorbells()
            return str(self.doorbells[int(words[1])])
        if len(words) in (3, 4) and words[0] == "wait-doorbells":
            vec, want = int(words[1]), int(words[2])
            deadline = time.monotonic() + (float(words[3]) if len(words) == 4 else 30)
            while True:
                self.count_doorbells()
                if self.doorbells[vec] >= want or time.monotonic() > deadline:
                    return str(self.doorbells[vec])
                time.sleep(0.02)
        return f"error: unknown command {line!r}"

    def serve_control(self):
        conn, _ = self.control.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                reply = self.command(data.decode().strip())
            except (OSError, ValueError, IndexError) as e:
                reply = f"error: {e}"
            try:
                conn.sendall(reply.encode() + b"\n")
            except OSError:
                pass

    def run(self):
        while True:
            socks = [self.listener, self.control] + [p.sock for p in self.peers.values()]
            ready, _, _ = select.select(socks, [], [], 1.0)
            self.count_doorbells()
            for s in ready:
                if s is self.listener:
                    self.accept()
                elif s is self.control:
                    self.serve_control()
                else:
                    peer = next(p for p in self.peers.values() if p.sock is s)
                    # Clients never send anything: readable means gone.
                    if not s.recv(64):
                        self.drop(peer)


def size_arg(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--shm", required=True, help="file of the shared memory")
    ap.add_argument("--size", type=size_arg, default=1 << 20)
    ap.add_argument("--vectors", type=int, default=1)
    ap.add_argument("--host-id", type=int)
    args = ap.parse_args()
    if not 1 <= args.vectors <= 64:
        ap.error("--vectors must be 1 to 64")
    if args.host_id is not None and not 0 <= args.host_id <= 65535:
        ap.error("--host-id must be 0 to 65535")
    Server(args).run()


if __name__ == "__main__":
    main()
