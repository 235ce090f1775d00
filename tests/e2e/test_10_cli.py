"""Command line: version, --help, check (valid config, and file:line:col diagnostics)."""

import re
import subprocess

import pytest

import util
from conftest import make_base_config

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): (?P<msg>.+)$",
                  re.M)


def run(bin_, *args, timeout=30):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def diagnostics(stderr: str, path) -> list:
    """[(line, col, level, message)] of the diagnostics that name `path`."""
    out = []
    for m in DIAG.finditer(stderr):
        if m.group("file") == str(path):
            out.append((int(m.group("line")), int(m.group("col")), m.group("level"),
                        m.group("msg")))
    return out


def good_config_text(certs, tmp_path) -> str:
    cfg = make_base_config(certs, 9443, tmp_path / "access.log")
    return util.to_yaml(cfg)


# A hand-written config whose line numbers the tests below rely on. Line 1 is "server:".
TEMPLATE = """\
server:
  workers: 2
log:
  level: info
  access: {access}
listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      profile: intermediate
      certificates:
        - {{ cert: {ecdsa_cert}, key: {ecdsa_key} }}
        - {{ cert: {rsa_cert}, key: {rsa_key} }}
      hsts: {{ max_age: 2y, include_subdomains: true }}
upstreams:
  - name: exchange
    servers: ["127.0.0.1:9443"]
    tls:
      server_name: origin.test
      ca: {ca}
    pool: {{ max_idle: 64, idle_timeout: 60s }}
timeouts:
  request_header: 15s
  idle: 60s
locations:
  - path: /
    upstream: exchange
"""


def render(certs, tmp_path, **over):
    values = dict(access=tmp_path / "access.log", ecdsa_cert=certs.mail_ecdsa_cert,
                  ecdsa_key=certs.mail_ecdsa_key, rsa_cert=certs.mail_rsa_cert,
                  rsa_key=certs.mail_rsa_key, ca=certs.ca)
    values.update(over)
    return TEMPLATE.format(**values)


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


def col_of(text: str, needle: str) -> int:
    line = text.splitlines()[line_of(text, needle) - 1]
    return line.index(needle) + 1


def expect_errors(mailgate_bin, path, text):
    r = run(mailgate_bin, "check", "-c", path)
    assert r.returncode == 1, "check should fail with exit 1, got %d\nstdout:\n%s\nstderr:\n%s" % (
        r.returncode, r.stdout, r.stderr)
    diags = diagnostics(r.stderr, path)
    errors = [d for d in diags if d[2] == "error"]
    assert errors, "no 'FILE:LINE:COL: error: message' line naming %s in stderr:\n%s" % (
        path, r.stderr)
    return errors, r.stderr


def test_version(mailgate_bin):
    r = run(mailgate_bin, "version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+(\.\d+)?", r.stdout), "no version number in %r" % r.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(mailgate_bin, flag):
    r = run(mailgate_bin, flag)
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    for word in ("run", "check", "version"):
        assert word in text, "--help does not mention %r:\n%s" % (word, text)


def test_check_good(mailgate_bin, certs, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(good_config_text(certs, tmp_path))
    r = run(mailgate_bin, "check", "-c", path)
    assert r.returncode == 0, "check of a valid config failed:\n%s\n%s\n--- config:\n%s" % (
        r.stdout, r.stderr, path.read_text())
    assert not [d for d in diagnostics(r.stderr, path) if d[2] == "error"]


def test_check_good_handwritten(mailgate_bin, certs, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(render(certs, tmp_path))
    r = run(mailgate_bin, "check", "-c", path)
    assert r.returncode == 0, "%s\n%s" % (r.stdout, r.stderr)


@pytest.mark.parametrize("example", ["demo.yaml", "exchange.yaml", "exchange-full.yaml"])
def test_check_demo_example_shape(mailgate_bin, certs, tmp_path, example):
    """The examples with the certificate paths swapped for the test ones are valid."""
    text = (util.REPO / "examples" / example).read_text()
    text = (text.replace("demo/certs/mail-ecdsa.pem", str(certs.mail_ecdsa_cert))
                .replace("demo/certs/mail-ecdsa.key", str(certs.mail_ecdsa_key))
                .replace("demo/certs/mail-rsa.pem", str(certs.mail_rsa_cert))
                .replace("demo/certs/mail-rsa.key", str(certs.mail_rsa_key))
                .replace("demo/certs/ca.pem", str(certs.ca)))
    path = tmp_path / example
    path.write_text(text)
    r = run(mailgate_bin, "check", "-c", path)
    assert r.returncode == 0, "%s\n%s" % (r.stdout, r.stderr)


def test_unknown_key(mailgate_bin, certs, tmp_path):
    text = render(certs, tmp_path).replace("  workers: 2\n", "  workers: 2\n  wrokers: 3\n")
    path = tmp_path / "unknown.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, "wrokers")  # 3
    hits = [e for e in errors if e[0] == line]
    assert hits, "expected an error at line %d (unknown key 'wrokers'), got %r\n%s" % (
        line, errors, stderr)
    assert hits[0][1] == 3, "column should point at the key (3), got %r" % (hits[0],)
    assert "wrokers" in hits[0][3], hits[0]


def test_unknown_key_nested(mailgate_bin, certs, tmp_path):
    text = render(certs, tmp_path).replace("      server_name: origin.test\n",
                                           "      server_name: origin.test\n      verify: false\n")
    path = tmp_path / "unknown2.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, "verify: false")
    assert [e for e in errors if e[0] == line and "verify" in e[3]], \
        "expected an error naming 'verify' at line %d, got %r\n%s" % (line, errors, stderr)


def test_bad_duration(mailgate_bin, certs, tmp_path):
    text = render(certs, tmp_path).replace("  idle: 60s\n", "  idle: 60 parsecs\n")
    path = tmp_path / "duration.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, "60 parsecs")
    hits = [e for e in errors if e[0] == line]
    assert hits, "expected an error at line %d (bad duration), got %r\n%s" % (line, errors, stderr)
    assert hits[0][1] in (3, col_of(text, "60 parsecs")), hits[0]


@pytest.mark.parametrize("value", ["-5s", "10x", "1.5.s", "s", "5 parsecs"])
def test_bad_duration_forms(mailgate_bin, certs, tmp_path, value):
    text = render(certs, tmp_path).replace("  request_header: 15s\n",
                                           "  request_header: \"%s\"\n" % value)
    path = tmp_path / "duration2.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, "request_header:")
    assert [e for e in errors if e[0] == line], \
        "duration %r: expected an error at line %d, got %r\n%s" % (value, line, errors, stderr)


def test_missing_cert_file(mailgate_bin, certs, tmp_path):
    missing = tmp_path / "nope" / "missing.pem"
    text = render(certs, tmp_path, rsa_cert=missing)
    path = tmp_path / "missing.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, str(missing))
    hits = [e for e in errors if e[0] == line]
    assert hits, "expected an error at line %d (missing cert file), got %r\n%s" % (
        line, errors, stderr)
    assert hits[0][1] in (11, col_of(text, "cert:"), col_of(text, str(missing))), hits[0]


def test_missing_ca_file(mailgate_bin, certs, tmp_path):
    missing = tmp_path / "missing-ca.pem"
    text = render(certs, tmp_path, ca=missing)
    path = tmp_path / "missing-ca.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    line = line_of(text, str(missing))
    assert [e for e in errors if e[0] == line], \
        "expected an error at line %d (missing CA file), got %r\n%s" % (line, errors, stderr)


def test_unwritable_access_log(mailgate_bin, certs, tmp_path):
    text = render(certs, tmp_path, access=tmp_path / "no-such-dir" / "access.log")
    path = tmp_path / "access.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    assert [e for e in errors if e[0] == 5], \
        "expected an error at line 5 (access log), got %r\n%s" % (errors, stderr)


def test_all_errors_reported(mailgate_bin, certs, tmp_path):
    """Loading does not stop at the first error."""
    text = (render(certs, tmp_path)
            .replace("  workers: 2\n", "  workers: 2\n  wrokers: 3\n")
            .replace("  idle: 60s\n", "  idle: soon\n"))
    path = tmp_path / "two.yaml"
    path.write_text(text)
    errors, stderr = expect_errors(mailgate_bin, path, text)
    lines = {e[0] for e in errors}
    assert {line_of(text, "wrokers"), line_of(text, "idle: soon")} <= lines, \
        "expected errors at both lines, got %r\n%s" % (errors, stderr)


def test_yaml_syntax_error(mailgate_bin, tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("server:\n  workers: [1, 2\nlog: {\n")
    r = run(mailgate_bin, "check", "-c", path)
    assert r.returncode == 1, r.stderr
    assert diagnostics(r.stderr, path), "no FILE:LINE:COL diagnostic:\n" + r.stderr


def test_missing_config_file(mailgate_bin, tmp_path):
    r = run(mailgate_bin, "check", "-c", tmp_path / "does-not-exist.yaml")
    assert r.returncode == 1, r.stderr
    assert "does-not-exist.yaml" in r.stderr


def test_run_refuses_bad_config(mailgate_bin, certs, tmp_path):
    """run shares check's load-validate-compile path: a bad config never starts."""
    text = render(certs, tmp_path).replace("  workers: 2\n", "  workers: 2\n  wrokers: 3\n")
    path = tmp_path / "bad-run.yaml"
    path.write_text(text)
    r = run(mailgate_bin, "run", "-c", path, timeout=20)
    assert r.returncode != 0
    assert [d for d in diagnostics(r.stderr, path) if d[0] == 3], r.stderr
