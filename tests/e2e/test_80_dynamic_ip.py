"""dynamic_ip_restrictions end to end (local store): a flood from one loopback address is
answered 429 with Retry-After while another address keeps getting 200; the concurrent
request limit against a slow origin; block_for expiry; exemptions; report mode; a
location's own limits; held ActiveSync Pings not counted as concurrent load."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

import util

FLOODER = "127.0.0.2"
BYSTANDER = "127.0.0.3"


def get(mg, path, src, *args, timeout=20):
    return util.curl(path, mg.port, mg.ca, "--interface", src, *args, timeout=timeout)


def limits(**kw):
    d = {"action": "too_many_requests"}
    d.update(kw)
    return {"dynamic_ip_restrictions": d}


def metric(mg, name, labels):
    body = ""
    for _ in range(50):
        try:
            body = urllib.request.urlopen("http://%s/metrics" % mg.admin, timeout=5).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    for line in body.splitlines():
        if line.startswith(name + "{" + labels + "}"):
            return int(line.split()[-1])
    raise AssertionError("%s{%s} not in /metrics:\n%s" % (name, labels, body))


def with_admin(cfg):
    port = util.free_port()
    cfg.setdefault("server", {})["admin"] = "127.0.0.1:%d" % port
    return "127.0.0.1:%d" % port


def test_flood_gets_429_with_retry_after_while_others_pass(mailgate, origin):
    mg = mailgate(limits(max_requests={"count": 5, "per": "10s"}, block_for="30s"))
    statuses = [get(mg, "/echo", FLOODER).status for _ in range(8)]
    assert statuses[:5] == [200] * 5, statuses
    assert statuses[5:] == [429] * 3, statuses
    r = get(mg, "/echo", FLOODER)
    assert r.status == 429 and 25 <= int(r.header("Retry-After")) <= 30, r.headers
    # Another address is not affected.
    assert [get(mg, "/echo", BYSTANDER).status for _ in range(5)] == [200] * 5
    recs = mg.wait_access(14)
    denied = [x for x in recs if x["status"] == 429]
    assert denied and all(x["rule"] == "dynamic_ip_restrictions" and x["mode"] == "enforce"
                          and x["client"] == FLOODER for x in denied), denied
    assert "over max_requests" in denied[0]["error"] and "blocked" in denied[-1]["error"]


def test_block_for_expires(mailgate, origin):
    mg = mailgate(limits(max_requests={"count": 2, "per": "1s"}, block_for="2s"))
    assert [get(mg, "/echo", FLOODER).status for _ in range(3)] == [200, 200, 429]
    assert get(mg, "/echo", FLOODER).status == 429  # still blocked (the rate alone would allow)
    time.sleep(2.3)
    assert get(mg, "/echo", FLOODER).status == 200


def test_concurrent_requests_limit_with_a_slow_origin(mailgate, origin):
    mg = mailgate(limits(max_concurrent_requests=2))
    results = []

    def slow():
        results.append(get(mg, "/delay?ms=2500", FLOODER).status)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    util.wait_until(lambda: origin.path_counts.get("/delay", 0) >= 2, 10)
    assert get(mg, "/echo", FLOODER).status == 429
    assert get(mg, "/echo", BYSTANDER).status == 200
    for t in threads:
        t.join()
    assert results == [200, 200], results
    # The slots were given back when the slow requests ended.
    assert get(mg, "/echo", FLOODER).status == 200


def test_exempt_addresses_are_never_limited(mailgate, origin):
    mg = mailgate(limits(max_requests={"count": 1, "per": "10s"}, exempt=[FLOODER + "/32"]))
    assert [get(mg, "/echo", FLOODER).status for _ in range(4)] == [200] * 4
    assert [get(mg, "/echo", BYSTANDER).status for _ in range(2)] == [200, 429]


def test_report_mode_counts_but_never_denies(mailgate, origin):
    def edit(c):
        c.update(limits(max_requests={"count": 2, "per": "10s"}, mode="report"))
        mg_admin[0] = with_admin(c)
    mg_admin = [None]
    mg = mailgate(edit)
    mg.admin = mg_admin[0]
    assert [get(mg, "/echo", FLOODER).status for _ in range(5)] == [200] * 5
    recs = mg.wait_access(5)
    assert [x["mode"] for x in recs[2:]] == ["report"] * 3, recs
    assert all(x["rule"] == "dynamic_ip_restrictions" for x in recs[2:])
    assert recs[0]["rule"] is None
    assert metric(mg, "mailgate_dynamic_ip_decisions_total", 'limit="rate",mode="report"') == 3


def test_a_location_has_its_own_limits(mailgate, origin):
    def edit(c):
        c.update(limits(max_requests={"count": 100, "per": "10s"}))
        for loc in c["locations"]:
            if loc["path"] == "/owa":
                loc.update(limits(max_requests={"count": 2, "per": "10s"}, action="forbidden"))
    mg = mailgate(edit)
    assert [get(mg, "/owa/", FLOODER).status for _ in range(3)] == [200, 200, 403]
    # The global limit (its own counter) still lets the same client elsewhere.
    assert get(mg, "/echo", FLOODER).status == 200
    rec = mg.wait_access(4)[2]
    assert rec["rule"] == "/owa/dynamic_ip_restrictions" and rec["action"] == "forbidden", rec


def test_abort_action_resets(mailgate, origin):
    mg = mailgate(limits(max_requests={"count": 1, "per": "10s"}, action="abort"))
    assert get(mg, "/echo", FLOODER).status == 200
    r = get(mg, "/echo", FLOODER)
    assert r.status is None and r.returncode in (16, 35, 52, 55, 56, 92), r


def test_held_pings_are_not_concurrent_load(mailgate, origin):
    """Phones behind one carrier NAT each hold a Ping: max_concurrent_requests must not lock
    the NAT out, while other requests from it still count."""
    mg = mailgate(limits(max_concurrent_requests=1))
    ping = ("/Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=d%d&DeviceType=iPhone")
    results = []

    def hold(i):
        r = get(mg, ping % i, FLOODER, "-X", "POST", "-u", "u:p", "--data-binary", "x",
                "-H", "MS-ASProtocolVersion: 16.1", "-H", "X-Test-Hold-Ms: 2000")
        results.append(r.status)

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    util.wait_until(lambda: origin.path_counts.get("/microsoft-server-activesync", 0) >= 3, 10)
    slow = threading.Thread(target=lambda: results.append(get(mg, "/delay?ms=1500", FLOODER).status))
    slow.start()
    util.wait_until(lambda: origin.path_counts.get("/delay", 0) >= 1, 10)
    assert get(mg, "/echo", FLOODER).status == 429  # the one slot is the /delay request's
    for t in threads + [slow]:
        t.join()
    assert sorted(results) == [200] * 4, results


def test_device_limits_follow_the_device_not_the_address(mailgate, origin):
    """dynamic_device_restrictions: a runaway device is limited whichever address it comes
    from (base64 or plain form), while other devices behind the same NAT address go on."""
    def edit(c):
        for loc in c["locations"]:
            if loc.get("kind") == "activesync":
                loc["dynamic_device_restrictions"] = {
                    "max_requests": {"count": 3, "per": "60s"}, "action": "too_many_requests"}
    mg = mailgate(edit)

    def sync(device, src, plain=True):
        q = ("?Cmd=Sync&User=u&DeviceId=%s&DeviceType=Android" % device if plain
             else "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==")  # V4: Nine342BA3F3E6C6
        return get(mg, "/Microsoft-Server-ActiveSync" + q, src, "-X", "POST", "-u", "u:p",
                   "--data-binary", "x", "-H", "MS-ASProtocolVersion: 14.1").status

    runaway = "Nine342BA3F3E6C6"
    assert [sync(runaway, FLOODER), sync(runaway, BYSTANDER), sync(runaway, FLOODER, False)] \
        == [200] * 3
    assert sync(runaway, "127.0.0.4") == 429   # a fourth address: still the same device
    assert sync(runaway, FLOODER, False) == 429  # and the base64 form of it
    assert [sync("OtherDevice%d" % i, FLOODER) for i in range(3)] == [200] * 3
    recs = mg.wait_access(8)
    denied = [x for x in recs if x["status"] == 429]
    assert [x["rule"] for x in denied] == \
        ["/Microsoft-Server-ActiveSync/dynamic_device_restrictions"] * 2, denied
    assert denied[0]["eas"]["device_id"] == runaway


def test_device_limits_need_an_activesync_location(mailgate_bin, tmp_path, certs, origin):
    import conftest
    cfg = conftest.make_base_config(certs, origin.port, tmp_path / "a.log")
    cfg["locations"][2]["dynamic_device_restrictions"] = {"max_requests": {"count": 1, "per": "1s"}}
    path = tmp_path / "c.yaml"
    path.write_text(util.to_yaml(cfg))
    import subprocess
    r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "dynamic_device_restrictions needs 'kind: activesync' on its location" in r.stderr, \
        r.stderr


def _open_tls(mg, src):
    import socket as pysocket
    raw = pysocket.create_connection(("127.0.0.1", mg.port), timeout=5,
                                     source_address=(src, 0))
    return util.client_context(mg.ca).wrap_socket(raw, server_hostname="localhost")


def test_connections_per_ip_close_the_extra_ones_at_once(mailgate, origin):
    mg = mailgate({"limits": {"connections_per_ip": 3}})
    held = [_open_tls(mg, FLOODER) for _ in range(3)]
    try:
        with pytest.raises((OSError, ConnectionError)):
            extra = _open_tls(mg, FLOODER)  # accepted and reset before the handshake
            extra.close()
        # Another address is not affected, and the held ones still work.
        assert get(mg, "/echo", BYSTANDER).status == 200
        s = held[0]
        s.sendall(util.request_bytes("GET", "/echo", "localhost"))
        assert util.HTTPReader(s).read_response().status == 200
    finally:
        for s in held:
            s.close()
    # Closed connections give their slots back.
    util.wait_until(lambda: get(mg, "/echo", FLOODER).status == 200, 5)


def test_total_connections_limit(mailgate, origin):
    mg = mailgate({"limits": {"connections": 2}, "server": {"workers": 1}})
    held = [_open_tls(mg, FLOODER), _open_tls(mg, BYSTANDER)]
    try:
        r = get(mg, "/echo", "127.0.0.4")
        assert r.status is None, r
        assert mg.wait_stderr(r"connection refused: limits.connections reached", 5), mg.stderr
    finally:
        for s in held:
            s.close()
    util.wait_until(lambda: get(mg, "/echo", "127.0.0.4").status == 200, 5)
