"""Listener TLS policy, checked with openssl s_client: TLS 1.2/1.3 only, ECDHE+AEAD only,
ECDSA and RSA certificates picked by what the client supports."""

import re
import ssl

import pytest

import util

# A client that is itself willing to speak old protocols, so that a refusal is mailgate's.
OLD_CLIENT = ("-cipher", "DEFAULT:@SECLEVEL=0")
LOCAL_FAILURE = re.compile(r"no protocols available|no ciphers available|no cipher match",
                           re.I)


@pytest.fixture
def mg(mailgate):
    return mailgate()


def assert_refused(mg, *args):
    rc, out = util.s_client(mg.port, mg.ca, *args)
    assert not LOCAL_FAILURE.search(out), \
        "the client refused locally, the test proves nothing:\n" + out
    assert not util.handshake_ok(out), "handshake with %s should fail:\n%s" % (args, out)
    assert rc != 0
    assert mg.proc.poll() is None, "mailgate died:\n" + mg.stderr
    return out


def assert_accepted(mg, *args):
    rc, out = util.s_client(mg.port, mg.ca, *args)
    assert util.handshake_ok(out), "handshake with %s should succeed:\n%s" % (args, out)
    assert "Verify return code: 0 (ok)" in out, out
    return out


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(mg, version):
    out = assert_refused(mg, version, *OLD_CLIENT)
    assert re.search(r"alert protocol version|unsupported protocol|wrong version|"
                     r"alert handshake failure|unexpected eof|errno=104|Connection reset",
                     out, re.I), out


@pytest.mark.parametrize("version,proto", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_modern_protocols_accepted(mg, version, proto):
    out = assert_accepted(mg, version)
    got_proto, cipher = util.negotiated(out)
    assert got_proto == proto, out
    if proto == "TLSv1.2":
        assert re.match(r"^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$", cipher), \
            "TLS 1.2 must negotiate ECDHE with an AEAD cipher, got %s" % cipher
    else:
        assert cipher in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                          "TLS_CHACHA20_POLY1305_SHA256"), cipher


@pytest.mark.parametrize("cipher", [
    "AES128-SHA256",                                       # RSA kx, CBC
    "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256",   # ECDHE, but CBC
    "ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA",         # ECDHE, CBC, SHA-1
    "AES128-GCM-SHA256:AES256-GCM-SHA384",                 # AEAD, but static RSA kx
    "DHE-RSA-AES128-GCM-SHA256",                           # finite-field DHE
])
def test_weak_tls12_suites_refused(mg, cipher):
    assert_refused(mg, "-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")


@pytest.mark.parametrize("version,sigalgs", [
    ("-tls1_2", "ECDSA+SHA256"),
    ("-tls1_3", "ECDSA+SHA256"),
])
def test_ecdsa_client_gets_ecdsa_cert(mg, version, sigalgs):
    out = assert_accepted(mg, version, "-sigalgs", sigalgs)
    assert util.leaf_key_type(out) == "EC", out


@pytest.mark.parametrize("version,sigalgs", [
    ("-tls1_2", "RSA+SHA256:RSA+SHA384"),
    ("-tls1_2", "RSA-PSS+SHA256"),
    ("-tls1_3", "rsa_pss_rsae_sha256"),
])
def test_rsa_client_gets_rsa_cert(mg, version, sigalgs):
    out = assert_accepted(mg, version, "-sigalgs", sigalgs)
    assert util.leaf_key_type(out) == "RSA", out


def test_tls12_rsa_only_ciphers_get_rsa_cert(mg):
    out = assert_accepted(mg, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert util.leaf_key_type(out) == "RSA", out


def test_python_client_verifies(mg):
    """A default client that verifies against the test CA completes the handshake."""
    s = util.tls_connect(mg.port, mg.ca)
    try:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        assert s.compression() is None
    finally:
        s.close()


def test_plain_http_on_tls_port(mg):
    """Plain HTTP on the TLS port: no HTTP answer in the clear, mailgate keeps running."""
    import socket
    s = socket.create_connection(("127.0.0.1", mg.port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, TimeoutError, OSError):
            pass
        assert not data.startswith(b"HTTP/1.1 200"), data[:200]
    finally:
        s.close()
    # still serving
    t = util.tls_connect(mg.port, mg.ca)
    t.close()
