#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# tests/fuzz/make-seeds.py - write the seed corpora of the binary fuzz
# targets (frame, classifier, shm) into tests/fuzz/corpus/. The files are in git;
# this script says what each one is and makes them again after a change of
# an input format. The cmd corpus is plain text, written by hand.
#
#   tests/fuzz/make-seeds.py [CORPUS_DIR]

import os
import struct
import sys

MB = bytes.fromhex("523456001222")      # the middlebox
A = bytes.fromhex("121314151617")       # the report's client
B = bytes.fromhex("020000000001")


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def eth(dst, src, etype, payload):
    return dst + src + struct.pack(">H", etype) + payload


def ipv4(proto, src, dst, l4, tos=0, frag=0, options=b""):
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(l4)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, tos, total, 1, frag, 64,
                      proto, 0, ip4(src), ip4(dst))
    return hdr + options + l4


def ports(sport, dport, rest=b""):
    return struct.pack(">HH", sport, dport) + rest


TCP_SYN = bytes(8) + bytes([0x50, 0x02]) + bytes(6)


def frames():
    yield "ipv4-tcp-syn", eth(MB, A, 0x0800, ipv4(6, "10.0.0.1", "10.0.0.2",
                                                  ports(40000, 22, TCP_SYN)))
    yield "ipv4-udp-dns", eth(MB, B, 0x0800, ipv4(17, "192.168.7.77",
                                                  "10.0.0.2",
                                                  ports(53, 5353, bytes(4))))
    yield "ipv4-icmp-echo", eth(MB, A, 0x0800,
                                ipv4(1, "1.1.1.1", "10.0.0.2",
                                     bytes([8, 0, 0, 0, 0, 1, 0, 1])))
    yield "ipv4-options-tcp", eth(MB, A, 0x0800,
                                  ipv4(6, "10.0.0.1", "10.0.0.2",
                                       ports(1023, 1024, TCP_SYN),
                                       tos=0xb8, options=bytes([1, 1, 1, 0])))
    yield "ipv4-max-options-udp", eth(MB, A, 0x0800,
                                      ipv4(17, "10.0.0.1", "10.0.0.2",
                                           ports(7, 7, bytes(4)),
                                           options=bytes(40)))
    yield "ipv4-first-fragment", eth(MB, A, 0x0800,
                                     ipv4(6, "10.0.0.1", "10.0.0.2",
                                          ports(40000, 1500, TCP_SYN),
                                          frag=0x2000))
    yield "ipv4-later-fragment", eth(MB, A, 0x0800,
                                     ipv4(6, "10.0.0.1", "10.0.0.2",
                                          ports(40000, 1500, TCP_SYN),
                                          frag=185))
    yield "ipv4-ports-cut", eth(MB, A, 0x0800,
                                ipv4(17, "10.0.0.1", "10.0.0.2",
                                     ports(1, 2)))[:36]
    yield "ipv4-header-cut", eth(MB, A, 0x0800,
                                 ipv4(6, "10.0.0.1", "10.0.0.2",
                                      ports(1, 2)))[:33]
    bad = bytearray(eth(MB, A, 0x0800, ipv4(6, "10.0.0.1", "10.0.0.2",
                                            ports(1, 2, TCP_SYN))))
    bad[14] = 0x44                      # header length 16 bytes
    yield "ipv4-ihl-4", bytes(bad)
    bad[14] = 0x65                      # version 6 in an IPv4 EtherType
    yield "ipv4-version-6", bytes(bad)
    yield "arp-request", eth(bytes([0xff] * 6), A, 0x0806,
                             bytes.fromhex("0001080006040001") + A +
                             ip4("10.0.0.1") + bytes(6) + ip4("10.0.0.2"))
    yield "ipv6-udp", eth(MB, A, 0x86dd,
                          bytes.fromhex("60000000000c1140") + bytes(15) +
                          b"\x01" + bytes(15) + b"\x02" + ports(53, 53, bytes(8)))
    yield "vlan-ipv4-tcp", eth(MB, A, 0x8100, struct.pack(">HH", 5, 0x0800) +
                               ipv4(6, "10.0.0.1", "10.0.0.2",
                                    ports(40000, 22, TCP_SYN)))
    yield "runt-13", eth(MB, A, 0x0800, b"")[:13]
    yield "header-only", eth(MB, A, 0x0800, b"")


# struct mb_rule records as tests/fuzz/fuzz_classifier.c decodes them
I, M, T = 1, 2, 3
P, TOS, S, D = 1, 2, 4, 8


def rule(cls, fields, flags=0, tos=0, proto=0, splen=0, dplen=0, pad=0,
         etype=0, smac=bytes(6), dmac=bytes(6), sip="0.0.0.0", dip="0.0.0.0",
         sp=(0, 0), dp=(0, 0)):
    r = bytes([cls, fields, flags, tos, proto, splen, dplen, pad])
    r += struct.pack(">H", etype) + smac + dmac + ip4(sip) + ip4(dip)
    r += struct.pack(">HHHH", sp[0], sp[1], dp[0], dp[1])
    assert len(r) == 38
    return r


def table(seed, rules, frame_list):
    out = bytes([len(rules)]) + struct.pack("<I", seed) + b"".join(rules)
    for f in frame_list:
        out += bytes([len(f)]) + f
    return out


def tables():
    fr = dict(frames())
    yield "report-mac-example", table(1, [
        rule(M, S | P, smac=A, etype=0x0800)],
        [fr["ipv4-tcp-syn"], fr["ipv4-udp-dns"], fr["arp-request"]])
    yield "ip-prefix-tos-proto", table(7, [
        rule(I, S, splen=24, sip="192.168.7.0"),
        rule(I, TOS | P, tos=0xb8, proto=6),
        rule(I, S | D | TOS | P, splen=8, sip="10.0.0.0", dplen=32,
             dip="10.0.0.2", proto=1)],
        [fr["ipv4-udp-dns"], fr["ipv4-options-tcp"], fr["ipv4-icmp-echo"]])
    yield "tp-ranges", table(99, [
        rule(T, D, dp=(1000, 2000)),
        rule(T, S | P, sp=(53, 53), proto=17),
        rule(T, S | D | P, sp=(1023, 1023), dp=(1024, 65535), proto=6)],
        [fr["ipv4-first-fragment"], fr["ipv4-later-fragment"],
         fr["ipv4-udp-dns"], fr["ipv4-options-tcp"], fr["ipv4-ports-cut"]])
    yield "mixed-classes", table(0xdeadbeef, [
        rule(M, D, dmac=MB), rule(M, P, etype=0x86dd),
        rule(I, P, proto=17), rule(T, S, sp=(7, 7)),
        rule(M, S | D | P, smac=B, dmac=MB, etype=0x0806)],
        [f for _, f in frames()])
    # two rules of 1800 entries fit in the target's limit of 4000, three do not
    wide = rule(T, S | D, sp=(1, 65534), dp=(1, 65534))
    yield "wide-ranges-fit", table(3, [wide, wide], [fr["ipv4-tcp-syn"]])
    yield "wide-ranges-refused", table(3, [wide, wide, wide],
                                       [fr["ipv4-tcp-syn"]])
    # high nibble of the flags: as a selector (D), the fields with a value
    yield "selectors", table(11, [
        rule(M, S | P, flags=0x40, smac=A, etype=0x0800),
        rule(M, S | P, flags=0x50, smac=A, etype=0x0806),
        rule(M, S, flags=0xf0, smac=A),
        rule(I, S | D, flags=0x40, splen=24, sip="192.168.7.0", dplen=8,
             dip="10.0.0.0"),
        rule(I, S, flags=0x40, splen=25, sip="192.168.7.0"),
        rule(T, S | D, flags=0x80, sp=(1, 10), dp=(80, 80)),
        rule(T, D | P, flags=0x90, dp=(80, 80), proto=6)],
        [fr["ipv4-tcp-syn"], fr["arp-request"]])
    yield "invalid-rules", table(5, [
        rule(0, S), rule(M, TOS | S), rule(I, S, flags=1, splen=24,
                                           sip="10.0.0.5"),
        rule(T, S, flags=2, sp=(10, 9)), rule(T, P, proto=1),
        rule(I, S, splen=33), rule(M, 16), rule(M, S, flags=4, pad=1),
        rule(I, P, proto=6)],
        [fr["ipv4-tcp-syn"]])


# Guest scripts as tests/fuzz/fuzz_shm.c reads them: a configuration byte
# (bit 0 memory already formatted, high nibble burst 1 + 7 * n), the
# guest's cmd_prod and the host's epoch, then ops of one byte (kind << 5 |
# arg) and their operands.
FORMATTED = 0x01
BURST_MAX = 0xf0
R_GUEST, R_CMD, R_HOST, R_RSP, R_STATS = 0, 1, 2, 3, 4
CMD_OFF, SLOT = 4096, 320
RSP_SLOT = 2048
(K_WRITE, K_PROD, K_SUBMIT, K_STEP, K_TICK, K_RESTART, K_DRAIN,
 K_CANNED) = range(8)
NO_REGISTRY, REFUSE, SAVE_FAILS = 1, 2, 4
MS20, MS100, MS1000 = 8, 16, 24
# indices into canned[] of fuzz_shm.c
C_REG, C_QUERY, C_ADD, C_DEL, C_UNREG, C_ENABLE2 = 0, 1, 2, 3, 4, 5
C_OTHER_MAC, C_UNFRAMED, C_UNCLOSED, C_NUL = 12, 14, 15, 18


def script(ops, cfg=BURST_MAX, prod=0, epoch=0x5eed):
    return bytes([cfg]) + struct.pack("<II", prod, epoch) + b"".join(ops)


def op(kind, arg=0):
    return bytes([kind << 5 | arg])


def write(reg, off, data):
    # offsets from the region's start: guest part 256, command ring 4096,
    # header 0, response ring 24576 (in units of 2 bytes), counters page
    if reg == R_RSP:
        assert off % 2 == 0
        off //= 2
    return op(K_WRITE, reg) + struct.pack("<HB", off, len(data)) + data


def prod_set(v):
    return op(K_PROD, 16) + struct.pack("<I", v & 0xffffffff)


def prod_add(d):
    assert -4 <= d <= 11
    return op(K_PROD, d + 4)


def submit(text, publish=True, long_len=False):
    return op(K_SUBMIT, (0 if publish else 1) | (2 if long_len else 0)) + \
        bytes([len(text)]) + text


def step(arg=0):
    return op(K_STEP, arg)


def canned(i):
    return op(K_CANNED, i)


TICK, DRAIN = op(K_TICK), op(K_DRAIN)
RESTART_STATE, RESTART_FRESH = op(K_RESTART, 0), op(K_RESTART, 1)
U32 = struct.Struct("<I")


def shm_scripts():
    yield "every-canned-command", script(
        [canned(i) + step() for i in range(32)] + [TICK])
    yield "batch-of-20", script([canned(i % 12) for i in range(20)] +
                                [step(), step(), TICK])
    yield "wrap-formatted", script(
        [canned(C_REG), canned(C_QUERY), step(), canned(C_ADD),
         canned(C_DEL), canned(C_UNREG), DRAIN, TICK],
        cfg=BURST_MAX | FORMATTED, prod=0xfffffffe)
    yield "full-ring", script([canned(i % 32) for i in range(64)] + [DRAIN])
    yield "prod-ahead-and-behind", script(
        [canned(C_REG), step(), prod_set(66), step(), TICK, prod_set(1),
         step(), prod_add(-2), step(), prod_set(0xffffffff), step(),
         prod_set(1), canned(C_QUERY), step()])
    yield "prod-jumps-formatted", script(
        [prod_set(0x80000000 + 3), step(), prod_set(0x8000000a), step(),
         prod_set(0x7fffffff), step(), DRAIN],
        cfg=BURST_MAX | FORMATTED, prod=0x80000000)
    yield "bad-slots", script(
        [submit(b"@A 52:34:56:00:12:22@", long_len=True),
         write(R_CMD, SLOT + 0, U32.pack(7)) + prod_add(1),
         submit(b"@Q 52:34:56:00:12:22@", publish=False),
         write(R_CMD, 2 * SLOT + 4, U32.pack(313)),
         write(R_CMD, 2 * SLOT + 4, U32.pack(312)) + prod_add(1),
         write(R_CMD, 3 * SLOT, U32.pack(3) + U32.pack(0xffffffff)) +
         prod_add(1), step(), TICK])
    yield "binary-text", script(
        [submit(bytes(range(1, 64))), submit(b"@" + bytes(200)),
         submit(b"@Q 52:34:56:00:12:22@\xff"), submit(b"\t \t"),
         canned(C_NUL), canned(C_UNFRAMED), canned(C_UNCLOSED),
         canned(C_OTHER_MAC), submit(b"@Q 52:34:56:00:12:22@" * 12),
         step()])
    yield "rate-limited", script(
        [canned(C_REG) for _ in range(6)] + [step(), step(MS20),
                                             step(MS100), step(MS1000)],
        cfg=0x00)
    yield "registry-and-kernel", script(
        [canned(C_REG), step(NO_REGISTRY), canned(C_QUERY),
         step(NO_REGISTRY), canned(C_ADD), step(REFUSE), canned(C_QUERY),
         step(REFUSE)])
    yield "state-file-fails", script(
        [canned(C_REG), canned(C_OTHER_MAC), step(SAVE_FAILS), canned(C_ADD),
         step(SAVE_FAILS | MS100), step(SAVE_FAILS | MS1000),
         step(MS1000), RESTART_STATE, step()])
    # the bug fuzz_shm found: a tick published cmd_cons past answers that a
    # failed state write held back
    yield "state-file-fails-then-tick", script(
        [canned(C_REG), canned(C_QUERY), step(SAVE_FAILS), TICK,
         step(SAVE_FAILS | MS1000), TICK, step(MS1000), TICK])
    yield "restarts", script(
        [canned(C_REG), step(), RESTART_STATE, canned(C_QUERY), step(),
         write(R_HOST, 64, U32.pack(0xbad)), RESTART_STATE, canned(C_ADD),
         step(), RESTART_FRESH, canned(C_UNREG), step(), TICK])
    yield "fresh-host-formatted-memory", script(
        [canned(C_QUERY), step(), RESTART_FRESH, step()],
        cfg=BURST_MAX | FORMATTED, prod=0x1234)
    # Q answers of command 7, 15, ... fill the whole response slot
    yield "long-query-answers", script(
        [canned(C_QUERY) for _ in range(16)] + [step(), TICK])
    yield "scribbled-host-fields", script(
        [canned(C_REG), write(R_HOST, 0, bytes([0xff] * 88)), step(),
         write(R_RSP, 0, bytes([0xff] * 40)),
         write(R_RSP, RSP_SLOT + 0, U32.pack(0xfffffffe)),
         write(R_RSP, 63 * RSP_SLOT + 16, U32.pack(5000)),
         write(R_STATS, 0, U32.pack(1) + U32.pack(9999)),
         canned(C_QUERY), canned(C_ADD), step(), TICK, step()])
    yield "guest-part-words", script(
        [write(R_GUEST, 0, U32.pack(2) + U32.pack(7) + bytes(56)), step(),
         canned(C_REG), step()])
    yield "empty", script([])


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for sub, gen in (("frame", frames), ("classifier", tables),
                     ("shm", shm_scripts)):
        d = os.path.join(top, sub)
        os.makedirs(d, exist_ok=True)
        for name, data in gen():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
