"""Request policy end to end: request_blocking rules, ip_restrictions, abort, report mode,
policy_mode, the client address (trusted X-Forwarded-For, PROXY protocol v1/v2), the access
log's rule/action/mode/client/peer and the per-rule counters on the admin /metrics.

The blog's setup (examples/exchange.yaml) is rebuilt around the test origin: `/` answers
only the Site24x7 monitor, /Microsoft-Server-ActiveSync only iPhone/iPad Mail and Boxer,
/servlet and /monitoring only localhost, /ecp and /powershell abort everyone else.

Clients come from different loopback source addresses (the whole 127/8 is local on Linux):
curl --interface 127.0.0.2, or a python socket bound to 127.0.0.2 before connecting.

"abort" means: the connection is closed (reset) with no HTTP response at all, and the
origin never sees the request."""

import http.client
import json
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

import util

# --------------------------------------------------------------------------- user agents

MONITOR_UA = "Mozilla/5.0 (compatible; Site24x7)"
IPHONE_UA = "Apple-iPhone14C2/1908.117"
IPAD_UA = "Apple-iPad13C1/2001.10"
IOS_UA = "iOS/16.5 (20F66) dataaccessd/1.0"
BOXER_UA = "AirWatch Boxer (iPhone; iOS 16.5; Build 5.12.0)"
ANDROID_UA = "Android-Mail/2023.01.01"
BROWSER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"

EAS_QUERY = "?Cmd=Sync&User=u&DeviceId=d&DeviceType=iPhone"
EAS = "/Microsoft-Server-ActiveSync"

# curl exit codes that mean "no answer because the server closed / reset the connection":
# 16 HTTP/2, 35 TLS connect error, 52 empty reply, 55 send failure, 56 receive failure,
# 92 HTTP/2 stream. Not: 6/7 (no connection), 28 (timeout: the server kept it open).
ABORT_CODES = {16, 35, 52, 55, 56, 92}

TINY_BODY = 512  # a denial's body is a few bytes; never an error page

# --------------------------------------------------------------------------- configs

EAS_CLIENTS = ["^Apple-iPhone", "^Apple-iPad", "^iOS/", "^AirWatch Boxer", "Boxer"]
LOCAL_ONLY = ["127.0.0.1/32", "::1/128"]


def blog_locations():
    """examples/exchange.yaml's locations, unchanged, on the test upstream."""
    return [
        {"path": "/", "upstream": "exchange",
         "request_blocking": [
             {"name": "monitor-only", "if_not": {"user_agent": ["Site24x7"]},
              "action": "abort"}]},
        {"path": EAS, "upstream": "exchange",
         "timeouts": {"upstream_response": "3660s", "idle": "3660s"},
         "request_blocking": [
             {"name": "approved-mail-clients", "if_not": {"user_agent": list(EAS_CLIENTS)},
              "action": "abort"}]},
        {"path": "/servlet", "upstream": "exchange",
         "ip_restrictions": {"allow": list(LOCAL_ONLY), "action": "forbidden"}},
        {"path": "/monitoring", "upstream": "exchange",
         "ip_restrictions": {"allow": list(LOCAL_ONLY), "action": "forbidden"}},
        {"path": "/ecp", "upstream": "exchange",
         "ip_restrictions": {"allow": list(LOCAL_ONLY), "action": "abort"}},
        {"path": "/powershell", "upstream": "exchange",
         "ip_restrictions": {"allow": list(LOCAL_ONLY), "action": "abort"}},
    ]


def blog(**extra):
    """Overrides for the conftest template: the blog's locations, plus extra top-level keys
    (deep-merged)."""
    return util.deep_merge({"locations": blog_locations()}, extra)


def with_listener(**keys):
    """A callable override that sets keys on the template's listener and the blog locations."""

    def edit(cfg):
        cfg["listeners"][0].update(keys)
        cfg["locations"] = blog_locations()

    return edit


free_port = util.free_port


# --------------------------------------------------------------------------- clients

def req(mg, path, *args, src=None, ua=None, timeout=15, **kw):
    """curl -> mailgate over TLS, path sent as is, optionally from another loopback address
    and with a given User-Agent ("" removes the header)."""
    extra = ["--path-as-is"]
    if src:
        extra += ["--interface", src]
    if ua is not None:
        extra += ["-H", "User-Agent:"] if ua == "" else ["-A", ua]
    return util.curl(path, mg.port, mg.ca, *extra, *args, timeout=timeout, **kw)


def eas_post(mg, path=EAS + EAS_QUERY, ua=IPHONE_UA, extra=(), src=None):
    """An ActiveSync Sync command as a phone sends it (Basic auth: the origin answers 200)."""
    return req(mg, path, "-u", "u:p", "--data-binary", "@-",
               "-H", "Content-Type: application/vnd.ms-sync.wbxml",
               "-H", "MS-ASProtocolVersion: 16.1", *extra, src=src, ua=ua,
               input_data=b"\x03\x01\x6a\x00")


def assert_aborted(r, what=""):
    assert r.status is None, "%s: expected a closed connection, got HTTP %s\n%s" % (
        what, r.status, r.stderr)
    assert not re.search(r"(?m)^HTTP/", r.stderr), "%s: HTTP bytes came back:\n%s" % (
        what, r.stderr)
    assert r.returncode in ABORT_CODES, "%s: curl exit %d is not a closed connection:\n%s" % (
        what, r.returncode, r.stderr)
    assert r.elapsed < 8, "%s: the abort took %.1fs" % (what, r.elapsed)


def assert_denied(r, status, what=""):
    assert r.returncode == 0, "%s: curl failed (%d):\n%s" % (what, r.returncode, r.stderr)
    assert r.status == status, "%s: expected %d, got %s\n%s" % (what, status, r.status, r.stderr)
    assert len(r.body) <= TINY_BODY, "%s: %d-byte body for a denial" % (what, len(r.body))


class Counter:
    """Requests that reached the origin since the last look."""

    def __init__(self, origin):
        self.origin = origin
        self.seen = origin.requests

    def delta(self) -> int:
        now = self.origin.requests
        d, self.seen = now - self.seen, now
        return d


def expect(mg, origin, path, outcome, *args, src=None, ua=None, what=None):
    """One request and its expected outcome: "abort", a status of mailgate's own (denial,
    the origin must see nothing) or ("origin", status) (the origin must see it)."""
    c = Counter(origin)
    r = req(mg, path, *args, src=src, ua=ua)
    what = what or "%s %s from %s ua=%r" % (path, " ".join(args), src or "127.0.0.1", ua)
    if outcome == "abort":
        assert_aborted(r, what)
        assert c.delta() == 0, "%s: the origin saw an aborted request" % what
    elif isinstance(outcome, tuple):
        assert r.returncode == 0, "%s: curl failed (%d):\n%s" % (what, r.returncode, r.stderr)
        assert r.status == outcome[1], "%s: expected the origin's %d, got %s\n%s" % (
            what, outcome[1], r.status, r.stderr)
        assert c.delta() == 1, "%s: the origin did not see exactly one request" % what
    else:
        assert_denied(r, outcome, what)
        assert c.delta() == 0, "%s: the origin saw a denied request" % what
    return r


def record_for(mg, pred, timeout=10.0, what="matching"):
    """The last access record for which pred(record) holds (waits for it)."""
    found = util.wait_until(lambda: [x for x in mg.access_records() if pred(x)], timeout)
    assert found, "no %s access record; the log:\n%s" % (what, "\n".join(mg.access_lines()))
    return found[-1]


def record_of(mg, target, ua=None, timeout=10.0):
    return record_for(mg, lambda x: x.get("target") == target
                      and (ua is None or x.get("user_agent") == ua), timeout,
                      "target=%r ua=%r" % (target, ua))


def assert_rule(rec, rule, action, mode="enforce"):
    got = (rec.get("rule"), rec.get("action"), rec.get("mode"))
    assert got == (rule, action, mode), "expected rule/action/mode %r, got %r in %s" % (
        (rule, action, mode), got, json.dumps(rec))


def no_rule(rec):
    assert not rec.get("rule"), "no rule should have fired: %s" % json.dumps(rec)


# raw TLS from a chosen source address

def connect_from(port, src="127.0.0.1", timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_all(sock, timeout=10.0):
    """(bytes, how): everything until the connection ends; how is 'eof', 'reset',
    'ssl: ...' or 'timeout'."""
    sock.settimeout(timeout)
    got = bytearray()
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return bytes(got), "eof"
            got += d
    except ssl.SSLZeroReturnError:
        return bytes(got), "eof"
    except (ConnectionResetError, BrokenPipeError):
        return bytes(got), "reset"
    except (socket.timeout, TimeoutError):
        return bytes(got), "timeout"
    except ssl.SSLError as e:
        return bytes(got), "ssl: %s" % e


# --------------------------------------------------------------------------- metrics

METRIC = re.compile(r'^mailgate_rule_hits_total\{rule="((?:[^"\\]|\\.)*)",action="([^"]*)",'
                    r'mode="([^"]*)"\} (\d+)$', re.M)


def scrape(port):
    """{(rule, action, mode): count}, raw text of GET /metrics on the admin endpoint."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, (resp.status, text)
    finally:
        conn.close()
    return {(m.group(1), m.group(2), m.group(3)): int(m.group(4))
            for m in METRIC.finditer(text)}, text


def wait_admin(port, timeout=10.0):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    assert util.wait_until(up, timeout), "admin endpoint 127.0.0.1:%d not listening" % port


def wait_metrics(port, expected: dict, timeout=10.0):
    """Wait until every (rule, action, mode) in expected has exactly that count."""
    state = {}

    def ok():
        state["m"], state["text"] = scrape(port)
        return all(state["m"].get(k) == v for k, v in expected.items())

    if not util.wait_until(ok, timeout, 0.1):
        bad = {k: (state["m"].get(k), v) for k, v in expected.items() if state["m"].get(k) != v}
        pytest.fail("metrics (got, expected): %r\n%s" % (bad, state["text"]))
    return state["m"]


# =========================================================================== the example

@pytest.fixture(scope="session")
def demo_certs():
    d = util.REPO / "examples" / "demo" / "certs"
    if not (d / "origin.pem").exists():
        subprocess.run(["bash", str(util.REPO / "scripts" / "demo-certs.sh")], check=True,
                       capture_output=True, timeout=120)
    return d


def test_check_accepts_example(mailgate_bin, demo_certs):
    r = subprocess.run([mailgate_bin, "check", "-c", str(util.REPO / "examples" / "exchange.yaml")],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "check rejected examples/exchange.yaml:\n%s%s" % (r.stdout, r.stderr)
    assert ": error:" not in r.stderr, r.stderr


def test_example_file_as_written(mailgate, origin, certs):
    """examples/exchange.yaml itself, with only the addresses and certificates swapped for
    the test ones, behaves as the blog says."""
    text = (util.REPO / "examples" / "exchange.yaml").read_text()
    admin = free_port()
    subs = [
        ('address: "127.0.0.1:8443"', 'address: "127.0.0.1:0"'),
        ('address: "127.0.0.1:8080"', 'address: "127.0.0.1:0"'),
        ("admin: 127.0.0.1:9901", "admin: 127.0.0.1:%d" % admin),
        ("demo/certs/mail-ecdsa.pem", str(certs.mail_ecdsa_cert)),
        ("demo/certs/mail-ecdsa.key", str(certs.mail_ecdsa_key)),
        ("demo/certs/mail-rsa.pem", str(certs.mail_rsa_cert)),
        ("demo/certs/mail-rsa.key", str(certs.mail_rsa_key)),
        ('servers: ["127.0.0.1:9443"]', 'servers: ["127.0.0.1:%d"]' % origin.port),
        ("server_name: exchange.internal", "server_name: origin.test"),
        ("ca: demo/certs/ca.pem", "ca: %s" % certs.ca),
        ("workers: auto", "workers: 2"),
    ]
    for old, new in subs:
        assert old in text, "examples/exchange.yaml changed (no %r): update this test" % old
        text = text.replace(old, new)
    mg = mailgate(config=text)
    expect(mg, origin, "/owa", ("origin", 200), ua=MONITOR_UA)
    expect(mg, origin, "/owa", "abort", ua=BROWSER_UA)
    c = Counter(origin)
    assert eas_post(mg).status == 200 and c.delta() == 1
    assert_aborted(eas_post(mg, ua=ANDROID_UA), "Android on ActiveSync")
    assert c.delta() == 0
    expect(mg, origin, "/servlet", ("origin", 404))
    expect(mg, origin, "/servlet", 403, src="127.0.0.2")
    expect(mg, origin, "/monitoring", 403, src="127.0.0.2")
    expect(mg, origin, "/ecp", "abort", src="127.0.0.2")
    expect(mg, origin, "/powershell", "abort", src="127.0.0.2")
    wait_admin(admin)
    wait_metrics(admin, {("/monitor-only", "abort", "enforce"): 1,
                         ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort",
                          "enforce"): 1,
                         ("/servlet/ip_restrictions", "forbidden", "enforce"): 1,
                         # The exchange-shields preset (global) stops /ecp and /powershell
                         # before the locations' own ip_restrictions are asked.
                         ("global/exchange-shields/admin-paths", "abort", "enforce"): 2})


# =========================================================================== the blog: "/"

@pytest.mark.parametrize("ua", [MONITOR_UA, "Site24x7", "site24x7 agent (lower case)",
                                "Mozilla/5.0 (compatible; SITE24X7; http://www.site24x7.com)"])
def test_blog_monitor_reaches_root(mailgate, origin, ua):
    mg = mailgate(blog())
    r = expect(mg, origin, "/owa", ("origin", 200), ua=ua)
    assert b"Outlook" in r.body
    expect(mg, origin, "/", ("origin", 404), ua=ua)  # reached the origin, which has no "/"
    no_rule(record_of(mg, "/owa", ua))


@pytest.mark.parametrize("ua", [None, BROWSER_UA, "", "Site24x", "Site 24x7", ANDROID_UA])
def test_blog_other_agents_aborted_on_root(mailgate, origin, ua):
    """curl's own UA (None), a browser, no User-Agent at all, near misses."""
    mg = mailgate(blog())
    for path in ("/", "/owa", "/owa/?ae=Item", "/EWS/Exchange.asmx", "/autodiscover/x.xml"):
        expect(mg, origin, path, "abort", ua=ua)
    rec = record_of(mg, "/owa")
    assert rec["status"] == 0, rec
    assert_rule(rec, "/monitor-only", "abort")
    assert rec["client"] == "127.0.0.1" and rec["peer"] == "127.0.0.1", rec


def test_blog_abort_raw_socket(mailgate, origin):
    """On the wire: no HTTP byte, the connection ends at once, and a request pipelined
    behind the aborted one (one the policy would allow) is never processed."""
    mg = mailgate(blog())
    s = util.client_context(mg.ca).wrap_socket(connect_from(mg.port), server_hostname="localhost")
    host = "localhost:%d" % mg.port
    try:
        s.sendall(util.request_bytes("GET", "/owa", host, [("User-Agent", BROWSER_UA)])
                  + util.request_bytes("GET", "/owa?second", host, [("User-Agent", MONITOR_UA)]))
        t0 = time.monotonic()
        data, how = read_all(s, 10)
    finally:
        s.close()
    assert how != "timeout", "connection still open after 10s (got %r)" % data
    assert time.monotonic() - t0 < 5
    assert b"HTTP/" not in data, "HTTP bytes after an abort: %r" % data
    assert data == b"", (data, how)
    time.sleep(0.3)
    assert origin.requests == 0, origin.request_log
    recs = mg.wait_access(1)
    assert [x.get("target") for x in recs] == ["/owa"], recs
    assert recs[0]["status"] == 0


# =========================================================================== the blog: ActiveSync

@pytest.mark.parametrize("ua", [IPHONE_UA, IPAD_UA, IOS_UA, BOXER_UA, "VMware Boxer/5.1"])
def test_blog_activesync_approved_clients(mailgate, origin, ua):
    mg = mailgate(blog())
    c = Counter(origin)
    r = eas_post(mg, ua=ua)
    assert r.status == 200, r.stderr
    assert r.body == util.origin_module().WBXML_EMPTY
    assert c.delta() == 1
    assert origin.last_request["target"] == EAS + EAS_QUERY
    no_rule(record_of(mg, EAS + EAS_QUERY, ua))


@pytest.mark.parametrize("ua", [ANDROID_UA, MONITOR_UA, "Outlook-iOS/709.2226530.prod.iphone",
                                "MSFT-Win-3/10.0", BROWSER_UA, "", "xApple-iPhone"])
def test_blog_activesync_other_clients_aborted(mailgate, origin, ua):
    mg = mailgate(blog())
    c = Counter(origin)
    assert_aborted(eas_post(mg, ua=ua), "POST ActiveSync ua=%r" % ua)
    assert_aborted(req(mg, EAS, "-X", "OPTIONS", ua=ua), "OPTIONS ActiveSync ua=%r" % ua)
    assert c.delta() == 0
    rec = record_of(mg, EAS + EAS_QUERY)
    assert_rule(rec, "/Microsoft-Server-ActiveSync/approved-mail-clients", "abort")
    assert rec["status"] == 0


TRICKS = [
    "/microsoft-server-activesync",
    "/MICROSOFT-SERVER-ACTIVESYNC",
    "/Microsoft-Server-%41ctiveSync",
    "/%4dicrosoft-Server-ActiveSync",
    "/Microsoft%2DServer%2DActiveSync",
    "//Microsoft-Server-ActiveSync",
    "///Microsoft-Server-ActiveSync",
    "/./Microsoft-Server-ActiveSync",
    "/x/../Microsoft-Server-ActiveSync",
    "/owa/../Microsoft-Server-ActiveSync",
    "/Microsoft-Server-ActiveSync%2f",
    "/Microsoft-Server-ActiveSync%2F",
    "/Microsoft-Server-ActiveSync/",
    "/Microsoft-Server-ActiveSync/.",
    "/%2e/Microsoft-Server-ActiveSync",
    "/x/%2e%2e/Microsoft-Server-ActiveSync",
    "/x%2f..%2fMicrosoft-Server-ActiveSync",
    "/x%5c..%5cMicrosoft-Server-ActiveSync",
]


@pytest.mark.parametrize("path", TRICKS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_blog_activesync_path_tricks(mailgate, origin, path, method):
    """The monitor's UA may use "/" but not ActiveSync: no spelling of the ActiveSync path
    escapes its location. Aborted, or 400 for an ambiguous encoding; never forwarded."""
    mg = mailgate(blog())
    c = Counter(origin)
    target = path + EAS_QUERY
    if method == "POST":
        r = eas_post(mg, target, MONITOR_UA)
    else:
        r = req(mg, target, ua=MONITOR_UA)
    assert r.status in (None, 400), "%s %s answered %s:\n%s" % (method, target, r.status,
                                                                r.stderr)
    if r.status is None:
        assert_aborted(r, target)
    assert c.delta() == 0, "%s %s reached the origin: %r" % (method, target,
                                                              origin.last_request)
    rec = record_of(mg, target)
    if r.status is None:
        assert_rule(rec, "/Microsoft-Server-ActiveSync/approved-mail-clients", "abort")


@pytest.mark.parametrize("path", ["/microsoft-server-activesync", "/Microsoft-Server-%41ctiveSync",
                                  "//Microsoft-Server-ActiveSync", "/x/../Microsoft-Server-ActiveSync"])
def test_blog_activesync_other_spellings_still_serve_iphone(mailgate, origin, path):
    """The normalized spellings route to the ActiveSync location (the iPhone passes) and the
    origin receives the target as sent."""
    mg = mailgate(blog())
    c = Counter(origin)
    r = eas_post(mg, path + EAS_QUERY, IPHONE_UA)
    assert r.status in (200, 404), r.stderr  # 404: the origin's own answer to the spelling
    assert c.delta() == 1
    assert origin.last_request["target"] == path + EAS_QUERY


# =========================================================================== the blog: /servlet

def test_blog_servlet_localhost_only(mailgate, origin):
    mg = mailgate(blog())
    c = Counter(origin)
    # localhost: reaches the origin (which answers 404 for /servlet) with any User-Agent:
    # the "/" rule is not inherited
    expect(mg, origin, "/servlet", ("origin", 404))
    expect(mg, origin, "/servlet/login.jsp", ("origin", 404), ua=BROWSER_UA)
    assert origin.path_counts.get("/servlet") == 1
    c.delta()
    expect(mg, origin, "/servlet", 403, src="127.0.0.2")
    expect(mg, origin, "/SERVLET/x", 403, src="127.0.0.2")
    expect(mg, origin, "/servlet/../servlet/x", 403, src="127.0.0.2")
    expect(mg, origin, "/servlet?forged=1", 403, "-H", "X-Forwarded-For: 127.0.0.1",
           src="127.0.0.2")
    expect(mg, origin, "/servlet?forged=2", 403, "-H", "X-Forwarded-For: 127.0.0.1",
           "-H", "X-Real-IP: 127.0.0.1", "-H", "Forwarded: for=127.0.0.1", src="127.0.0.2")
    expect(mg, origin, "/monitoring", ("origin", 404))
    expect(mg, origin, "/monitoring", 403, src="127.0.0.2")
    rec = record_of(mg, "/servlet?forged=1")
    assert rec["client"] == "127.0.0.2" and rec["peer"] == "127.0.0.2", rec
    assert rec["status"] == 403
    assert_rule(rec, "/servlet/ip_restrictions", "forbidden")


@pytest.mark.parametrize("path", ["/ecp", "/ecp/default.aspx", "/powershell", "/PowerShell/x"])
def test_blog_admin_surfaces(mailgate, origin, path):
    mg = mailgate(blog())
    expect(mg, origin, path, ("origin", 404))
    expect(mg, origin, path, "abort", src="127.0.0.2")
    expect(mg, origin, path, "abort", "-H", "X-Forwarded-For: 127.0.0.1", src="127.0.0.2")


# =========================================================================== trusted proxies

def test_trusted_proxy_forwarded_address_decides(mailgate, origin):
    mg = mailgate(with_listener(trusted_proxies=["127.0.0.3/32"]))
    P = "127.0.0.3"
    xff = lambda v: ("-H", "X-Forwarded-For: " + v)  # noqa: E731
    expect(mg, origin, "/servlet?a", ("origin", 404), *xff("127.0.0.1"), src=P)
    rec = record_of(mg, "/servlet?a")
    assert rec["client"] == "127.0.0.1" and rec["peer"] == P, rec
    expect(mg, origin, "/servlet?b", 403, *xff("127.0.0.9"), src=P)
    rec = record_of(mg, "/servlet?b")
    assert rec["client"] == "127.0.0.9" and rec["peer"] == P, rec
    assert_rule(rec, "/servlet/ip_restrictions", "forbidden")
    # the rightmost address not itself a trusted proxy decides
    expect(mg, origin, "/servlet?c", 403, *xff("127.0.0.1, 127.0.0.9"), src=P)
    expect(mg, origin, "/servlet?d", 403, "-H", "X-Forwarded-For: 127.0.0.1",
           "-H", "X-Forwarded-For: 127.0.0.9", src=P)
    expect(mg, origin, "/servlet?e", 403, *xff("127.0.0.9, 127.0.0.3"), src=P)
    expect(mg, origin, "/servlet?f", ("origin", 404), *xff("127.0.0.9, 127.0.0.1, 127.0.0.3"),
           src=P)
    expect(mg, origin, "/servlet?g", ("origin", 404), *xff("127.0.0.1:4711"), src=P)
    # no header: the proxy itself is the client (not localhost)
    expect(mg, origin, "/servlet?h", 403, src=P)
    rec = record_of(mg, "/servlet?h")
    assert rec["client"] == P and rec["peer"] == P, rec
    # garbage never turns into localhost
    for i, v in enumerate(["unknown", "_hidden", "localhost", "127.0.0.1 127.0.0.1",
                           "0177.0.0.1", "[127.0.0.1]"]):
        expect(mg, origin, "/servlet?z%d" % i, 403, *xff(v), src=P)
    # an untrusted peer's header is not believed
    expect(mg, origin, "/servlet?u", 403, *xff("127.0.0.1"), src="127.0.0.2")
    rec = record_of(mg, "/servlet?u")
    assert rec["client"] == "127.0.0.2" and rec["peer"] == "127.0.0.2", rec


def test_trusted_proxy_client_forwarded_upstream(mailgate, origin):
    """Upstream gets the resolved client as its only X-Forwarded-For."""
    mg = mailgate(with_listener(trusted_proxies=["127.0.0.3/32"]))
    r = expect(mg, origin, "/echo", ("origin", 200), "-H", "X-Forwarded-For: 6.6.6.6, 192.0.2.1",
               src="127.0.0.3", ua=MONITOR_UA)
    hdrs = json.loads(r.body)["headers"]
    assert [v for n, v in hdrs if n.lower() == "x-forwarded-for"] == ["192.0.2.1"], hdrs
    rec = record_of(mg, "/echo")
    assert rec["client"] == "192.0.2.1" and rec["peer"] == "127.0.0.3", rec


# =========================================================================== report mode

def test_report_mode_rule(mailgate, origin):
    admin = free_port()

    def edit(cfg):
        cfg["server"]["admin"] = "127.0.0.1:%d" % admin
        cfg["locations"] = blog_locations()
        cfg["locations"][1]["request_blocking"][0]["mode"] = "report"

    mg = mailgate(edit)
    c = Counter(origin)
    r = eas_post(mg, ua=ANDROID_UA)
    assert r.status == 200, r.stderr
    assert c.delta() == 1
    rec = record_of(mg, EAS + EAS_QUERY, ANDROID_UA)
    assert rec["status"] == 200
    assert_rule(rec, "/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "report")
    # the approved client does not trip the rule at all
    assert eas_post(mg, ua=IPHONE_UA).status == 200
    no_rule(record_of(mg, EAS + EAS_QUERY, IPHONE_UA))
    # the other rules still enforce
    expect(mg, origin, "/owa", "abort", ua=ANDROID_UA)
    wait_admin(admin)
    wait_metrics(admin, {
        ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "report"): 1,
        ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "enforce"): 0,
        ("/monitor-only", "abort", "enforce"): 1,
        ("/monitor-only", "abort", "report"): 0,
    })


def test_policy_mode_report_lets_everything_through(mailgate, origin):
    admin = free_port()
    mg = mailgate(blog(policy_mode="report", server={"admin": "127.0.0.1:%d" % admin}))
    expect(mg, origin, "/owa", ("origin", 200), ua=BROWSER_UA)
    assert_rule(record_of(mg, "/owa", BROWSER_UA), "/monitor-only", "abort", "report")
    c = Counter(origin)
    assert eas_post(mg, ua=ANDROID_UA).status == 200
    assert c.delta() == 1
    assert_rule(record_of(mg, EAS + EAS_QUERY, ANDROID_UA),
                "/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "report")
    expect(mg, origin, "/servlet", ("origin", 404), src="127.0.0.2")
    rec = record_of(mg, "/servlet")
    assert_rule(rec, "/servlet/ip_restrictions", "forbidden", "report")
    assert rec["client"] == "127.0.0.2"
    expect(mg, origin, "/ecp", ("origin", 404), src="127.0.0.2")
    assert_rule(record_of(mg, "/ecp"), "/ecp/ip_restrictions", "abort", "report")
    # a request no rule would stop: nothing named
    expect(mg, origin, "/owa?fine", ("origin", 200), ua=MONITOR_UA)
    no_rule(record_of(mg, "/owa?fine"))
    wait_admin(admin)
    m = wait_metrics(admin, {
        ("/monitor-only", "abort", "report"): 1,
        ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "report"): 1,
        ("/servlet/ip_restrictions", "forbidden", "report"): 1,
        ("/ecp/ip_restrictions", "abort", "report"): 1,
    })
    enforced = {k: v for k, v in m.items() if k[2] == "enforce" and v}
    assert not enforced, "policy_mode: report, yet enforced: %r" % enforced


# =========================================================================== rules, conditions

def rules_location(path, rules, **extra):
    loc = {"path": path, "upstream": "exchange", "request_blocking": rules}
    loc.update(extra)
    return loc


def test_first_rule_that_fires_decides_and_allow_ends(mailgate, origin):
    rules = [
        {"name": "x-test", "if": {"header": {"X-Test": "^yes$"}}, "action": "not_found"},
        {"name": "let-good", "if": {"user_agent": ["^good"]}, "action": "allow"},
        {"name": "good-or-bad", "if": {"user_agent": ["good|bad"]}, "action": "forbidden"},
        {"name": "bad", "if": {"user_agent": ["bad"]}, "action": "unauthorized"},
    ]
    mg = mailgate({"locations": [{"path": "/", "upstream": "exchange"},
                                 rules_location("/echo", rules)]})
    expect(mg, origin, "/echo?1", ("origin", 200), ua="good/1.0")
    assert_rule(record_of(mg, "/echo?1"), "/echo/let-good", "allow")
    expect(mg, origin, "/echo?2", 403, ua="bad/1.0")
    assert_rule(record_of(mg, "/echo?2"), "/echo/good-or-bad", "forbidden")
    expect(mg, origin, "/echo?3", 403, ua="not-so-good/1.0")
    expect(mg, origin, "/echo?4", 404, "-H", "X-Test: yes", ua="good/1.0")
    assert_rule(record_of(mg, "/echo?4"), "/echo/x-test", "not_found")
    expect(mg, origin, "/echo?5", ("origin", 200), ua="neutral/1.0")
    no_rule(record_of(mg, "/echo?5"))


def test_report_rule_then_enforcing_rule(mailgate, origin):
    """A report rule is counted and logged, then evaluation goes on; the next rule decides."""
    admin = free_port()
    rules = [
        {"name": "trial", "if": {"user_agent": ["^x"]}, "action": "forbidden", "mode": "report"},
        {"name": "real", "if": {"user_agent": ["^x"]}, "action": "not_found"},
    ]
    mg = mailgate({"server": {"admin": "127.0.0.1:%d" % admin},
                   "locations": [{"path": "/", "upstream": "exchange"},
                                 rules_location("/echo", rules)]})
    expect(mg, origin, "/echo", 404, ua="x/1")
    assert_rule(record_of(mg, "/echo"), "/echo/real", "not_found", "enforce")
    wait_admin(admin)
    wait_metrics(admin, {("/echo/trial", "forbidden", "report"): 1,
                         ("/echo/real", "not_found", "enforce"): 1})


COND_RULES = [
    {"name": "no-put", "if": {"method": ["PUT", "DELETE"]}, "action": "too_many_requests"},
    {"name": "x-test", "if": {"header": {"X-Test": "^yes$"}}, "action": "not_found"},
    {"name": "ping", "if": {"query": {"Cmd": "^Ping$"}}, "action": "unauthorized"},
    {"name": "plus", "if": {"query": {"q": ["\\+"]}}, "action": "forbidden"},
    {"name": "letter-a", "if": {"query": {"r": "^A$"}}, "action": "forbidden"},
    {"name": "from-two", "if": {"client_ip": ["127.0.0.2/32"]}, "action": "abort"},
    {"name": "post-and-ua", "if": {"method": ["POST"], "user_agent": ["^both"]},
     "action": "forbidden"},
    {"name": "loopback-low", "if_not": {"client_ip": ["127.0.0.0/29", "::1"]},
     "action": "not_found"},
]

OK = ("origin", 200)
COND_CASES = [
    # (id, path, curl args, source, ua, outcome, deciding rule)
    ("get", "/echo", [], None, None, OK, None),
    ("put", "/echo", ["-X", "PUT"], None, None, 429, "no-put"),
    ("delete", "/echo", ["-X", "DELETE"], None, None, 429, "no-put"),
    ("header-yes", "/echo", ["-H", "X-Test: yes"], None, None, 404, "x-test"),
    ("header-name-case", "/echo", ["-H", "x-TEST: yes"], None, None, 404, "x-test"),
    ("header-yes2", "/echo", ["-H", "X-Test: yes2"], None, None, OK, None),
    ("header-no", "/echo", ["-H", "X-Test: no"], None, None, OK, None),
    ("header-other-field", "/echo", ["-H", "X-Test2: yes"], None, None, OK, None),
    ("query-ping", "/echo?Cmd=Ping", [], None, None, 401, "ping"),
    ("query-ping-mid", "/echo?User=u&Cmd=Ping&DeviceId=d", [], None, None, 401, "ping"),
    ("query-sync", "/echo?Cmd=Sync", [], None, None, OK, None),
    ("query-pingx", "/echo?Cmd=Pingx", [], None, None, OK, None),
    ("query-other-param", "/echo?XCmd=Ping", [], None, None, OK, None),
    ("query-plus", "/echo?q=a+b", [], None, None, 403, "plus"),
    ("query-encoded-plus", "/echo?q=a%2Bb", [], None, None, OK, None),
    ("query-space-encoded", "/echo?q=a%20b", [], None, None, OK, None),
    ("query-letter", "/echo?r=A", [], None, None, 403, "letter-a"),
    ("query-encoded-letter", "/echo?r=%41", [], None, None, OK, None),
    ("client-ip-two", "/echo", [], "127.0.0.2", None, "abort", "from-two"),
    ("client-ip-four", "/echo", [], "127.0.0.4", None, OK, None),
    ("and-both", "/echo", ["--data-binary", "x"], None, "both/1", 403, "post-and-ua"),
    ("and-method-only", "/echo", ["--data-binary", "x"], None, "other/1", OK, None),
    ("and-ua-only", "/echo", [], None, "both/1", OK, None),
    ("if-not-ip", "/echo", [], "127.0.0.9", None, 404, "loopback-low"),
    ("order-put-and-header", "/echo", ["-X", "PUT", "-H", "X-Test: yes"], None, None, 429,
     "no-put"),
    ("order-header-and-query", "/echo?Cmd=Ping", ["-H", "X-Test: yes"], None, None, 404,
     "x-test"),
]


@pytest.mark.parametrize("path,args,src,ua,outcome,rule", [c[1:] for c in COND_CASES],
                         ids=[c[0] for c in COND_CASES])
def test_conditions(mailgate, origin, path, args, src, ua, outcome, rule):
    mg = mailgate({"locations": [{"path": "/", "upstream": "exchange"},
                                 rules_location("/echo", COND_RULES)]})
    expect(mg, origin, path, outcome, *args, src=src, ua=ua)
    rec = record_of(mg, path)
    if rule is None:
        no_rule(rec)
    else:
        action = {"abort": "abort", 403: "forbidden", 404: "not_found", 401: "unauthorized",
                  429: "too_many_requests"}[outcome]
        assert_rule(rec, "/echo/" + rule, action)
        assert rec["status"] == (0 if outcome == "abort" else outcome), rec


def test_global_rules_first_on_every_location(mailgate, origin):
    """Global rules run before any location's ip_restrictions and rules."""
    glob = [{"name": "no-scanner", "if": {"header": {"X-Scan": "^1$"}}, "action": "not_found"},
            {"name": "lb-health", "if": {"client_ip": ["127.0.0.5"]}, "action": "allow"}]
    mg = mailgate(blog(request_blocking=glob))
    scan = ("-H", "X-Scan: 1")
    expect(mg, origin, "/owa", 404, *scan, ua=BROWSER_UA)         # not the location's abort
    assert_rule(record_of(mg, "/owa"), "global/no-scanner", "not_found")
    expect(mg, origin, "/owa?m", 404, *scan, ua=MONITOR_UA)       # location would allow
    expect(mg, origin, "/servlet", 404, *scan, src="127.0.0.2")   # not the 403
    expect(mg, origin, "/servlet?l", 404, *scan)                  # localhost too
    expect(mg, origin, "/ecp", 404, *scan, src="127.0.0.2")       # not the abort
    r = eas_post(mg, ua=ANDROID_UA, extra=scan)
    assert_denied(r, 404, "ActiveSync with X-Scan")
    # global allow ends evaluation: the location's rules and ip_restrictions never run
    expect(mg, origin, "/owa?h", ("origin", 200), src="127.0.0.5", ua=BROWSER_UA)
    assert_rule(record_of(mg, "/owa?h"), "global/lb-health", "allow")
    expect(mg, origin, "/servlet?h", ("origin", 404), src="127.0.0.5")
    # without the header, the locations decide as before
    expect(mg, origin, "/owa?n", "abort", ua=BROWSER_UA)


def test_ip_restrictions_deny_list(mailgate, origin):
    locs = [
        {"path": "/", "upstream": "exchange"},
        {"path": "/owa", "upstream": "exchange",
         "ip_restrictions": {"deny": ["127.0.0.2", "127.0.0.64/26"], "action": "not_found"}},
        {"path": "/echo", "upstream": "exchange",
         "ip_restrictions": {"allow": ["127.0.0.0/24"], "deny": ["127.0.0.2/32"]}},
    ]
    mg = mailgate({"locations": locs})
    expect(mg, origin, "/owa", ("origin", 200))
    expect(mg, origin, "/owa", ("origin", 200), src="127.0.0.3")
    expect(mg, origin, "/owa", ("origin", 200), src="127.0.0.128")
    expect(mg, origin, "/owa", ("origin", 200), src="127.0.0.63")
    expect(mg, origin, "/owa?d1", 404, src="127.0.0.2")
    expect(mg, origin, "/owa?d2", 404, src="127.0.0.64")
    expect(mg, origin, "/owa?d3", 404, src="127.0.0.127")
    assert_rule(record_of(mg, "/owa?d1"), "/owa/ip_restrictions", "not_found")
    # allow and deny: deny wins; default action forbidden
    expect(mg, origin, "/echo", ("origin", 200))
    expect(mg, origin, "/echo", ("origin", 200), src="127.0.0.200")
    expect(mg, origin, "/echo?d", 403, src="127.0.0.2")
    expect(mg, origin, "/echo?o", 403, src="127.0.1.1")
    assert_rule(record_of(mg, "/echo?d"), "/echo/ip_restrictions", "forbidden")
    # no restriction on other locations
    expect(mg, origin, "/status/204", ("origin", 204), src="127.0.0.2")


def test_ip_restrictions_before_location_rules(mailgate, origin):
    locs = [{"path": "/", "upstream": "exchange"},
            rules_location("/echo", [{"name": "everyone", "if": {"method": ["GET"]},
                                      "action": "allow"}],
                           ip_restrictions={"deny": ["127.0.0.2"], "action": "unauthorized"})]
    mg = mailgate({"locations": locs})
    expect(mg, origin, "/echo", 401, src="127.0.0.2")
    assert_rule(record_of(mg, "/echo"), "/echo/ip_restrictions", "unauthorized")
    expect(mg, origin, "/echo?ok", ("origin", 200))
    assert_rule(record_of(mg, "/echo?ok"), "/echo/everyone", "allow")


def test_longest_prefix_location_no_inheritance(mailgate, origin):
    """Exactly one location applies: /owa/public has no rules, /owa's do not apply to it."""
    locs = [{"path": "/", "upstream": "exchange"},
            rules_location("/owa", [{"name": "no-curl", "if": {"user_agent": ["^curl/"]},
                                     "action": "forbidden"}]),
            {"path": "/owa/public", "upstream": "exchange"}]
    mg = mailgate({"locations": locs})
    expect(mg, origin, "/owa", 403)
    expect(mg, origin, "/owa/x", 403)
    expect(mg, origin, "/owa/publicx", 403)
    expect(mg, origin, "/owa/public", ("origin", 200))
    expect(mg, origin, "/OWA/Public/x", ("origin", 200))
    expect(mg, origin, "/owa/public/../x", 403)


def test_denial_keeps_connection_usable(mailgate, origin):
    """A 403 for a request without a body is a complete response; whether the connection is
    kept or closed, nothing of the denied request reaches the origin."""
    mg = mailgate(blog())
    host = "localhost:%d" % mg.port
    # from 127.0.0.2: /servlet denied, then /owa with the monitor UA
    raw = connect_from(mg.port, "127.0.0.2")
    s = util.client_context(mg.ca).wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(util.request_bytes("GET", "/servlet", host)
                  + util.request_bytes("GET", "/owa", host, [("User-Agent", MONITOR_UA)]))
        rd = util.HTTPReader(s)
        r1 = rd.read_response()
        assert r1.status == 403 and len(r1.body) <= TINY_BODY, r1
        try:
            r2 = rd.read_response()
        except util.ConnectionClosed:
            r2 = None
        if r2 is not None:
            assert r2.status == 200, r2
    finally:
        s.close()
    assert origin.path_counts.get("/servlet") is None
    assert origin.requests == (1 if r2 is not None else 0)


# =========================================================================== metrics

def test_metrics_rule_hits(mailgate, origin):
    admin = free_port()
    mg = mailgate(blog(server={"admin": "127.0.0.1:%d" % admin}))
    wait_admin(admin)
    m, text = scrape(admin)
    assert "# TYPE mailgate_rule_hits_total counter" in text, text
    zero = {("/monitor-only", "abort", "enforce"): 0, ("/monitor-only", "abort", "report"): 0,
            ("/servlet/ip_restrictions", "forbidden", "enforce"): 0,
            ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "report"): 0}
    for k, v in zero.items():
        assert m.get(k) == v, "%r missing or not 0:\n%s" % (k, text)
    for _ in range(3):
        expect(mg, origin, "/owa", "abort", ua=BROWSER_UA)
    for _ in range(2):
        expect(mg, origin, "/servlet", 403, src="127.0.0.2")
    expect(mg, origin, "/servlet", ("origin", 404))
    assert_aborted(eas_post(mg, ua=ANDROID_UA))
    wait_metrics(admin, {
        ("/monitor-only", "abort", "enforce"): 3,
        ("/monitor-only", "abort", "report"): 0,
        ("/servlet/ip_restrictions", "forbidden", "enforce"): 2,
        ("/Microsoft-Server-ActiveSync/approved-mail-clients", "abort", "enforce"): 1,
        ("/monitoring/ip_restrictions", "forbidden", "enforce"): 0,
    })


# =========================================================================== PROXY protocol

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src="203.0.113.7", dst="127.0.0.1", sport=5555, dport=443, fam=None):
    fam = fam or ("TCP6" if ":" in src else "TCP4")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def proxy_v2(src="203.0.113.7", dst="127.0.0.1", sport=5555, dport=443, *, local=False,
             tlvs=b""):
    if ":" in src:
        fam = 0x21  # AF_INET6, STREAM
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam = 0x11  # AF_INET, STREAM
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    cmd = 0x20 if local else 0x21
    return PP2_SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(t, value: bytes) -> bytes:
    return bytes([t]) + struct.pack("!H", len(value)) + value


def proxied(mg, header, path="/echo", *, src="127.0.0.1", headers=(), split=None):
    """Send the PROXY header (optionally in two pieces), then TLS and one GET on the same
    socket. Returns (Response, None) or (None, 'how it ended')."""
    raw = None
    try:
        try:
            # Refused connections can be reset before connect() even returns.
            raw = connect_from(mg.port, src)
            if split:
                raw.sendall(header[:split])
                time.sleep(0.3)
                raw.sendall(header[split:])
            elif header:
                raw.sendall(header)
            tls = util.client_context(mg.ca).wrap_socket(raw, server_hostname="localhost")
        except (socket.timeout, TimeoutError):
            return None, "timeout in the handshake"
        except (ssl.SSLError, OSError) as e:
            return None, "closed in the handshake: %r" % e
        try:
            tls.sendall(util.request_bytes("GET", path, "localhost:%d" % mg.port,
                                           [("User-Agent", MONITOR_UA), *headers]))
            return util.HTTPReader(tls).read_response(), None
        except (socket.timeout, TimeoutError):
            return None, "timeout after the handshake"
        except (util.ConnectionClosed, ssl.SSLError, OSError) as e:
            return None, "closed after the handshake: %r" % e
    finally:
        if raw is not None:
            raw.close()


def assert_refused(res, what):
    resp, how = res
    assert resp is None, "%s: got HTTP %s" % (what, resp.status)
    assert "timeout" not in how, "%s: not closed promptly (%s)" % (what, how)


def pp_listener(mode, trusted=("127.0.0.1/32",)):
    def edit(cfg):
        cfg["listeners"][0]["proxy_protocol"] = mode
        cfg["listeners"][0]["trusted_proxies"] = list(trusted)
        cfg["locations"].append({"path": "/servlet", "upstream": "exchange",
                                 "ip_restrictions": {"allow": list(LOCAL_ONLY)}})
    return edit


def echo_xff(resp):
    return [v for n, v in resp.json()["headers"] if n.lower() == "x-forwarded-for"]


@pytest.mark.parametrize("split", [None, 11])
def test_proxy_v1(mailgate, origin, split):
    mg = mailgate(pp_listener("v1"))
    resp, how = proxied(mg, proxy_v1(), split=split)
    assert resp is not None, how
    assert resp.status == 200, resp
    assert echo_xff(resp) == ["203.0.113.7"], resp.json()["headers"]
    rec = record_of(mg, "/echo")
    assert rec["client"] == "203.0.113.7" and rec["peer"] == "127.0.0.1", rec


def test_proxy_v1_address_decides_rules(mailgate, origin):
    mg = mailgate(pp_listener("v1"))
    resp, how = proxied(mg, proxy_v1(), "/servlet")
    assert resp is not None and resp.status == 403, (resp, how)
    # the proxied client cannot claim localhost with X-Forwarded-For
    resp, how = proxied(mg, proxy_v1(), "/servlet?xff",
                        headers=[("X-Forwarded-For", "127.0.0.1")])
    assert resp is not None and resp.status == 403, (resp, how)
    resp, how = proxied(mg, proxy_v1(src="127.0.0.1", dst="127.0.0.1"), "/servlet?local")
    assert resp is not None and resp.status == 404, (resp, how)  # the origin's 404
    assert origin.path_counts == {"/servlet": 1}, origin.path_counts
    rec = record_of(mg, "/servlet")
    assert rec["client"] == "203.0.113.7" and rec["peer"] == "127.0.0.1", rec
    assert_rule(rec, "/servlet/ip_restrictions", "forbidden")


def test_proxy_v1_ipv6(mailgate, origin):
    mg = mailgate(pp_listener("v1"))
    resp, how = proxied(mg, proxy_v1("2001:db8::7", "2001:db8::1"))
    assert resp is not None and resp.status == 200, how
    assert echo_xff(resp) == ["2001:db8::7"]
    assert record_of(mg, "/echo")["client"] == "2001:db8::7"


@pytest.mark.parametrize("mode", ["v1", "v2", "any"])
def test_proxy_missing_header_closed(mailgate, origin, mode):
    mg = mailgate(pp_listener(mode))
    assert_refused(proxied(mg, b""), "TLS without a PROXY header")
    # a plain HTTP request is not a PROXY header either
    try:
        s = connect_from(mg.port)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data, how = read_all(s, 10)
        finally:
            s.close()
    except (ConnectionResetError, BrokenPipeError):
        data, how = b"", "reset"
    assert how != "timeout" and b"HTTP/" not in data, (data, how)
    assert origin.requests == 0


@pytest.mark.parametrize("mode,header", [("v1", "v1"), ("v2", "v2"), ("any", "v1")])
def test_proxy_untrusted_source_closed(mailgate, origin, mode, header):
    mg = mailgate(pp_listener(mode))
    h = proxy_v1() if header == "v1" else proxy_v2()
    assert_refused(proxied(mg, h, src="127.0.0.2"), "PROXY header from 127.0.0.2")
    assert_refused(proxied(mg, proxy_v1(src="127.0.0.1"), src="127.0.0.2"),
                   "PROXY header claiming localhost from 127.0.0.2")
    assert origin.requests == 0
    # the trusted one still works
    resp, how = proxied(mg, h)
    assert resp is not None and resp.status == 200, how


BAD_V1 = {
    "bad-address": b"PROXY TCP4 203.0.113.300 127.0.0.1 5555 443\r\n",
    "missing-port": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555\r\n",
    "family-mismatch": b"PROXY TCP4 2001:db8::7 127.0.0.1 5555 443\r\n",
    "bad-port": b"PROXY TCP4 203.0.113.7 127.0.0.1 65536 443\r\n",
    "no-crlf": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\n",
    "lower-case": b"proxy TCP4 203.0.113.7 127.0.0.1 5555 443\r\n",
    "leading-zero": b"PROXY TCP4 203.000.113.7 127.0.0.1 5555 443\r\n",
    "extra-space": b"PROXY  TCP4 203.0.113.7 127.0.0.1 5555 443\r\n",
    "too-long": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 443" + b" " * 100 + b"\r\n",
}


@pytest.mark.parametrize("name", list(BAD_V1))
def test_proxy_v1_malformed_closed(mailgate, origin, name):
    mg = mailgate(pp_listener("v1"))
    assert_refused(proxied(mg, BAD_V1[name]), "malformed v1 header %s" % name)
    assert origin.requests == 0
    resp, how = proxied(mg, proxy_v1())  # the listener does take a valid one
    assert resp is not None and resp.status == 200, how


def test_proxy_v2_ipv4(mailgate, origin):
    mg = mailgate(pp_listener("v2"))
    resp, how = proxied(mg, proxy_v2())
    assert resp is not None and resp.status == 200, how
    assert echo_xff(resp) == ["203.0.113.7"]
    rec = record_of(mg, "/echo")
    assert rec["client"] == "203.0.113.7" and rec["peer"] == "127.0.0.1", rec


def test_proxy_v2_ipv6(mailgate, origin):
    mg = mailgate(pp_listener("v2"))
    resp, how = proxied(mg, proxy_v2("2001:db8::7", "2001:db8::1"))
    assert resp is not None and resp.status == 200, how
    assert echo_xff(resp) == ["2001:db8::7"]
    assert record_of(mg, "/echo")["client"] == "2001:db8::7"


def test_proxy_v2_with_tlvs(mailgate, origin):
    """Load balancers append TLVs (ALPN, authority, AWS VPC endpoint id): skipped."""
    mg = mailgate(pp_listener("v2"))
    tlvs = tlv(0x01, b"http/1.1") + tlv(0x02, b"mail.example.com") + tlv(0xEA, b"\x01vpce-1")
    resp, how = proxied(mg, proxy_v2(tlvs=tlvs), split=20)
    assert resp is not None and resp.status == 200, how
    assert echo_xff(resp) == ["203.0.113.7"]


def test_proxy_v2_local_keeps_peer(mailgate, origin):
    """LOCAL (the balancer's own health check): the socket peer is the client."""
    mg = mailgate(pp_listener("v2"))
    resp, how = proxied(mg, proxy_v2(local=True))
    assert resp is not None and resp.status == 200, how
    assert echo_xff(resp) == ["127.0.0.1"]
    rec = record_of(mg, "/echo")
    assert rec["client"] == "127.0.0.1" and rec["peer"] == "127.0.0.1", rec


BAD_V2 = {
    "bad-version": lambda: PP2_SIG + b"\x11\x11" + proxy_v2()[14:],
    "bad-command": lambda: PP2_SIG + b"\x2f\x11" + proxy_v2()[14:],
    "short-length": lambda: PP2_SIG + b"\x21\x11\x00\x04" + b"\xcb\x00\x71\x07",
    "bad-signature": lambda: b"\r\n\r\n\x00\r\nQUIX\n" + proxy_v2()[12:],
}


@pytest.mark.parametrize("name", list(BAD_V2))
def test_proxy_v2_malformed_closed(mailgate, origin, name):
    mg = mailgate(pp_listener("v2"))
    assert_refused(proxied(mg, BAD_V2[name]()), "malformed v2 header %s" % name)
    assert origin.requests == 0
    resp, how = proxied(mg, proxy_v2())  # the listener does take a valid one
    assert resp is not None and resp.status == 200, how


def test_proxy_version_must_match_listener(mailgate, origin):
    mg = mailgate(pp_listener("v1"))
    assert_refused(proxied(mg, proxy_v2()), "v2 header on a v1 listener")
    mg2 = mailgate(pp_listener("v2"))
    assert_refused(proxied(mg2, proxy_v1()), "v1 header on a v2 listener")
    assert origin.requests == 0
    for m, h in ((mg, proxy_v1()), (mg2, proxy_v2())):
        resp, how = proxied(m, h)
        assert resp is not None and resp.status == 200, how


def test_proxy_any_accepts_both(mailgate, origin):
    mg = mailgate(pp_listener("any"))
    for h in (proxy_v1(), proxy_v2()):
        resp, how = proxied(mg, h)
        assert resp is not None and resp.status == 200, how
        assert echo_xff(resp) == ["203.0.113.7"]
