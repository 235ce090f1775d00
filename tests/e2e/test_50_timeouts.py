"""Timeouts: request_header (whole head, against slow clients), idle keep-alive,
upstream_response (504), tls_handshake."""

import socket
import ssl
import time

import pytest

import util

FAST = {"timeouts": {"request_header": "1s", "idle": "1s"}}


def _read_reply_or_close(sock, timeout):
    """(response or None, seconds until the reply/close). None means closed without reply."""
    sock.settimeout(timeout)
    rd = util.HTTPReader(sock)
    t0 = time.monotonic()
    try:
        r = rd.read_response()
    except (util.ConnectionClosed, ConnectionResetError, ssl.SSLError):
        return None, time.monotonic() - t0, rd
    except (socket.timeout, TimeoutError):
        pytest.fail("neither a reply nor a close within %.0fs" % timeout)
    return r, time.monotonic() - t0, rd


def test_half_head_gets_408(mailgate, origin):
    mg = mailgate(FAST)
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"GET /owa HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slo")
        t0 = time.monotonic()
        r, _, rd = _read_reply_or_close(s, 6)
        elapsed = time.monotonic() - t0
        assert 0.7 <= elapsed <= 4.0, "request_header 1s fired after %.2fs" % elapsed
        if r is not None:
            assert r.status == 408, r
            assert (r.header("connection") or "").lower() == "close"
            assert util.is_closed(s, 5), "still open after the 408"
    finally:
        s.close()
    assert origin.requests == 0


def test_slowloris_trickle_gets_408(mailgate, origin):
    """Bytes keep coming, one every 200 ms, but the whole head must arrive in 1 s."""
    mg = mailgate(FAST)
    s = util.tls_connect(mg.port, mg.ca)
    head = b"GET /owa HTTP/1.1\r\nHost: localhost\r\n" + b"X-Pad: a\r\n" * 20
    t0 = time.monotonic()
    closed_early = False
    try:
        for i in range(len(head)):
            if time.monotonic() - t0 > 5:
                break
            try:
                s.sendall(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                closed_early = True
                break
            time.sleep(0.2)
            s.setblocking(False)
            try:
                peek = s.recv(1)
            except (ssl.SSLWantReadError, BlockingIOError):
                peek = None
            except (ConnectionResetError, ssl.SSLError):
                peek = b""
            s.settimeout(10)
            if peek is not None:
                closed_early = True
                break
        elapsed = time.monotonic() - t0
        assert closed_early, "mailgate still reading a trickled head after %.1fs" % elapsed
        assert elapsed < 3.5, "the whole-head deadline (1s) took %.1fs" % elapsed
    finally:
        s.close()
    assert origin.requests == 0


def test_no_request_at_all_is_closed(mailgate, origin):
    """A TLS connection that never sends a byte is closed (408 or silently)."""
    mg = mailgate(FAST)
    s = util.tls_connect(mg.port, mg.ca)
    try:
        t0 = time.monotonic()
        assert util.is_closed(s, 6), "a silent connection was never closed"
        assert time.monotonic() - t0 < 4
    finally:
        s.close()


def test_idle_keepalive_closed(mailgate, origin):
    mg = mailgate(FAST)
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"GET /owa HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rd = util.HTTPReader(s)
        r = rd.read_response()
        assert r.status == 200
        assert (r.header("connection") or "").lower() != "close"
        t0 = time.monotonic()
        # still open well before the deadline
        assert not util.is_closed(s, 0.4), "closed before the idle timeout"
        # an idle close may carry a 408; either way it is closed
        try:
            extra = rd.wait_closed(6)
        except (socket.timeout, TimeoutError):
            pytest.fail("idle keep-alive connection still open after 6 s (idle: 1s)")
        except (ConnectionResetError, ssl.SSLError):
            extra = b""
        elapsed = time.monotonic() - t0 + 0.4
        assert elapsed < 4, "idle 1s closed after %.1fs" % elapsed
        assert extra == b"" or extra.startswith(b"HTTP/1.1 408"), extra[:200]
    finally:
        s.close()
    assert origin.requests == 1


def test_keepalive_within_idle_survives(mailgate, origin):
    mg = mailgate({"timeouts": {"request_header": "5s", "idle": "3s"}})
    s = util.tls_connect(mg.port, mg.ca)
    try:
        rd = util.HTTPReader(s)
        for _ in range(3):
            s.sendall(b"GET /owa HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert rd.read_response().status == 200
            time.sleep(1.0)
    finally:
        s.close()


def test_location_idle_override(mailgate, origin):
    """The ActiveSync location's idle (3660s in the template) outlives the global 1s."""
    mg = mailgate(FAST)
    s = util.tls_connect(mg.port, mg.ca)
    try:
        s.sendall(b"OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rd = util.HTTPReader(s)
        assert rd.read_response().status == 200
        assert not util.is_closed(s, 2.5), \
            "idle after an ActiveSync request should follow the location's 3660s"
    finally:
        s.close()


def test_upstream_response_timeout_504(mailgate, origin):
    mg = mailgate({"timeouts": {"upstream_response": "1s"}})
    r = util.curl("/delay?ms=4000", mg.port, mg.ca, timeout=15)
    assert r.status == 504, r.stderr
    assert r.elapsed < 3.5, "took %.1fs" % r.elapsed
    assert len(r.body) < 1024
    # and the next request is fine (the late upstream answer is not delivered to it)
    r2 = util.curl("/echo", mg.port, mg.ca)
    assert r2.status == 200


def test_upstream_response_location_override(mailgate, origin):
    """ActiveSync's location allows long polls: 2 s of origin silence is fine there."""
    mg = mailgate({"timeouts": {"upstream_response": "1s"},
                   "locations": [
                       {"path": "/", "upstream": "exchange"},
                       {"path": "/delay", "upstream": "exchange",
                        "timeouts": {"upstream_response": "10s"}},
                   ]})
    r = util.curl("/delay?ms=2000", mg.port, mg.ca, timeout=15)
    assert r.status == 200, r.stderr


def test_tls_handshake_timeout(mailgate, origin):
    mg = mailgate({"timeouts": {"tls_handshake": "1s"}})
    s = socket.create_connection(("127.0.0.1", mg.port), timeout=6)
    try:
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello record, then nothing
        t0 = time.monotonic()
        try:
            data = s.recv(100)
            while data:
                data = s.recv(100)
        except ConnectionResetError:
            pass
        except (socket.timeout, TimeoutError):
            pytest.fail("half a ClientHello kept the connection open for 6 s (tls_handshake: 1s)")
        assert time.monotonic() - t0 < 4
    finally:
        s.close()


def test_send_timeout_closes_a_client_that_does_not_read(mailgate, origin):
    """A client that stops reading a big download is dropped after timeouts.send, and the
    memory mailgate holds for it stays bounded."""
    mg = mailgate({"timeouts": {"send": "1s"}})
    size = 200 * 1024 * 1024
    s = util.tls_connect(mg.port, mg.ca)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(b"GET /download?size=%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % size)
        time.sleep(5)  # not reading: mailgate's writes stall, send (1s) expires
        rss = util.rss_kib(mg.pid)
        got = 0
        s.settimeout(10)
        try:
            while True:
                data = s.recv(1 << 20)
                if not data:
                    break
                got += len(data)
        except (ConnectionResetError, ssl.SSLError):
            pass
        except (socket.timeout, TimeoutError):
            pytest.fail("still sending after the send timeout (%d bytes read)" % got)
        assert got < size, "the whole download arrived; the send timeout never fired"
        assert util.rss_within_bound(rss), rss
    finally:
        s.close()
