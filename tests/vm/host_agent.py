#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TEST-ONLY host side of the mbshm VM tests: does on the host what a test
script in the guest asks for, while the guest runs.

The guest asks through the results directory that tests/vm/run shares with
it read-write over 9p: it writes DIR/req-NAME (atomically, by rename), this
agent runs the request and writes DIR/resp-NAME: the exit status on the
first line, then the output. Requests (one line):

    shm-read SHM OFFSET LEN     hex of LEN bytes of the host file SHM
    shm-write SHM OFFSET HEX    write bytes into it
    qmp JSON                    one QMP command, prints the reply
    device-del ID [SECS]        QMP device_del, then wait (default 60 s) for
                                the DEVICE_DELETED event of ID
    plug-plain ID SHM SIZE      create host file SHM (SIZE bytes, zeros),
                                object-add a memory-backend-file for it and
                                device_add an ivshmem-plain named ID
    server LINE                 one command to the test ivshmem server
                                (tests/vm/ivshmem_server.py), prints reply

SHM is a name given with --shm NAME=PATH (or created by plug-plain): the
guest never names a host path itself.

Usage: host_agent.py --dir DIR --qmp SOCKET [--server SOCKET]
                     [--shm NAME=PATH]... [--shm-dir DIR]
"""
import argparse
import json
import os
import socket
import sys
import time


def log(msg):
    print(f"host_agent: {msg}", file=sys.stderr, flush=True)


class Qmp:
    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""
        self.events = []

    def _connect(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock = s
        self._recv()                          # the greeting
        self.command({"execute": "qmp_capabilities"})

    def _recv(self, timeout=60):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, cmd):
        if self.sock is None:
            self._connect()
        self.sock.sendall(json.dumps(cmd).encode() + b"\n")
        while True:
            msg = self._recv()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def wait_event(self, name, device, secs):
        deadline = time.monotonic() + secs
        while True:
            for ev in self.events:
                if ev["event"] == name and ev.get("data", {}).get("device") == device:
                    self.events.remove(ev)
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = self._recv(timeout=left)
            except (socket.timeout, TimeoutError):
                return False
            if "event" in msg:
                self.events.append(msg)


class Agent:
    def __init__(self, args):
        self.dir = args.dir
        self.qmp = Qmp(args.qmp)
        self.server = args.server
        self.shm_dir = args.shm_dir
        self.shm = {}
        for spec in args.shm:
            name, path = spec.split("=", 1)
            self.shm[name] = path
        os.makedirs(self.dir, exist_ok=True)

    def _shm(self, name):
        if name not in self.shm:
            raise ValueError(f"unknown shared memory {name!r}")
        return self.shm[name]

    def handle(self, line):
        words = line.split(" ", 1)
        op, rest = words[0], words[1] if len(words) > 1 else ""
        if op == "shm-read":
            name, off, length = rest.split()
            with open(self._shm(name), "rb") as f:
                f.seek(int(off))
                return 0, f.read(int(length)).hex()
        if op == "shm-write":
            name, off, data = rest.split()
            with open(self._shm(name), "r+b") as f:
                f.seek(int(off))
                f.write(bytes.fromhex(data))
            return 0, ""
        if op == "qmp":
            reply = self.qmp.command(json.loads(rest))
            return (1 if "error" in reply else 0), json.dumps(reply)
        if op == "device-del":
            args = rest.split()
            dev, secs = args[0], float(args[1]) if len(args) > 1 else 60
            reply = self.qmp.command({"execute": "device_del", "arguments": {"id": dev}})
            if "error" in reply:
                return 1, json.dumps(reply)
            if not self.qmp.wait_event("DEVICE_DELETED", dev, secs):
                return 1, f"no DEVICE_DELETED event for {dev} within {secs} s"
            return 0, "deleted"
        if op == "plug-plain":
            dev, name, size = rest.split()
            if not self.shm_dir or not name.isalnum() or name in self.shm:
                raise ValueError(f"cannot create shared memory {name!r}")
            path = os.path.join(self.shm_dir, name)
            with open(path, "wb") as f:
                f.truncate(int(size))
            self.shm[name] = path
            reply = self.qmp.command({"execute": "object-add", "arguments": {
                "qom-type": "memory-backend-file", "id": f"mem-{dev}",
                "mem-path": path, "size": int(size), "share": True}})
            if "error" in reply:
                return 1, json.dumps(reply)
            reply = self.qmp.command({"execute": "device_add", "arguments": {
                "driver": "ivshmem-plain", "id": dev, "memdev": f"mem-{dev}"}})
            return (1 if "error" in reply else 0), json.dumps(reply)
        if op == "server":
            if not self.server:
                raise ValueError("no --server")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(120)
                s.connect(self.server)
                s.sendall(rest.encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            reply = data.decode().strip()
            return (1 if reply.startswith("error") else 0), reply
        raise ValueError(f"unknown request {op!r}")

    def run(self):
        while True:
            for name in sorted(os.listdir(self.dir)):
                if not name.startswith("req-"):
                    continue
                path = os.path.join(self.dir, name)
                with open(path) as f:
                    line = f.read().strip()
                os.unlink(path)
                try:
                    rc, out = self.handle(line)
                except Exception as e:  # report every failure to the guest
                    rc, out = 2, f"{type(e).__name__}: {e}"
                log(f"{line[:100]} -> {rc}")
                resp = os.path.join(self.dir, "resp-" + name[4:])
                with open(resp + ".tmp", "w") as f:
                    f.write(f"{rc}\n{out}\n")
                os.rename(resp + ".tmp", resp)
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--server")
    ap.add_argument("--shm", action="append", default=[])
    ap.add_argument("--shm-dir")
    Agent(ap.parse_args()).run()


if __name__ == "__main__":
    main()
