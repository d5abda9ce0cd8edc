#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Hand-made frames for the spoofing tests (tests/vm/t52-lb-spoof.sh).

Sent with an AF_PACKET socket, below the stack of the namespace it runs in:
the Ethernet source, the IP source and the ARP sender are whatever the
arguments say, as a hostile guest would make them.

  rawframe.py udp DEV SMAC DMAC SIP DIP SPORT DPORT [COUNT]
                        COUNT (default 1) IPv4/UDP frames with payload "x"
  rawframe.py arp DEV SMAC OP SHA SIP TIP
                        one ARP frame from Ethernet source SMAC, to the
                        broadcast address: OP request or reply, sender
                        hardware address SHA and sender address SIP,
                        target address TIP
"""
import socket
import struct
import sys


def mac(s):
    return bytes(int(b, 16) for b in s.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(smac, dmac, sip, dip, sport, dport):
    payload = b"x"
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = socket.inet_aton(sip) + socket.inet_aton(dip) + \
        struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(sip),
                     socket.inet_aton(dip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return mac(dmac) + mac(smac) + b"\x08\x00" + ip + udp


def arp_frame(smac, op, sha, sip, tip):
    code = {"request": 1, "reply": 2}[op]
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, code, mac(sha),
                      socket.inet_aton(sip), b"\0" * 6, socket.inet_aton(tip))
    return b"\xff" * 6 + mac(smac) + b"\x08\x06" + arp


def main(argv):
    if len(argv) < 2 or argv[1] not in ("udp", "arp"):
        sys.exit(__doc__)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((argv[2], 0))
    if argv[1] == "udp":
        frame = udp_frame(argv[3], argv[4], argv[5], argv[6], int(argv[7]),
                          int(argv[8]))
        count = int(argv[9]) if len(argv) > 9 else 1
    else:
        frame = arp_frame(argv[3], argv[4], argv[5], argv[6], argv[7])
        count = 1
    for _ in range(count):
        s.send(frame)


if __name__ == "__main__":
    main(sys.argv)
