#!/usr/bin/python3
"""Memory of an idle keep-alive TLS connection in mailgate.

Starts the demo origin (examples/demo/origin.py, its own process) and `$MAILGATE_BIN run -c
CONFIG` on a temporary configuration (demo certificates from scripts/demo-certs.sh, made in
the temporary directory; timeouts.idle 5m), then opens N TLS connections from the loopback
addresses 127.0.0.2..127.0.0.30 (limits.connections_per_ip stays at its default of 200
unless N needs more per address), completes the handshake and one keep-alive request
(GET /owa/, answered 200 by the origin through mailgate) on each, and leaves them idle.
mailgate's VmRSS (/proc/PID/status; one process, all workers are threads) is read before
the connections are opened (after a warm-up that fills the upstream pool and is closed
again) and after they have all been idle for a moment:

    KiB per idle TLS connection: (RSS_after - RSS_before) / N

Usage (from the repository):
    MAILGATE_BIN=build/release/mailgate /usr/bin/python3 bench/idle_tls.py

Environment: MAILGATE_BIN (default build/release/mailgate), IDLE_CONNECTIONS (N, 5000),
IDLE_CONCURRENCY (handshakes in flight, 64), IDLE_SETTLE (seconds idle before the second
reading, 3), IDLE_WORKERS (server.workers, auto), IDLE_KEEP (1: keep the temporary
directory). Debian python3, standard library only.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["127.0.0.%d" % i for i in range(2, 31)]  # 29 client addresses
REQUEST = b"GET /owa/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: idle-tls-bench\r\n\r\n"


def die(msg: str):
    sys.stderr.write("idle_tls: %s\n" % msg)
    sys.exit(1)


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        die("%s must be an integer" % name)


def free_port() -> int:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die("%s exited with %s before listening" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    die("%s did not listen on 127.0.0.1:%d within %.0fs" % (what, port, timeout))


def rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die("no VmRSS for pid %d" % pid)


def metric(admin: str, name: str):
    try:
        body = urllib.request.urlopen("http://%s/metrics" % admin, timeout=5).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{} "):
            return int(float(line.split()[-1]))
    return None


def config_text(certs: Path, port: int, origin_port: int, admin: str, workers: str,
                per_ip: int) -> str:
    return """\
server:
  workers: {workers}
  admin: {admin}
log:
  level: warn
  access: "off"
listeners:
  - name: public
    address: 127.0.0.1:{port}
    tls:
      profile: intermediate
      certificates:
        - {{ cert: {certs}/mail-ecdsa.pem, key: {certs}/mail-ecdsa.key }}
upstreams:
  - name: origin
    servers: ["127.0.0.1:{origin_port}"]
    tls: {{ server_name: exchange.internal, ca: {certs}/ca.pem }}
    pool: {{ max_idle: 64, idle_timeout: 10m }}
    extended_protection: off
limits: {{ connections: 100000, connections_per_ip: {per_ip} }}
timeouts: {{ tls_handshake: 30s, request_header: 30s, idle: 5m,
            upstream_connect: 5s, upstream_response: 60s, send: 60s }}
locations:
  - path: /
    upstream: origin
""".format(workers=workers, admin=admin, port=port, certs=certs, origin_port=origin_port,
           per_ip=per_ip)


class Conn:
    __slots__ = ("reader", "writer", "error")

    def __init__(self):
        self.reader = None
        self.writer = None
        self.error = None


async def open_one(i: int, c: Conn, port: int, ctx: ssl.SSLContext, sem: asyncio.Semaphore):
    """Handshake, one GET /owa/ with its whole response; the connection stays open."""
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="localhost",
                local_addr=(SOURCES[i % len(SOURCES)], 0)), 60)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            c.error = "connect: %s" % type(e).__name__
            return
        c.reader, c.writer = reader, writer
        try:
            writer.write(REQUEST)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    fields[name.strip().lower()] = value.strip()
            await asyncio.wait_for(reader.readexactly(int(fields.get("content-length", "0"))), 60)
            if status != 200:
                c.error = "status %d" % status
            elif "close" in fields.get("connection", "").lower():
                c.error = "Connection: close"
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError, IndexError) as e:
            c.error = "request: %s" % type(e).__name__


async def open_many(n: int, port: int, ctx, concurrency: int) -> list:
    sem = asyncio.Semaphore(concurrency)
    conns = [Conn() for _ in range(n)]
    await asyncio.gather(*(open_one(i, c, port, ctx, sem) for i, c in enumerate(conns)))
    return conns


def close_all(conns):
    for c in conns:
        if c.writer is not None:
            c.writer.transport.abort()


def still_open(conns) -> int:
    return sum(1 for c in conns if c.writer is not None and c.error is None
               and not c.reader.at_eof() and not c.writer.transport.is_closing())


async def measure(mg: subprocess.Popen, port: int, admin: str, ca: Path, n: int,
                  concurrency: int, settle: float) -> dict:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2

    # Warm-up: fills the upstream pool (at most `concurrency` upstream connections, reused
    # afterwards) and the allocator's first arenas; closed again before the first reading.
    warm = await open_many(concurrency, port, ctx, concurrency)
    bad = [c.error for c in warm if c.error]
    if bad:
        close_all(warm)
        die("warm-up failed: %s" % bad[:5])
    close_all(warm)
    await asyncio.sleep(1.0)
    active_before = metric(admin, "mailgate_connections_active")
    rss_before = rss_kib(mg.pid)

    t0 = time.monotonic()
    conns = await open_many(n, port, ctx, concurrency)
    open_seconds = time.monotonic() - t0
    await asyncio.sleep(settle)
    rss_after = rss_kib(mg.pid)
    active_after = metric(admin, "mailgate_connections_active")
    opened = still_open(conns)
    errors = {}
    for c in conns:
        if c.error:
            errors[c.error] = errors.get(c.error, 0) + 1

    close_all(conns)
    await asyncio.sleep(3.0)
    rss_closed = rss_kib(mg.pid)
    return {
        "n": n, "idle_open": opened, "errors": errors,
        "mailgate_connections_active_before": active_before,
        "mailgate_connections_active_after": active_after,
        "rss_before_kib": rss_before, "rss_after_kib": rss_after,
        "rss_after_close_kib": rss_closed,
        "open_seconds": round(open_seconds, 2), "settle_seconds": settle,
    }


def main() -> int:
    n = env_int("IDLE_CONNECTIONS", 5000)
    concurrency = env_int("IDLE_CONCURRENCY", 64)
    settle = float(os.environ.get("IDLE_SETTLE", "3"))
    workers = os.environ.get("IDLE_WORKERS", "auto")
    if n <= 0:
        die("IDLE_CONNECTIONS must be positive")
    mg_bin = Path(os.environ.get("MAILGATE_BIN", str(ROOT / "build/release/mailgate")))
    if not mg_bin.is_absolute():
        mg_bin = (Path.cwd() / mg_bin).resolve()
    if not (mg_bin.is_file() and os.access(mg_bin, os.X_OK)):
        die("MAILGATE_BIN=%s is not an executable file" % mg_bin)

    # N client sockets here, N client + upstream sockets in mailgate (which inherits this).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + concurrency + 1024
    if hard != resource.RLIM_INFINITY and hard < want:
        die("RLIMIT_NOFILE hard limit %d is too low for %d connections (need %d)" % (
            hard, n, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    work = Path(tempfile.mkdtemp(prefix="mailgate-idle-tls-"))
    procs = []
    try:
        certs = work / "certs"
        subprocess.run(["bash", str(ROOT / "scripts/demo-certs.sh"), str(certs)], check=True,
                       stdout=subprocess.DEVNULL)
        origin_port, port, admin_port = free_port(), free_port(), free_port()
        admin = "127.0.0.1:%d" % admin_port
        origin = subprocess.Popen(
            [sys.executable, str(ROOT / "examples/demo/origin.py"), "--listen",
             "127.0.0.1:%d" % origin_port, "--cert", str(certs / "origin.pem"),
             "--key", str(certs / "origin.key"), "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(work / "origin.log", "wb"))
        procs.append(origin)
        wait_port(origin_port, origin, "the origin")

        per_ip = max(200, -(-n // len(SOURCES)) + 1)
        conf = work / "mailgate.yaml"
        conf.write_text(config_text(certs, port, origin_port, admin, workers, per_ip))
        mg_log = open(work / "mailgate.log", "wb")
        mg = subprocess.Popen([str(mg_bin), "run", "-c", str(conf)], stdin=subprocess.DEVNULL,
                              stdout=mg_log, stderr=subprocess.STDOUT, cwd=str(work))
        procs.append(mg)
        wait_port(port, mg, "mailgate")
        wait_port(admin_port, mg, "mailgate's admin endpoint")
        rss_idle_start = rss_kib(mg.pid)

        r = asyncio.run(measure(mg, port, admin, certs / "ca.pem", n, concurrency, settle))
        if mg.poll() is not None:
            die("mailgate exited with %s during the run (log: %s)" % (
                mg.returncode, work / "mailgate.log"))
        r["rss_at_start_kib"] = rss_idle_start
        r["workers"] = workers
        r["client_addresses"] = len(SOURCES)
        r["connections_per_ip"] = per_ip
        r["mailgate"] = str(mg_bin)
        delta = r["rss_after_kib"] - r["rss_before_kib"]
        r["kib_per_idle_connection"] = round(delta / n, 2)
        if r["idle_open"]:
            r["kib_per_connection_still_open"] = round(delta / r["idle_open"], 2)
        print(json.dumps(r, indent=2))
        print("RSS before: %d KiB, after %d idle connections: %d KiB (+%d KiB); "
              "after closing them: %d KiB" % (r["rss_before_kib"], n, r["rss_after_kib"],
                                               delta, r["rss_after_close_kib"]))
        if r["idle_open"] != n or r["errors"]:
            print("WARNING: %d of %d connections idle and open at the reading; errors: %s" % (
                r["idle_open"], n, r["errors"]))
        print("KiB per idle TLS connection: %.2f" % r["kib_per_idle_connection"])
        return 0 if r["idle_open"] == n and not r["errors"] else 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(2)  # SIGINT: mailgate exits at once; the origin stops
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if os.environ.get("IDLE_KEEP") == "1":
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
