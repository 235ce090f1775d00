"""Exchange's awkward traffic through mailgate, against the demo origin acting like Exchange:
NTLM/Negotiate connection pinning (R18), non-standard statuses (R14), chunked MAPI
keep-alives relayed as they arrive (R16) and held ActiveSync Pings (R15)."""

from __future__ import annotations

import base64
import struct
import time

import pytest

import util

EWS = "/EWS/Exchange.asmx"
EAS = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=d1&DeviceType=iPhone"


def ntlm(kind: int) -> str:
    """An NTLM message of the given type, shaped enough for the origin (signature + type)."""
    msg = b"NTLMSSP\0" + struct.pack("<I", kind) + b"\0" * 20
    return base64.b64encode(msg).decode()


class Client:
    """One keep-alive TLS connection to mailgate."""

    def __init__(self, mg, name):
        self.name = name
        self.sock = util.tls_connect(mg.port, mg.ca)
        self.reader = util.HTTPReader(self.sock)

    def send(self, method, target, headers=(), body=b""):
        hs = [("X-Test-Client", self.name)] + list(headers)
        self.sock.sendall(util.request_bytes(method, target, "localhost", hs, body))
        return self.reader.read_response(method=method)

    def close(self):
        self.sock.close()


def handshake_step(c, step, scheme="NTLM"):
    if step == 0:
        return c.send("POST", EWS, body=b"<soap/>")
    return c.send("POST", EWS, [("Authorization", "%s %s" % (scheme, ntlm(2 * step - 1)))],
                  b"<soap/>")


def test_ntlm_handshakes_of_two_clients_never_share_an_upstream_connection(mailgate, origin):
    mg = mailgate({"server": {"workers": 1}})  # one worker: one pool, the worst case for sharing
    a, b = Client(mg, "alice"), Client(mg, "bob")
    try:
        # Interleaved so that, without pinning, the pool would hand A's connection to B.
        for step in range(3):
            ra = handshake_step(a, step)
            rb = handshake_step(b, step, "Negotiate")
            want = 200 if step == 2 else 401
            assert (ra.status, rb.status) == (want, want), (step, ra, rb)
        assert ra.body == b"authenticated\n"
        # The authenticated connection stays with its client: no Authorization needed now.
        assert a.send("GET", EWS).status == 200
        assert b.send("GET", EWS).status == 200
        assert origin.ntlm_violations == [], origin.ntlm_violations
        served = origin.connection_clients
        assert all(len(names) == 1 for names in served.values()), served
        conn_a = [c for c, names in served.items() if names == ["alice"]]
        assert len(conn_a) == 1, served
    finally:
        a.close()
    # Closing the client closes its pinned upstream connection (and only that one).
    util.wait_until(lambda: conn_a[0] in origin.ntlm_connections_closed, 10)
    try:
        assert b.send("GET", EWS).status == 200
    finally:
        b.close()


def test_basic_auth_is_not_pinned(mailgate, origin):
    """Basic credentials authenticate each request: the pool keeps serving everyone."""
    mg = mailgate({"server": {"workers": 1}})
    for name in ("carol", "dave", "erin"):
        c = Client(mg, name)
        try:
            r = c.send("GET", "/owa/", [("Authorization", "Basic dTpw")])
            assert r.status == 200, r
        finally:
            c.close()
    served = origin.connection_clients
    assert any(len(names) > 1 for names in served.values()), served


def test_401_offering_ntlm_pins_and_an_upstream_close_closes_the_client(mailgate, origin):
    mg = mailgate({"server": {"workers": 1}})
    a = Client(mg, "frank")
    try:
        assert handshake_step(a, 0).status == 401  # anonymous: the 401 offers NTLM -> pinned
        assert handshake_step(a, 1).status == 401
        assert handshake_step(a, 2).status == 200
        # Another client meanwhile uses the pool; the origin still sees no sharing.
        other = Client(mg, "grace")
        try:
            assert other.send("GET", "/owa/").status == 200
        finally:
            other.close()
        assert origin.ntlm_violations == []
    finally:
        a.close()


@pytest.mark.parametrize("status", [449, 451, 456, 457, 507])
def test_exchange_statuses_are_relayed(mailgate, origin, status):
    mg = mailgate()
    r = util.curl(EAS.replace("Ping", "Sync"), mg.port, mg.ca, "-X", "POST", "-u", "u:p",
                  "-H", "MS-ASProtocolVersion: 16.1", "-H", "X-Test-Status: %d" % status,
                  "--data-binary", "x", timeout=15)
    assert r.status == status, (r.status, r.stderr)


def test_held_ping_is_answered_when_the_origin_answers(mailgate, origin):
    mg = mailgate()
    t0 = time.monotonic()
    r = util.curl(EAS, mg.port, mg.ca, "-X", "POST", "-u", "u:p",
                  "-H", "MS-ASProtocolVersion: 16.1", "-H", "X-Test-Hold-Ms: 3000",
                  "--data-binary", "x", timeout=30)
    assert r.status == 200, (r.status, r.stderr)
    assert time.monotonic() - t0 >= 3.0


def test_mapi_pending_chunks_reach_the_client_as_they_are_sent(mailgate, origin):
    mg = mailgate()
    c = Client(mg, "mapi")
    try:
        c.sock.sendall(util.request_bytes(
            "POST", "/mapi/emsmdb?MailboxId=x", "localhost",
            [("X-Test-Chunks", "3"), ("X-Test-Interval-Ms", "700"),
             ("Content-Type", "application/mapi-http")], b"request"))
        version, status, reason, headers, raw = c.reader.read_head()
        assert status == 200, raw
        arrivals = []
        while True:
            size = int(c.reader._line().split(b";")[0], 16)
            if size == 0:
                break
            data = c.reader._exact(size)
            assert c.reader._exact(2) == b"\r\n"
            arrivals.append((time.monotonic(), data))
    finally:
        c.close()
    sent = origin.mapi_chunk_times[-1]
    texts = b"".join(d for _, d in arrivals)
    assert texts == b"PENDING\r\n" * 3 + b"DONE\r\n", texts
    # Each PENDING arrives within a second of being sent (R16), not at the end.
    assert len(arrivals) >= 3, arrivals
    for (arrived, _), sent_at in zip(arrivals, sent):
        assert arrived - sent_at < 1.0, (arrived - sent_at, arrivals, sent)
    assert arrivals[-1][0] - arrivals[0][0] > 1.0  # spread out, as the origin sent them


def _451(mg, location=None):
    args = ["-X", "POST", "-u", "u:p", "-H", "MS-ASProtocolVersion: 16.1",
            "-H", "X-Test-Status: 451", "--data-binary", "x"]
    if location:
        args += ["-H", "X-Test-Location: " + location]
    r = util.curl(EAS.replace("Ping", "FolderSync"), mg.port, mg.ca, *args, timeout=15)
    assert r.status == 451, (r.status, r.stderr)
    return r.header("X-MS-Location")


def test_451_location_never_names_an_internal_host(mailgate, origin):
    """R12: the origin answers with https://mbx01.corp.local/...; the client sees its own host,
    or the upstream's external_host; a redirect to another organisation passes unchanged."""
    mg = mailgate()
    assert _451(mg) == "https://localhost:%d/Microsoft-Server-ActiveSync" % mg.port
    assert _451(mg, "https://origin.test:9443/Microsoft-Server-ActiveSync") == \
        "https://localhost:%d/Microsoft-Server-ActiveSync" % mg.port  # the upstream's own name
    external = "https://outlook.office365.com/Microsoft-Server-ActiveSync"
    assert _451(mg, external) == external
    mg2 = mailgate({"upstreams": [{"name": "exchange", "servers": ["127.0.0.1:%d" % origin.port],
                                   "tls": {"server_name": "origin.test",
                                           "ca": str(mg.ca)},
                                   "external_host": "mail.example.com"}]})
    assert _451(mg2) == "https://mail.example.com/Microsoft-Server-ActiveSync"


def test_rpc_in_channel_streams_before_its_declared_length(mailgate, origin):
    """R17: a 1 GiB RPC_IN_DATA declaration is neither refused (body limits do not apply)
    nor awaited: each small PDU reaches the origin as it is sent."""
    mg = mailgate()
    c = Client(mg, "outlook-rpc")
    try:
        head = util.request_bytes("RPC_IN_DATA", "/rpc/rpcproxy.dll?mbx01.corp.local:6001",
                                  "localhost", [("Content-Length", "1073741824"),
                                                ("Content-Type", "application/rpc")])
        c.sock.sendall(head)
        for i in range(10):
            c.sock.sendall(b"PDU-%02d--" % i)
            n = 8 * (i + 1)
            assert util.wait_until(lambda: origin.rpc_in_bytes >= n, 5), \
                (i, origin.rpc_in_bytes)
    finally:
        c.close()


def test_rpc_out_channel_relays_pdus_as_they_come(mailgate, origin):
    mg = mailgate()
    c = Client(mg, "outlook-rpc")
    try:
        c.sock.sendall(util.request_bytes("RPC_OUT_DATA", "/rpc/rpcproxy.dll?mbx01:6001",
                                          "localhost", [], b"x" * 76))
        version, status, reason, headers, raw = c.reader.read_head()
        assert status == 200, raw
        assert dict((k.lower(), v) for k, v in headers)["content-length"] == "1073741824"
        got = b""
        while got.count(b"PDU\n") < 5:
            got += c.reader._exact(4)
    finally:
        c.close()


@pytest.mark.parametrize("path", ["/owa/", "/rpc/other.dll", "/Microsoft-Server-ActiveSync"])
def test_rpc_methods_elsewhere_get_405(mailgate, origin, path):
    mg = mailgate()
    before = origin.requests
    c = Client(mg, "x")
    try:
        r = c.send("RPC_IN_DATA", path, [("Content-Length", "0")])
    finally:
        c.close()
    assert r.status == 405, r
    assert origin.requests == before
