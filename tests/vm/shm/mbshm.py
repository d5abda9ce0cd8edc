#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest-side probe of /dev/mbshmN for the mbshm VM tests (include/uapi/
linux/mbshm.h). Each command prints its outcome, or the errno name
(EINVAL, ENODEV, ...) when the system call it tests fails, and exits 0;
exit status 1 means the probe itself went wrong.

    info DEV                    key=value per field of MBSHM_IOC_GET_INFO
    ivposition DEV              MBSHM_IOC_GET_IVPOSITION
    doorbell DEV PEER VECTOR    MBSHM_IOC_RING_DOORBELL -> ok
    watch DEV MASK              MBSHM_IOC_WATCH_VECTORS -> ok
    ioctl-raw DEV NR            an unknown ioctl number on the device
    count DEV [--nonblock] [--len N] [--watch MASK]
                                one read(): the counter
    irq DEV PEER VECTOR[,VECTOR...] [--watch MASK] [--len N]
                                open, (watch), ring each vector in turn,
                                wait for POLLIN (60 s), read(): the counter
    wait DEV READY [--read] [--watch MASK]
                                open, (watch), create file READY, then wait
                                (poll 60 s, or a blocking read() with
                                --read) for the counter to move: the count
    poll DEV MS                 poll() events: IN, HUP, ERR or none
    mmap DEV OFFSET LENGTH [--private] [--rdonly]
                                mmap() -> ok
    write DEV OFFSET HEX        store through a MAP_SHARED mapping
    dump DEV OFFSET LEN         hex of LEN bytes read through a mapping
    twofiles DEV OFFSET HEX     write through one open file's mapping, read
                                through another's -> the hex read
    hold DEV OUT [--reader]     open, map, write "held" at 0, then wait
                                until the device goes (poll, 300 s); write
                                what every call does afterwards to OUT
                                (see hold()); with --reader a thread is
                                blocked in read() meanwhile; with
                                --mapped-only the file is closed once
                                mapped, and it waits to be killed
    hammer PCIADDR N [--progress FILE]
                                N rounds of open, GET_INFO, mmap, store,
                                load, poll, doorbell to itself (if it has
                                one), non-blocking read, close, on the
                                mbshm device of that PCI device, whatever
                                it is at the moment; ENODEV, ENOENT, ENXIO
                                and EAGAIN are expected while devices come
                                and go, anything else ends it with exit 1;
                                prints "ok=ROUNDS gone=ROUNDS"; may die of
                                SIGBUS (a mapping zapped under it); each
                                good round appends a byte to FILE
"""
import argparse
import errno
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("M") << 8) | nr


IOC_WRITE, IOC_READ = 1, 2
GET_IVPOSITION = _ioc(IOC_READ, 1, 4)
RING_DOORBELL = _ioc(IOC_WRITE, 2, 4)
INFO_FMT = "=QIIHHI"                  # struct mbshm_info
GET_INFO = _ioc(IOC_READ, 3, struct.calcsize(INFO_FMT))
WATCH_VECTORS = _ioc(IOC_WRITE, 4, 8)
INFO_FIELDS = ("shm_size", "flags", "ivposition", "vectors", "irq_vectors",
               "reserved")


def ename(e):
    if e.errno == errno.EOPNOTSUPP:      # errorcode[] calls it ENOTSUP
        return "EOPNOTSUPP"
    return errno.errorcode.get(e.errno, str(e.errno))


def ioctl(fd, req, arg):
    import fcntl
    return fcntl.ioctl(fd, req, arg)


def get_info(fd):
    buf = ioctl(fd, GET_INFO, bytes(struct.calcsize(INFO_FMT)))
    return dict(zip(INFO_FIELDS, struct.unpack(INFO_FMT, buf)))


def ring(fd, peer, vector):
    ioctl(fd, RING_DOORBELL, struct.pack("=HH", peer, vector))


def watch(fd, mask):
    ioctl(fd, WATCH_VECTORS, struct.pack("=Q", mask))


def read_count(fd, length=8):
    data = os.read(fd, length)
    if len(data) != 8:
        raise RuntimeError(f"read() returned {len(data)} bytes, expected 8")
    return struct.unpack("=Q", data)[0]


def poll_names(fd, ms):
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLPRI)
    ev = p.poll(ms)
    if not ev:
        return "none"
    mask = ev[0][1]
    names = [n for n, bit in (("IN", select.POLLIN), ("HUP", select.POLLHUP),
                              ("ERR", select.POLLERR)) if mask & bit]
    return " ".join(names) or hex(mask)


def open_dev(path, rdonly=False):
    return os.open(path, os.O_RDONLY if rdonly else os.O_RDWR)


def map_dev(fd, offset, length, private=False, rdonly=False):
    prot = mmap.PROT_READ | (0 if rdonly else mmap.PROT_WRITE)
    flags = mmap.MAP_PRIVATE if private else mmap.MAP_SHARED
    return mmap.mmap(fd, length, flags=flags, prot=prot, offset=offset)


def touch_in_child(m):
    """Read the mapping in a child; return how the child ended."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGBUS, signal.SIG_DFL)
        _ = m[0]
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit{os.WEXITSTATUS(status)}"


def try_call(fn):
    try:
        r = fn()
        return "ok" if r is None else str(r)
    except OSError as e:
        return ename(e)


def hold(args):
    """Keep DEV open and mapped until it goes away, then record in OUT:
    poll=  what poll() returned (HUP ERR expected),
    reader= what the blocked read() returned (--reader),
    read= ioctl= doorbell= mmap= open= what those calls return now,
    touch= how a child that reads the old mapping ends (SIGBUS expected)."""
    fd = open_dev(args.dev)
    m = map_dev(fd, 0, mmap.PAGESIZE)
    m[0:4] = b"held"
    if args.mapped_only:
        os.close(fd)
        with open(args.out, "w") as out:
            out.write("ready\n")
        while True:
            signal.pause()
    result = {}
    reader = None
    if args.reader:
        def blocked_read():
            try:
                result["reader"] = str(read_count(fd))
            except OSError as e:
                result["reader"] = ename(e)
        reader = threading.Thread(target=blocked_read)
        reader.start()
    with open(args.out, "w") as out:
        out.write("ready\n")
    p = select.poll()
    p.register(fd, select.POLLIN)
    deadline = time.monotonic() + 300
    ev = []
    while not ev and time.monotonic() < deadline:
        ev = p.poll(1000)
        if ev and not ev[0][1] & (select.POLLHUP | select.POLLERR):
            ev = []        # an interrupt, not the end: keep waiting
    result["poll"] = poll_names(fd, 0) if ev else "timeout"
    if reader:
        reader.join(60)
        result.setdefault("reader", "still blocked")
    result["read"] = try_call(lambda: read_count(fd))
    result["ioctl"] = try_call(lambda: get_info(fd) and None)
    result["ivposition"] = try_call(lambda: ioctl(fd, GET_IVPOSITION, bytes(4)) and None)
    result["doorbell"] = try_call(lambda: ring(fd, 0, 0))
    result["mmap"] = try_call(lambda: map_dev(fd, 0, mmap.PAGESIZE) and None)
    result["open"] = try_call(lambda: os.close(os.open(args.dev, os.O_RDWR)))
    result["touch"] = touch_in_child(m)
    with open(args.out, "a") as out:
        for k, v in result.items():
            out.write(f"{k}={v}\n")
        out.write("done\n")
    # The old mapping and the file close now; the module may go after.
    del m
    os.close(fd)


def hammer(args):
    expected = (errno.ENODEV, errno.ENOENT, errno.ENXIO, errno.EAGAIN)
    ok = gone = 0
    for _ in range(args.n):
        names = []
        try:
            names = os.listdir(f"/sys/bus/pci/devices/{args.pci}/mbshm")
        except OSError:
            pass
        if not names:
            gone += 1
            time.sleep(0.01)
            continue
        fd = -1
        try:
            fd = os.open("/dev/" + names[0], os.O_RDWR)
            info = get_info(fd)
            m = map_dev(fd, 0, mmap.PAGESIZE)
            m[8:12] = b"ham!"
            _ = m[100]
            poll_names(fd, 0)
            if info["flags"] & 1:
                ring(fd, info["ivposition"], 0)
            os.set_blocking(fd, False)
            try:
                read_count(fd)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EOPNOTSUPP):
                    raise
            m.close()
            ok += 1
            if args.progress:
                with open(args.progress, "a") as f:
                    f.write(".")
        except OSError as e:
            if e.errno not in expected:
                print(f"hammer: unexpected {ename(e)}: {e}")
                sys.exit(1)
            gone += 1
        finally:
            if fd >= 0:
                os.close(fd)
    print(f"ok={ok} gone={gone}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("info", "ivposition"):
        sub.add_parser(name).add_argument("dev")
    p = sub.add_parser("doorbell")
    p.add_argument("dev")
    p.add_argument("peer", type=int)
    p.add_argument("vector", type=int)
    p = sub.add_parser("watch")
    p.add_argument("dev")
    p.add_argument("mask", type=lambda s: int(s, 0))
    p = sub.add_parser("ioctl-raw")
    p.add_argument("dev")
    p.add_argument("nr", type=int)
    p = sub.add_parser("count")
    p.add_argument("dev")
    p.add_argument("--nonblock", action="store_true")
    p.add_argument("--len", type=int, default=8)
    p.add_argument("--watch", type=lambda s: int(s, 0))
    p = sub.add_parser("irq")
    p.add_argument("dev")
    p.add_argument("peer", type=int)
    p.add_argument("vectors", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--watch", type=lambda s: int(s, 0))
    p.add_argument("--len", type=int, default=8)
    p = sub.add_parser("poll")
    p.add_argument("dev")
    p.add_argument("ms", type=int)
    p = sub.add_parser("mmap")
    p.add_argument("dev")
    p.add_argument("offset", type=int)
    p.add_argument("length", type=int)
    p.add_argument("--private", action="store_true")
    p.add_argument("--rdonly", action="store_true")
    p = sub.add_parser("write")
    p.add_argument("dev")
    p.add_argument("offset", type=int)
    p.add_argument("hex")
    p = sub.add_parser("dump")
    p.add_argument("dev")
    p.add_argument("offset", type=int)
    p.add_argument("len", type=int)
    p = sub.add_parser("twofiles")
    p.add_argument("dev")
    p.add_argument("offset", type=int)
    p.add_argument("hex")
    p = sub.add_parser("hold")
    p.add_argument("dev")
    p.add_argument("out")
    p.add_argument("--reader", action="store_true")
    p.add_argument("--mapped-only", action="store_true")
    p = sub.add_parser("hammer")
    p.add_argument("pci")
    p.add_argument("n", type=int)
    p.add_argument("--progress")
    p = sub.add_parser("wait")
    p.add_argument("dev")
    p.add_argument("ready")
    p.add_argument("--read", action="store_true")
    p.add_argument("--watch", type=lambda s: int(s, 0))
    args = ap.parse_args()

    if args.cmd == "hold":
        hold(args)
        return
    if args.cmd == "hammer":
        hammer(args)
        return
    rdonly = args.cmd == "mmap" and args.rdonly
    try:
        fd = open_dev(args.dev, rdonly)
    except OSError as e:
        print(ename(e))
        return
    try:
        if args.cmd == "info":
            for k, v in get_info(fd).items():
                print(f"{k}={v}")
        elif args.cmd == "ivposition":
            print(struct.unpack("=I", ioctl(fd, GET_IVPOSITION, bytes(4)))[0])
        elif args.cmd == "doorbell":
            ring(fd, args.peer, args.vector)
            print("ok")
        elif args.cmd == "watch":
            watch(fd, args.mask)
            print("ok")
        elif args.cmd == "ioctl-raw":
            ioctl(fd, _ioc(IOC_READ, args.nr, 4), bytes(4))
            print("ok")
        elif args.cmd == "count":
            if args.watch is not None:
                watch(fd, args.watch)
            if args.nonblock:
                os.set_blocking(fd, False)
            print(read_count(fd, args.len))
        elif args.cmd == "irq":
            if args.watch is not None:
                watch(fd, args.watch)
            for v in args.vectors:
                ring(fd, args.peer, v)
            events = poll_names(fd, 60000)
            print(read_count(fd, args.len) if events == "IN" else f"poll: {events}")
        elif args.cmd == "wait":
            if args.watch is not None:
                watch(fd, args.watch)
            open(args.ready, "w").close()
            events = "IN" if args.read else poll_names(fd, 60000)
            print(read_count(fd) if events == "IN" else f"poll: {events}")
        elif args.cmd == "poll":
            print(poll_names(fd, args.ms))
        elif args.cmd == "mmap":
            m = map_dev(fd, args.offset, args.length, args.private, args.rdonly)
            m.close()
            print("ok")
        elif args.cmd == "write":
            data = bytes.fromhex(args.hex)
            m = map_dev(fd, 0, args.offset + len(data))
            m[args.offset:args.offset + len(data)] = data
            m.close()
            print("ok")
        elif args.cmd == "dump":
            m = map_dev(fd, 0, args.offset + args.len)
            print(m[args.offset:args.offset + args.len].hex())
            m.close()
        elif args.cmd == "twofiles":
            data = bytes.fromhex(args.hex)
            fd2 = open_dev(args.dev)
            m1 = map_dev(fd, 0, args.offset + len(data))
            m2 = map_dev(fd2, 0, args.offset + len(data))
            m1[args.offset:args.offset + len(data)] = data
            print(m2[args.offset:args.offset + len(data)].hex())
            m1.close()
            m2.close()
            os.close(fd2)
    except OSError as e:
        print(ename(e))
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
