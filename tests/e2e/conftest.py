"""Fixtures for mailgate's end-to-end tests.

Run:  MAILGATE_BIN=build/release/mailgate /usr/bin/python3 -m pytest -q tests/e2e

  certs     (session) test CA + mailgate ECDSA/RSA certs + origin certs, made with openssl
  origin    the demo origin (examples/demo/origin.py) in a thread on 127.0.0.1:0
  mailgate  factory: mailgate(overrides) writes a config into tmp_path and starts
            `$MAILGATE_BIN run -c FILE`, returns a Mailgate once it listens
  mailgate_bin, base_config, write_config
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import util

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) \(listener (\S+)\)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes minutes (e.g. the testssl scan); CI runs it, "
                   "-m 'not slow' leaves it out")


# --------------------------------------------------------------------------- binary

@pytest.fixture(scope="session")
def mailgate_bin() -> str:
    path = os.environ.get("MAILGATE_BIN")
    if not path:
        pytest.fail("MAILGATE_BIN is not set: point it at the mailgate binary, e.g. "
                    "MAILGATE_BIN=build/release/mailgate /usr/bin/python3 -m pytest tests/e2e",
                    pytrace=False)
    p = Path(path)
    if not p.is_absolute():
        p = (Path.cwd() / p).resolve()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail("MAILGATE_BIN=%s is not an executable file" % path, pytrace=False)
    return str(p)


# --------------------------------------------------------------------------- certificates

@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> util.Certs:
    return util.make_certs(tmp_path_factory.mktemp("certs"))


# --------------------------------------------------------------------------- origin

def _start_origin(certs, cert=None, key=None):
    mod = util.origin_module()
    return mod.Origin(cert or certs.origin_cert, key or certs.origin_key,
                      verbose=bool(os.environ.get("ORIGIN_VERBOSE"))).start()


@pytest.fixture
def origin(certs):
    o = _start_origin(certs)
    yield o
    o.stop()


@pytest.fixture
def origin_factory(certs):
    """start_origin(cert=None, key=None) -> another origin (e.g. with the wrong.test cert)."""
    started = []

    def start(cert=None, key=None):
        o = _start_origin(certs, cert, key)
        started.append(o)
        return o

    yield start
    for o in started:
        o.stop()


# --------------------------------------------------------------------------- configuration

def make_base_config(certs: util.Certs, upstream_port: int, access_log) -> dict:
    """The equivalent of examples/demo.yaml for tests: port 0, 2 workers, the test certs,
    the origin on upstream_port, the access log into a file."""
    return {
        "server": {"workers": 2},
        "log": {"level": "info", "access": str(access_log)},
        "listeners": [{
            "name": "public",
            "address": "127.0.0.1:0",
            "tls": {
                "profile": "intermediate",
                "certificates": [
                    {"cert": str(certs.mail_ecdsa_cert), "key": str(certs.mail_ecdsa_key)},
                    {"cert": str(certs.mail_rsa_cert), "key": str(certs.mail_rsa_key)},
                ],
                "hsts": {"max_age": "2y", "include_subdomains": True},
            },
        }],
        "upstreams": [{
            "name": "exchange",
            "servers": ["127.0.0.1:%d" % upstream_port],
            "tls": {"server_name": "origin.test", "ca": str(certs.ca)},
            "pool": {"max_idle": 64, "idle_timeout": "60s"},
        }],
        "limits": {"request_line": "8KiB", "request_headers": "16KiB", "header_count": 100,
                   "request_body": "150MiB"},
        "timeouts": {"tls_handshake": "10s", "request_header": "15s", "idle": "60s",
                     "upstream_connect": "5s", "upstream_response": "120s", "send": "60s"},
        "locations": [
            {"path": "/", "upstream": "exchange"},
            {"path": "/Microsoft-Server-ActiveSync", "kind": "activesync", "upstream": "exchange",
             "timeouts": {"upstream_response": "3660s", "idle": "3660s"}},
            {"path": "/owa", "upstream": "exchange"},
        ],
    }


@pytest.fixture
def base_config(certs, origin, tmp_path):
    """A fresh copy of the template config dict for this test's origin."""
    return make_base_config(certs, origin.port, tmp_path / "access.log")


# --------------------------------------------------------------------------- mailgate

class Mailgate:
    """A running `mailgate run -c FILE`."""

    def __init__(self, proc, config_path: Path, access_log_path, ca):
        self.proc = proc
        self.pid = proc.pid
        self.config_path = config_path
        self.access_log_path = Path(access_log_path) if access_log_path else None
        self.ca = ca
        self.listening = []  # [(port, listener name)] in the order printed
        self._stderr = []
        self._stdout = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stderr, self._stderr), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stdout, self._stdout), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink):
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace")
            with self._cond:
                sink.append(text)
                m = LISTENING.search(text) if sink is self._stderr else None
                if m:
                    self.listening.append((int(m.group(1)), m.group(2)))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    @property
    def stdout(self) -> str:
        with self._cond:
            return "".join(self._stdout)

    @property
    def port(self) -> int:
        return self.listening[0][0]

    @property
    def ports(self) -> list:
        return [p for p, _ in self.listening]

    def wait_listening(self, count: int = 1, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.listening) < count:
                if self.proc.poll() is not None:
                    # give the pumps a moment to collect the last lines
                    self._cond.wait(0.2)
                    raise AssertionError(
                        "mailgate exited with %s before listening; stderr:\n%s\nstdout:\n%s" % (
                            self.proc.returncode, "".join(self._stderr), "".join(self._stdout)))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "mailgate did not print %d 'listening on 127.0.0.1:PORT (listener NAME)' "
                        "line(s) within %.0fs; stderr so far:\n%s" % (
                            count, timeout, "".join(self._stderr)))
                self._cond.wait(min(remaining, 0.1))

    def wait_stderr(self, pattern, timeout: float = 10.0):
        """Wait for a regex in stderr; returns the match or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search("".join(self._stderr))
                if m:
                    return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.1))

    # -- access log --
    def access_lines(self) -> list:
        if self.access_log_path is None:
            text = self.stdout
        else:
            try:
                text = self.access_log_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return []
        return [line for line in text.splitlines() if line.strip()]

    def access_records(self) -> list:
        return [json.loads(line) for line in self.access_lines()]

    def wait_access(self, count: int, timeout: float = 10.0) -> list:
        """Wait until the access log holds at least count lines; returns the parsed records."""
        util.wait_until(lambda: len(self.access_lines()) >= count, timeout)
        return self.access_records()

    # -- process --
    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)
        return self.proc.returncode

    def url(self, path: str = "/") -> str:
        return "https://localhost:%d%s" % (self.port, path)


@pytest.fixture
def write_config(tmp_path):
    """write_config(text_or_dict, name='mailgate.yaml') -> Path in tmp_path."""

    def write(config, name: str = "mailgate.yaml") -> Path:
        text = config if isinstance(config, str) else util.to_yaml(config)
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def start_mailgate(mailgate_bin, certs, workdir: Path, config, *, wait=True,
                   name="mailgate.yaml", access_log=None) -> Mailgate:
    """Write config (dict or YAML text) into workdir and start `mailgate run -c FILE`."""
    if isinstance(config, dict):
        access = config.get("log", {}).get("access", "stdout")
        access_log = None if access in ("stdout", "off") else access
        text = util.to_yaml(config)
        expected = sum(len(l["address"]) if isinstance(l.get("address"), list) else 1
                       for l in config.get("listeners", []))
    else:
        text = config
        expected = 1
    path = Path(workdir) / name
    path.write_text(text)
    proc = subprocess.Popen([mailgate_bin, "run", "-c", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(workdir))
    mg = Mailgate(proc, path, access_log, certs.ca)
    if wait:
        try:
            mg.wait_listening(max(1, expected))
        except BaseException:
            mg.stop()
            raise
    return mg


@pytest.fixture
def mailgate(mailgate_bin, certs, tmp_path, request):
    """Factory: mailgate(overrides=None, *, upstream_port=None, config=None, wait=True).

    overrides: dict deep-merged into the template (lists replace; util.DELETE removes a key),
               or a callable(dict) that edits the template in place.
    config:    a full config (dict or YAML text) used instead of the template.
    upstream_port: origin port for the template (default: the `origin` fixture's port).
    """
    started = []

    def start(overrides=None, *, upstream_port=None, config=None, wait=True,
              name=None):
        n = len(started) + 1
        if config is None:
            if upstream_port is None:
                upstream_port = request.getfixturevalue("origin").port
            config = make_base_config(certs, upstream_port, tmp_path / ("access-%d.log" % n))
            if callable(overrides):
                overrides(config)
            elif overrides:
                config = util.deep_merge(config, overrides)
        mg = start_mailgate(mailgate_bin, certs, tmp_path, config, wait=False,
                            name=name or "mailgate-%d.yaml" % n)
        started.append(mg)
        if wait:
            mg.wait_listening(max(1, sum(
                len(l["address"]) if isinstance(l.get("address"), list) else 1
                for l in config.get("listeners", []))) if isinstance(config, dict) else 1)
        return mg

    yield start
    for mg in started:
        mg.stop()
    # Make the process output visible in the report of a failing test.
    for i, mg in enumerate(started):
        err = mg.stderr
        if err:
            print("---- mailgate #%d stderr (pid %d, exit %s) ----\n%s" % (
                i + 1, mg.pid, mg.proc.returncode, err[-20000:]))
