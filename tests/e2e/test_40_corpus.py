"""Every raw request of tests/corpus/http over a real TLS socket.

A numeric expectation: that status, a small generated body, `Connection: close`, the
connection closed, and NOTHING reached the origin. `pass`: the origin received the request
with its original target (any status from the origin is fine)."""

import re
import socket
import ssl
import time

import pytest

import util
from conftest import make_base_config, start_mailgate

CASE_TIMEOUT = 10.0
FILES = util.corpus_files()


def test_corpus_present():
    assert FILES, "no corpus files in %s" % util.CORPUS_DIR


@pytest.fixture(scope="module")
def corpus_origin(certs):
    o = util.origin_module().Origin(certs.origin_cert, certs.origin_key).start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def corpus_mailgate(mailgate_bin, certs, corpus_origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    mg = start_mailgate(mailgate_bin, certs, d,
                        make_base_config(certs, corpus_origin.port, d / "access.log"))
    yield mg
    mg.stop()


def _target(data: bytes):
    m = re.match(rb"^[A-Z]+ (\S+) HTTP/1\.[01]\r\n", data)
    return m.group(1).decode("latin-1") if m else None


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_case(path, corpus_mailgate, corpus_origin):
    case = util.parse_corpus_file(path)
    mg, origin = corpus_mailgate, corpus_origin
    assert mg.proc.poll() is None, "mailgate is not running (exit %s):\n%s" % (
        mg.proc.returncode, mg.stderr[-5000:])
    before = origin.snapshot()
    log_before = len(origin.request_log)
    s = util.tls_connect(mg.port, mg.ca, timeout=CASE_TIMEOUT)
    rd = util.HTTPReader(s)
    try:
        try:
            s.sendall(case.data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # mailgate may answer and close before it read everything; read the answer
        try:
            r = rd.read_response(method=case.data.split(b" ", 1)[0].decode("latin-1"))
        except (socket.timeout, TimeoutError):
            pytest.fail("%s: no response within %.0fs" % (path.name, CASE_TIMEOUT))
        except (ConnectionResetError, util.ConnectionClosed, ssl.SSLError) as e:
            pytest.fail("%s: connection closed or reset without a complete response (%s)"
                        % (path.name, e))

        if case.expect == "pass":
            assert origin.wait_for(lambda st: st.requests > before["requests"], 3), \
                "%s: expected the request to reach the origin, got %d %r" % (
                    path.name, r.status, r.body[:200])
            target = _target(case.data)
            targets = [e["target"] for e in origin.request_log[log_before:]]
            if target is not None:
                assert target in targets, \
                    "%s: the origin should receive the original target %r, got %r" % (
                        path.name, target, targets)
            return

        status = int(case.expect)
        assert r.status == status, "%s: expected %d, got %d\n%r" % (
            path.name, status, r.status, r.raw_head + r.body[:300])
        assert (r.header("connection") or "").lower() == "close", \
            "%s: a closing reply must say Connection: close: %r" % (path.name, r.raw_head)
        assert len(r.body) < 1024, "%s: generated body too big (%d)" % (path.name, len(r.body))
        text = (r.raw_head + r.body).lower()
        assert b"mailgate" not in text, "%s: product name in a generated reply" % path.name
        try:
            extra = rd.wait_closed(CASE_TIMEOUT)
        except (socket.timeout, TimeoutError):
            pytest.fail("%s: connection still open %.0fs after the %d reply" % (
                path.name, CASE_TIMEOUT, status))
        except (ConnectionResetError, ssl.SSLError):
            extra = b""
        assert not extra.startswith(b"HTTP/"), \
            "%s: a second response followed the rejection: %r" % (path.name, extra[:200])
        time.sleep(0.1)
        after = origin.snapshot()
        assert after["requests"] == before["requests"], \
            "%s: the origin received a request: %r" % (path.name, origin.last_request)
        assert after["bytes_received"] == before["bytes_received"], \
            "%s: the origin received %d bytes" % (
                path.name, after["bytes_received"] - before["bytes_received"])
    finally:
        s.close()


def test_corpus_split_delivery(corpus_mailgate, corpus_origin):
    """A few cases delivered one byte per TLS record give the same answer."""
    names = ["400_te_chunked_gzip.txt", "400_obs_fold.txt", "400_cl_then_te.txt",
             "pass_post_chunked.txt"]
    cases = [util.parse_corpus_file(util.CORPUS_DIR / n) for n in names
             if (util.CORPUS_DIR / n).exists()]
    mg, origin = corpus_mailgate, corpus_origin
    for case in cases:
        before = origin.snapshot()
        s = util.tls_connect(mg.port, mg.ca, timeout=CASE_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            try:
                for i in range(len(case.data)):
                    s.sendall(case.data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            r = util.HTTPReader(s).read_response()
        finally:
            s.close()
        if case.expect == "pass":
            assert origin.wait_for(lambda st: st.requests > before["requests"], 3), case.path.name
        else:
            assert r.status == int(case.expect), (case.path.name, r.status)
            time.sleep(0.1)
            assert origin.snapshot()["bytes_received"] == before["bytes_received"], case.path.name
