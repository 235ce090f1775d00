"""Slow-client attacks with the real slowhttptest (Debian package `slowhttptest`) against a
running mailgate: slowloris (slow headers, -H), R-U-Dead-Yet (slow POST body, -B) and slow
read (-X), 500 connections each for 20 s. While each attack runs, a bystander on another
loopback address (127.0.0.2) makes one fresh HTTPS request every 0.5 s; at least 95% of
them must get 200, and mailgate must still be running afterwards.

The defences under test: timeouts.request_header (the whole head), timeouts.body_min_rate
(after a grace of request_header), timeouts.send (each write), and
limits.connections_per_ip (default 200: the attacker's address cannot take every slot).

slowhttptest must be installed (/usr/bin/slowhttptest, or $SLOWHTTPTEST): a missing binary
fails these tests rather than skipping them. `pytest -s` shows the availability figure and
slowhttptest's summary of each run.
"""

from __future__ import annotations

import csv
import datetime
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import util

pytestmark = pytest.mark.slow

ATTACK_CONNECTIONS = 500
ATTACK_SECONDS = 20
ATTACK_RATE = 200          # new connections per second
PROBE_SOURCE = "127.0.0.2"  # the bystander: not the attacker's address (127.0.0.1)
PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 5.0
MIN_AVAILABILITY = 0.95
# mailgate accepts at most limits.connections_per_ip (default 200) from the attacker; the
# attack counts as real when slowhttptest held at least this many connections at once.
MIN_ATTACK_CONNECTED = 100


def slowhttptest_bin() -> str:
    path = os.environ.get("SLOWHTTPTEST") or shutil.which("slowhttptest") or \
        "/usr/bin/slowhttptest"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("slowhttptest not found (%s): install the Debian package slowhttptest "
                    "(scripts/install-deps.sh) or set SLOWHTTPTEST" % path, pytrace=False)
    return path


@pytest.fixture(autouse=True)
def _raise_nofile():
    """The origin runs in this process (one socket per proxied connection) and mailgate
    inherits the limit: make room for a few thousand descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --------------------------------------------------------------------------- the bystander

class Prober:
    """One fresh TLS connection and GET every PROBE_INTERVAL from PROBE_SOURCE, verifying
    mailgate's certificate against the test CA; records (status or error, seconds)."""

    def __init__(self, port: int, ca, admin: str, path: str = "/owa/"):
        self.port = port
        self.ctx = util.client_context(ca)
        self.admin = admin
        self.path = path
        self.results = []  # (status: int | None, error: str | None, seconds)
        self.peak_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def probe_once(self):
        t0 = time.monotonic()
        raw = None
        try:
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT,
                                           source_address=(PROBE_SOURCE, 0))
            s = self.ctx.wrap_socket(raw, server_hostname="localhost")
            raw = s
            s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: mailgate-e2e-probe"
                      b"\r\nConnection: close\r\n\r\n" % self.path.encode())
            r = util.HTTPReader(s).read_response()
            return r.status, None, time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - every failure is an unavailable probe
            return None, "%s: %s" % (type(e).__name__, e), time.monotonic() - t0
        finally:
            if raw is not None:
                try:
                    raw.close()
                except OSError:
                    pass

    def _sample_active(self):
        try:
            body = urllib.request.urlopen("http://%s/metrics" % self.admin,
                                          timeout=2).read().decode()
        except OSError:
            return
        m = re.search(r"^mailgate_connections_active(?:\{\})? (\d+)", body, re.M)
        if m:
            self.peak_active = max(self.peak_active, int(m.group(1)))

    def _run(self):
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            self.results.append(self.probe_once())
            self._sample_active()
            k += 1
            delay = t0 + k * PROBE_INTERVAL - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT * 3)

    def summary(self):
        total = len(self.results)
        ok = sum(1 for st, _, _ in self.results if st == 200)
        lat = sorted(sec for _, _, sec in self.results)
        return ok, total, lat


# --------------------------------------------------------------------------- the attack

def metrics(admin: str) -> dict:
    body = urllib.request.urlopen("http://%s/metrics" % admin, timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def parse_csv(path: Path) -> list:
    """slowhttptest -g statistics: one row per second; the header names the columns
    (Seconds,Error,Closed,Pending,Connected[,Service Available])."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    out = []
    for row in rows[1:]:
        if len(row) != len(header):
            continue
        rec = {}
        for k, v in zip(header, row):
            v = v.strip()
            rec[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
        out.append(rec)
    return out


def summary_of(output: str) -> str:
    """slowhttptest's parameters and its final status block."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)  # colours / cursor moves
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]
    keep = [b for b in blocks if "Test ended" in b or "Exit status" in b]
    statuses = [b for b in blocks if re.search(r"test status on \d+", b)]
    return "\n".join(statuses[-1:] + keep) or text[-2000:]


class Attack:
    """What the slowhttptest waves of one test did."""

    def __init__(self, name):
        self.name = name
        self.waves = []  # (exit code, csv rows, output, seconds)
        self.prober = None
        self.elapsed = 0.0
        self.started = 0.0   # wall clock (time.time()) of the first wave's start
        self.ended = 0.0     # and of the last wave's end
        self.peak_rss_kib = 0

    @property
    def peak_connected(self) -> int:
        return max((r.get("connected", 0) for w in self.waves for r in w[1]), default=0)


def attack(mg, tmp_path: Path, name: str, mode_args: list, *, url_path: str = "/",
           probe_path: str = "/owa/") -> Attack:
    """Runs slowhttptest against mg for ATTACK_SECONDS while the prober runs.

    slowhttptest opens its ATTACK_CONNECTIONS once and never replaces a closed one, and it
    stops early ("No open connections left") once the server has closed them all: against a
    server that defends itself that happens after about request_header seconds. So a new
    wave of ATTACK_CONNECTIONS starts whenever one ends before the ATTACK_SECONDS are up:
    the pressure lasts the whole window, as a real attacker would keep it up."""
    exe = slowhttptest_bin()
    url = "https://127.0.0.1:%d%s" % (mg.port, url_path)
    result = Attack(name)
    result.prober = Prober(mg.port, mg.ca, mg.admin, probe_path)
    rss = util.RssSampler(mg.pid, 0.2).__enter__()
    t0 = time.monotonic()
    result.started = time.time()
    try:
        while True:
            left = ATTACK_SECONDS - (time.monotonic() - t0)
            if left < 2:
                break
            n = len(result.waves) + 1
            prefix = tmp_path / ("slowhttptest-%s-%d" % (name, n))
            cmd = [exe, *mode_args, "-c", str(ATTACK_CONNECTIONS), "-r", str(ATTACK_RATE),
                   "-l", str(int(round(left))), "-p", "3", "-g", "-o", str(prefix), "-u", url]
            out_path = Path(str(prefix) + ".out")
            if n == 1:
                print("\n[%s] %s" % (name, " ".join(cmd)))
            w0 = time.monotonic()
            with open(out_path, "wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, cwd=str(tmp_path))
                if n == 1:
                    result.prober.start()
                try:
                    proc.wait(ATTACK_SECONDS + 60)
                except subprocess.TimeoutExpired:
                    pytest.fail("slowhttptest still running %d s after its %d s test length" % (
                        ATTACK_SECONDS + 60, ATTACK_SECONDS))
                finally:
                    if proc.poll() is None:  # a failure or an interrupt: not left behind
                        proc.kill()
                        proc.wait(5)
            output = out_path.read_text(encoding="utf-8", errors="replace")
            rows = parse_csv(Path(str(prefix) + ".csv"))
            result.waves.append((proc.returncode, rows, output, time.monotonic() - w0))
            if not rows:
                break  # slowhttptest did not run: reported and failed by the caller
    finally:
        result.ended = time.time()
        result.prober.stop()
        rss.__exit__(None, None, None)
    result.elapsed = time.monotonic() - t0
    result.peak_rss_kib = rss.peak_kib
    return result


def report_and_check(mg, a: Attack) -> dict:
    name = a.name
    ok, total, lat = a.prober.summary()
    m = metrics(mg.admin)
    refused_ip = int(m.get('mailgate_connections_refused_total{limit="connections_per_ip"}', 0))
    conns_total = int(m.get("mailgate_connections_total", 0))
    exceptions = int(m.get("mailgate_session_exceptions_total", 0))
    statuses = {}
    for rec in mg.access_records():
        statuses[rec.get("status")] = statuses.get(rec.get("status"), 0) + 1
    failures = [(st, err, round(sec, 2)) for st, err, sec in a.prober.results if st != 200]

    for i, (rc, rows, output, secs) in enumerate(a.waves, 1):
        print("[%s] wave %d: slowhttptest exit %s after %.1f s, peak connected %d, "
              "closed %d, error %d (%d csv rows)" % (
                  name, i, rc, secs, max((r.get("connected", 0) for r in rows), default=0),
                  max((r.get("closed", 0) for r in rows), default=0),
                  max((r.get("error", 0) for r in rows), default=0), len(rows)))
    if a.waves:
        print("[%s] slowhttptest summary (wave 1):\n%s" % (name, summary_of(a.waves[0][2])))
    print("[%s] %d wave(s) of %d connections over %.1f s; mailgate: connections_total %d, "
          "refused per-ip %d, peak active %d, peak RSS %d KiB, session exceptions %d, "
          "access-log statuses %s" % (
              name, len(a.waves), ATTACK_CONNECTIONS, a.elapsed, conns_total, refused_ip,
              a.prober.peak_active, a.peak_rss_kib, exceptions,
              dict(sorted(statuses.items(), key=lambda kv: str(kv[0])))))
    if lat:
        print("[%s] probe latency: median %.3f s, max %.3f s" % (
            name, statistics.median(lat), lat[-1]))
    print("[%s] probe success %d/%d = %.0f%%" % (
        name, ok, total, 100.0 * ok / total if total else 0.0))
    if failures:
        print("[%s] failed probes: %s" % (name, failures[:10]))

    # The attack was real: slowhttptest ran, and held many connections at once.
    first = a.waves[0] if a.waves else (None, [], "", 0)
    assert first[1], "slowhttptest wrote no statistics (exit %s):\n%s" % (
        first[0], first[2][-3000:])
    assert a.peak_connected >= MIN_ATTACK_CONNECTED, (
        "slowhttptest never held %d connections at once (peak %d): the attack did not "
        "happen\n%s" % (MIN_ATTACK_CONNECTED, a.peak_connected, first[2][-3000:]))
    assert conns_total >= len(a.waves) * MIN_ATTACK_CONNECTED, conns_total
    assert a.prober.peak_active >= MIN_ATTACK_CONNECTED, a.prober.peak_active
    # Availability for everyone else, over the whole attack.
    assert total >= 0.8 * ATTACK_SECONDS / PROBE_INTERVAL, "only %d probes ran" % total
    assert ok >= MIN_AVAILABILITY * total, (
        "probe success %d/%d below %.0f%%; failures: %s" % (
            ok, total, 100 * MIN_AVAILABILITY, failures[:20]))
    # mailgate survived, and in bounded memory.
    assert util.rss_within_bound(a.peak_rss_kib), "peak RSS %d KiB" % a.peak_rss_kib
    assert mg.proc.poll() is None, "mailgate exited (%s):\n%s" % (
        mg.proc.returncode, mg.stderr[-5000:])
    assert util.curl("/owa/", mg.port, mg.ca).status == 200
    return statuses


def start(mailgate, timeouts: dict):
    admin = "127.0.0.1:%d" % util.free_port()

    def edit(cfg):
        cfg["server"]["admin"] = admin
        cfg["timeouts"].update(timeouts)
        # limits.connections_per_ip keeps its default (200): part of the defence.

    mg = mailgate(edit)
    mg.admin = admin
    return mg


# --------------------------------------------------------------------------- the tests

def test_slowloris_slow_headers(mailgate, origin, tmp_path):
    """-H: heads that never end (a random X- header every 2 s). request_header (5 s) closes
    each with a 408; the attacker's address holds at most 200 connections."""
    mg = start(mailgate, {"request_header": "5s"})
    a = attack(mg, tmp_path, "slowloris", ["-H", "-i", "2", "-x", "24"])
    statuses = report_and_check(mg, a)
    # The accepted connections ended with a 408 from request_header (those of a last wave
    # cut short by the end of the window may be closed by slowhttptest first).
    assert statuses.get(408, 0) >= max(1, len(a.waves) - 1) * MIN_ATTACK_CONNECTED, statuses


def test_slow_post_body(mailgate, origin, tmp_path):
    """-B: POST with Content-Length 8192 and a few body bytes every 2 s. body_min_rate
    (default 500 B/s, after a grace of request_header = 5 s) answers 408 and closes."""
    mg = start(mailgate, {"request_header": "5s"})
    a = attack(mg, tmp_path, "slow-body", ["-B", "-i", "2", "-x", "24", "-s", "8192"])
    statuses = report_and_check(mg, a)
    posts = [r for r in mg.access_records() if r.get("method") == "POST"]
    slow = [r for r in posts if r.get("status") == 408
            and "body_min_rate" in (r.get("error") or "")]
    # Every slow POST ended with body_min_rate's 408, or (a last wave cut short by the end
    # of the window) with slowhttptest closing it first; none was ever answered upstream.
    others = [(r.get("status"), r.get("error")) for r in posts
              if r not in slow and not (r.get("status") == 0
                                        and r.get("error") == "client request body read failed")]
    print("[slow-body] POSTs: %d, 408 body_min_rate: %d, closed by the client: %d" % (
        len(posts), len(slow), len(posts) - len(slow) - len(others)))
    assert len(slow) >= max(1, len(a.waves) - 1) * MIN_ATTACK_CONNECTED, statuses
    assert not others, sorted(set(others), key=str)[:10]


def record_end(rec) -> float:
    """Wall-clock end of an access-log record (its time is the request's start)."""
    start = datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp()
    return start + (rec.get("duration_ms") or 0) / 1000.0


def test_slow_read(mailgate, origin, tmp_path):
    """-X: a receive window of 512-1024 bytes, reading 32 bytes every 2 s of a 10 MB
    download, pipelined 3 times. timeouts.send (5 s per write) drops each reader once the
    socket buffers between it and mailgate are full.

    On loopback those buffers are large (the kernel grows mailgate's send buffer with the
    64 KiB loopback MSS: about 1.6 MB per connection), so the 200 accepted readers hold
    about 330 MB before any write stalls; filling them through the TLS origin takes most
    of the 20 s here, and the send timeouts fire late in the run. The bystander's
    availability and mailgate's memory are what is asserted; how many readers mailgate
    cut off itself before slowhttptest stopped is printed."""
    mg = start(mailgate, {"request_header": "5s", "send": "5s"})
    a = attack(mg, tmp_path, "slow-read",
               ["-X", "-w", "512", "-y", "1024", "-n", "2", "-z", "32", "-k", "3"],
               url_path="/download?size=10000000")
    report_and_check(mg, a)
    reads = [r for r in mg.access_records() if r.get("target", "").startswith("/download")]
    cut = sorted(record_end(r) - a.started for r in reads
                 if r.get("error") == "client write failed" and record_end(r) < a.ended - 0.5)
    print("[slow-read] downloads: %d; ended by mailgate (send timeout) while the attack ran: "
          "%d%s; median bytes sent before the stall: %d" % (
              len(reads), len(cut),
              " (from +%.1f s to +%.1f s)" % (cut[0], cut[-1]) if cut else "",
              statistics.median([r.get("bytes_out", 0) for r in reads]) if reads else 0))
    assert len(reads) >= MIN_ATTACK_CONNECTED, "only %d slow-read downloads reached mailgate" % (
        len(reads))
