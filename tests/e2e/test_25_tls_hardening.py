"""TLS hardening beyond the protocol policy: downgrade protection, server cipher order,
session resumption, SNI, OCSP stapling, the certificate and key checks of `mailgate check`
(each bad certificate made here with the openssl CLI), encrypted keys, the start-up
certificate lines, insecure upstreams, HSTS preload, and the privilege drop."""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
from pathlib import Path

import pytest

import util
from conftest import make_base_config

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): "
                  r"(?P<msg>.+)$", re.M)


def openssl(*args, cwd=None, input_data=None):
    r = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=60, input=input_data)
    assert r.returncode == 0, "openssl %s failed:\n%s%s" % (" ".join(map(str, args)), r.stdout,
                                                           r.stderr)
    return r.stdout


# --------------------------------------------------------------------------- a small CA

CA_CONFIG = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
"""


class CA:
    """`openssl ca` over the session's test CA: any validity window, digest and extensions,
    and an index that `openssl ocsp` answers from."""

    def __init__(self, certs, d: Path):
        self.certs = certs
        self.dir = d
        (d / "issued").mkdir(parents=True, exist_ok=True)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        self.config = d / "ca.cnf"
        self.config.write_text(CA_CONFIG.format(dir=d))

    def issue(self, name, *, key="ec", md="sha256", sans="DNS:localhost,IP:127.0.0.1",
              start=None, end=None, days=60, key_mode=0o600):
        key_path = self.dir / (name + ".key")
        if key == "ec":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", key_path)
        else:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % key,
                    "-out", key_path)
        os.chmod(key_path, key_mode)
        csr = self.dir / (name + ".csr")
        openssl("req", "-new", "-key", key_path, "-subj", "/CN=" + name, "-out", csr)
        ext = self.dir / (name + ".ext")
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n" +
                       ("subjectAltName=%s\n" % sans if sans else ""))
        cert = self.dir / (name + ".pem")
        window = (["-startdate", start, "-enddate", end] if start else ["-days", str(days)])
        openssl("ca", "-batch", "-config", self.config, "-cert", self.certs.ca, "-keyfile",
                self.certs.ca_key, "-in", csr, "-out", cert, "-md", md, "-extfile", ext,
                "-notext", *window)
        return cert, key_path

    def chain(self, cert: Path) -> Path:
        """The certificate followed by the CA: a file with a complete chain."""
        out = cert.with_suffix(".chain.pem")
        out.write_text(cert.read_text() + Path(self.certs.ca).read_text())
        return out

    def ocsp_response(self, cert: Path, out: Path) -> Path:
        openssl("ocsp", "-index", self.dir / "index.txt", "-rsigner", self.certs.ca,
                "-rkey", self.certs.ca_key, "-CA", self.certs.ca, "-issuer", self.certs.ca,
                "-cert", cert, "-respout", out, "-ndays", "1")
        return out


@pytest.fixture
def ca(certs, tmp_path):
    return CA(certs, tmp_path / "ca")


# --------------------------------------------------------------------------- helpers

def check(mailgate_bin, config, tmp_path, name="check.yaml"):
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else util.to_yaml(config))
    r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    diags = [(int(m.group("line")), m.group("level"), m.group("msg"))
             for m in DIAG.finditer(r.stderr) if m.group("file") == str(path)]
    return r.returncode, diags, r.stderr, path.read_text()


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in:\n%s" % (needle, text))


def with_first_certificate(certs, cert, key, tmp_path, **entry):
    """The test template with its ECDSA entry replaced by cert/key."""
    cfg = make_base_config(certs, 9443, tmp_path / "access.log")
    cfg["listeners"][0]["tls"]["certificates"][0] = {"cert": str(cert), "key": str(key), **entry}
    return cfg


def s_client(mg, *args, servername="localhost"):
    return util.s_client(mg.port, mg.ca, *args, servername=servername)


def s_client_request(mg, *args):
    """s_client sending one request that closes the connection, so that it stays until the
    answer (and, in TLS 1.3, the session tickets sent after the handshake) has arrived."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % mg.port, "-servername",
           "localhost", "-CAfile", str(mg.ca), "-ign_eof", *map(str, args)]
    p = subprocess.run(cmd, input="GET /owa HTTP/1.1\r\nHost: localhost\r\n"
                                  "Connection: close\r\n\r\n",
                       capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout + p.stderr


def listener_tls(**keys):
    def edit(cfg):
        cfg["listeners"][0]["tls"].update(keys)
    return edit


# --------------------------------------------------------------------------- downgrade, order

def test_fallback_scsv_gets_inappropriate_fallback(mailgate):
    mg = mailgate()
    rc, out = s_client(mg, "-tls1_2", "-fallback_scsv")
    assert rc != 0
    assert not util.handshake_ok(out), out
    assert re.search(r"inappropriate fallback", out, re.I), out
    # Without the SCSV the same TLS 1.2 client is served.
    rc, out = s_client(mg, "-tls1_2")
    assert util.handshake_ok(out), out


@pytest.mark.parametrize("args,expected", [
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"),
     "ECDHE-ECDSA-AES128-GCM-SHA256"),
    (("-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"),
     "ECDHE-RSA-AES128-GCM-SHA256"),
    (("-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
     "TLS_AES_128_GCM_SHA256"),
    # ChaCha20 first means a client without AES hardware: it gets ChaCha20.
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"),
     "ECDHE-ECDSA-CHACHA20-POLY1305"),
])
def test_server_cipher_order_is_honoured(mailgate, args, expected):
    mg = mailgate()
    rc, out = s_client(mg, *args)
    assert util.negotiated(out)[1] == expected, out


# --------------------------------------------------------------------------- resumption

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_ticket_resumption(mailgate, tmp_path, version):
    mg = mailgate()
    sess = tmp_path / "session.pem"
    rc, out = s_client_request(mg, version, "-sess_out", sess)
    assert re.search(r"^New,", out, re.M), out
    assert "HTTP/1.1 200" in out, out
    if version == "-tls1_2":  # (TLS 1.3 tickets come after s_client printed the session)
        assert "TLS session ticket lifetime hint: 43200 (seconds)" in out, out
    rc, out = s_client_request(mg, version, "-sess_in", sess)
    assert re.search(r"^Reused,", out, re.M), out
    # A reload keeps the ticket keys: sessions survive it.
    mg.signal(signal.SIGHUP)
    assert mg.wait_stderr(r"configuration reloaded"), mg.stderr
    rc, out = s_client_request(mg, version, "-sess_in", sess)
    assert re.search(r"^Reused,", out, re.M), out


def test_session_tickets_off_resumes_from_the_cache(mailgate, tmp_path):
    mg = mailgate(listener_tls(session_tickets="off"))
    sess = tmp_path / "session.pem"
    rc, out = s_client_request(mg, "-tls1_2", "-sess_out", sess)
    assert util.handshake_ok(out), out
    assert "TLS session ticket" not in out, out
    rc, out = s_client_request(mg, "-tls1_2", "-sess_in", sess)
    assert re.search(r"^Reused,", out, re.M), out


def test_shared_ticket_key_file_resumes_on_another_instance(mailgate, origin, tmp_path):
    key = tmp_path / "tickets.key"
    key.write_bytes(os.urandom(80))
    os.chmod(key, 0o600)
    a = mailgate(listener_tls(session_tickets={"key_file": str(key)}))
    b = mailgate(listener_tls(session_tickets={"key_file": str(key)}))
    sess = tmp_path / "session.pem"
    s_client_request(a, "-tls1_3", "-sess_out", sess)
    rc, out = s_client_request(b, "-tls1_3", "-sess_in", sess)
    assert re.search(r"^Reused,", out, re.M), out


# --------------------------------------------------------------------------- SNI

def test_sni_chooses_the_certificate_by_name(mailgate, certs):
    mg = mailgate(lambda cfg: cfg["listeners"][0]["tls"]["certificates"].append(
        {"cert": str(certs.wrong_cert), "key": str(certs.wrong_key)}))
    rc, out = s_client(mg, "-servername", "wrong.test")
    assert "subject=CN = wrong.test" in out, out
    rc, out = s_client(mg)  # -servername localhost
    assert "subject=CN = localhost" in out, out
    assert "Verify return code: 0 (ok)" in out, out


# --------------------------------------------------------------------------- OCSP

def test_ocsp_staple_is_served(mailgate, ca, tmp_path):
    cert, key = ca.issue("localhost")
    der = ca.ocsp_response(cert, tmp_path / "localhost.der")

    def edit(cfg):
        cfg["listeners"][0]["tls"]["certificates"] = [
            {"cert": str(ca.chain(cert)), "key": str(key), "ocsp_response": str(der)}]
    mg = mailgate(edit)
    for version in ("-tls1_2", "-tls1_3"):
        rc, out = s_client(mg, version, "-status")
        assert util.handshake_ok(out), out
        assert "OCSP Response Status: successful" in out, out
        assert "Cert Status: good" in out, out
    assert mg.wait_stderr(r"certificate subject CN=localhost; .*; OCSP staple until \d{4}-"), \
        mg.stderr


def test_ocsp_response_of_another_certificate_fails_check(mailgate_bin, certs, ca, tmp_path):
    cert, key = ca.issue("localhost")
    other, _ = ca.issue("other")
    der = ca.ocsp_response(other, tmp_path / "other.der")
    cfg = with_first_certificate(certs, ca.chain(cert), key, tmp_path, ocsp_response=str(der))
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, err
    assert (line_of(text, "other.der"), "error",
            "OCSP response '%s' is refused: it is not a response for certificate 'CN=localhost'"
            % der) in diags, err


# --------------------------------------------------------------------------- check refuses

@pytest.mark.parametrize("kind,issue_args,reason", [
    ("sha1", {"md": "sha1"}, r"certificate 'CN=bad' is signed with SHA-1 \(ecdsa-with-SHA1\)"),
    ("rsa1024", {"key": 1024}, r"certificate 'CN=bad' has an RSA key of 1024 bits \(at least 2048"),
    ("no-san", {"sans": None}, r"certificate 'CN=bad' has no subjectAltName"),
    ("expired", {"start": "20200101000000Z", "end": "20200201000000Z"},
     r"certificate 'CN=bad' expired on 2020-02-01T00:00:00Z"),
    ("not-yet-valid", {"start": "20990101000000Z", "end": "20990201000000Z"},
     r"certificate 'CN=bad' is not valid before 2099-01-01T00:00:00Z"),
])
def test_check_refuses_bad_certificates(mailgate_bin, certs, ca, tmp_path, kind, issue_args,
                                        reason):
    cert, key = ca.issue("bad", **issue_args)
    cfg = with_first_certificate(certs, ca.chain(cert), key, tmp_path)
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, "check accepted a %s certificate:\n%s" % (kind, err)
    line = line_of(text, str(cert.with_suffix(".chain.pem")))
    hits = [d for d in diags if d[0] == line and d[1] == "error" and re.search(reason, d[2])]
    assert hits, "no error matching %r at line %d:\n%s" % (reason, line, err)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_check_refuses_a_key_readable_by_others(mailgate_bin, certs, ca, tmp_path, mode):
    cert, key = ca.issue("localhost", key_mode=mode)
    cfg = with_first_certificate(certs, ca.chain(cert), key, tmp_path)
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, err
    expected = ("key file '%s' is readable by group or others (mode %04o); fix: chmod 600 '%s'"
                % (key, mode, key))
    assert (line_of(text, str(key)), "error", expected) in diags, err
    # and `run` refuses to start with it
    r = subprocess.run([mailgate_bin, "run", "-c", str(tmp_path / "check.yaml")],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and expected in r.stderr, r.stderr


def test_check_refuses_a_key_owned_by_another_user(mailgate_bin, certs, ca, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    cert, key = ca.issue("localhost")
    os.chown(key, nobody.pw_uid, -1)
    rc, diags, err, text = check(mailgate_bin, with_first_certificate(certs, ca.chain(cert), key,
                                                                      tmp_path), tmp_path)
    assert rc == 1, err
    assert any("is owned by nobody" in d[2] and "fix: chown root '%s'" % key in d[2]
               for d in diags), err


def test_check_warns_about_expiry_chain_and_server_names(mailgate_bin, certs, ca, tmp_path):
    cert, key = ca.issue("localhost", days=10)
    cfg = with_first_certificate(certs, cert, key, tmp_path)  # leaf only: no chain
    cfg["listeners"][0]["tls"]["server_names"] = ["localhost", "mail.example.com"]
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 0, err
    warnings = [d for d in diags if d[1] == "warning"]
    cert_line = line_of(text, str(cert))
    assert any(d[0] == cert_line and re.match(r"certificate 'CN=localhost' expires in (9|10) days",
                                              d[2]) for d in warnings), err
    assert any(d[0] == cert_line and d[2].startswith("chain incomplete: the issuer of certificate "
                                                     "'CN=localhost'") for d in warnings), err
    assert any("server name 'mail.example.com' is not covered" in d[2] for d in warnings), err
    assert not any("server name 'localhost'" in d[2] for d in warnings), err


def test_check_refuses_weak_custom_suites_unless_allowed(mailgate_bin, certs, tmp_path):
    cfg = make_base_config(certs, 9443, tmp_path / "access.log")
    cfg["listeners"][0]["tls"].update(
        profile="custom", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA:RC4-SHA")
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, err
    assert any(d[1] == "error" and "'ciphers' enables weak cipher suites: AES128-SHA (static RSA "
               "key exchange, CBC), RC4-SHA (RC4)" in d[2] for d in diags), err
    cfg["listeners"][0]["tls"]["allow_weak"] = True
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path, "allowed.yaml")
    assert rc == 0, err
    assert any(d[1] == "warning" and d[2].startswith("allow_weak is on") for d in diags), err


# --------------------------------------------------------------------------- keys, start-up

def test_encrypted_key_with_passphrase_file(mailgate, ca, tmp_path):
    cert, key = ca.issue("localhost")
    encrypted = tmp_path / "encrypted.key"
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    os.chmod(passphrase, 0o600)
    openssl("pkey", "-in", key, "-aes256", "-passout", "file:%s" % passphrase, "-out", encrypted)
    os.chmod(encrypted, 0o600)

    def edit(cfg):
        cfg["listeners"][0]["tls"]["certificates"] = [{
            "cert": str(ca.chain(cert)), "key": str(encrypted),
            "key_passphrase_file": str(passphrase)}]
    mg = mailgate(edit)
    rc, out = s_client(mg)
    assert util.handshake_ok(out) and "Verify return code: 0 (ok)" in out, out
    assert "correct horse" not in mg.stderr


def test_start_up_lines_describe_each_certificate(mailgate):
    mg = mailgate()
    for key in (r"EC P-256 \(256 bits\)", r"RSA 2048 bits"):
        line = (r"info listener public: certificate subject CN=localhost; "
                r"SANs DNS:localhost,IP:127\.0\.0\.1; key %s; signature ecdsa-with-SHA256; "
                r"not after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" % key)
        assert re.search(line, mg.stderr), mg.stderr
    assert "PRIVATE KEY" not in mg.stderr


def test_hsts_preload(mailgate):
    mg = mailgate(listener_tls(hsts={"max_age": "2y", "include_subdomains": True,
                                     "preload": True}))
    r = util.curl("/owa", mg.port, mg.ca)
    assert r.header("Strict-Transport-Security") == \
        "max-age=63072000; includeSubDomains; preload", r.headers


# --------------------------------------------------------------------------- upstream

def test_insecure_skip_verify_is_warned_at_start(mailgate, origin_factory, certs):
    bad = origin_factory(certs.wrong_cert, certs.wrong_key)

    def edit(cfg):
        cfg["upstreams"][0]["tls"] = {"server_name": "origin.test",
                                      "insecure_skip_verify": True}
    mg = mailgate(edit, upstream_port=bad.port)
    r = util.curl("/owa", mg.port, mg.ca)
    assert r.status == 200, r.stderr
    assert re.search(r"warning: insecure_skip_verify is on", mg.stderr), mg.stderr
    assert re.search(r"warn(ing)? upstream exchange: insecure_skip_verify is on", mg.stderr), \
        mg.stderr


def test_upstream_client_certificate_key_must_be_protected(mailgate_bin, certs, tmp_path):
    key = tmp_path / "client.key"
    key.write_text(Path(certs.origin_key).read_text())
    os.chmod(key, 0o644)
    cfg = make_base_config(certs, 9443, tmp_path / "access.log")
    cfg["upstreams"][0]["tls"].update(client_cert=str(certs.origin_cert), client_key=str(key))
    rc, diags, err, text = check(mailgate_bin, cfg, tmp_path)
    assert rc == 1, err
    assert any("fix: chmod 600 '%s'" % key in d[2] for d in diags), err


# --------------------------------------------------------------------------- privileges

def test_privilege_drop_runs_workers_as_the_configured_user(mailgate):
    if os.geteuid() != 0:
        pytest.skip("privilege drop needs root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    mg = mailgate({"server": {"workers": 2, "user": "nobody"}})
    assert mg.wait_stderr(r"running as user nobody"), mg.stderr
    r = util.curl("/owa", mg.port, mg.ca)
    assert r.status == 200, r.stderr
    tasks = list(Path("/proc/%d/task" % mg.pid).iterdir())
    assert len(tasks) >= 3, tasks  # main thread and two workers
    for task in tasks:
        status = (task / "status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        groups = re.search(r"^Groups:(.*)$", status, re.M).group(1).split()
        assert set(map(int, uids)) == {nobody.pw_uid}, (task, status)
        assert set(map(int, gids)) == {nobody.pw_gid}, (task, status)
        assert groups == [] or groups == [str(nobody.pw_gid)], (task, status)
