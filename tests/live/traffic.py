#!/usr/bin/env python3
"""Traffic of known size for the live exporter tests, run inside the test's namespaces.

  traffic.py serve TCP_PORT UDP_PORT     accept TCP connections and receive UDP datagrams on
                                         all addresses, v4 and v6; prints "ready" once
                                         listening, runs until killed. Reads each connection
                                         until EOF, closes its side, and once that is
                                         acknowledged prints {"port": CLIENT_PORT, "segs_out": N}
  traffic.py tcp ADDR PORT BYTES         send BYTES to ADDR:PORT, close, wait for the peer to
                                         close; prints {"port": P, "segs_out": N, "segs_in": N}:
                                         its own port and the segment counts from TCP_INFO
  traffic.py udp ADDR PORT COUNT SIZE    send COUNT datagrams of SIZE bytes; prints {"port": P}
  traffic.py send ADDR PORT HEX          send one UDP datagram holding the bytes HEX
  traffic.py ping ADDR COUNT SIZE        COUNT ICMP(v6) echo requests of SIZE payload bytes, each
                                         waiting for its reply; fails if one goes unanswered

Every exchange is bounded by timeouts so a broken path fails instead of hanging.
"""

import json
import select
import socket
import struct
import sys
import time

TIMEOUT = 5.0


def serve(tcp_port, udp_port):
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("::", tcp_port))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", udp_port))
    print("ready", flush=True)
    conns = []
    while True:
        ready, _, _ = select.select([tcp, udp] + conns, [], [])
        for s in ready:
            if s is tcp:
                conn, _ = tcp.accept()
                conns.append(conn)
            elif s is udp:
                udp.recv(65535)
            elif not s.recv(65536):
                conns.remove(s)
                finish(s)


def finish(conn):
    """Closes our side after the client closed its own; reports what we sent in all."""
    port = conn.getpeername()[1]
    conn.shutdown(socket.SHUT_WR)
    # Our FIN is acknowledged when the connection reaches CLOSE (7, linux/tcp_states.h); no
    # segment of ours can follow, so the count is final.
    deadline = time.monotonic() + TIMEOUT
    while conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 7:
        if time.monotonic() > deadline:
            sys.exit("connection from port %d did not close" % port)
        time.sleep(0.01)
    print(json.dumps(dict(port=port, segs_out=tcp_info(conn)["segs_out"])), flush=True)
    conn.close()


def tcp_info(sock):
    # struct tcp_info (linux/tcp.h): tcpi_segs_out and tcpi_segs_in are the u32 at 136 and 140.
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 148)
    segs_out, segs_in = struct.unpack_from("=II", raw, 136)
    return {"segs_out": segs_out, "segs_in": segs_in}


def tcp(addr, port, size):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((addr, port))
    s.sendall(bytes(size))
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    # Our ACK of the peer's FIN goes out before recv() sees the end of the stream; give the
    # kernel a moment so it is counted in segs_out too.
    time.sleep(0.2)
    print(json.dumps(dict(port=s.getsockname()[1], **tcp_info(s))), flush=True)
    s.close()


def udp(addr, port, count, size):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    for _ in range(count):
        s.sendto(bytes(size), (addr, port))
        time.sleep(0.01)
    print(json.dumps({"port": s.getsockname()[1]}), flush=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(addr, count, size):
    v6 = ":" in addr
    if v6:
        # The kernel fills in the ICMPv6 checksum (RFC 8200 §8.1 pseudo-header) on raw sockets.
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        request, reply = 128, 129
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        request, reply = 8, 0
    ident = 0x4242
    for seq in range(1, count + 1):
        payload = bytes(size)
        header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
        if not v6:
            header = struct.pack("!BBHHH", request, 0, checksum(header + payload), ident, seq)
        s.sendto(header + payload, (addr, 0))
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                sys.exit("no echo reply from %s for sequence %d" % (addr, seq))
            data = s.recv(65535)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            ty, _, _, rid, rseq = struct.unpack_from("!BBHHH", icmp)
            if ty == reply and rid == ident and rseq == seq:
                break


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(int(args[0]), int(args[1]))
    elif cmd == "tcp":
        tcp(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp":
        udp(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "send":
        family = socket.AF_INET6 if ":" in args[0] else socket.AF_INET
        socket.socket(family, socket.SOCK_DGRAM).sendto(bytes.fromhex(args[2]), (args[0], int(args[1])))
    elif cmd == "ping":
        ping(args[0], int(args[1]), int(args[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
