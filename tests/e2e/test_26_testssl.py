"""testssl.sh (Debian's `testssl`, installed by scripts/install-deps.sh) against mailgate on
the demo configuration: the demo listener's TLS settings (profile, HSTS, the ECDSA and RSA
certificates that scripts/demo-certs.sh makes) on a loopback port, the demo origin behind it.

No finding of severity MEDIUM or above is allowed, with the exclusions in EXCLUDED (findings
that come from the certificates being made by a private test CA, not from mailgate). testssl
is kept to loopback: the target is given as an IP (--ip), DNS lookups are off (--nodns none),
its probe of the local openssl uses 127.0.0.1:0 instead of resolving "invalid." (NXCONNECT),
and nothing is fetched from CRL or OCSP servers (no --phone-out).

Slow (minutes: testssl is a shell script that runs openssl thousands of times), marked `slow`;
CI runs it in the release pass. Run alone, with testssl's summary printed:
  MAILGATE_BIN=build/release/mailgate /usr/bin/python3 -m pytest -q -s tests/e2e/test_26_testssl.py
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import util
from conftest import make_base_config, start_mailgate

DEMO_CONFIG = util.REPO / "examples" / "demo.yaml"
DEMO_CERTS = util.REPO / "scripts" / "demo-certs.sh"

# -p protocols, -s cipher categories, -f forward secrecy, -P server cipher order, -S server
# defaults (certificates, extensions, tickets), -h HTTP headers (HSTS), -U vulnerabilities.
# testssl's default run adds -e (each of ~370 ciphers, reported as INFO only) and -c (client
# simulations, INFO only): they cannot produce a finding this test fails on, and the full run
# took 7 minutes where this one takes 3.5 to 5 (2 cores, busy).
CHECKS = ["-p", "-s", "-f", "-P", "-S", "-h", "-U"]
TESTSSL_TIMEOUT = 1500  # seconds

FAILING = ("MEDIUM", "HIGH", "CRITICAL")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK", "DEBUG")

# Findings that are about the test PKI, not about mailgate (ids without the " <cert#N>"
# suffix testssl adds per certificate). Keep this list minimal.
EXCLUDED = {
    # "Neither CRL nor OCSP URI provided" (HIGH): the demo CA made by scripts/demo-certs.sh
    # runs no CRL or OCSP service, so its certificates carry no CRL distribution point or OCSP
    # URI. A certificate from a real CA has them; mailgate serves the certificate as issued.
    "cert_revocation",
}

# The sections of testssl's JSON (scanResult[0]) that a run of CHECKS must fill.
REQUIRED_SECTIONS = ("protocols", "ciphers", "pfs", "serverPreferences", "serverDefaults",
                     "headerResponse", "vulnerabilities")
# Shown in the printed summary, in this order.
SUMMARY_SECTIONS = ("rating", "protocols", "ciphers", "pfs", "serverPreferences",
                    "vulnerabilities")


def find_testssl():
    return shutil.which("testssl") or shutil.which("testssl.sh")


def demo_listener_tls() -> str:
    """The `tls:` block of the demo's listener in examples/demo.yaml, as text (there is no
    YAML parser in the test dependencies)."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    m = re.search(r"^listeners:\n(.*?)^\S", text, re.M | re.S)
    assert m, "no listeners: section in %s" % DEMO_CONFIG
    m = re.search(r"^( +)tls:\n((?:\1 +.*\n)+)", m.group(1), re.M)
    assert m, "no tls: block in the listener of %s" % DEMO_CONFIG
    return m.group(2)


def check_demo_settings(config: dict):
    """The template config must reproduce the demo listener's TLS settings; if demo.yaml
    changes, this test must follow it."""
    block = demo_listener_tls()
    keys = set(re.findall(r"^\s*(\w+):", block, re.M))
    assert keys == {"profile", "certificates", "hsts"}, (
        "the demo listener's tls settings are now %s; update test_26_testssl.py to run "
        "testssl against them:\n%s" % (sorted(keys), block))
    tls = config["listeners"][0]["tls"]
    profile = re.search(r"^\s*profile:\s*(\S+)\s*$", block, re.M).group(1)
    assert profile == tls["profile"], "demo profile %s, test %s" % (profile, tls["profile"])
    hsts = re.search(r"^\s*hsts:\s*\{\s*max_age:\s*(\S+?),\s*include_subdomains:\s*(\w+)\s*\}",
                     block, re.M)
    assert hsts, "the demo's hsts setting changed; update the test:\n" + block
    assert hsts.group(1) == tls["hsts"]["max_age"], block
    assert (hsts.group(2) == "true") == tls["hsts"]["include_subdomains"], block
    certs = re.findall(r"cert:\s*demo/certs/(\S+?)\.pem", block)
    assert certs == ["mail-ecdsa", "mail-rsa"], "demo certificates: %s" % certs


def findings(result: dict):
    """(section, entry) for every finding in testssl's pretty JSON scan result."""
    for section, entries in result.items():
        if isinstance(entries, list):
            for e in entries:
                if isinstance(e, dict) and "severity" in e:
                    yield section, e


def base_id(finding_id: str) -> str:
    return re.sub(r"\s*<cert#\d+>$", "", finding_id)


def print_summary(doc: dict, result: dict, log_path, json_path, elapsed: float):
    out = ["", "==== testssl %s summary: %s:%s (%s), %.0f s (testssl scanTime %ss) ====" % (
        doc.get("version", "?").split()[0], result.get("targetHost"), result.get("port"),
        result.get("ip"), elapsed, doc.get("scanTime", "?"))]
    for section in SUMMARY_SECTIONS:
        entries = result.get(section)
        if not entries:
            if section == "rating":
                out.append("[rating] (none: this testssl version has no rating section)")
            continue
        out.append("[%s]" % section)
        for e in entries:
            out.append("  %-34s %-8s %s" % (e.get("id"), e.get("severity"),
                                             e.get("finding", "")))
    per_section = collections.OrderedDict()
    totals = collections.Counter()
    for section, e in findings(result):
        per_section.setdefault(section, collections.Counter())[e["severity"]] += 1
        totals[e["severity"]] += 1
    order = lambda c: ", ".join("%s %d" % (s, c[s]) for s in SEVERITIES if c[s]) or "-"
    out.append("[findings per severity] %s" % order(totals))
    for section, c in per_section.items():
        out.append("  %-20s %s" % (section, order(c)))
    out.append("testssl text output: %s" % log_path)
    out.append("testssl JSON:        %s" % json_path)
    print("\n".join(out))


@pytest.mark.slow
@pytest.mark.skipif(util.SANITIZED,
                    reason="minutes long even unsanitized; the release pass runs it")
def test_testssl_demo_configuration(mailgate_bin, certs, origin, tmp_path):
    testssl = find_testssl()
    if testssl is None:
        pytest.fail("testssl is not installed: run scripts/install-deps.sh (Debian package "
                    "testssl.sh)", pytrace=False)

    # The demo's own certificates, made by the demo's script into this test's directory.
    demo_certs = tmp_path / "demo-certs"
    r = subprocess.run(["bash", str(DEMO_CERTS), str(demo_certs)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "demo-certs.sh failed:\n%s%s" % (r.stdout, r.stderr)

    config = make_base_config(certs, origin.port, tmp_path / "access.log")
    check_demo_settings(config)
    config["listeners"][0]["tls"]["certificates"] = [
        {"cert": str(demo_certs / "mail-ecdsa.pem"), "key": str(demo_certs / "mail-ecdsa.key")},
        {"cert": str(demo_certs / "mail-rsa.pem"), "key": str(demo_certs / "mail-rsa.key")},
    ]
    mg = start_mailgate(mailgate_bin, certs, tmp_path, config)
    try:
        json_path = tmp_path / "testssl.json"
        log_path = tmp_path / "testssl.txt"
        cmd = [testssl, "--quiet", "--color", "0", "--warnings", "off",
               "--nodns", "none", "--ip", "127.0.0.1",
               # trust the demo CA, so that the chain of trust is checked, not excluded
               "--add-ca", str(demo_certs / "ca.pem"),
               "--jsonfile-pretty", str(json_path), "--logfile", str(log_path),
               *CHECKS, "localhost:%d" % mg.port]
        env = dict(os.environ, NXCONNECT="127.0.0.1:0")
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TESTSSL_TIMEOUT, env=env, cwd=str(tmp_path))
        elapsed = time.monotonic() - t0
        assert mg.proc.poll() is None, "mailgate died during the scan:\n" + mg.stderr
    finally:
        mg.stop()

    tail = "\n".join((p.stdout + p.stderr).splitlines()[-60:])
    assert json_path.is_file(), "testssl wrote no JSON (exit %d):\n%s" % (p.returncode, tail)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(doc.get("scanResult", [])) == 1, "testssl scanned %d targets:\n%s" % (
        len(doc.get("scanResult", [])), tail)
    result = doc["scanResult"][0]
    print_summary(doc, result, log_path, json_path, elapsed)

    empty = [s for s in REQUIRED_SECTIONS if not result.get(s)]
    assert not empty, "testssl reported nothing for %s (exit %d):\n%s" % (empty, p.returncode,
                                                                          tail)
    bad, excluded, problems = [], [], []
    for section, e in findings(result):
        line = "%s: %s %s: %s" % (section, e["severity"], e["id"], e.get("finding", ""))
        if e["severity"] in FAILING:
            (excluded if base_id(e["id"]) in EXCLUDED else bad).append(line)
        elif e["severity"] == "WARN" and section in ("protocols", "ciphers", "vulnerabilities",
                                                     "cipherTests", "fs", "serverPreferences"):
            # testssl could not run or finish a security check: its verdict is missing
            problems.append(line)
        elif e["severity"] == "WARN":
            # e.g. serverDefaults' session resumption probe on a loaded machine: informative
            print("testssl warning (not a protocol/cipher/vulnerability check): " + line)
    if excluded:
        print("excluded (test PKI):\n  " + "\n  ".join(excluded))
    assert not bad, "testssl findings of severity MEDIUM or above:\n  " + "\n  ".join(bad)
    assert not problems, "testssl could not complete some checks:\n  " + "\n  ".join(problems)
    # testssl's exit code counts its own trouble (a probe that could not connect); the
    # verdicts above are what matter, so a non-zero code is reported, not failed on.
    if p.returncode != 0:
        print("testssl exited with %d" % p.returncode)
