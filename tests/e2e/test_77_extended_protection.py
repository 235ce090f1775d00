"""Extended Protection (R19): `check` and `run` compare each upstream's TLS certificate with
mailgate's own for that name (SHA-256 of the DER) and warn, or refuse with
`extended_protection: require_same_certificate`, when they differ."""

from __future__ import annotations

import hashlib
import re
import ssl
import subprocess
from pathlib import Path

import util
from conftest import make_base_config

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): "
                  r"(?P<msg>.+)$", re.M)


def fingerprint(pem_path) -> str:
    """SHA-256 of the DER of the first certificate, as `openssl x509 -fingerprint` shows it."""
    der = ssl.PEM_cert_to_DER_cert(Path(pem_path).read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def write(cfg, tmp_path, name):
    path = tmp_path / name
    path.write_text(util.to_yaml(cfg))
    return path


def check(mailgate_bin, cfg, tmp_path, name="ep.yaml"):
    path = write(cfg, tmp_path, name)
    r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    diags = [(int(m.group("line")), m.group("level"), m.group("msg"))
             for m in DIAG.finditer(r.stderr) if m.group("file") == str(path)]
    ep = [d for d in diags if d[2].startswith("extended protection:")]
    return r.returncode, ep, r.stderr, path.read_text()


def upstream_line(text) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip() == "- name: exchange":
            return i
    raise AssertionError("no upstream in:\n" + text)


def config_for(certs, origin, tmp_path, *, mode=None, server_name="origin.test", ecdsa_only=False):
    cfg = make_base_config(certs, origin.port, tmp_path / "access.log")
    up = cfg["upstreams"][0]
    up["tls"]["server_name"] = server_name
    if mode is not None:
        up["extended_protection"] = mode
    if ecdsa_only:
        certificates = cfg["listeners"][0]["tls"]["certificates"]
        cfg["listeners"][0]["tls"]["certificates"] = certificates[:1]
    return cfg


def test_different_certificate_is_a_warning_with_both_fingerprints(mailgate_bin, certs, origin,
                                                                    tmp_path):
    rc, ep, err, text = check(mailgate_bin, config_for(certs, origin, tmp_path), tmp_path)
    assert rc == 0, err
    assert len(ep) == 1, err
    line, level, msg = ep[0]
    assert level == "warning" and line == upstream_line(text), err
    assert "upstream 'exchange' (127.0.0.1:%d)" % origin.port in msg, msg
    assert fingerprint(certs.origin_cert) in msg, msg
    assert fingerprint(certs.mail_ecdsa_cert) in msg and fingerprint(certs.mail_rsa_cert) in msg
    assert "CN=origin.test" in msg and "none of them covers 'origin.test'" in msg, msg
    assert "NTLM and Kerberos logins" in msg and "Extended Protection" in msg, msg


def test_different_certificate_for_the_same_name(mailgate_bin, certs, origin_factory, tmp_path):
    """server_name 127.0.0.1: mailgate's certificate covers it, and so does the origin's
    (origin.test, IP:127.0.0.1), which verifies but is another certificate."""
    o = origin_factory()
    cfg = config_for(certs, o, tmp_path, server_name="127.0.0.1", ecdsa_only=True)
    rc, ep, err, _ = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0, err
    assert len(ep) == 1 and ep[0][1] == "warning", err
    msg = ep[0][2]
    assert ("presents certificate SHA-256 %s (CN=origin.test), but mailgate presents SHA-256 %s "
            "(CN=localhost, listener 'public') for '127.0.0.1'"
            % (fingerprint(certs.origin_cert), fingerprint(certs.mail_ecdsa_cert))) in msg, msg


def test_require_same_certificate_makes_it_an_error(mailgate_bin, certs, origin, tmp_path):
    cfg = config_for(certs, origin, tmp_path, mode="require_same_certificate")
    rc, ep, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, err
    assert len(ep) == 1, err
    line, level, msg = ep[0]
    assert level == "error" and line == upstream_line(text), err
    assert fingerprint(certs.origin_cert) in msg, msg
    assert "configuration is valid" not in err


def test_same_certificate_gives_no_diagnostic(mailgate_bin, mailgate, certs, origin_factory,
                                              tmp_path):
    own = origin_factory(certs.mail_ecdsa_cert, certs.mail_ecdsa_key)
    cfg = config_for(certs, own, tmp_path, mode="require_same_certificate", server_name="localhost",
                     ecdsa_only=True)
    rc, ep, err, _ = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0 and ep == [], err
    mg = mailgate(config=cfg)
    assert re.search(r"extended protection: upstream 'exchange' \(127\.0\.0\.1:%d\) presents "
                     r"mailgate's own certificate SHA-256 %s" % (own.port,
                                                                 fingerprint(certs.mail_ecdsa_cert)),
                     mg.stderr), mg.stderr
    assert util.curl("/owa", mg.port, mg.ca).status == 200


def test_a_second_certificate_for_the_name_is_a_difference(mailgate_bin, certs, origin_factory,
                                                           tmp_path):
    """ECDSA and RSA certificates for one name: Exchange has one, clients may get the other."""
    own = origin_factory(certs.mail_ecdsa_cert, certs.mail_ecdsa_key)
    cfg = config_for(certs, own, tmp_path, server_name="localhost")
    rc, ep, err, _ = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0 and len(ep) == 1 and ep[0][1] == "warning", err
    assert "clients may be given either" in ep[0][2], err
    assert fingerprint(certs.mail_rsa_cert) in ep[0][2], err


def test_run_refuses_to_start_when_required_and_different(mailgate_bin, certs, origin, tmp_path):
    cfg = config_for(certs, origin, tmp_path, mode="require_same_certificate")
    path = write(cfg, tmp_path, "run.yaml")
    r = subprocess.run([mailgate_bin, "run", "-c", str(path)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert re.search(r"^%s:%d:\d+: error: extended protection: upstream 'exchange'"
                     % (re.escape(str(path)), upstream_line(path.read_text())), r.stderr, re.M), \
        r.stderr
    assert "listening on" not in r.stderr


def test_unreachable_upstream_is_only_a_warning(mailgate_bin, certs, origin, tmp_path):
    cfg = config_for(certs, origin, tmp_path, mode="require_same_certificate")
    cfg["upstreams"][0]["servers"] = ["127.0.0.1:%d" % util.free_port()]
    rc, ep, err, _ = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0, err
    assert len(ep) == 1 and ep[0][1] == "warning", err
    assert "could not compare the certificate of upstream 'exchange'" in ep[0][2], err
    assert "refused" in ep[0][2].lower(), err


def test_off_makes_no_connection(mailgate_bin, certs, origin, tmp_path):
    cfg = config_for(certs, origin, tmp_path, mode="off")
    rc, ep, err, _ = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0 and ep == [], err
    assert origin.connections == 0 and origin.handshake_failures == []
