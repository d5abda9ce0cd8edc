#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Raw generic netlink against the mbstate family, below any library.

Sends hand-built messages, well-formed and malformed, and checks the errno
and the extended ack message the kernel returns. Used by
tests/vm/t30-netlink.sh; run inside the test VM as root.

    nlprobe.py malformed          every malformed case must be refused
    nlprobe.py random N SEED      N random messages, all refused
    nlprobe.py dump               print the registry (one line per middlebox)
    nlprobe.py lb-malformed       malformed load-balancer requests; needs
                                  52:34:56:00:12:22 (10.0.0.100) registered
                                  for L and 52:34:56:00:12:23 for F only
    nlprobe.py vlan-malformed     bad MBSTATE_A_VLAN requests; needs
                                  52:34:56:00:12:22 (10.0.0.100) registered
                                  for F with VLAN 10
"""
import errno
import os
import random
import socket
import struct
import sys

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
NLA_F_NESTED = 0x8000

# include/uapi/linux/mbstate.h
CMD_GET_MB, CMD_NEW_MB, CMD_DEL_MB, CMD_SET_MB = 1, 2, 3, 4
CMD_NEW_RULE, CMD_DEL_RULE, CMD_GET_RULE = 5, 6, 7
A_MAC, A_IPV4, A_SERVICES, A_ENABLED, A_NRULES = 1, 2, 3, 4, 5
A_RULES, A_RULE, A_LB, A_STATS = 6, 7, 8, 9
R_CLASS, R_FIELDS, R_ID, R_SRC_MAC, R_ETHERTYPE = 1, 2, 3, 4, 6
R_SRC_IPV4, R_SRC_PLEN, R_PROTO = 7, 8, 12
R_SPORT_MIN, R_SPORT_MAX = 13, 14
R_PACKETS = 17
LB_TYPE, LB_SRC, LB_DST = 1, 2, 3
CMD_NEW_BACKEND, CMD_DEL_BACKEND, CMD_GET_FLOW = 8, 9, 10
A_REPLACE, A_BACKEND, A_FLOW = 11, 12, 13
LB_BACKENDS, LB_BACKEND, LB_FLOWS, LB_STATS = 4, 5, 6, 7
BE_IPV4, BE_MAC, BE_WEIGHT, BE_STATE = 1, 2, 3, 4
A_VLAN = 14


def nla(kind, payload):
    hdr = struct.pack("=HH", 4 + len(payload), kind)
    pad = b"\0" * ((4 - len(payload) % 4) % 4)
    return hdr + payload + pad


def nest(kind, *attrs):
    return nla(kind | NLA_F_NESTED, b"".join(attrs))


def u8(kind, v):
    return nla(kind, struct.pack("=B", v))


def u16(kind, v):
    return nla(kind, struct.pack("=H", v))


def u32(kind, v):
    return nla(kind, struct.pack("=I", v))


def ip4(kind, s):
    return nla(kind, socket.inet_aton(s))


def mac(kind, s):
    return nla(kind, bytes(int(x, 16) for x in s.split(":")))


class Genl:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  NETLINK_GENERIC)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.bind((0, 0))
        self.sock.settimeout(5)
        self.seq = 1
        self.family = self.resolve("mbstate")

    def send(self, family, cmd, payload, flags=NLM_F_REQUEST | NLM_F_ACK,
             raw_len=None):
        self.seq += 1
        body = struct.pack("=BBH", cmd, 1, 0) + payload
        length = 16 + len(body) if raw_len is None else raw_len
        msg = struct.pack("=IHHII", length, family, flags, self.seq, 0) + body
        self.sock.send(msg)
        return self.seq

    def replies(self):
        """Yields (type, flags, payload) of the replies to the last request
        sent, until an error/ack or DONE; skips any other message."""
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, kind, flags, seq, _ = struct.unpack_from("=IHHII",
                                                                 data, off)
                if length < 16:
                    return
                if seq != self.seq:
                    off += (length + 3) & ~3
                    continue
                yield kind, flags, data[off + 16:off + length]
                if kind in (NLMSG_ERROR, NLMSG_DONE):
                    return
                off += (length + 3) & ~3

    def request(self, cmd, payload, family=None, **kw):
        """Returns (errno, extack message) of a request."""
        self.send(self.family if family is None else family, cmd, payload,
                  **kw)
        for kind, flags, body in self.replies():
            if kind != NLMSG_ERROR:
                continue
            err = -struct.unpack_from("=i", body)[0]
            msg = ""
            if flags & NLM_F_ACK_TLVS:
                # nlmsgerr: error + the original header (+ payload if not
                # capped); the TLVs follow
                inner_len = struct.unpack_from("=I", body, 4)[0]
                off = 4 + (16 if flags & 0x100 else inner_len)
                while off + 4 <= len(body):
                    alen, atype = struct.unpack_from("=HH", body, off)
                    if alen < 4:
                        break
                    if atype == NLMSGERR_ATTR_MSG:
                        msg = body[off + 4:off + alen].rstrip(b"\0").decode()
                    off += (alen + 3) & ~3
            return err, msg
        return None, ""

    def resolve(self, name):
        self.send(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                  nla(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"))
        fam = None
        for kind, _, body in self.replies():
            if kind == NLMSG_ERROR:
                err = -struct.unpack_from("=i", body)[0]
                if err:
                    sys.exit("family %s not found: %s" % (name,
                                                          os.strerror(err)))
                break
            off = 4
            while off + 4 <= len(body):
                alen, atype = struct.unpack_from("=HH", body, off)
                if atype == CTRL_ATTR_FAMILY_ID:
                    fam = struct.unpack_from("=H", body, off + 4)[0]
                off += (alen + 3) & ~3
        return fam

    def dump(self):
        """The registry as sorted text lines, via a raw dump."""
        self.send(self.family, CMD_GET_MB, b"",
                  flags=NLM_F_REQUEST | NLM_F_DUMP)
        lines = []
        for kind, _, body in self.replies():
            if kind == NLMSG_DONE or kind == NLMSG_ERROR:
                break
            attrs, off = {}, 4
            while off + 4 <= len(body):
                alen, atype = struct.unpack_from("=HH", body, off)
                attrs[atype & 0x3fff] = body[off + 4:off + alen]
                off += (alen + 3) & ~3
            lines.append("%s %s svc=%d en=%d rules=%d vlan=%d" % (
                attrs[A_MAC].hex(":"), socket.inet_ntoa(attrs[A_IPV4]),
                struct.unpack("=I", attrs[A_SERVICES])[0],
                attrs[A_ENABLED][0],
                struct.unpack("=I", attrs[A_NRULES])[0],
                struct.unpack("=H", attrs[A_VLAN])[0]
                if A_VLAN in attrs else 0))
        return sorted(lines)


# What lib/nlattr.c (Linux 6.1) says when a policy refuses an attribute,
# before any mbstate code runs.
CORE_RANGE = "integer out of range"
CORE_LEN = "binary attribute size out of range"
CORE_UNKNOWN = "Unknown attribute type"
CORE_MASK = "reserved bit set"
CORE_LEFTOVER = "bytes leftover after parsing attributes"
# a nest where the policy has no nest: refused before its reject_message
CORE_NOT_NESTED = "NLA_F_NESTED not expected"
# mbstate's NLA_REJECT policies (MBSTATE_POLICY_REPLY_ONLY)
REPLY_ONLY = " is a reply attribute, not part of a request"
# The one refusal without a message: genetlink's core answers an unknown
# command with a bare EOPNOTSUPP before any code of the family runs
# (genl_family_rcv_msg in 6.1), so there is nothing mbstate could say.
NO_MESSAGE = None

MB = "52:34:56:00:12:22"
GOOD_RULE = nest(A_RULE, u8(R_CLASS, 3), u8(R_FIELDS, 5),
                 u16(R_SPORT_MIN, 80), u8(R_PROTO, 6))

# (name, command, payload, expected errno, text the message must contain;
# NO_MESSAGE: the message must be empty)
MALFORMED = [
    ("no attributes", CMD_NEW_MB, b"", errno.EINVAL, "registration needs"),
    ("MAC of 5 bytes", CMD_NEW_MB, nla(A_MAC, b"\x52\x34\x56\x00\x12")
     + ip4(A_IPV4, "10.0.0.1") + u32(A_SERVICES, 1), errno.ERANGE, CORE_LEN),
    ("unknown attribute", CMD_DEL_MB, mac(A_MAC, MB) + u32(200, 1),
     errno.EINVAL, CORE_UNKNOWN),
    ("service bit 2", CMD_NEW_MB, mac(A_MAC, MB) + ip4(A_IPV4, "10.0.0.1")
     + u32(A_SERVICES, 4), errno.EINVAL, CORE_MASK),
    ("two services", CMD_NEW_MB, mac(A_MAC, MB) + ip4(A_IPV4, "10.0.0.1")
     + u32(A_SERVICES, 3), errno.EINVAL, "exactly one service"),
    ("multicast MAC", CMD_NEW_MB, mac(A_MAC, "01:00:5e:00:00:01")
     + ip4(A_IPV4, "10.0.0.1") + u32(A_SERVICES, 1), errno.EINVAL,
     "unicast"),
    ("zero IP", CMD_NEW_MB, mac(A_MAC, MB) + ip4(A_IPV4, "0.0.0.0")
     + u32(A_SERVICES, 1), errno.EINVAL, "unicast"),
    ("broadcast IP", CMD_NEW_MB, mac(A_MAC, MB) + ip4(A_IPV4,
                                                     "255.255.255.255")
     + u32(A_SERVICES, 1), errno.EINVAL, "unicast"),
    ("LB nest with service F", CMD_NEW_MB, mac(A_MAC, MB)
     + ip4(A_IPV4, "10.0.0.1") + u32(A_SERVICES, 1)
     + nest(A_LB, u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9")), errno.EINVAL,
     "service L only"),
    ("reply-only attribute in a request", CMD_SET_MB, mac(A_MAC, MB)
     + u8(A_ENABLED, 1) + u32(A_NRULES, 5), errno.EINVAL,
     "MBSTATE_A_NRULES" + REPLY_ONLY),
    ("enabled = 2", CMD_SET_MB, mac(A_MAC, MB) + u8(A_ENABLED, 2),
     errno.ERANGE, CORE_RANGE),
    ("set without enabled", CMD_SET_MB, mac(A_MAC, MB), errno.EINVAL,
     "MBSTATE_A_ENABLED is missing"),
    ("rules without MAC", CMD_NEW_RULE, nest(A_RULES, GOOD_RULE),
     errno.EINVAL, "the middlebox MAC address is missing"),
    ("rules holding a non-rule", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, u32(A_MAC, 1)), errno.EINVAL, CORE_LEFTOVER),
    ("rule without class", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_FIELDS, 4))), errno.EINVAL,
     "a rule needs a class and a field mask"),
    ("class 7", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 7), u8(R_FIELDS, 4))),
     errno.ERANGE, CORE_RANGE),
    ("field mask 0", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 2), u8(R_FIELDS, 0))),
     errno.ERANGE, CORE_RANGE),
    ("field t in class M", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 2), u8(R_FIELDS, 2))),
     errno.EINVAL, "only in class I"),
    ("value of a field not in the mask", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 2), u8(R_FIELDS, 1),
                          u16(R_ETHERTYPE, 0x800), mac(R_SRC_MAC, MB))),
     errno.EINVAL, "does not belong"),
    ("missing value", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 2), u8(R_FIELDS, 4))),
     errno.EINVAL, "needs a value"),
    ("prefix length 33", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 1), u8(R_FIELDS, 4),
                          ip4(R_SRC_IPV4, "10.0.0.0"), u8(R_SRC_PLEN, 33))),
     errno.ERANGE, CORE_RANGE),
    ("host bits past the prefix", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 1), u8(R_FIELDS, 4),
                          ip4(R_SRC_IPV4, "10.0.0.5"), u8(R_SRC_PLEN, 24))),
     errno.EINVAL, "prefix length"),
    ("reversed port range", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 3), u8(R_FIELDS, 4),
                          u16(R_SPORT_MIN, 90), u16(R_SPORT_MAX, 80))),
     errno.EINVAL, "low <= high"),
    ("T p icmp", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 3), u8(R_FIELDS, 1),
                          u8(R_PROTO, 1))), errno.EINVAL, "tcp"),
    ("rule id in a request", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 3), u8(R_FIELDS, 1),
                          u8(R_PROTO, 6), u32(R_ID, 1))), errno.EINVAL,
     "MBSTATE_RULE_A_ID" + REPLY_ONLY),
    ("counter in a request", CMD_NEW_RULE, mac(A_MAC, MB)
     + nest(A_RULES, nest(A_RULE, u8(R_CLASS, 3), u8(R_FIELDS, 1),
                          u8(R_PROTO, 6),
                          nla(R_PACKETS, struct.pack("=Q", 1))))
     , errno.EINVAL, "MBSTATE_RULE_A_PACKETS" + REPLY_ONLY),
    ("unknown middlebox", CMD_DEL_MB, mac(A_MAC, "02:99:99:99:99:99"),
     errno.ENOENT, "no middlebox"),
    ("rules for an unknown middlebox", CMD_NEW_RULE,
     mac(A_MAC, "02:99:99:99:99:99") + nest(A_RULES, GOOD_RULE),
     errno.ENOENT, "no middlebox"),
    ("attribute longer than the message", CMD_DEL_MB,
     struct.pack("=HH", 200, A_MAC) + b"\x52\x34\x56\x00\x12\x22\0\0",
     errno.EINVAL, CORE_LEFTOVER),
    ("rule dump without NLM_F_DUMP", CMD_GET_RULE, mac(A_MAC, MB),
     errno.EOPNOTSUPP, "dump only"),
    ("unknown command", 99, mac(A_MAC, MB), errno.EOPNOTSUPP, NO_MESSAGE),
]


def lb_register(*lb, replace=False, ip="10.0.0.100", svc=2):
    return (mac(A_MAC, MB) + ip4(A_IPV4, ip) + u32(A_SERVICES, svc)
            + (nla(A_REPLACE, b"") if replace else b"") + nest(A_LB, *lb))


def backend(*attrs):
    return nest(LB_BACKEND, *attrs)


def lb_list(*backends):
    return nest(LB_BACKENDS, *backends)


BE9 = backend(ip4(BE_IPV4, "10.0.0.9"))
MB_F = "52:34:56:00:12:23"

LB_MALFORMED = [
    ("L without LB nest", CMD_NEW_MB, mac(A_MAC, MB) + ip4(A_IPV4, "10.0.0.100")
     + u32(A_SERVICES, 2), errno.EINVAL, "needs MBSTATE_A_LB"),
    ("LB without type", CMD_NEW_MB, lb_register(ip4(LB_DST, "10.0.0.9")),
     errno.EINVAL, "needs a type"),
    ("LB type 2", CMD_NEW_MB, lb_register(u8(LB_TYPE, 2),
                                          ip4(LB_DST, "10.0.0.9")),
     errno.ERANGE, CORE_RANGE),
    ("type 1 without source", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 1), ip4(LB_DST, "10.0.0.9"), replace=True),
     errno.EINVAL, "unicast source"),
    ("type 0 with a source", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), ip4(LB_SRC, "10.0.0.1"), ip4(LB_DST, "10.0.0.9"),
        replace=True), errno.EINVAL, "0.0.0.0"),
    ("DST_IPV4 and BACKENDS", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9"), lb_list(BE9), replace=True),
     errno.EINVAL, "not both"),
    ("no backend at all", CMD_NEW_MB, lb_register(u8(LB_TYPE, 0),
                                                  replace=True),
     errno.EINVAL, "not both"),
    ("empty BACKENDS", CMD_NEW_MB, lb_register(u8(LB_TYPE, 0), lb_list(),
                                               replace=True),
     errno.EINVAL, "at least one backend"),
    ("BACKENDS holding another attribute", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(nest(LB_TYPE, ip4(BE_IPV4, "10.0.0.9"))),
        replace=True), errno.EINVAL, "holds only"),
    ("backend without address", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(u32(BE_WEIGHT, 1))), replace=True),
     errno.EINVAL, "needs its IPv4"),
    ("backend weight 1001", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.9"),
                                        u32(BE_WEIGHT, 1001))),
        replace=True), errno.ERANGE, CORE_RANGE),
    ("backend MAC of 5 bytes", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.9"),
                                        nla(BE_MAC, bytes([2, 0, 0, 0, 9])))),
        replace=True), errno.ERANGE, CORE_LEN),
    ("multicast backend MAC", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.9"),
                                        mac(BE_MAC, "01:00:5e:00:00:01"))),
        replace=True), errno.EINVAL, "unicast and not zero"),
    ("backend MAC of the middlebox", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.9"),
                                        mac(BE_MAC, MB))),
        replace=True), errno.EINVAL, "middlebox's own"),
    ("backend is the middlebox", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.100"))),
        replace=True), errno.EINVAL, "middlebox itself"),
    ("broadcast backend", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "255.255.255.255"))),
        replace=True), errno.EINVAL, "unicast"),
    ("multicast backend", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), ip4(LB_DST, "224.0.0.9"), replace=True),
     errno.EINVAL, "unicast"),
    ("backend listed twice", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(BE9, BE9), replace=True), errno.EINVAL,
     "listed twice"),
    ("65 backends", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(*[backend(ip4(BE_IPV4, "10.1.0.%d" % i))
                                  for i in range(1, 66)]),
        replace=True), errno.E2BIG, "at most 64"),
    ("reply-only backend state", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), lb_list(backend(ip4(BE_IPV4, "10.0.0.9"),
                                        u8(BE_STATE, 0))),
        replace=True), errno.EINVAL, "MBSTATE_BE_A_STATE" + REPLY_ONLY),
    ("backend nest outside BACKENDS", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), BE9, replace=True), errno.EINVAL, CORE_NOT_NESTED),
    ("backend outside BACKENDS, not a nest", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), nla(LB_BACKEND, socket.inet_aton("10.0.0.9")),
        replace=True), errno.EINVAL, "belongs inside MBSTATE_LB_A_BACKENDS"),
    ("reply-only flows count", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9"), u32(LB_FLOWS, 1),
        replace=True), errno.EINVAL, "MBSTATE_LB_A_FLOWS" + REPLY_ONLY),
    ("another IPv4 address", CMD_NEW_MB, lb_register(
        u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9"), replace=True,
        ip="10.0.0.111"), errno.EEXIST, "another IPv4"),
    ("replace with service F", CMD_NEW_MB, mac(A_MAC, MB_F)
     + ip4(A_IPV4, "10.0.0.101") + u32(A_SERVICES, 1) + nla(A_REPLACE, b""),
     errno.EINVAL, "service L only"),
    ("new backend without MAC", CMD_NEW_BACKEND, nest(A_BACKEND,
                                                      ip4(BE_IPV4, "10.0.0.9")),
     errno.EINVAL, "middlebox MAC"),
    ("new backend without backend", CMD_NEW_BACKEND, mac(A_MAC, MB),
     errno.EINVAL, "MBSTATE_A_BACKEND"),
    ("new backend of an unknown middlebox", CMD_NEW_BACKEND,
     mac(A_MAC, "02:99:99:99:99:99") + nest(A_BACKEND,
                                            ip4(BE_IPV4, "10.0.0.9")),
     errno.ENOENT, "no middlebox"),
    ("new backend of a firewall", CMD_NEW_BACKEND, mac(A_MAC, MB_F)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.9")), errno.EOPNOTSUPP,
     "not registered for the load balancer"),
    ("new backend = middlebox", CMD_NEW_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.100")), errno.EINVAL,
     "middlebox itself"),
    ("new backend weight 5000", CMD_NEW_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.9"), u32(BE_WEIGHT, 5000)),
     errno.ERANGE, CORE_RANGE),
    ("del backend with a weight", CMD_DEL_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.11"), u32(BE_WEIGHT, 1)),
     errno.EINVAL, "address only"),
    ("del backend not configured", CMD_DEL_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.99")), errno.ENOENT,
     "no such backend"),
    ("flow in a request", CMD_NEW_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.9")) + nest(A_FLOW, u8(1, 6)),
     errno.EINVAL, CORE_NOT_NESTED),
    ("flow in a request, not a nest", CMD_NEW_BACKEND, mac(A_MAC, MB)
     + nest(A_BACKEND, ip4(BE_IPV4, "10.0.0.9")) + u8(A_FLOW, 6),
     errno.EINVAL, "MBSTATE_A_FLOW" + REPLY_ONLY),
    ("flows without dump", CMD_GET_FLOW, b"", errno.EOPNOTSUPP, "dump only"),
]


def judge(name, err, msg, want, text):
    """True if a refusal has the expected errno and message; prints it."""
    if text is NO_MESSAGE:
        good = err == want and msg == ""
    else:
        assert text, "case %r: give the text its message must contain" % name
        good = err == want and text in msg
    print("%s: %s -> %s %r" % ("ok" if good else "FAIL", name,
                               errno.errorcode.get(err, err), msg))
    if not good:
        print("  expected %s and %s" % (
            errno.errorcode.get(want, want),
            "no message" if text is NO_MESSAGE else repr(text)))
    return good


def lb_state(g):
    """The load-balancer part of the registry, through mbadm."""
    import subprocess
    return subprocess.run(
        ["mbadm", "-j", "show"], check=True, capture_output=True,
        text=True).stdout.count("10.0.0.9"), g.dump()


def register(svc=1, ip="10.0.0.100", vlan=None, mac_=MB):
    out = mac(A_MAC, mac_) + ip4(A_IPV4, ip) + u32(A_SERVICES, svc)
    return out if vlan is None else out + vlan


# Needs MB (10.0.0.100) registered for F with VLAN 10; nothing may change.
VLAN_MALFORMED = [
    ("VLAN 0", CMD_NEW_MB, register(mac_="02:00:00:00:77:01",
                                    vlan=u16(A_VLAN, 0)),
     errno.ERANGE, "out of range"),
    ("VLAN 4095", CMD_NEW_MB, register(mac_="02:00:00:00:77:01",
                                       vlan=u16(A_VLAN, 4095)),
     errno.ERANGE, "out of range"),
    ("VLAN 65535", CMD_NEW_MB, register(mac_="02:00:00:00:77:01",
                                        vlan=u16(A_VLAN, 65535)),
     errno.ERANGE, "out of range"),
    ("VLAN of one byte", CMD_NEW_MB, register(mac_="02:00:00:00:77:01",
                                              vlan=u8(A_VLAN, 10)),
     errno.EINVAL, "length"),
    ("another VLAN", CMD_NEW_MB, register(svc=2, vlan=u16(A_VLAN, 20))
     + nest(A_LB, u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9")),
     errno.EEXIST, "bound to another VLAN"),
    ("no VLAN", CMD_NEW_MB, register(svc=2)
     + nest(A_LB, u8(LB_TYPE, 0), ip4(LB_DST, "10.0.0.9")),
     errno.EEXIST, "bound to a VLAN"),
]


def cmd_vlan_malformed(g):
    before = g.dump()
    failed = 0
    for name, cmd, payload, want, text in VLAN_MALFORMED:
        err, msg = g.request(cmd, payload)
        good = err == want and text in msg
        failed += not good
        print("%s: %s -> %s %r" % ("ok" if good else "FAIL", name,
                                   errno.errorcode.get(err, err), msg))
    after = g.dump()
    if before != after:
        failed += 1
        print("FAIL: the registry changed:\n before %s\n after  %s" %
              (before, after))
    else:
        print("ok: registry unchanged: %s" % after)
    return failed


def cmd_lb_malformed(g):
    before = lb_state(g)
    failed = 0
    for name, cmd, payload, want, text in LB_MALFORMED:
        err, msg = g.request(cmd, payload)
        failed += not judge(name, err, msg, want, text)
    after = lb_state(g)
    if before != after:
        failed += 1
        print("FAIL: the registry changed:\n before %s\n after  %s" %
              (before, after))
    else:
        print("ok: registry unchanged")
    return failed


def header_longer_than_datagram(g):
    """A header that claims more bytes than were sent: netlink_rcv_skb
    drops the datagram without an answer, even with NLM_F_ACK (there is no
    message to answer). So: no reply of any kind for a second, and the
    socket still answers the next request."""
    seq = g.send(g.family, CMD_DEL_MB, mac(A_MAC, MB), raw_len=400)
    g.sock.settimeout(1)
    try:
        got = [(k, -struct.unpack_from("=i", b)[0] if k == NLMSG_ERROR
                else None) for k, _, b in g.replies()]
    except socket.timeout:
        got = None
    finally:
        g.sock.settimeout(5)
    if got is not None:
        print("FAIL: header longer than the datagram (seq %d) was answered:"
              " %r" % (seq, got))
        return False
    err, msg = g.request(CMD_DEL_MB, mac(A_MAC, "02:99:99:99:99:99"))
    if err != errno.ENOENT or "no middlebox" not in msg:
        print("FAIL: header longer than the datagram: the next request got"
              " %s %r" % (errno.errorcode.get(err, err), msg))
        return False
    print("ok: header longer than the datagram -> dropped unanswered; the"
          " next request answered %s %r" % (errno.errorcode[err], msg))
    return True


def cmd_malformed(g):
    before = g.dump()
    failed = 0
    for name, cmd, payload, want, text in MALFORMED:
        err, msg = g.request(cmd, payload)
        failed += not judge(name, err, msg, want, text)
    failed += not header_longer_than_datagram(g)
    after = g.dump()
    if before != after:
        failed += 1
        print("FAIL: the registry changed:\n before %s\n after  %s" %
              (before, after))
    else:
        print("ok: registry unchanged (%d middleboxes)" % len(after))
    return failed


def random_attrs(rnd, depth=0):
    out = b""
    for _ in range(rnd.randrange(0, 6)):
        kind = rnd.choice([rnd.randrange(0, 12), rnd.randrange(0, 0x10000)])
        if depth < 2 and rnd.random() < 0.3:
            out += nest(kind & 0x3fff, random_attrs(rnd, depth + 1))
        else:
            out += nla(kind & 0x7fff,
                       bytes(rnd.randrange(256)
                             for _ in range(rnd.randrange(0, 12))))
    if rnd.random() < 0.1:  # truncate somewhere
        out = out[:rnd.randrange(0, len(out) + 1)]
    return out


def cmd_random(g, count, seed):
    rnd = random.Random(seed)
    before = g.dump()
    accepted = 0
    for _ in range(count):
        cmd = rnd.choice([CMD_NEW_MB, CMD_DEL_MB, CMD_SET_MB, CMD_NEW_RULE,
                          CMD_DEL_RULE, CMD_GET_MB, rnd.randrange(0, 256)])
        err, _ = g.request(cmd, random_attrs(rnd))
        if err == 0 and cmd not in (CMD_GET_MB,):
            accepted += 1
    after = g.dump()
    print("random: %d messages, %d changing requests accepted" %
          (count, accepted))
    if before != after:
        print("FAIL: the registry changed:\n before %s\n after  %s" %
              (before, after))
        return 1
    print("ok: registry unchanged")
    return 1 if accepted else 0


def main():
    g = Genl()
    if g.family is None:
        sys.exit("mbstate family not found")
    what = sys.argv[1] if len(sys.argv) > 1 else "malformed"
    if what == "malformed":
        sys.exit(1 if cmd_malformed(g) else 0)
    if what == "random":
        sys.exit(cmd_random(g, int(sys.argv[2]), int(sys.argv[3])))
    if what == "lb-malformed":
        sys.exit(1 if cmd_lb_malformed(g) else 0)
    if what == "vlan-malformed":
        sys.exit(1 if cmd_vlan_malformed(g) else 0)
    if what == "dump":
        print("\n".join(g.dump()))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
