"""dynamic_ip_restrictions and auth_failure_limits with `store: redis://...` end to end: two
mailgate instances on different ports share one redis-server started by the test and
enforce one combined limit; with Redis stopped, requests follow on_store_error within the
store timeout (allow and deny); with Redis back, enforcement resumes by itself."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

import util

FLOODER = "127.0.0.2"
BYSTANDER = "127.0.0.3"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)"
EWS = "/EWS/Exchange.asmx"


class Redis:
    def __init__(self, workdir):
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = util.free_port()
        self.workdir = workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert util.wait_until(self.ping, 10), "redis-server did not answer PING"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def command(self, *args) -> bytes:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(out)
            return s.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    r.start()
    yield r
    r.stop()


def get(mg, path, src, *args, timeout=20):
    return util.curl(path, mg.port, mg.ca, "--interface", src, *args, timeout=timeout)


def shared(redis, admin=False, **limits):
    def edit(c):
        d = {"store": redis.url, "store_timeout": "200ms"}
        d.update(limits)
        c["dynamic_ip_restrictions"] = d
        if admin:
            port = util.free_port()
            c.setdefault("server", {})["admin"] = "127.0.0.1:%d" % port
            admins.append("127.0.0.1:%d" % port)
    admins = []
    return edit, admins


def metric(admin, name, labels):
    body = urllib.request.urlopen("http://%s/metrics" % admin, timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + "{" + labels + "}"):
            return int(line.split()[-1])
    raise AssertionError("%s{%s} not in /metrics:\n%s" % (name, labels, body))


def test_two_instances_enforce_one_combined_rate_limit(mailgate, origin, redis):
    edit, _ = shared(redis, max_requests={"count": 6, "per": "60s"}, block_for="30s")
    a, b = mailgate(edit), mailgate(edit)
    assert a.port != b.port
    statuses = []
    for i in range(6):
        statuses.append(get(a if i % 2 == 0 else b, "/echo", FLOODER).status)
    assert statuses == [200] * 6, statuses
    # Each instance has seen only three requests; together they used the limit up.
    ra, rb = get(a, "/echo", FLOODER), get(b, "/echo", FLOODER)
    assert (ra.status, rb.status) == (429, 429)
    assert 25 <= int(rb.header("Retry-After")) <= 30, rb.headers
    assert get(a, "/echo", BYSTANDER).status == 200 and get(b, "/echo", BYSTANDER).status == 200
    denied = [x for x in a.wait_access(5) + b.wait_access(5) if x["status"] == 429]
    assert len(denied) == 2 and all(x["rule"] == "dynamic_ip_restrictions" for x in denied)
    # The state is in Redis, under mailgate's prefix, with an expiry.
    keys = redis.command("KEYS", "mailgate:*")
    assert b"mailgate:" in keys, keys


def test_two_instances_share_the_concurrent_request_limit(mailgate, origin, redis):
    edit, _ = shared(redis, max_concurrent_requests=2)
    a, b = mailgate(edit), mailgate(edit)
    results = []

    def slow():
        results.append(get(a, "/delay?ms=2500", FLOODER).status)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    util.wait_until(lambda: origin.path_counts.get("/delay", 0) >= 2, 10)
    assert get(b, "/echo", FLOODER).status == 429  # the slots are held on the other instance
    assert get(b, "/echo", BYSTANDER).status == 200
    for t in threads:
        t.join()
    assert results == [200, 200], results
    # Released in Redis when the slow requests ended.
    assert util.wait_until(lambda: get(b, "/echo", FLOODER).status == 200, 5)


@pytest.mark.parametrize("on_error,expected", [("allow", 200), ("deny", 429)])
def test_redis_down_follows_on_store_error_then_recovers(mailgate, origin, redis, on_error,
                                                         expected):
    edit, admins = shared(redis, admin=True, max_requests={"count": 3, "per": "60s"},
                          on_store_error=on_error)
    mg = mailgate(edit)
    admin = admins[0]
    assert [get(mg, "/echo", FLOODER).status for _ in range(4)] == [200, 200, 200, 429]
    assert metric(admin, "mailgate_store_up", 'store="redis"') == 1

    redis.stop()
    answers = [get(mg, "/echo", BYSTANDER, timeout=10) for _ in range(4)]
    # Decided by on_store_error, each within the 200 ms store timeout plus curl's own TLS
    # handshake, never hanging on the dead store.
    assert [r.status for r in answers] == [expected] * 4, answers
    assert all(r.elapsed < 3 for r in answers), [r.elapsed for r in answers]
    decided = "deny" if on_error == "deny" else "allow"
    assert metric(admin, "mailgate_store_unanswered_total", 'decided="%s"' % decided) >= 4
    assert metric(admin, "mailgate_store_up", 'store="redis"') == 0
    recs = mg.wait_access(8)
    assert all(r.get("store_error") is True for r in recs[4:]), recs[4:]
    mg.wait_stderr(r"limit store redis://127\.0\.0\.1:\d+/0: .*requests follow on_store_error")

    # Redis back (empty: no persistence): the store reconnects by itself and enforces again.
    redis.start()
    assert util.wait_until(lambda: get(mg, "/echo", "127.0.0.4").status == 200 and
                    metric(admin, "mailgate_store_up", 'store="redis"') == 1, 15)
    assert [get(mg, "/echo", "127.0.0.5").status for _ in range(4)] == [200, 200, 200, 429]


def test_a_hung_redis_is_waited_for_only_store_timeout(mailgate, origin, redis):
    """Redis accepts the connection but never answers (stopped with SIGSTOP): the worker's
    own timer decides, and the worker never blocks meanwhile."""
    edit, admins = shared(redis, admin=True, max_requests={"count": 100, "per": "60s"},
                          store_timeout="300ms")
    mg = mailgate(edit)
    assert get(mg, "/echo", FLOODER).status == 200
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(get(mg, "/echo", BYSTANDER)))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status for r in results] == [200] * 6, results
        assert all(r.elapsed < 3 for r in results), [r.elapsed for r in results]
        assert metric(admins[0], "mailgate_store_unanswered_total", 'decided="allow"') >= 6
    finally:
        redis.proc.send_signal(signal.SIGCONT)


def test_auth_failure_counts_are_shared_between_instances(mailgate, origin, redis):
    def edit(c):
        c["dynamic_ip_restrictions"] = {"store": redis.url}
        c["auth_failure_limits"] = {"max_failures": 4, "per": "30m", "cool_off": "3s"}
    a, b = mailgate(edit), mailgate(edit)

    def attempt(mg, password):
        return util.curl(EWS, mg.port, mg.ca, "-X", "POST", "--data-binary", "<soap/>",
                         "-A", OUTLOOK, "-u", "CONTOSO\\alice:%s" % password, timeout=15).status

    def ews_count():
        return sum(n for p, n in origin.path_counts.items() if p.lower() == "/ews/exchange.asmx")

    statuses = [attempt(a if i % 2 else b, "guess%d" % i) for i in range(10)]
    assert statuses == [401] * 10, statuses
    assert ews_count() == 4  # two failures through each instance, then both answer locally
    throttled = [r for r in a.wait_access(5) + b.wait_access(5)
                 if r.get("auth", {}).get("outcome") == "throttled"]
    assert len(throttled) == 6, throttled
    time.sleep(3.2)
    assert attempt(b, "Correct-Horse-1") == 200
    # The success on b reset the count for a too.
    assert [attempt(a, "nope") for _ in range(3)] == [401] * 3
    assert ews_count() == 4 + 1 + 3


def test_store_url_errors_are_reported_at_check(mailgate_bin, tmp_path, certs, origin):
    import conftest
    for url, message in [
        ("redis://127.0.0.1:0/0", "port must be a number from 1 to 65535"),
        ("redis://127.0.0.1:6379/99", "database must be a number from 0 to 15"),
        ("redis://user:pw@127.0.0.1/0", "credentials must be written ':password@'"),
        ("memcached://x", "expected local or redis://host:port/db"),
    ]:
        cfg = conftest.make_base_config(certs, origin.port, tmp_path / "a.log")
        cfg["dynamic_ip_restrictions"] = {"store": url}
        path = tmp_path / "c.yaml"
        path.write_text(util.to_yaml(cfg))
        r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True,
                           text=True)
        assert r.returncode != 0 and message in r.stderr, (url, r.stderr)
        assert "c.yaml:" in r.stderr
    # A store off loopback is allowed, and loud: the link is plaintext.
    cfg = conftest.make_base_config(certs, origin.port, tmp_path / "a.log")
    cfg["dynamic_ip_restrictions"] = {"store": "redis://:secret@10.1.2.3:6379/1"}
    path.write_text(util.to_yaml(cfg))
    r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "plaintext" in r.stderr, r.stderr
