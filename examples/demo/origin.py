#!/usr/bin/python3
"""A small TLS HTTP/1.1 origin that answers like an Exchange front end.

Standard library only (Debian's /usr/bin/python3). Two uses:

* the demo origin behind mailgate::

      /usr/bin/python3 examples/demo/origin.py --listen 127.0.0.1:9443 \
          --cert demo/certs/exchange.pem --key demo/certs/exchange.key

* a test fixture: ``Origin(cert, key).start()`` serves on 127.0.0.1:0 from a background
  thread; ``.port`` is the bound port and the counters say what reached it.

Exchange-like behaviour (what mailgate sits in front of):
  OPTIONS /Microsoft-Server-ActiveSync  200 with MS-ASProtocolVersions / MS-ASProtocolCommands
  POST    /Microsoft-Server-ActiveSync  401 (Basic realm="mail") without Authorization, else
                                        200 with an empty WBXML document
  GET     /owa, /owa/...                200 small HTML page
  POST/GET /EWS/Exchange.asmx           connection-bound NTLM handshake, as IIS does it (below)
  POST    /mapi/emsmdb                  chunked MAPI/HTTP response with PENDING keep-alives
  RPC_IN_DATA, RPC_OUT_DATA /rpc/rpcproxy.dll
                                        RPC over HTTP channels with 1 GiB Content-Lengths
  anything else                         404
Every response carries the headers a stock IIS/Exchange leaks (Server, X-Powered-By,
X-AspNet-Version, X-FEServer), so that the demo shows mailgate stripping them.

Test endpoints (always on, harmless):
  /echo                  200, JSON describing the request as received (method, raw target,
                         headers in order, body framing, body length and sha256, SNI)
  /download?size=N[&chunked=1][&slow_ms=M]
                         N bytes of bytes(range(256)) repeated, Content-Length or chunked,
                         optionally sleeping M ms between 64 KiB pieces
  /upload                reads the body, answers JSON {length, sha256}
  /close-mid             Content-Length 1000000, sends 1000 bytes, then closes the socket
  /status/NNN            answers status NNN
  /delay?ms=N            sleeps N ms before answering 200
  /respond-headers?h=Name:Value[&h=...]
                         200 with those extra response header fields
  /drop-after            200 (keep-alive, no Connection: close), then closes the connection

Exchange protocol test controls (paths compared case-insensitively):
  POST /Microsoft-Server-ActiveSync
      every POST answer carries X-Test-Target: <request target exactly as received>;
      X-Test-Hold-Ms: N      sleep N ms before answering (a held Ping);
      X-Test-Status: N       answer N with an empty body (Content-Length: 0) instead of the
                             401/200 above; a 451 also carries X-MS-Location: the value of
                             X-Test-Location, else EAS_MS_LOCATION
                             (https://mbx01.corp.local/Microsoft-Server-ActiveSync)
  /EWS/Exchange.asmx (GET or POST), state kept per connection:
      no Authorization       401 with WWW-Authenticate: Negotiate and WWW-Authenticate: NTLM
                             (200 "authenticated" once this connection has authenticated)
      NTLM/Negotiate type 1  401 WWW-Authenticate: NTLM <fake type 2>; the connection holds
                             the challenge
      NTLM/Negotiate type 3  200 "authenticated" and the connection is authenticated, if this
                             connection issued a challenge; else 401 and a violation
                             (401 instead with X-Test-Wrong-Password: 1)
      Basic                  200 with the password Correct-Horse-1, else 401 (failed logins)
  Expect: 100-continue with X-Test-Reject-Expect: N  N instead of 100 Continue, body unread
      ntlm_violations lists such type 3 messages; ntlm_connections_closed holds the ids of
      connections that served this path and were then closed by the peer.
  X-Test-Client: NAME on any request: connection_clients maps connection id -> names served;
      a connection serving two different names is recorded in ntlm_violations.
  POST /owa/auth.owa   OWA forms login (username=...&password=...): 302 Location /owa/ with
      a cadata cookie for the password Correct-Horse-1, else 302 back to
      /owa/auth/logon.aspx?...&reason=2; record["form_user"] is the user the form named
  POST /mapi/emsmdb
      reads the body, then a chunked 200 (application/mapi-http, X-ResponseCode: 0):
      X-Test-Chunks (default 3) chunks "PENDING" CRLF, each after X-Test-Interval-Ms
      (default 500) ms, then "DONE" CRLF and the last chunk; mapi_chunk_times holds the
      time.monotonic() of each data chunk sent, one list per response.
  RPC_IN_DATA /rpc/rpcproxy.dll
      reads the body as it arrives, never waiting for all of it (Content-Length up to
      2 GiB): rpc_in_bytes counts the bytes, rpc_in_pieces lists (time.monotonic(), n) per
      piece; ends when the peer closes (200, empty, if the whole body arrives).
  RPC_OUT_DATA /rpc/rpcproxy.dll
      200 with Content-Length: 1073741824, "PDU" LF 5 times 200 ms apart, then holds the
      connection until the peer closes it.
Connection ids are the per-accepted-connection counter (1, 2, ...), as /echo reports them.
The origin decodes Content-Length and chunked request bodies itself and never trusts a
request that frames its body both ways (400, close).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import email.utils
import hashlib
import http
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

__all__ = ["Origin", "Stats", "pattern_bytes", "pattern_sha256", "PIECE"]

PIECE = 64 * 1024
# 64 KiB of the download pattern. 65536 is a multiple of 256, so every piece of a download
# starts at pattern offset 0 and the pattern of N bytes is PATTERN_BLOCK repeated, cut at N.
PATTERN_BLOCK = bytes(range(256)) * (PIECE // 256)

MAX_LINE = 64 * 1024
MAX_HEADERS = 256

EAS_VERSIONS = "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
EAS_COMMANDS = (
    "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,"
    "DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,"
    "MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,"
    "Provision,ResolveRecipients,ValidateCert,Find"
)
# What a stock Exchange 2019 front end says about itself; mailgate removes these.
LEAKY_HEADERS = [
    ("Server", "Microsoft-IIS/10.0"),
    ("X-Powered-By", "ASP.NET"),
    ("X-AspNet-Version", "4.0.30319"),
    ("X-FEServer", "EXCH01"),
]
WBXML_EMPTY = b"\x03\x01\x6a\x00"  # WBXML 1.3, public id 1, UTF-8, empty string table
EAS_MS_LOCATION = "https://mbx01.corp.local/Microsoft-Server-ActiveSync"
BASIC_PASSWORD = "Correct-Horse-1"  # the one password EWS Basic accepts
NTLM_SIGNATURE = b"NTLMSSP\0"
RPC_CHANNEL_LENGTH = 1073741824  # what Outlook and Exchange declare for an RPC over HTTP channel
OWA_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Outlook</title></head>\n"
    b"<body><h1>Outlook on the web</h1><p>mailgate demo origin</p></body></html>\n"
)


def pattern_bytes(n: int) -> bytes:
    """The first n bytes of the download pattern (bytes(range(256)) repeated)."""
    full, rest = divmod(n, PIECE)
    return PATTERN_BLOCK * full + PATTERN_BLOCK[:rest]


def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    full, rest = divmod(n, PIECE)
    for _ in range(full):
        h.update(PATTERN_BLOCK)
    h.update(PATTERN_BLOCK[:rest])
    return h.hexdigest()


class BadRequest(Exception):
    pass


class Stats:
    """Counters shared by all connection threads; read them through the properties."""

    def __init__(self, log_limit: int = 10000):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._connections = 0
        self._handshake_failures = []  # reasons
        self._requests = 0
        self._bytes_received = 0
        self._last_request = None
        self._log = collections.deque(maxlen=log_limit)
        self._paths = collections.Counter()
        self._open = 0
        self._conn_clients = {}  # connection id -> [X-Test-Client names] in order of first use
        self._ntlm_violations = []
        self._ntlm_closed = set()
        self._mapi_chunk_times = []  # one list of time.monotonic() per MAPI response
        self._rpc_in_bytes = 0
        self._rpc_in_pieces = []  # (time.monotonic(), n)

    # -- updates (origin side) --
    def connection_opened(self) -> int:
        with self._cond:
            self._connections += 1
            self._open += 1
            self._cond.notify_all()
            return self._connections

    def connection_closed(self):
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def handshake_failed(self, reason: str):
        with self._cond:
            self._handshake_failures.append(reason)
            self._cond.notify_all()

    def received(self, n: int):
        with self._cond:
            self._bytes_received += n

    def request_seen(self, record: dict):
        with self._cond:
            self._requests += 1
            self._last_request = record
            self._log.append(record)
            self._paths[record["path"]] += 1
            self._cond.notify_all()

    def request_done(self, record: dict):
        with self._cond:
            self._cond.notify_all()

    def client_seen(self, conn_id: int, name: str):
        with self._cond:
            names = self._conn_clients.setdefault(conn_id, [])
            if name not in names:
                if names:
                    self._ntlm_violations.append("connection %d served clients %s and %s"
                                                 % (conn_id, names[0], name))
                names.append(name)
            self._cond.notify_all()

    def ntlm_violation(self, text: str):
        with self._cond:
            self._ntlm_violations.append(text)
            self._cond.notify_all()

    def ntlm_connection_closed(self, conn_id: int):
        with self._cond:
            self._ntlm_closed.add(conn_id)
            self._cond.notify_all()

    def mapi_response_started(self) -> int:
        with self._cond:
            self._mapi_chunk_times.append([])
            return len(self._mapi_chunk_times) - 1

    def mapi_chunk_sent(self, index: int, t: float):
        with self._cond:
            self._mapi_chunk_times[index].append(t)
            self._cond.notify_all()

    def rpc_in_piece(self, n: int):
        with self._cond:
            self._rpc_in_bytes += n
            self._rpc_in_pieces.append((time.monotonic(), n))
            self._cond.notify_all()

    # -- reads (test side) --
    @property
    def connections(self) -> int:
        """TLS connections accepted (handshake completed)."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    @property
    def handshake_failures(self) -> list:
        with self._lock:
            return list(self._handshake_failures)

    @property
    def requests(self) -> int:
        """Request heads received and parsed."""
        with self._lock:
            return self._requests

    @property
    def bytes_received(self) -> int:
        """Application bytes (after TLS) read from all connections."""
        with self._lock:
            return self._bytes_received

    @property
    def last_request(self):
        with self._lock:
            return self._last_request

    @property
    def request_log(self) -> list:
        with self._lock:
            return list(self._log)

    @property
    def path_counts(self) -> dict:
        with self._lock:
            return dict(self._paths)

    @property
    def connection_clients(self) -> dict:
        """Connection id -> sorted X-Test-Client names it served."""
        with self._lock:
            return {c: sorted(n) for c, n in self._conn_clients.items()}

    @property
    def ntlm_violations(self) -> list:
        with self._lock:
            return list(self._ntlm_violations)

    @property
    def ntlm_connections_closed(self) -> set:
        """Ids of connections that served /EWS/Exchange.asmx and were closed by the peer."""
        with self._lock:
            return set(self._ntlm_closed)

    @property
    def mapi_chunk_times(self) -> list:
        with self._lock:
            return [list(t) for t in self._mapi_chunk_times]

    @property
    def rpc_in_bytes(self) -> int:
        """RPC_IN_DATA body bytes received so far (all connections)."""
        with self._lock:
            return self._rpc_in_bytes

    @property
    def rpc_in_pieces(self) -> list:
        with self._lock:
            return list(self._rpc_in_pieces)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "connections": self._connections,
                "handshake_failures": len(self._handshake_failures),
                "requests": self._requests,
                "bytes_received": self._bytes_received,
            }

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until predicate(self) is true (evaluated without holding the lock)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                self._cond.wait(min(remaining, 0.05))


class _Reader:
    """Buffered reads from a socket, counting the bytes received."""

    def __init__(self, sock, stats: Stats):
        self.sock = sock
        self.stats = stats
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(PIECE)
        if not data:
            return False
        self.stats.received(len(data))
        self.buf += data
        return True

    def readline(self) -> bytes:
        """One line including its LF; b'' on EOF before any byte; BadRequest if too long."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise BadRequest("line too long")
            start = len(self.buf)
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                if line:
                    raise BadRequest("EOF in the middle of a line")
                return b""

    def read_some(self, limit: int) -> bytes:
        if not self.buf and not self._fill():
            raise BadRequest("EOF in the body")
        n = min(limit, len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise BadRequest("EOF in the body")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _tokens(values) -> list:
    out = []
    for v in values:
        out.extend(t.strip().lower() for t in v.split(",") if t.strip())
    return out


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name, value)] in order as received
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))

    def values(self, name: str) -> list:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name: str, default=None):
        v = self.values(name)
        return v[0] if v else default

    @property
    def wants_close(self) -> bool:
        conn = _tokens(self.values("connection"))
        if self.version == "HTTP/1.0":
            return "keep-alive" not in conn
        return "close" in conn


class _ConnectionHandler:
    """Serves the requests of one TLS connection, one after another."""

    def __init__(self, sock, conn_id: int, origin: "Origin"):
        self.sock = sock
        self.conn_id = conn_id
        self.origin = origin
        self.stats = origin.stats
        self.reader = _Reader(sock, origin.stats)
        self.sni = getattr(sock, "_origin_sni", None)
        # NTLM state of this connection (/EWS/Exchange.asmx)
        self.ntlm_seen = False
        self.ntlm_challenge = None
        self.ntlm_authenticated = False

    # -- parsing --
    def read_head(self):
        line = self.reader.readline()
        while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before a request
            line = self.reader.readline()
        if not line:
            return None
        parts = line.rstrip(b"\r\n").decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("bad request line %r" % line[:200])
        method, target, version = parts  # any method token, e.g. RPC_IN_DATA
        headers = []
        while True:
            line = self.reader.readline()
            if not line:
                raise BadRequest("EOF in the head")
            if line in (b"\r\n", b"\n"):
                break
            if len(headers) >= MAX_HEADERS:
                raise BadRequest("too many header fields")
            text = line.rstrip(b"\r\n").decode("latin-1")
            if text[:1] in (" ", "\t"):
                headers.append(("", text))  # obs-fold, kept visible for /echo
                continue
            name, sep, value = text.partition(":")
            if not sep:
                raise BadRequest("header line without a colon")
            headers.append((name, value.strip(" \t")))
        return Request(method, target, version, headers)

    def body_framing(self, req: Request):
        te = req.values("transfer-encoding")
        cl = req.values("content-length")
        if te and cl:
            raise BadRequest("both Transfer-Encoding and Content-Length")
        if te:
            if _tokens(te) != ["chunked"]:
                raise BadRequest("unsupported Transfer-Encoding %r" % te)
            return "chunked", None
        if cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise BadRequest("bad Content-Length %r" % cl)
            return "content-length", int(cl[0])
        return "none", 0

    def read_body(self, framing: str, length, sink):
        """Feed the decoded body to sink(bytes); returns the trailer fields."""
        if framing == "content-length":
            left = length
            while left:
                data = self.reader.read_some(min(left, PIECE))
                left -= len(data)
                sink(data)
            return []
        if framing != "chunked":
            return []
        while True:
            line = self.reader.readline()
            if not line:
                raise BadRequest("EOF in chunked body")
            size_text = line.rstrip(b"\r\n").split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("bad chunk size %r" % line[:100])
            if size == 0:
                break
            left = size
            while left:
                data = self.reader.read_some(min(left, PIECE))
                left -= len(data)
                sink(data)
            if self.reader.readline() not in (b"\r\n", b"\n"):
                raise BadRequest("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self.reader.readline()
            if line in (b"\r\n", b"\n"):
                return trailers
            if not line:
                raise BadRequest("EOF in trailers")
            trailers.append(line.rstrip(b"\r\n").decode("latin-1"))

    # -- writing --
    def send_head(self, req, status, headers, *, length=None, chunked=False, close=False):
        lines = ["HTTP/1.1 %d %s" % (status, _reason(status))]
        lines += ["%s: %s" % kv for kv in LEAKY_HEADERS]
        lines.append("Date: %s" % email.utils.formatdate(usegmt=True))
        lines += ["%s: %s" % kv for kv in headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif length is not None:
            lines.append("Content-Length: %d" % length)
        if close:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, req, status, headers=(), body=b"", *, close=False):
        no_body = req is not None and req.method == "HEAD" or status in (204, 304)
        self.send_head(req, status, list(headers), length=None if status in (204, 304) else len(body),
                       close=close)
        if body and not no_body:
            self.sock.sendall(body)

    # -- main loop --
    def run(self):
        while True:
            try:
                req = self.read_head()
            except BadRequest as e:
                self.origin.log("bad request head: %s" % e)
                self._bad_request(None)
                return
            except (ConnectionError, ssl.SSLEOFError):
                self._peer_closed()
                raise
            if req is None:
                self._peer_closed()
                return
            record = {
                "conn": self.conn_id,
                "method": req.method,
                "target": req.target,
                "path": req.path,
                "version": req.version,
                "headers": [list(h) for h in req.headers],
                "sni": self.sni,
                "time": time.time(),
                "complete": False,
            }
            self.stats.request_seen(record)
            try:
                keep = self.dispatch(req, record)
            except BadRequest as e:
                record["error"] = str(e)
                self.origin.log("bad request: %s" % e)
                self._bad_request(req)
                return
            finally:
                self.stats.request_done(record)
            self.origin.log('%s "%s %s" %s' % (self.conn_id, req.method, req.target,
                                              record.get("status")))
            if not keep or req.wants_close:
                return

    def _peer_closed(self):
        if self.ntlm_seen:
            self.stats.ntlm_connection_closed(self.conn_id)

    def _bad_request(self, req):
        try:
            self.respond(req, 400, [("Content-Type", "text/plain")], b"bad request\n", close=True)
        except OSError:
            pass

    def dispatch(self, req: Request, record: dict) -> bool:
        client = req.header("x-test-client")
        if client is not None:
            self.stats.client_seen(self.conn_id, client)
        framing, length = self.body_framing(req)
        record["framing"] = framing
        if framing != "none" and (length or framing == "chunked"):
            if (req.header("expect", "").lower() == "100-continue"
                    and req.version == "HTTP/1.1"):
                record["expect_continue"] = True
                reject = req.header("x-test-reject-expect")
                if reject:
                    # A final answer instead of 100 Continue: the body is never read.
                    record["status"] = int(reject)
                    self.respond(req, int(reject), [("Content-Type", "text/plain")],
                                 b"declined\n", close=True)
                    return False
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        path = req.path.lower()
        if path == "/rpc/rpcproxy.dll" and req.method == "RPC_IN_DATA":
            return self.rpc_in_data(req, record, framing, length)
        h = hashlib.sha256()
        count = [0]
        head = bytearray()  # the first 8 KiB, for forms

        def sink(data):
            h.update(data)
            count[0] += len(data)
            if len(head) < 8192:
                head.extend(data[:8192 - len(head)])

        record["trailers"] = self.read_body(framing, length, sink)
        record["body_length"] = count[0]
        record["body_sha256"] = h.hexdigest()
        record["complete"] = True
        close = req.wants_close

        status, headers, body = 404, [("Content-Type", "text/html")], b"<h1>404 Not Found</h1>\n"
        if path == "/echo":
            info = {
                "method": req.method,
                "target": req.target,
                "version": req.version,
                "headers": [list(x) for x in req.headers],
                "framing": framing,
                "body_length": count[0],
                "body_sha256": h.hexdigest(),
                "trailers": record["trailers"],
                "sni": self.sni,
                "connection": self.conn_id,
                "expect_continue": record.get("expect_continue", False),
            }
            status, headers = 200, [("Content-Type", "application/json")]
            body = json.dumps(info).encode() + b"\n"
        elif path == "/upload":
            status, headers = 200, [("Content-Type", "application/json")]
            body = json.dumps({"length": count[0], "sha256": h.hexdigest()}).encode() + b"\n"
        elif path == "/download":
            return self.download(req, record, close)
        elif path == "/close-mid":
            record["status"] = 200
            self.send_head(req, 200, [("Content-Type", "application/octet-stream")],
                           length=1000000)
            self.sock.sendall(pattern_bytes(1000))
            return False  # the connection is closed without completing the body
        elif path.startswith("/status/"):
            try:
                status = int(path[len("/status/"):])
            except ValueError:
                status = 0
            if not 200 <= status <= 599:
                raise BadRequest("unsupported status %r" % path)
            headers = [("Content-Type", "text/plain")]
            body = b"status %d\n" % status
        elif path == "/delay":
            time.sleep(int(req.params.get("ms", "1000")) / 1000.0)
            status, headers, body = 200, [("Content-Type", "text/plain")], b"delayed\n"
        elif path == "/respond-headers":
            status, headers, body = 200, [("Content-Type", "text/plain")], b"headers\n"
            for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True):
                if k == "h":
                    name, _, value = v.partition(":")
                    headers.append((name.strip(), value.strip()))
        elif path == "/drop-after":
            record["status"] = 200
            self.respond(req, 200, [("Content-Type", "text/plain")], b"bye\n")
            return False  # close silently, as an upstream whose keep-alive expired
        elif path == "/microsoft-server-activesync":
            status, headers, body = self.activesync(req)
        elif path == "/ews/exchange.asmx":
            status, headers, body = self.ews(req, record)
        elif path == "/mapi/emsmdb":
            if req.method == "POST":
                return self.mapi(req, record, close)
            status, headers, body = 405, [("Allow", "POST")], b""
        elif path == "/rpc/rpcproxy.dll":
            if req.method == "RPC_OUT_DATA":
                return self.rpc_out_data(req, record)
            status, headers, body = 405, [("Allow", "RPC_IN_DATA, RPC_OUT_DATA")], b""
        elif path == "/owa/auth.owa" and req.method == "POST":
            # Forms-based login as Exchange answers it: a redirect either way, to the mailbox
            # with a session cookie, or back to the logon page with reason=2.
            form = urllib.parse.parse_qs(bytes(head).decode("latin-1"))
            record["form_user"] = form.get("username", [""])[0]
            status, body = 302, b""
            if form.get("password", [""])[0] == BASIC_PASSWORD:
                headers = [("Location", "/owa/"), ("Set-Cookie", "cadata=1; secure; HttpOnly")]
            else:
                headers = [("Location",
                            "/owa/auth/logon.aspx?url=https%3a%2f%2flocalhost%2fowa%2f&reason=2")]
        elif path in ("/owa", "/owa/") or path.startswith("/owa/"):
            if req.method in ("GET", "HEAD"):
                status = 200
                headers = [("Content-Type", "text/html; charset=utf-8"),
                           ("X-OWA-Version", "15.2.1118.7"), ("Cache-Control", "no-cache")]
                body = OWA_PAGE
            else:
                status, headers, body = 405, [("Allow", "GET, HEAD")], b""
        record["status"] = status
        self.respond(req, status, headers, body, close=close)
        return not close

    def activesync(self, req: Request):
        if req.method == "OPTIONS":
            return 200, [
                ("Allow", "OPTIONS,POST"),
                ("Public", "OPTIONS,POST"),
                ("MS-Server-ActiveSync", "15.20"),
                ("MS-ASProtocolVersions", EAS_VERSIONS),
                ("MS-ASProtocolCommands", EAS_COMMANDS),
                ("Cache-Control", "private"),
            ], b""
        if req.method == "POST":
            target = [("X-Test-Target", req.target)]
            try:
                hold = int(req.header("x-test-hold-ms", "0"))
                test_status = int(req.header("x-test-status", "0"))
            except ValueError:
                raise BadRequest("bad X-Test-Hold-Ms or X-Test-Status")
            if hold > 0:
                time.sleep(hold / 1000.0)  # a held Ping
            if test_status:
                if not 200 <= test_status <= 599:
                    raise BadRequest("unsupported X-Test-Status %d" % test_status)
                headers = []
                if test_status == 451:  # redirect to the mailbox server's front end
                    headers.append(("X-MS-Location",
                                    req.header("x-test-location", EAS_MS_LOCATION)))
                return test_status, headers + target, b""
            if not req.header("authorization"):
                return 401, [("WWW-Authenticate", 'Basic realm="mail"'),
                             ("Content-Type", "text/html")] + target, b""
            return 200, [("Content-Type", "application/vnd.ms-sync.wbxml"),
                         ("Cache-Control", "private"),
                         ("MS-Server-ActiveSync", "15.20")] + target, WBXML_EMPTY
        return 405, [("Allow", "OPTIONS,POST")], b""

    def ews(self, req: Request, record: dict):
        """Connection-bound NTLM (type 1 -> challenge -> type 3), as IIS does it."""
        self.ntlm_seen = True
        if req.method not in ("GET", "POST"):
            return 405, [("Allow", "GET, POST")], b""
        ok = (200, [("Content-Type", "text/plain")], b"authenticated\n")
        unauthorized = (401, [("WWW-Authenticate", "Negotiate"),
                              ("WWW-Authenticate", "NTLM")], b"")
        scheme, _, token = (req.header("authorization") or "").strip().partition(" ")
        if scheme.lower() == "basic":
            # Basic on EWS: one valid password, so that failed logins can be tested.
            try:
                _, _, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
            except (binascii.Error, ValueError):
                password = ""
            record["basic"] = "ok" if password == BASIC_PASSWORD else "wrong password"
            return ok if password == BASIC_PASSWORD else (
                401, [("WWW-Authenticate", 'Basic realm="mail"')], b"")
        if scheme.lower() not in ("ntlm", "negotiate"):
            record["ntlm"] = "authenticated" if self.ntlm_authenticated else "none"
            return ok if self.ntlm_authenticated else unauthorized
        try:
            msg = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            msg = b""
        if not msg.startswith(NTLM_SIGNATURE) or len(msg) < 12:
            record["ntlm"] = "bad token"
            return unauthorized
        kind = int.from_bytes(msg[8:12], "little")
        record["ntlm"] = "type %d" % kind
        if kind == 1:
            challenge = os.urandom(8)
            self.ntlm_challenge = challenge
            self.ntlm_authenticated = False
            type2 = (NTLM_SIGNATURE + (2).to_bytes(4, "little") + challenge).ljust(48, b"\0")
            return 401, [("WWW-Authenticate", "NTLM " + base64.b64encode(type2).decode())], b""
        if kind == 3:
            if self.ntlm_challenge is not None and req.header("x-test-wrong-password"):
                self.ntlm_challenge = None
                return unauthorized  # the handshake completed with a wrong password
            if self.ntlm_challenge is not None:
                self.ntlm_challenge = None
                self.ntlm_authenticated = True
                return ok
            self.stats.ntlm_violation("type 3 on connection %d without its challenge"
                                      % self.conn_id)
            return unauthorized
        return unauthorized

    def _chunk(self, data: bytes):
        self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")

    def mapi(self, req: Request, record: dict, close: bool) -> bool:
        """MAPI over HTTP: a chunked answer kept alive with PENDING chunks, then DONE."""
        try:
            chunks = int(req.header("x-test-chunks", "3"))
            interval = int(req.header("x-test-interval-ms", "500")) / 1000.0
        except ValueError:
            raise BadRequest("bad X-Test-Chunks or X-Test-Interval-Ms")
        record["status"] = 200
        self.send_head(req, 200, [("Content-Type", "application/mapi-http"),
                                  ("X-ResponseCode", "0"), ("Cache-Control", "private")],
                       chunked=True, close=close)
        index = self.stats.mapi_response_started()
        for _ in range(chunks):
            time.sleep(interval)
            self._chunk(b"PENDING\r\n")
            self.stats.mapi_chunk_sent(index, time.monotonic())
        self._chunk(b"DONE\r\n")
        self.stats.mapi_chunk_sent(index, time.monotonic())
        self.sock.sendall(b"0\r\n\r\n")
        return not close

    def rpc_in_data(self, req: Request, record: dict, framing: str, length) -> bool:
        """The RPC over HTTP IN channel: counts the body as it arrives, until the peer closes."""
        got = [0]

        def sink(data):
            got[0] += len(data)
            record["body_length"] = got[0]
            self.stats.rpc_in_piece(len(data))

        try:
            record["trailers"] = self.read_body(framing, length, sink)
        except BadRequest as e:
            if not str(e).startswith("EOF"):
                raise
            record["rpc_end"] = str(e)
            return False
        except (ConnectionError, ssl.SSLEOFError) as e:
            record["rpc_end"] = str(e) or type(e).__name__
            return False
        record["complete"] = True
        record["status"] = 200
        self.respond(req, 200, [("Content-Type", "application/rpc")], b"", close=req.wants_close)
        return not req.wants_close

    def rpc_out_data(self, req: Request, record: dict) -> bool:
        """The RPC over HTTP OUT channel: a 1 GiB response, a few PDUs, then held open."""
        record["status"] = 200
        try:
            self.send_head(req, 200, [("Content-Type", "application/rpc")],
                           length=RPC_CHANNEL_LENGTH)
            for i in range(5):
                if i:
                    time.sleep(0.2)
                self.sock.sendall(b"PDU\n")
                record["sent"] = 4 * (i + 1)
            while self.reader._fill():  # hold the channel until the peer closes it
                self.reader.buf.clear()
        except (ConnectionError, ssl.SSLEOFError):
            pass
        return False

    def download(self, req: Request, record: dict, close: bool) -> bool:
        try:
            size = int(req.params.get("size", "0"))
            slow = int(req.params.get("slow_ms", "0")) / 1000.0
        except ValueError:
            raise BadRequest("bad download parameters")
        chunked = req.params.get("chunked", "0") not in ("", "0")
        record["status"] = 200
        self.send_head(req, 200, [("Content-Type", "application/octet-stream")],
                       length=size, chunked=chunked, close=close)
        if req.method == "HEAD":
            return not close
        sent = 0
        while sent < size:
            n = min(PIECE, size - sent)
            piece = PATTERN_BLOCK[:n]
            if chunked:
                self.sock.sendall(b"%x\r\n" % n + piece + b"\r\n")
            else:
                self.sock.sendall(piece)
            sent += n
            record["sent"] = sent
            if slow and sent < size:
                time.sleep(slow)
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return not close


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, origin: "Origin"):
        self.origin = origin
        super().__init__(addr, None, bind_and_activate=True)

    def finish_request(self, request, client_address):
        origin = self.origin
        request.settimeout(origin.socket_timeout)
        try:
            tls = origin.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            origin.stats.handshake_failed(str(e))
            origin.log("TLS handshake failed from %s:%d: %s" % (client_address + (e,)))
            try:
                request.close()
            except OSError:
                pass
            return
        conn_id = origin.stats.connection_opened()
        origin._track(tls, True)
        try:
            _ConnectionHandler(tls, conn_id, origin).run()
        except (OSError, ssl.SSLError) as e:
            origin.log("connection %d: %s" % (conn_id, e))
        finally:
            origin._track(tls, False)
            origin.stats.connection_closed()
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.origin.log("unexpected error from %s" % (client_address,))
        import traceback
        traceback.print_exc()


class Origin:
    """The origin as an object: start() serves from a background thread."""

    def __init__(self, cert: str, key: str, host: str = "127.0.0.1", port: int = 0,
                 *, verbose: bool = False, socket_timeout: float = 300.0):
        self.cert = str(cert)
        self.key = str(key)
        self.host = host
        self.requested_port = port
        self.verbose = verbose
        self.socket_timeout = socket_timeout
        self.stats = Stats()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(self.cert, self.key)
        self.context.sni_callback = self._on_sni
        self._conns = set()
        self._conns_lock = threading.Lock()
        self._server = None
        self._thread = None

    @staticmethod
    def _on_sni(sslsock, server_name, ctx):
        try:
            sslsock._origin_sni = server_name
        except AttributeError:
            pass
        return None

    def log(self, text: str):
        if self.verbose:
            sys.stderr.write("origin: %s\n" % text)
            sys.stderr.flush()

    def _track(self, sock, add: bool):
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    # counters, forwarded for convenience
    def __getattr__(self, name):
        if name in ("connections", "open_connections", "handshake_failures", "requests",
                    "bytes_received", "last_request", "request_log", "path_counts",
                    "snapshot", "wait_for", "connection_clients", "ntlm_violations",
                    "ntlm_connections_closed", "mapi_chunk_times", "rpc_in_bytes",
                    "rpc_in_pieces"):
            return getattr(self.stats, name)
        raise AttributeError(name)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "Origin":
        self._server = _Server((self.host, self.requested_port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="origin-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Exchange-like TLS demo origin for mailgate")
    ap.add_argument("--listen", default="127.0.0.1:9443", help="host:port (default %(default)s)")
    ap.add_argument("--cert", required=True, help="PEM certificate chain")
    ap.add_argument("--key", required=True, help="PEM private key")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    origin = Origin(args.cert, args.key, host.strip("[]") or "127.0.0.1", int(port),
                    verbose=not args.quiet)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    origin.start()
    sys.stderr.write("origin: listening on https://%s:%d\n" % (origin.host, origin.port))
    sys.stderr.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        origin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
