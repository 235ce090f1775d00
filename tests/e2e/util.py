"""Helpers for mailgate's end-to-end tests: certificates, YAML, raw HTTP/TLS clients,
curl and openssl wrappers, RSS sampling, corpus parsing. Standard library only."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ORIGIN_PY = REPO / "examples" / "demo" / "origin.py"
CORPUS_DIR = REPO / "tests" / "corpus" / "http"

_origin_module = None


def origin_module():
    """examples/demo/origin.py, imported once (it is not a package)."""
    global _origin_module
    if _origin_module is None:
        spec = importlib.util.spec_from_file_location("mailgate_demo_origin", ORIGIN_PY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        _origin_module = mod
    return _origin_module


# --------------------------------------------------------------------------- certificates

@dataclasses.dataclass
class Certs:
    dir: Path
    ca: Path
    ca_key: Path
    mail_ecdsa_cert: Path
    mail_ecdsa_key: Path
    mail_rsa_cert: Path
    mail_rsa_key: Path
    origin_cert: Path
    origin_key: Path
    wrong_cert: Path
    wrong_key: Path


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s%s" % (
            " ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
    return r.stdout


def _genkey(path: Path, kind: str):
    if kind == "ec":
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path)
    else:
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    os.chmod(path, 0o600)


def _leaf(d: Path, name: str, kind: str, cn: str, sans: list, ca: Path, ca_key: Path):
    key = d / (name + ".key")
    cert = d / (name + ".pem")
    csr = d / (name + ".csr")
    ext = d / (name + ".ext")
    _genkey(key, kind)
    _openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
    usage = "digitalSignature" if kind == "ec" else "digitalSignature,keyEncipherment"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,%s\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=%s\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n" % (usage, ",".join(sans)))
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAserial", d / "ca.srl", "-CAcreateserial", "-days", "30", "-sha256",
             "-extfile", ext, "-out", cert)
    return cert, key


def make_certs(d: Path) -> Certs:
    """A test CA and, signed by it: mailgate's ECDSA P-256 and RSA 2048 certificates for
    localhost/127.0.0.1, the origin's for origin.test/127.0.0.1, and a wrong.test one."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = d / "ca.key"
    ca = d / "ca.pem"
    _genkey(ca_key, "ec")
    _openssl("req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", "30",
             "-subj", "/CN=mailgate e2e test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash",
             "-out", ca)
    local = ["DNS:localhost", "IP:127.0.0.1"]
    ec_cert, ec_key = _leaf(d, "mail-ecdsa", "ec", "localhost", local, ca, ca_key)
    rsa_cert, rsa_key = _leaf(d, "mail-rsa", "rsa", "localhost", local, ca, ca_key)
    o_cert, o_key = _leaf(d, "origin", "ec", "origin.test", ["DNS:origin.test", "IP:127.0.0.1"],
                          ca, ca_key)
    w_cert, w_key = _leaf(d, "wrong", "ec", "wrong.test", ["DNS:wrong.test"], ca, ca_key)
    return Certs(d, ca, ca_key, ec_cert, ec_key, rsa_cert, rsa_key, o_cert, o_key, w_cert, w_key)


# --------------------------------------------------------------------------- YAML

DELETE = object()  # in an override dict: remove this key from the template

_PLAIN = re.compile(r"^[A-Za-z0-9_./-][A-Za-z0-9_./@+-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


def _scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v.lower() not in _YAML_WORDS and not re.match(r"^[0-9.+-]+$", v):
            return v
        return json.dumps(v)  # a JSON string is a valid YAML double-quoted scalar
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join("%s: %s" % (_scalar(k), _scalar(x)) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    raise TypeError("cannot write %r as YAML" % (v,))


def _is_block(v) -> bool:
    if isinstance(v, dict):
        return bool(v) and any(isinstance(x, (dict, list, tuple)) for x in v.values()) or len(v) > 4
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, dict) for x in v)
    return False


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for nested dicts/lists of scalars (enough for mailgate configs)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if _is_block(v):
                out.append("%s%s:\n%s" % (pad, _scalar(k), to_yaml(v, indent + 2)))
            else:
                out.append("%s%s: %s\n" % (pad, _scalar(k), _scalar(v)))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            if isinstance(item, dict) and _is_block(item):
                inner = to_yaml(item, indent + 2)
                out.append("%s- %s" % (pad, inner[indent + 2:]))
            else:
                out.append("%s- %s\n" % (pad, _scalar(item)))
    else:
        out.append(pad + _scalar(obj) + "\n")
    return "".join(out)


def deep_merge(base, override):
    """A copy of base with override merged in: dicts merge recursively, anything else
    replaces; a DELETE value removes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    out = dict(base)
    for k, v in override.items():
        if v is DELETE:
            out.pop(k, None)
        elif k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- HTTP over raw TLS

def client_context(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_connect(port: int, ca, *, timeout: float = 10.0, server_hostname: str = "localhost",
                host: str = "127.0.0.1") -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return client_context(ca).wrap_socket(raw, server_hostname=server_hostname)
    except Exception:
        raw.close()
        raise


@dataclasses.dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list  # [(name, value)]
    body: bytes
    raw_head: bytes

    def header(self, name: str, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def values(self, name: str) -> list:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has(self, name: str) -> bool:
        return bool(self.values(name))

    def json(self):
        return json.loads(self.body)


class ConnectionClosed(Exception):
    pass


class HTTPReader:
    """Reads HTTP/1.1 responses from a socket, one after another (pipelining-friendly)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if not self._fill():
                raise ConnectionClosed("connection closed (%d bytes pending: %r)" % (
                    len(self.buf), bytes(self.buf[:200])))

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("connection closed after %d of %d body bytes" % (
                    len(self.buf), n))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_head(self):
        raw = bytearray()
        line = self._line()
        raw += line
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?\r?\n$", line)
        if not m:
            raise AssertionError("not an HTTP status line: %r" % line)
        headers = []
        while True:
            line = self._line()
            raw += line
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            headers.append((name, value.strip()))
        return (m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"),
                headers, bytes(raw))

    def read_response(self, *, method: str = "GET", skip_interim: bool = True) -> Response:
        while True:
            version, status, reason, headers, raw = self.read_head()
            if 100 <= status < 200 and skip_interim:
                continue
            break
        r = Response(version, status, reason, headers, b"", raw)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", "response Transfer-Encoding %r" % te
            body = bytearray()
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            while self._line() not in (b"\r\n", b"\n"):
                pass
            r.body = bytes(body)
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            while self._fill():
                pass
            r.body = bytes(self.buf)
            self.buf.clear()
        return r

    def wait_closed(self, timeout: float = 10.0) -> bytes:
        """Read until EOF; returns the extra bytes. Raises socket.timeout if still open."""
        self.sock.settimeout(timeout)
        extra = bytearray(self.buf)
        self.buf.clear()
        while True:
            try:
                data = self.sock.recv(65536)
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                self.eof = True
                return bytes(extra)
            extra += data


def is_closed(sock, timeout: float) -> bool:
    """True if the peer closes the connection (EOF or reset) within timeout, ignoring data."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                return True
    except (ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
        return True
    except (socket.timeout, TimeoutError):
        return False
    except ssl.SSLError:
        return True


def request_bytes(method: str, target: str, host: str, headers=(), body: bytes = b"",
                  *, content_length: bool = True) -> bytes:
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host]
    lines += ["%s: %s" % kv for kv in headers]
    if body and content_length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------- curl / openssl

@dataclasses.dataclass
class CurlResult:
    returncode: int
    status: int | None
    headers: list
    body: bytes
    stderr: str
    elapsed: float

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def has(self, name) -> bool:
        return self.header(name) is not None


def curl(url_path: str, port: int, ca, *args, timeout: float = 60.0, input_data=None,
         host: str = "localhost") -> CurlResult:
    """curl https://localhost:PORT<url_path> with the test CA; headers of the final
    response parsed (interim 1xx dropped)."""
    url = "https://%s:%d%s" % (host, port, url_path)
    cmd = ["curl", "-sS", "--http1.1", "--cacert", str(ca),
           "--resolve", "%s:%d:127.0.0.1" % (host, port),
           "--max-time", str(int(timeout)), "-D", "/dev/stderr", "-o", "-", *map(str, args), url]
    t0 = time.monotonic()
    # headers go to stderr (-D /dev/stderr) so that stdout is exactly the body
    p = subprocess.run(cmd, input=input_data, capture_output=True, timeout=timeout + 10)
    elapsed = time.monotonic() - t0
    err = p.stderr.decode("latin-1")
    status, headers = None, []
    blocks = re.split(r"\r\n\r\n", err)
    for block in blocks:
        lines = block.lstrip("\r\n").split("\r\n")
        m = re.match(r"^HTTP/\S+ (\d{3})", lines[0]) if lines else None
        if m and not 100 <= int(m.group(1)) < 200:
            status = int(m.group(1))
            headers = []
            for line in lines[1:]:
                n, sep, v = line.partition(":")
                if sep:
                    headers.append((n, v.strip()))
    return CurlResult(p.returncode, status, headers, p.stdout, err, elapsed)


def s_client(port: int, ca, *args, timeout: float = 20.0, servername: str = "localhost"):
    """openssl s_client against mailgate, stdin closed. Returns (returncode, output)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", servername,
           "-CAfile", str(ca), *map(str, args)]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def handshake_ok(output: str) -> bool:
    m = re.search(r"^(?:New|Reused), (\S+), Cipher is (\S+)", output, re.M)
    return bool(m) and m.group(2) != "(NONE)"


def negotiated(output: str):
    """(protocol, cipher) from s_client output, or (None, None)."""
    m = re.search(r"^(?:New|Reused), (\S+), Cipher is (\S+)", output, re.M)
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", output, re.M)
    if not m or m.group(2) == "(NONE)":
        return None, None
    return (proto.group(1) if proto else m.group(1)), m.group(2)


def leaf_key_type(output: str) -> str:
    """'EC' or 'RSA': the public key type of the first certificate s_client printed."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", output, re.S)
    assert m, "no server certificate in s_client output:\n" + output
    p = subprocess.run(["openssl", "x509", "-noout", "-text"], input=m.group(0),
                       capture_output=True, text=True, timeout=20)
    if "id-ecPublicKey" in p.stdout:
        return "EC"
    if "rsaEncryption" in p.stdout:
        return "RSA"
    return "unknown:" + p.stdout[:400]


# --------------------------------------------------------------------------- RSS sampling

def rss_kib(pid: int):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of a process every interval seconds from a thread; .peak_kib."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                self.peak_kib = max(self.peak_kib, v)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._run_once()
        self._thread.start()
        return self

    def _run_once(self):
        v = rss_kib(self.pid)
        if v is not None:
            self.peak_kib = max(self.peak_kib, v)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self._run_once()


# --------------------------------------------------------------------------- corpus

@dataclasses.dataclass
class CorpusCase:
    path: Path
    expect: str  # "pass" or a status such as "400"
    data: bytes
    comments: list


_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text: str) -> bytes:
    """\\r \\n \\t \\0 \\\\ \\xHH escapes and the {{repeat:X:N}} macro (X may be an escape)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("{{repeat:", i):
            end = text.find("}}", i)
            if end < 0:
                raise ValueError("unterminated {{repeat:...}} at %d" % i)
            body = text[i + len("{{repeat:"):end]
            what, sep, count = body.rpartition(":")
            if not sep or not count.strip().isdigit():
                raise ValueError("bad repeat macro {{repeat:%s}}" % body)
            out += unescape(what) * int(count)
            i = end + 2
            continue
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                raise ValueError("trailing backslash")
            e = text[i + 1]
            if e in _ESCAPES:
                out += _ESCAPES[e]
                i += 2
                continue
            if e == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            raise ValueError("unknown escape \\%s" % e)
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def parse_corpus_file(path: Path) -> CorpusCase:
    lines = path.read_text(encoding="utf-8").splitlines()
    comments, expect, raw = [], None, []
    for line in lines:
        if expect is None:
            if line.startswith("#") or not line.strip():
                comments.append(line)
                continue
            m = re.match(r"^expect:\s*(\d{3}|pass)\s*$", line.strip())
            if not m:
                raise ValueError("%s: expected an 'expect: NNN|pass' line, got %r" % (path, line))
            expect = m.group(1)
            continue
        raw.append(line)
    if expect is None:
        raise ValueError("%s: no expect: line" % path)
    return CorpusCase(path, expect, unescape("".join(raw)), comments)


def corpus_files():
    return sorted(CORPUS_DIR.glob("*.txt"))


# --------------------------------------------------------------------------- misc

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    """A loopback port free right now (for an admin endpoint and the like)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# Under ASan the resident set measures the sanitizer (shadow memory, the quarantine of
# freed blocks), not mailgate: the memory bounds are asserted on unsanitized builds only.
SANITIZED = os.environ.get("MAILGATE_SANITIZED") == "1"
RSS_LIMIT_KIB = 96 * 1024


def rss_within_bound(kib):
    return SANITIZED or (kib is not None and kib < RSS_LIMIT_KIB)
