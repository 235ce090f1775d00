"""auth_failure_limits end to end (R24, R25): a password spray against one user reaches the
origin at most max_failures times, then mailgate answers (401 for Basic and NTLM clients)
without asking Active Directory; an Outlook User-Agent changes nothing; a success resets the
count; the log names the user only as a salted hash."""

from __future__ import annotations

import base64
import struct
import time
import urllib.parse

import util

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)"
EWS = "/EWS/Exchange.asmx"


def limits(**kw):
    d = {"max_failures": 4, "per": "30m", "cool_off": "3s"}
    d.update(kw)
    return {"auth_failure_limits": d}


def basic(mg, user, password, ua=OUTLOOK):
    return util.curl(EWS, mg.port, mg.ca, "-X", "POST", "--data-binary", "<soap/>", "-A", ua,
                     "-u", "%s:%s" % (user, password), timeout=15)


def ews_count(origin):
    return sum(n for p, n in origin.path_counts.items() if p.lower() == "/ews/exchange.asmx")


def test_basic_spray_reaches_the_origin_at_most_four_times(mailgate, origin):
    mg = mailgate(limits())
    statuses = [basic(mg, "CONTOSO\\Alice", "guess%d" % i).status for i in range(10)]
    assert statuses == [401] * 10, statuses
    assert ews_count(origin) == 4
    # The same user in another spelling is the same user (DOMAIN\\user -> user, any case).
    assert basic(mg, "ALICE", "guess").status == 401 and ews_count(origin) == 4
    # Another user is not affected.
    assert basic(mg, "bob", "Correct-Horse-1").status == 200
    recs = mg.wait_access(12)
    local = [r for r in recs if r.get("auth", {}).get("outcome") == "throttled"]
    assert len(local) == 7, recs
    assert all(r["rule"] == "auth_failure_limits" and r["action"] == "unauthorized"
               for r in local), local
    assert all("alice" not in str(r["auth"]).lower() for r in recs), recs
    assert len({r["auth"]["user"] for r in recs[:11]}) == 1  # one salted hash for one user
    # After the cool-off the right password works, and resets the count.
    time.sleep(3.2)
    assert basic(mg, "alice", "Correct-Horse-1").status == 200
    assert [basic(mg, "alice", "nope").status for _ in range(3)] == [401] * 3
    assert ews_count(origin) == 4 + 1 + 1 + 3


def test_python_user_agent_is_throttled_exactly_the_same(mailgate, origin):
    mg = mailgate(limits())
    for ua in (OUTLOOK, "python-requests/2.31.0"):
        before = ews_count(origin)
        for i in range(6):
            basic(mg, "carol-" + ua[:6], "x%d" % i, ua=ua)
        assert ews_count(origin) - before == 4, ua


def ntlm_type3(user: str) -> str:
    u = user.encode("utf-16-le")
    m = b"NTLMSSP\0" + struct.pack("<I", 3) + b"\0" * 16
    m += struct.pack("<HHI", 0, 0, 64)              # domain: empty
    m += struct.pack("<HHI", len(u), len(u), 64)    # user
    m += b"\0" * 16 + struct.pack("<I", 1)          # workstation, session key, flags: unicode
    return base64.b64encode(m + u).decode()


def test_ntlm_spray_is_counted_from_the_type3_user(mailgate, origin):
    mg = mailgate(limits())
    before = ews_count(origin)
    statuses = []
    for i in range(8):
        s = util.tls_connect(mg.port, mg.ca)
        rd = util.HTTPReader(s)
        try:
            t1 = base64.b64encode(b"NTLMSSP\0" + struct.pack("<I", 1) + b"\0" * 20).decode()
            for auth in ("NTLM " + t1, "NTLM " + ntlm_type3("dave")):
                s.sendall(util.request_bytes("POST", EWS, "localhost",
                                             [("Authorization", auth), ("User-Agent", OUTLOOK),
                                              ("X-Test-Wrong-Password", "1")], b"<soap/>"))
                r = rd.read_response(method="POST")
            statuses.append(r.status)
            if r.status == 401 and r.header("WWW-Authenticate") == "NTLM":
                pass
        finally:
            s.close()
    assert statuses == [401] * 8, statuses
    # 8 type 1 messages all reach the origin (they are no attempt), type 3 only 4 times.
    assert ews_count(origin) - before == 8 + 4


def test_report_mode_forwards_every_attempt(mailgate, origin):
    mg = mailgate(limits(mode="report"))
    for i in range(6):
        basic(mg, "erin", "x%d" % i)
    assert ews_count(origin) == 6
    recs = mg.wait_access(6)
    assert [r["mode"] for r in recs[4:]] == ["report", "report"], recs


# --------------------------------------------------------------------------- OWA forms

FORMS = "/owa/auth.owa"


def forms_login(mg, user, password, src="127.0.0.1"):
    form = "destination=https%%3A%%2F%%2Flocalhost%%2Fowa%%2F&flags=4&forcedownlevel=0" \
           "&username=%s&password=%s&passwordText=&isUtf8=1" % (
               urllib.parse.quote_plus(user), urllib.parse.quote_plus(password))
    return util.curl(FORMS, mg.port, mg.ca, "--interface", src, "-X", "POST",
                     "-H", "Content-Type: application/x-www-form-urlencoded",
                     "--data-binary", form, timeout=15)


def forms_count(origin):
    return origin.path_counts.get("/owa/auth.owa", 0)


def test_owa_forms_spray_is_counted_from_the_form_user(mailgate, origin):
    """A failed OWA forms login is a 302 back to logon.aspx, not a 401: it counts, per the
    user named in the form, and a user in cool-off never reaches the origin (429)."""
    mg = mailgate(limits())
    answers = [forms_login(mg, "CONTOSO\\Frank", "guess%d" % i) for i in range(8)]
    assert [a.status for a in answers[:4]] == [302] * 4
    assert all("logon.aspx" in a.header("Location") for a in answers[:4])
    assert [a.status for a in answers[4:]] == [429] * 4, answers[4:]
    assert forms_count(origin) == 4
    forwarded = [r for r in origin.request_log if r["path"].lower() == FORMS]
    assert {r.get("form_user") for r in forwarded} == {"CONTOSO\\Frank"}  # body intact
    recs = mg.wait_access(8)
    assert [r["auth"]["outcome"] for r in recs] == ["failed"] * 4 + ["throttled"] * 4, recs
    assert all("frank" not in str(r).lower() for r in recs)
    # Another user logs in with the right password: a redirect to the mailbox, a success.
    ok = forms_login(mg, "grace@contoso.com", "Correct-Horse-1")
    assert ok.status == 302 and ok.header("Location") == "/owa/", ok.headers
    assert mg.wait_access(9)[-1]["auth"]["outcome"] == "succeeded"


def test_failures_per_address_stop_a_spray_over_many_users(mailgate, origin):
    """One address trying one password for many users: each user stays under max_failures,
    the address does not (max_failures_per_address), and then every user from it is answered
    locally; another address is not affected."""
    mg = mailgate(limits(max_failures_per_address=5))
    statuses = [basic_from(mg, "user%d" % i, "Winter2026!", "127.0.0.2") for i in range(8)]
    assert statuses == [401] * 8
    assert ews_count(origin) == 5
    recs = mg.wait_access(8)
    assert all("address in cool-off" in r["error"] for r in recs[5:]), recs[5:]
    assert basic_from(mg, "user0", "Correct-Horse-1", "127.0.0.3") == 200
    assert ews_count(origin) == 6


def basic_from(mg, user, password, src):
    return util.curl(EWS, mg.port, mg.ca, "--interface", src, "-X", "POST", "--data-binary",
                     "<soap/>", "-A", OUTLOOK, "-u", "%s:%s" % (user, password),
                     timeout=15).status


# --------------------------------------------------------------------------- R26

AUTODISCOVER_JSON = "/autodiscover/autodiscover.json?Email=a%d@contoso.com&Protocol=EWS"


def test_anonymous_autodiscover_json_is_limited_to_30_a_minute(mailgate, origin):
    """R26, on by default: the 31st anonymous autodiscover.json request in a minute from one
    address gets 429; requests with credentials and other addresses are not limited."""
    mg = mailgate()
    statuses = [util.curl(AUTODISCOVER_JSON % i, mg.port, mg.ca, "--interface", "127.0.0.2",
                          timeout=15).status for i in range(31)]
    assert 429 not in statuses[:30], statuses
    assert statuses[30] == 429
    assert util.curl(AUTODISCOVER_JSON % 99, mg.port, mg.ca, "--interface", "127.0.0.3",
                     timeout=15).status != 429
    assert util.curl(AUTODISCOVER_JSON % 98, mg.port, mg.ca, "--interface", "127.0.0.2",
                     "-u", "alice:x", timeout=15).status != 429
    rec = mg.wait_access(33)[30]
    assert rec["rule"] == "anonymous_autodiscover" and rec["status"] == 429, rec


def test_anonymous_autodiscover_limit_can_be_set_or_turned_off(mailgate, origin):
    mg = mailgate({"anonymous_autodiscover": {"max_requests": {"count": 2, "per": "1m"},
                                              "action": "forbidden"}})
    statuses = [util.curl(AUTODISCOVER_JSON % i, mg.port, mg.ca, timeout=15).status
                for i in range(3)]
    assert statuses[2] == 403 and 403 not in statuses[:2], statuses
    off = mailgate({"anonymous_autodiscover": "off"})
    statuses = [util.curl(AUTODISCOVER_JSON % i, off.port, off.ca, timeout=15).status
                for i in range(35)]
    assert 429 not in statuses, statuses
