"""Proxying: bodies both ways, framing rebuilt, hop-by-hop removed, response header policy,
100-continue, pipelining, upstream keep-alive, big transfers in bounded memory, upstream
failures, graceful SIGTERM, the access log."""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

import util

MiB = 1024 * 1024

HOP_BY_HOP = ["connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-connection",
              "trailer"]
STRIPPED = ["Server", "X-Powered-By", "X-FEServer", "X-AspNet-Version", "X-OWA-Version"]
HSTS = "max-age=63072000; includeSubDomains"


def om():
    return util.origin_module()


def curl(mg, path, *args, **kw):
    return util.curl(path, mg.port, mg.ca, *args, **kw)


def names(headers):
    return [n.lower() for n, _ in headers]


def values(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def check_forwarded_framing(echo, body: bytes):
    """The origin got the body byte-exact, framed exactly one way."""
    hn = names(echo["headers"])
    assert echo["body_length"] == len(body), echo
    assert echo["body_sha256"] == util.sha256(body), echo
    cl, te = hn.count("content-length"), hn.count("transfer-encoding")
    assert (cl, te) in ((1, 0), (0, 1)), \
        "exactly one of Content-Length / Transfer-Encoding expected upstream: %r" % echo["headers"]
    if te:
        assert values(echo["headers"], "transfer-encoding") == ["chunked"], echo["headers"]
        assert echo["framing"] == "chunked"
    else:
        assert values(echo["headers"], "content-length") == [str(len(body))], echo["headers"]


# --------------------------------------------------------------------------- basics

def test_get_owa(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/owa")
    assert r.returncode == 0, r.stderr
    assert r.status == 200, r.stderr
    assert r.body == om().OWA_PAGE
    assert origin.last_request["path"] == "/owa"
    assert origin.last_request["method"] == "GET"


def test_owa_slash_and_404_pass_through(mailgate, origin):
    mg = mailgate()
    assert curl(mg, "/owa/").status == 200
    r = curl(mg, "/nowhere")
    assert r.status == 404, r.stderr
    assert origin.path_counts.get("/nowhere") == 1


@pytest.mark.parametrize("status", [201, 204, 302, 403, 500, 503])
def test_origin_status_passes_through(mailgate, origin, status):
    mg = mailgate()
    r = curl(mg, "/status/%d" % status)
    assert r.status == status, r.stderr


def test_head_request(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/download?size=12345", "-I")
    assert r.returncode == 0, r.stderr
    assert r.status == 200
    assert r.header("content-length") == "12345"
    # (curl -I writes the head itself to the output, so there is no body to look at here)
    # the connection stays usable after a HEAD whose response announced a length
    s = util.tls_connect(mg.port, mg.ca)
    try:
        rd = util.HTTPReader(s)
        host = "localhost:%d" % mg.port
        s.sendall(util.request_bytes("HEAD", "/download?size=5000", host)
                  + util.request_bytes("GET", "/owa", host))
        h = rd.read_response(method="HEAD")
        assert h.status == 200 and h.body == b""
        g = rd.read_response()
        assert g.status == 200 and g.body == om().OWA_PAGE
    finally:
        s.close()


def test_activesync_options(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/Microsoft-Server-ActiveSync", "-X", "OPTIONS")
    assert r.status == 200, r.stderr
    assert r.header("MS-ASProtocolVersions") == om().EAS_VERSIONS
    assert "Ping" in r.header("MS-ASProtocolCommands", "")
    for h in STRIPPED:
        assert not r.has(h), "%s leaked: %r" % (h, r.headers)


def test_activesync_post(mailgate, origin, tmp_path):
    mg = mailgate()
    wbxml = tmp_path / "req.wbxml"
    wbxml.write_bytes(b"\x03\x01\x6a\x00")
    q = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=ABC123&DeviceType=iPhone"
    hdrs = ["-H", "Content-Type: application/vnd.ms-sync.wbxml", "-H", "MS-ASProtocolVersion: 16.1",
            "-A", "Apple-iPhone/1901.123"]
    r = curl(mg, q, "--data-binary", "@%s" % wbxml, *hdrs)
    assert r.status == 401, r.stderr
    assert r.header("WWW-Authenticate") == 'Basic realm="mail"'
    r = curl(mg, q, "-u", "alice:secret", "--data-binary", "@%s" % wbxml, *hdrs)
    assert r.status == 200, r.stderr
    assert r.header("Content-Type") == "application/vnd.ms-sync.wbxml"
    assert r.body == om().WBXML_EMPTY
    assert origin.last_request["target"] == q


# --------------------------------------------------------------------------- request bodies

def test_post_content_length(mailgate, origin, tmp_path):
    mg = mailgate()
    body = os.urandom(200000) + b"\r\n0\r\n\r\n"
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    r = curl(mg, "/echo", "--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream")
    assert r.status == 200, r.stderr
    echo = json.loads(r.body)
    assert echo["method"] == "POST"
    assert echo["target"] == "/echo"
    check_forwarded_framing(echo, body)


def test_post_chunked(mailgate, origin, tmp_path):
    mg = mailgate()
    body = os.urandom(300001)
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    r = curl(mg, "/echo?x=1", "--data-binary", "@%s" % f, "-H", "Transfer-Encoding: chunked")
    assert r.status == 200, r.stderr
    echo = json.loads(r.body)
    assert echo["target"] == "/echo?x=1"
    check_forwarded_framing(echo, body)


def test_post_empty_body(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/echo", "-X", "POST", "-H", "Content-Length: 0")
    assert r.status == 200, r.stderr
    echo = json.loads(r.body)
    assert echo["body_length"] == 0
    assert "transfer-encoding" not in names(echo["headers"])


def test_chunked_with_extensions_and_trailers_raw(mailgate, origin):
    """Small chunk extensions/trailers are accepted or refused, but trailers never become
    forwarded header fields."""
    mg = mailgate()
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: evil\r\n\r\n")
        r = util.HTTPReader(s).read_response()
    finally:
        s.close()
    if r.status == 200:
        echo = r.json()
        check_forwarded_framing(echo, b"hello world")
        assert "x-trailer" not in names(echo["headers"])
    else:
        assert r.status == 400, r


def test_hop_by_hop_removed_and_forwarded_headers(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/echo", "-A", "e2e-agent/1.0",
             "-H", "Connection: keep-alive, X-Secret",
             "-H", "X-Secret: 1",
             "-H", "Keep-Alive: timeout=5",
             "-H", "TE: trailers",
             "-H", "Upgrade: foo",
             "-H", "Proxy-Connection: keep-alive",
             "-H", "X-Custom: kept",
             "-H", "Cookie: a=b")
    assert r.status == 200, r.stderr
    echo = json.loads(r.body)
    got = names(echo["headers"])
    for h in HOP_BY_HOP:
        assert h not in got, "hop-by-hop %s reached the origin: %r" % (h, echo["headers"])
    assert values(echo["headers"], "x-custom") == ["kept"]
    assert values(echo["headers"], "cookie") == ["a=b"]
    assert values(echo["headers"], "user-agent") == ["e2e-agent/1.0"]
    assert values(echo["headers"], "host") == ["localhost:%d" % mg.port], echo["headers"]
    assert values(echo["headers"], "x-forwarded-for") == ["127.0.0.1"], echo["headers"]
    assert values(echo["headers"], "x-forwarded-proto") == ["https"], echo["headers"]
    assert echo["sni"] == "origin.test", "upstream SNI should be tls.server_name"


def test_connection_named_header_with_body(mailgate, origin, tmp_path):
    """Connection can name Content-Length's siblings; framing is still rebuilt."""
    mg = mailgate()
    body = b"x" * 1000
    r = curl(mg, "/echo", "--data-binary", body.decode(), "-H", "Connection: X-A, X-B",
             "-H", "X-A: 1", "-H", "X-B: 2", "-H", "X-C: 3")
    echo = json.loads(r.body)
    got = names(echo["headers"])
    assert "x-a" not in got and "x-b" not in got and "x-c" in got, echo["headers"]
    check_forwarded_framing(echo, body)


# --------------------------------------------------------------------------- response policy

@pytest.mark.parametrize("path", ["/owa", "/echo", "/status/404", "/Microsoft-Server-ActiveSync"])
def test_response_header_policy(mailgate, origin, path):
    mg = mailgate()
    r = curl(mg, path)
    assert r.status is not None, r.stderr
    for h in STRIPPED:
        assert not r.has(h), "%s leaked on %s: %r" % (h, path, r.headers)
    assert values(r.headers, "Strict-Transport-Security") == [HSTS], r.headers
    assert values(r.headers, "X-Content-Type-Options") == ["nosniff"], r.headers
    assert values(r.headers, "X-Frame-Options") == ["SAMEORIGIN"], r.headers
    assert values(r.headers, "Referrer-Policy") == ["strict-origin-when-cross-origin"], r.headers


def test_response_header_policy_configurable(mailgate, origin):
    mg = mailgate({"headers": {"add": {"X-Test": "yes"}, "remove": ["X-FEServer"]}})
    r = curl(mg, "/owa")
    assert r.status == 200, r.stderr
    assert r.header("X-Test") == "yes"
    assert not r.has("X-FEServer")
    assert r.header("Strict-Transport-Security") == HSTS


def test_response_header_add_keeps_upstream_value_set_replaces_it(mailgate, origin):
    mg = mailgate({"headers": {"set": {"X-Frame-Options": "DENY"}}})
    # The origin sends its own Referrer-Policy (an `add` default) and X-Frame-Options (`set`).
    r = curl(mg, "/respond-headers?h=Referrer-Policy:no-referrer&h=X-Frame-Options:ALLOWALL")
    assert r.status == 200, r.stderr
    assert values(r.headers, "Referrer-Policy") == ["no-referrer"], r.headers
    assert values(r.headers, "X-Frame-Options") == ["DENY"], r.headers
    assert values(r.headers, "X-Content-Type-Options") == ["nosniff"], r.headers
    # mailgate's own replies carry the policy too.
    r = curl(mg, "/%2e%2e/etc")
    assert r.status == 400, (r.status, r.stderr)
    assert values(r.headers, "X-Frame-Options") == ["DENY"], r.headers


def test_location_headers_apply_on_top_of_global(mailgate, origin):
    def edit(c):
        c["locations"][2]["headers"] = {"set": {"Cache-Control": "no-store"},
                                        "remove": ["X-Frame-Options"]}
    mg = mailgate(edit)
    r = curl(mg, "/owa/x")
    assert r.status == 200, r.stderr
    assert values(r.headers, "Cache-Control") == ["no-store"], r.headers
    assert not r.has("X-Frame-Options"), r.headers
    # Global entries the location does not mention stay; HSTS is the listener's.
    assert values(r.headers, "X-Content-Type-Options") == ["nosniff"], r.headers
    assert r.header("Strict-Transport-Security") == HSTS
    for h in STRIPPED:
        assert not r.has(h), r.headers
    # Other locations keep the global policy.
    r = curl(mg, "/echo")
    assert values(r.headers, "X-Frame-Options") == ["SAMEORIGIN"], r.headers
    assert not r.has("Cache-Control") or r.header("Cache-Control") != "no-store"


def _plain_request(port, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def test_http_redirect_listener(mailgate, origin):
    def edit(c):
        c["listeners"].append({"name": "http", "address": "127.0.0.1:0",
                               "http_redirect": {"port": 8443}})
    mg = mailgate(edit)
    port = dict((n, p) for p, n in mg.listening)["http"]
    reply = _plain_request(port, b"GET /owa/?a=1 HTTP/1.1\r\nHost: mail.example.com:80\r\n\r\n")
    head = reply.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 301 "), reply
    assert "\r\nLocation: https://mail.example.com:8443/owa/?a=1\r\n" in head, head
    assert "Strict-Transport-Security" not in head, head  # RFC 6797: never over plain HTTP
    assert "Connection: close" in head
    # Strict parsing still applies, and nothing reaches the origin from this port.
    before = origin.requests
    bad = _plain_request(port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 "), bad
    assert "Strict-Transport-Security" not in bad.decode(), bad
    smuggle = _plain_request(port, b"POST /owa HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert smuggle.startswith(b"HTTP/1.1 400 "), smuggle
    assert origin.requests == before
    log = mg.wait_access(3)
    # Two workers write their records as their connections end: order is not guaranteed.
    assert sorted((e["listener"], e["status"]) for e in log) == [("http", 301), ("http", 400),
                                                                 ("http", 400)], log


# --------------------------------------------------------------------------- 100-continue

def test_expect_100_continue_curl(mailgate, origin, tmp_path):
    mg = mailgate()
    body = os.urandom(3 * MiB)
    f = tmp_path / "big.bin"
    f.write_bytes(body)
    r = curl(mg, "/upload", "--data-binary", "@%s" % f, "-H", "Expect: 100-continue",
             "--expect100-timeout", "30", timeout=60)
    assert r.status == 200, r.stderr[-3000:]
    assert "HTTP/1.1 100" in r.stderr, "no 100 Continue seen by curl"
    assert json.loads(r.body) == {"length": len(body), "sha256": util.sha256(body)}
    assert r.elapsed < 20


def test_expect_100_continue_raw(mailgate, origin):
    """mailgate sends 100 Continue before the client sends the body."""
    mg = mailgate()
    body = os.urandom(50000)
    s = util.tls_connect(mg.port, mg.ca, timeout=10)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        rd = util.HTTPReader(s)
        version, status, reason, headers, raw = rd.read_head()
        assert status == 100, "expected an interim 100 Continue before the body, got %r" % raw
        s.sendall(body)
        r = rd.read_response()
        assert r.status == 200
        assert r.json() == {"length": len(body), "sha256": util.sha256(body)}
    finally:
        s.close()


def test_expect_100_continue_is_the_upstreams_to_answer(mailgate, origin):
    """R27: the origin's 100 Continue is what the client gets, and the origin saw the
    expectation; an origin that answers 401 at once gets no body byte, and the client the 401."""
    mg = mailgate()
    body = os.urandom(20000)
    s = util.tls_connect(mg.port, mg.ca, timeout=10)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        rd = util.HTTPReader(s)
        assert rd.read_head()[1] == 100
        s.sendall(body)
        r = rd.read_response()
        assert r.status == 200 and r.json()["expect_continue"] is True, r.json()
    finally:
        s.close()
    before = origin.bytes_received
    s = util.tls_connect(mg.port, mg.ca, timeout=10)
    try:
        s.sendall(b"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: localhost\r\n"
                  b"Expect: 100-continue\r\nX-Test-Reject-Expect: 401\r\n"
                  b"Content-Length: 1000000\r\n\r\n")
        rd = util.HTTPReader(s)
        r = rd.read_response(skip_interim=False)
        assert r.status == 401, r
        assert r.header("Connection") == "close"
        assert util.is_closed(s, 5)
    finally:
        s.close()
    assert origin.bytes_received - before < 2000  # the head only, no body


# --------------------------------------------------------------------------- connections

def test_pipelined_requests_in_order(mailgate, origin):
    mg = mailgate()
    host = "localhost:%d" % mg.port
    reqs = (util.request_bytes("GET", "/echo?n=1", host)
            + util.request_bytes("POST", "/echo?n=2", host, body=b"hello")
            + util.request_bytes("GET", "/status/404?n=3", host)
            + util.request_bytes("POST", "/echo?n=4", host,
                                 headers=[("Transfer-Encoding", "chunked")],
                                 body=b"3\r\nabc\r\n0\r\n\r\n", content_length=False)
            + util.request_bytes("GET", "/owa?n=5", host))
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(reqs)
        rd = util.HTTPReader(s)
        r1, r2, r3, r4, r5 = [rd.read_response() for _ in range(5)]
    finally:
        s.close()
    assert r1.status == 200 and r1.json()["target"] == "/echo?n=1"
    assert r2.status == 200 and r2.json()["target"] == "/echo?n=2"
    assert r2.json()["body_length"] == 5
    assert r3.status == 404
    assert r4.status == 200 and r4.json()["target"] == "/echo?n=4"
    check_forwarded_framing(r4.json(), b"abc")
    assert r5.status == 200 and r5.body == om().OWA_PAGE


def test_keepalive_reuses_one_upstream_connection(mailgate, origin, certs):
    mg = mailgate()
    before = origin.connections
    conn = http.client.HTTPSConnection("127.0.0.1", mg.port, timeout=10,
                                       context=util.client_context(certs.ca))
    ids = []
    try:
        for i in range(5):
            conn.request("GET", "/echo?i=%d" % i)
            resp = conn.getresponse()
            assert resp.status == 200
            ids.append(json.loads(resp.read())["connection"])
            assert not resp.will_close, "mailgate closed a keep-alive client connection"
    finally:
        conn.close()
    assert origin.connections - before == 1, \
        "5 requests on one client connection opened %d upstream connections" % (
            origin.connections - before)
    assert len(set(ids)) == 1, ids


def test_keepalive_post_then_get_reuses(mailgate, origin, certs):
    mg = mailgate()
    before = origin.connections
    conn = http.client.HTTPSConnection("127.0.0.1", mg.port, timeout=10,
                                       context=util.client_context(certs.ca))
    try:
        for i in range(3):
            conn.request("POST", "/upload", body=b"z" * (1000 * (i + 1)))
            r = conn.getresponse()
            assert json.loads(r.read())["length"] == 1000 * (i + 1)
            conn.request("GET", "/download?size=70000&chunked=%d" % (i % 2))
            r = conn.getresponse()
            assert r.read() == om().pattern_bytes(70000)
    finally:
        conn.close()
    assert origin.connections - before == 1


# --------------------------------------------------------------------------- big transfers

def _upload(mg, certs, size, chunked):
    conn = http.client.HTTPSConnection("127.0.0.1", mg.port, timeout=60,
                                       context=util.client_context(certs.ca))
    block = om().PATTERN_BLOCK
    try:
        conn.putrequest("POST", "/upload")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(size))
        conn.endheaders()
        sent = 0
        while sent < size:
            n = min(len(block), size - sent)
            piece = block[:n]
            conn.send(b"%x\r\n%s\r\n" % (n, piece) if chunked else piece)
            sent += n
        if chunked:
            conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _download(mg, size, chunked):
    url = mg.url("/download?size=%d&chunked=%d" % (size, 1 if chunked else 0))
    p = subprocess.Popen(["curl", "-sS", "--http1.1", "--cacert", str(mg.ca), "--resolve",
                          "localhost:%d:127.0.0.1" % mg.port, "--max-time", "120", "-o", "-", url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h = hashlib.sha256()
    n = 0
    while True:
        data = p.stdout.read(MiB)
        if not data:
            break
        h.update(data)
        n += len(data)
    err = p.stderr.read().decode()
    rc = p.wait(30)
    return rc, n, h.hexdigest(), err


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mib_upload_bounded_memory(mailgate, origin, certs, chunked):
    mg = mailgate()
    size = 100 * MiB
    t0 = time.monotonic()
    with util.RssSampler(mg.pid) as rss:
        status, body = _upload(mg, certs, size, chunked)
    print("upload %s: %.1fs, mailgate peak VmRSS %.1f MiB over %d samples" % (
        "chunked" if chunked else "CL", time.monotonic() - t0, rss.peak_kib / 1024, rss.samples))
    assert status == 200, body
    assert json.loads(body) == {"length": size, "sha256": om().pattern_sha256(size)}
    assert util.rss_within_bound(rss.peak_kib), "mailgate peak RSS %.1f MiB >= 96 MiB" % (
        rss.peak_kib / 1024)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mib_download_bounded_memory(mailgate, origin, chunked):
    mg = mailgate()
    size = 100 * MiB
    t0 = time.monotonic()
    with util.RssSampler(mg.pid) as rss:
        rc, n, digest, err = _download(mg, size, chunked)
    print("download %s: %.1fs, mailgate peak VmRSS %.1f MiB over %d samples" % (
        "chunked" if chunked else "CL", time.monotonic() - t0, rss.peak_kib / 1024, rss.samples))
    assert rc == 0, err
    assert n == size
    assert digest == om().pattern_sha256(size)
    assert util.rss_within_bound(rss.peak_kib), "mailgate peak RSS %.1f MiB >= 96 MiB" % (
        rss.peak_kib / 1024)


# --------------------------------------------------------------------------- upstream failures

def test_upstream_wrong_hostname_502(mailgate, origin_factory, certs):
    bad = origin_factory(certs.wrong_cert, certs.wrong_key)
    mg = mailgate(upstream_port=bad.port)
    r = curl(mg, "/owa")
    assert r.status == 502, r.stderr
    assert len(r.body) < 1024
    assert b"mailgate" not in r.body.lower()
    assert bad.requests == 0, "a request reached an upstream that failed verification"
    rx = re.compile(r"verif|hostname mismatch|certificate", re.I)

    def logged():
        text = mg.stderr + "\n".join(mg.access_lines())
        return rx.search(text)
    assert util.wait_until(logged, 5), \
        "no verification failure in stderr or the access log:\n%s\n%s" % (
            mg.stderr, "\n".join(mg.access_lines()))


def test_upstream_untrusted_ca_502(mailgate, origin, certs, tmp_path):
    # trust only a CA that did not sign the origin's certificate
    other = util.make_certs(tmp_path / "other")
    mg = mailgate({"upstreams": [{"name": "exchange", "servers": ["127.0.0.1:%d" % origin.port],
                                  "tls": {"server_name": "origin.test", "ca": str(other.ca)}}]})
    r = curl(mg, "/owa")
    assert r.status == 502, r.stderr
    assert origin.requests == 0


def test_upstream_refused_502(mailgate, origin):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    mg = mailgate(upstream_port=port)
    r = curl(mg, "/owa")
    assert r.status == 502, r.stderr
    assert r.elapsed < 10


def test_upstream_closes_mid_response_curl(mailgate, origin):
    mg = mailgate()
    r = curl(mg, "/close-mid", timeout=15)
    assert r.returncode != 28, "curl timed out: mailgate left the client hanging"
    assert r.elapsed < 10, "took %.1fs" % r.elapsed
    assert r.returncode != 0, "curl should see a truncated transfer"
    assert len(r.body) < 1000000
    # mailgate is fine afterwards
    assert curl(mg, "/owa").status == 200


def test_upstream_closes_mid_response_raw(mailgate, origin):
    mg = mailgate()
    s = util.tls_connect(mg.port, mg.ca, timeout=10)
    t0 = time.monotonic()
    try:
        s.sendall(b"GET /close-mid HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rd = util.HTTPReader(s)
        version, status, reason, headers, raw = rd.read_head()
        try:
            extra = rd.wait_closed(10)
        except (ConnectionResetError, ssl.SSLError):
            extra = b""
        except (socket.timeout, TimeoutError):
            pytest.fail("client connection still open 10 s after the upstream closed")
    finally:
        s.close()
    assert time.monotonic() - t0 < 10
    assert len(extra) < 1000000


# --------------------------------------------------------------------------- SIGTERM

def test_sigterm_drains_slow_download(mailgate, origin, tmp_path):
    mg = mailgate({"server": {"drain_timeout": "20s"}})
    size = 4000000
    out = tmp_path / "dl.bin"
    p = subprocess.Popen(["curl", "-sS", "--http1.1", "--cacert", str(mg.ca), "--resolve",
                          "localhost:%d:127.0.0.1" % mg.port, "--max-time", "60",
                          "-o", str(out), mg.url("/download?size=%d&slow_ms=50" % size)],
                         stderr=subprocess.PIPE)
    try:
        assert origin.wait_for(lambda st: st.last_request is not None
                               and st.last_request.get("sent", 0) > 0, 10), \
            "the download never started"
        time.sleep(0.3)
        mg.signal(signal.SIGTERM)
        # no new connections are accepted while draining
        refused = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                c = util.tls_connect(mg.port, mg.ca, timeout=2)
                c.close()
            except (ConnectionRefusedError, ConnectionResetError, OSError):
                refused = True
                break
            time.sleep(0.1)
        err = p.communicate(timeout=60)[1].decode()
        assert p.returncode == 0, "download failed during drain: %s" % err
    finally:
        if p.poll() is None:
            p.kill()
    data = out.read_bytes()
    assert len(data) == size
    assert util.sha256(data) == om().pattern_sha256(size)
    rc = mg.wait_exit(10)
    assert rc == 0, "mailgate exit code %r after SIGTERM; stderr:\n%s" % (rc, mg.stderr)
    assert refused, "mailgate still accepted connections 3 s after SIGTERM"


def test_sigterm_idle_exits_promptly(mailgate, origin):
    mg = mailgate()
    assert curl(mg, "/owa").status == 200
    t0 = time.monotonic()
    mg.signal(signal.SIGTERM)
    rc = mg.wait_exit(10)
    assert rc == 0, mg.stderr
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- access log

FIELDS = ["time", "client", "listener", "method", "target", "status", "bytes_in", "bytes_out",
          "duration_ms", "upstream", "tls_version", "tls_cipher", "user_agent", "rule"]


def test_access_log(mailgate, origin):
    mg = mailgate()
    assert curl(mg, "/owa?x=1", "-A", "e2e-agent/1.0").status == 200
    assert curl(mg, "/echo", "--data-binary", "hello world", "-A", "e2e-agent/2.0").status == 200
    records = mg.wait_access(2)
    lines = mg.access_lines()
    assert len(lines) == 2, "one JSON object per request expected:\n" + "\n".join(lines)
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict)
        missing = [f for f in FIELDS if f not in obj]
        assert not missing, "access record lacks %s: %s" % (missing, line)
    a, b = records
    assert a["method"] == "GET" and a["target"] == "/owa?x=1" and a["status"] == 200
    assert a["listener"] == "public"
    assert str(a["client"]).startswith("127.0.0.1")
    assert a["user_agent"] == "e2e-agent/1.0"
    assert a["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert isinstance(a["tls_cipher"], str) and a["tls_cipher"]
    assert "127.0.0.1:%d" % origin.port in str(a["upstream"])
    assert isinstance(a["duration_ms"], (int, float)) and a["duration_ms"] >= 0
    assert isinstance(a["bytes_out"], int) and a["bytes_out"] >= len(om().OWA_PAGE)
    assert isinstance(a["bytes_in"], int)
    assert b["method"] == "POST" and b["status"] == 200 and b["user_agent"] == "e2e-agent/2.0"
    assert b["bytes_in"] >= len("hello world")
    assert isinstance(a["time"], (str, int, float)) and a["time"]


def test_access_log_records_rejections(mailgate, origin):
    mg = mailgate()
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"GET /owa HTTP/1.1\r\n\r\n")  # no Host
        r = util.HTTPReader(s).read_response()
    finally:
        s.close()
    assert r.status == 400
    records = mg.wait_access(1)
    assert records and records[-1]["status"] == 400, records
    assert origin.requests == 0


def test_no_product_name_in_generated_responses(mailgate, origin):
    mg = mailgate()
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"GET /owa HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        rd = util.HTTPReader(s)
        r = rd.read_response()
    finally:
        s.close()
    assert r.status == 400
    text = (r.raw_head + r.body).lower()
    assert b"mailgate" not in text and b"boost" not in text and b"beast" not in text, text
    assert len(r.body) < 1024
    assert (r.header("connection") or "").lower() == "close"
    assert r.header("strict-transport-security") == HSTS, \
        "HSTS belongs on every response, mailgate's own too: %r" % r.headers


# --------------------------------------------------------------------------- more upstream behaviour

def test_upstream_hop_by_hop_response_headers_removed(mailgate, origin):
    mg = mailgate()
    q = "&".join("h=" + h for h in ["Connection:X-Internal", "X-Internal:secret",
                                     "Keep-Alive:timeout=5", "Upgrade:h2c", "Proxy-Connection:x",
                                     "X-Kept:yes"])
    r = curl(mg, "/respond-headers?" + q)
    assert r.status == 200, r.stderr
    got = names(r.headers)
    for h in ["x-internal", "keep-alive", "upgrade", "proxy-connection"]:
        assert h not in got, "upstream hop-by-hop %s reached the client: %r" % (h, r.headers)
    assert "x-internal" not in (r.header("connection") or "").lower()
    assert r.header("X-Kept") == "yes"


def test_all_default_leaky_headers_removed(mailgate, origin):
    mg = mailgate()
    leaky = ["X-AspNetMvc-Version:5.2", "X-OWA-Version:15.2.1118.7", "X-BEServer:EXCH02",
             "X-CalculatedBETarget:exch02.corp.local", "X-DiagInfo:EXCH02"]
    r = curl(mg, "/respond-headers?" + "&".join("h=" + h for h in leaky))
    assert r.status == 200, r.stderr
    for h in leaky:
        assert not r.has(h.split(":")[0]), "%s leaked: %r" % (h, r.headers)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_request_after_upstream_closed_pooled_connection(mailgate, origin, certs, method):
    """The origin closes a keep-alive connection after answering (its FIN arrives within a
    second). The next request still succeeds: a GET is retried on a fresh connection when the
    pooled one proves closed; a POST is never retried, so its pooled connection is looked at
    first and the upstream's close is seen before anything is sent."""
    mg = mailgate()
    conn = http.client.HTTPSConnection("127.0.0.1", mg.port, timeout=10,
                                       context=util.client_context(certs.ca))
    try:
        for i in range(3):
            conn.request("GET", "/drop-after")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"bye\n"
            time.sleep(0.2)  # let the upstream FIN arrive
            conn.request(method, "/echo", body=b"payload-%d" % i if method == "POST" else None)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, "%s after an upstream close: %d %r" % (method, r.status, body)
            assert method.encode() in body
    finally:
        conn.close()


def test_round_robin_two_servers(mailgate, origin, origin_factory, certs):
    second = origin_factory()
    mg = mailgate({"upstreams": [{
        "name": "exchange",
        "servers": ["127.0.0.1:%d" % origin.port, "127.0.0.1:%d" % second.port],
        "tls": {"server_name": "origin.test", "ca": str(certs.ca)}}]})
    for i in range(12):
        assert curl(mg, "/echo?i=%d" % i).status == 200
    assert origin.requests > 0 and second.requests > 0, \
        "round robin: %d / %d" % (origin.requests, second.requests)


def test_refused_server_is_skipped(mailgate, origin, certs):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    mg = mailgate({"upstreams": [{
        "name": "exchange",
        "servers": ["127.0.0.1:%d" % dead, "127.0.0.1:%d" % origin.port],
        "tls": {"server_name": "origin.test", "ca": str(certs.ca)}}]})
    statuses = [curl(mg, "/echo?i=%d" % i).status for i in range(12)]
    # the request that meets the refusal moves on to the next server: nothing fails
    assert statuses == [200] * 12, statuses
    assert origin.requests >= 12


def test_location_body_limit(mailgate, origin):
    mg = mailgate({"locations": [
        {"path": "/", "upstream": "exchange"},
        {"path": "/upload", "upstream": "exchange", "limits": {"request_body": "1KiB"}},
    ]})
    small = curl(mg, "/upload", "--data-binary", "x" * 1024)
    assert small.status == 200, small.stderr
    before = origin.requests
    r = curl(mg, "/upload", "--data-binary", "x" * 1025)
    assert r.status == 413, r.stderr
    assert (r.header("connection") or "").lower() == "close"
    assert origin.requests == before, "an over-limit Content-Length body reached the origin"
    # the location match is case-insensitive and uses the normalized path
    assert curl(mg, "/UPLOAD", "--data-binary", "x" * 2000).status == 413
    assert curl(mg, "/echo/../upload", "--path-as-is", "--data-binary", "x" * 2000).status == 413
    # elsewhere the global 150MiB applies
    assert curl(mg, "/echo", "--data-binary", "x" * 2000).status == 200


def test_location_body_limit_chunked(mailgate, origin):
    mg = mailgate({"locations": [
        {"path": "/", "upstream": "exchange"},
        {"path": "/upload", "upstream": "exchange", "limits": {"request_body": "1KiB"}},
    ]})
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + b"400\r\n" + b"a" * 1024 + b"\r\n" + b"10\r\n" + b"b" * 16 + b"\r\n0\r\n\r\n")
        rd = util.HTTPReader(s)
        r = rd.read_response()
        assert r.status == 413, r
        assert util.is_closed(s, 5)
    finally:
        s.close()


def test_expect_continue_over_limit_gets_413_not_100(mailgate, origin):
    mg = mailgate({"locations": [
        {"path": "/", "upstream": "exchange"},
        {"path": "/upload", "upstream": "exchange", "limits": {"request_body": "1KiB"}},
    ]})
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5000\r\n\r\n")
        version, status, reason, headers, raw = util.HTTPReader(s).read_head()
        assert status == 413, raw
    finally:
        s.close()
    assert origin.requests == 0


def test_client_forwarding_headers_not_trusted(mailgate, origin):
    """Without trusted proxies, a client cannot choose its X-Forwarded-For / -Proto."""
    mg = mailgate()
    r = curl(mg, "/echo", "-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Forwarded-Proto: http")
    echo = json.loads(r.body)
    xff = ",".join(values(echo["headers"], "x-forwarded-for"))
    assert xff.split(",")[-1].strip() == "127.0.0.1", echo["headers"]
    assert values(echo["headers"], "x-forwarded-proto") == ["https"], echo["headers"]


def test_sigint_exits_at_once(mailgate, origin):
    mg = mailgate()
    p = subprocess.Popen(["curl", "-sS", "--http1.1", "--cacert", str(mg.ca), "--resolve",
                          "localhost:%d:127.0.0.1" % mg.port, "--max-time", "60", "-o",
                          "/dev/null", mg.url("/download?size=10000000&slow_ms=100")],
                         stderr=subprocess.PIPE)
    try:
        assert origin.wait_for(lambda st: st.last_request is not None
                               and st.last_request.get("sent", 0) > 0, 10)
        t0 = time.monotonic()
        mg.signal(signal.SIGINT)
        rc = mg.wait_exit(5)
        assert rc is not None, "mailgate still running 5 s after SIGINT"
        assert time.monotonic() - t0 < 3
        p.wait(30)
        assert p.returncode != 0, "the download cannot have completed"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_listener_with_two_addresses(mailgate, origin):
    def two(cfg):
        cfg["listeners"][0]["address"] = ["127.0.0.1:0", "127.0.0.1:0"]
    mg = mailgate(two)
    assert len(set(mg.ports)) == 2, mg.stderr
    for port in mg.ports:
        r = util.curl("/owa", port, mg.ca)
        assert r.status == 200, r.stderr


def test_demo_origin_cli(mailgate, certs):
    """examples/demo/origin.py as a program, with mailgate in front: the demo's view."""
    p = subprocess.Popen(["/usr/bin/python3", str(util.ORIGIN_PY), "--listen", "127.0.0.1:0",
                          "--cert", str(certs.origin_cert), "--key", str(certs.origin_key)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        line = p.stderr.readline().decode()
        m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        assert m, line
        mg = mailgate(upstream_port=int(m.group(1)))
        r = curl(mg, "/Microsoft-Server-ActiveSync", "-X", "OPTIONS")
        assert r.status == 200, r.stderr
        assert r.header("MS-ASProtocolVersions") == "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
        for h in ["Server", "X-Powered-By", "X-FEServer"]:
            assert not r.has(h)
        r = curl(mg, "/Microsoft-Server-ActiveSync?Cmd=Sync&User=u&DeviceId=d&DeviceType=t",
                 "-X", "POST", "-H", "Content-Length: 0", "-H", "MS-ASProtocolVersion: 16.1")
        assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="mail"'
        r = curl(mg, "/owa/")
        assert r.status == 200 and b"Outlook" in r.body
        assert curl(mg, "/ecp/").status == 404
    finally:
        p.terminate()
        p.wait(10)
