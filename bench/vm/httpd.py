#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench/vm/httpd.py PORT - the smallest HTTP backend for bench/vm/throughput.sh.

Answers every connection with one fixed HTTP/1.0 response and closes it, so
that a request costs a TCP connection and little else (python's
http.server parses headers, logs and forks threads: it would measure
itself). One process, one connection at a time.
"""
import socket
import sys

BODY = b"mbvisor bench backend\n"
RESP = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
        % len(BODY)) + BODY


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", int(sys.argv[1])))
    s.listen(512)
    while True:
        c, _ = s.accept()
        try:
            c.recv(4096)
            c.sendall(RESP)
        except OSError:
            pass
        finally:
            c.close()


if __name__ == "__main__":
    main()
