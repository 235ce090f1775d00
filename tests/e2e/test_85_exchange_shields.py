"""The exchange-shields and scanners presets end to end: every attack vector of
EXCHANGE-PROTOCOL.md section 7 (plus encodings, case and slashes) is stopped before the
origin, the legitimate ones pass, report mode forwards and logs the rule, and the admin
networks reach /ecp and /powershell."""

from __future__ import annotations

import pytest

import util

ABORT_CODES = {16, 35, 52, 55, 56, 92}
OTHER = "127.0.0.2"  # not an admin network

LEGIT = [
    ("L1", "POST", "/autodiscover/autodiscover.xml", []),
    ("L2", "GET", "/autodiscover/autodiscover.json?Email=williamdes%40wdes.fr&Protocol=ActiveSync"
                  "&RedirectCount=1", []),
    ("L3", "GET", "/autodiscover/autodiscover.json/v1.0/user@example.com?Protocol=ActiveSync", []),
    ("D1", "GET", "/autodiscover/autodiscover.json/v1.0/aa@x.example?Protocol=Autodiscoverv1", []),
    ("owa", "GET", "/owa/?path=/mail", []),
    ("ews", "POST", "/EWS/Exchange.asmx", []),
]

# (id, method, target, headers, rule that must decide, outcome)
ATTACKS = [
    ("A1", "GET", "/autodiscover/autodiscover.json?@foo.com/mapi/nspi/?&Email=autodiscover/"
                  "autodiscover.json%3f@foo.com", [], "autodiscover-json", 400),
    ("A2", "POST", "/autodiscover/autodiscover.json?@evil.com/powershell/?X-Rps-CAT=VgEAVAdXaW5k"
                   "b3dz&Email=autodiscover/autodiscover.json%3F@evil.com", [], "m1-1", "abort"),
    ("A3", "GET", "/autodiscover/autodiscover.json?@test.com/owa/?&Email=autodiscover/"
                  "autodiscover.json%3F@test.com", [], "autodiscover-json", 400),
    ("A2-encoded", "GET", "/autodiscover/autodiscover.json?@evil.com/%70ower%53hell/?&Email=x",
     [], "m1-1", "abort"),
    ("A2-double-encoded", "GET", "/autodiscover/autodiscover.json?a=%2570owershell", [], "m1-1",
     "abort"),
    ("owassrf", "GET", "/owa/mastermailbox%40outlook.com/powershell", [], "powershell", "abort"),
    ("owassrf-case", "GET", "/OWA//x/PowerShell?x=1", [], "powershell", "abort"),
    ("powershell-query", "GET", "/owa/?a=Power%53hell", [], "powershell", "abort"),
    ("ecp", "GET", "/ecp/default.aspx", [], "admin-paths", "abort"),
    ("ecp-case-slashes", "GET", "//ECP/./y.js", [], "admin-paths", "abort"),
    ("powershell-path", "POST", "/PowerShell/", [], "admin-paths", "abort"),
    ("A6", "GET", "/ecp/y.js", ["Cookie: X-AnonResource=true; X-AnonResource-Backend=localhost/"
                                "ecp/default.flt?~3; X-BEResource=localhost/owa/auth/logon.aspx?~3"],
     "proxylogon-cookies", "abort"),
    ("A7", "POST", "/owa/auth/x.js",
     ["Cookie: X-BEResource=attacker.example/EWS/Exchange.asmx?a=~1942062522"],
     "proxylogon-cookies", "abort"),
]


def shields(**kw):
    preset = {"preset": "exchange-shields"}
    preset.update(kw)
    return {"request_blocking": [preset, {"preset": "scanners"}]}


def send(mg, method, target, headers=(), ua="Microsoft Office/16.0 (Windows NT 10.0; "
         "Microsoft Outlook 16.0.12026; Pro)"):
    args = ["--path-as-is", "-X", method, "--interface", OTHER, "-A", ua]
    for h in headers:
        args += ["-H", h]
    if method == "POST":
        args += ["--data-binary", "<x/>"]
    return util.curl(target, mg.port, mg.ca, *args, timeout=15)


@pytest.mark.parametrize("name,method,target,headers", LEGIT, ids=[x[0] for x in LEGIT])
def test_legitimate_requests_pass(mailgate, origin, name, method, target, headers):
    mg = mailgate(shields())
    before = origin.requests
    r = send(mg, method, target, headers)
    assert r.status is not None and r.status != 400, (r.status, r.stderr)
    assert origin.requests == before + 1
    assert mg.wait_access(1)[-1]["rule"] is None


@pytest.mark.parametrize("name,method,target,headers,rule,outcome", ATTACKS,
                         ids=[x[0] for x in ATTACKS])
def test_attacks_never_reach_the_origin(mailgate, origin, name, method, target, headers, rule,
                                        outcome):
    """An Outlook User-Agent exempts nobody (R25)."""
    mg = mailgate(shields())
    before = origin.requests
    r = send(mg, method, target, headers)
    if outcome == "abort":
        assert r.status is None and r.returncode in ABORT_CODES, (r.returncode, r.status)
    else:
        assert r.status == outcome, (r.status, r.stderr)
    assert origin.requests == before
    rec = mg.wait_access(1)[-1]
    assert rec["rule"] == "global/exchange-shields/" + rule, rec
    assert rec["mode"] == "enforce"


def test_report_mode_forwards_and_names_the_rule(mailgate, origin):
    mg = mailgate(shields(report=["m1-1", "powershell", "autodiscover-json"]))
    before = origin.requests
    for _, method, target, headers, _, _ in ATTACKS[:3]:
        send(mg, method, target, headers)
    assert origin.requests == before + 3
    recs = mg.wait_access(3)
    assert [x["rule"] for x in recs] == ["global/exchange-shields/autodiscover-json",
                                         "global/exchange-shields/m1-1",
                                         "global/exchange-shields/autodiscover-json"], recs
    assert all(x["mode"] == "report" for x in recs)
    # The rules not named still enforce.
    assert send(mg, "GET", "/ecp/").status is None


def test_admin_networks_reach_ecp_and_powershell(mailgate, origin):
    mg = mailgate(shields(admin_networks=["127.0.0.1/32"]))
    before = origin.requests
    r = util.curl("/ecp/default.aspx", mg.port, mg.ca, "--interface", "127.0.0.1", timeout=15)
    assert r.status is not None and origin.requests == before + 1, r
    r = util.curl("/powershell/", mg.port, mg.ca, "--interface", "127.0.0.1", timeout=15)
    assert r.status is not None and origin.requests == before + 2, r
    # Microsoft's M1.1 exempts no one.
    r = util.curl("/autodiscover/autodiscover.json?x=powershell", mg.port, mg.ca,
                  "--interface", "127.0.0.1", timeout=15)
    assert r.status is None and origin.requests == before + 2
    # Others still cannot.
    assert send(mg, "GET", "/ecp/default.aspx").status is None


@pytest.mark.parametrize("ua", ["masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
                                "Mozilla/5.0 zgrab/0.x",
                                "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
                                "sqlmap/1.7.2#stable (https://sqlmap.org)",
                                "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
                                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"])
def test_scanner_user_agents_are_aborted(mailgate, origin, ua):
    mg = mailgate(shields())
    before = origin.requests
    r = send(mg, "GET", "/owa/", ua=ua)
    assert r.status is None and origin.requests == before
    assert mg.wait_access(1)[-1]["rule"] == "global/scanners/user-agents"


def test_unknown_preset_rule_in_report_is_an_error(mailgate_bin, tmp_path, certs, origin):
    import subprocess
    import conftest
    cfg = conftest.make_base_config(certs, origin.port, tmp_path / "a.log")
    cfg.update(shields(report=["no-such-rule"]))
    path = tmp_path / "c.yaml"
    path.write_text(util.to_yaml(cfg))
    r = subprocess.run([mailgate_bin, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "preset 'exchange-shields' has no rule 'no-such-rule'" in r.stderr, r.stderr
