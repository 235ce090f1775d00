"""ActiveSync awareness end to end: a location of kind activesync decodes MS-ASHTTP queries
(plain and base64, EXCHANGE-PROTOCOL.md section 7), refuses malformed ones and other
methods before the origin sees them, forwards the target byte for byte, lets rules name
device facts, and logs the decoded record (never the Authorization value)."""

from __future__ import annotations

import pytest

import util

EAS = "/Microsoft-Server-ActiveSync"
UA = "Apple-iPhone14C2/1908.117"

# (name, path + query, headers, expected eas log record subset)
ACCEPTED = [
    ("P1", EAS + "?Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
     ["MS-ASProtocolVersion: 14.0"],
     {"cmd": "Sync", "user": "rmjones", "device_id": "v140Device", "device_type": "SmartPhone",
      "protocol": "14.0", "form": "plain"}),
    ("P2", EAS + "?User=deviceuser&DeviceId=6F24CAD599A5BF1A690246B8C68FAE8D&DeviceType=PocketPC"
               "&Cmd=Provision",
     ["MS-ASProtocolVersion: 14.0", "X-MS-PolicyKey: 1307199584"],
     {"cmd": "Provision", "user": "deviceuser", "device_id": "6F24CAD599A5BF1A690246B8C68FAE8D",
      "device_type": "PocketPC", "protocol": "14.0", "policy_key": 1307199584}),
    ("P4", "/sync.php" + EAS + "?User=t1@example.de&DeviceId=O8S9UD4DOH0SLEPOQC5AJ9AE3C"
                               "&DeviceType=iPhone&Cmd=Settings",
     ["MS-ASProtocolVersion: 16.1", "X-MS-PolicyKey: 0"],
     {"cmd": "Settings", "user": "t1@example.de", "device_id": "O8S9UD4DOH0SLEPOQC5AJ9AE3C",
      "device_type": "iPhone", "protocol": "16.1", "policy_key": 0}),
    ("V1", EAS + "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", [],
     {"cmd": "Sync", "protocol": "14.0", "device_id": "v140Device", "device_type": "SmartPhone",
      "form": "base64"}),
    ("V2", EAS + "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==", [],
     {"cmd": "Settings", "protocol": "16.0", "device_id": "Nine2EC7EC0BB54D",
      "device_type": "Android", "policy_key": 1655081217}),
    ("V3", EAS + "?eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y", [],
     {"cmd": "SmartForward", "protocol": "12.1", "device_id": "ae4ecd19f592ba5657706ff74cf09bac",
      "device_id_hex": "ae4ecd19f592ba5657706ff74cf09bac", "device_type": "PPC",
      "policy_key": 2216451701}),
    ("V4", "/SOGo" + EAS + "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==", [],
     {"cmd": "Sync", "protocol": "14.1", "device_id": "Nine342BA3F3E6C6",
      "device_id_hex": "4e696e65333432424133463345364336", "device_type": "Android",
      "policy_key": 0}),
]

REFUSED = [
    ("P5", EAS + "?Cmd=Sync&User=a&DeviceType=iPhone", "no DeviceId"),
    ("N1", EAS + "?jAAJBAp2MTQ=", "truncated"),
    ("N2", EAS + "?jAAJBAp2MTQwRGV2aWNlAwECAwpTbWFydFBob25l", "policy key length"),
    ("N3", EAS + "?jAAJBAAAClNtYXJ0UGhvbmU=", "device ID length is 0"),
    ("N7", EAS + "?jAUJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "unknown command code"),
    ("N8", EAS + "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l!", "neither plain nor base64"),
    ("empty", EAS, "no query"),
    ("unknown-cmd", EAS + "?Cmd=Format&User=u&DeviceId=d&DeviceType=t", "unknown Cmd"),
    ("duplicate", EAS + "?Cmd=Sync&Cmd=Ping&User=u&DeviceId=d&DeviceType=t", "sent twice"),
]


def eas_config(extra_locations=(), rules=None):
    def edit(c):
        locs = c["locations"]
        for loc in locs:
            if loc["path"] == EAS and rules is not None:
                loc["request_blocking"] = rules
        for path in ("/sync.php" + EAS, "/SOGo" + EAS):
            locs.append({"path": path, "kind": "activesync", "upstream": "exchange"})
        locs.extend(extra_locations)
    return edit


def post(mg, target, headers=(), method="POST", auth=True):
    args = ["--path-as-is", "-X", method, "-A", UA]
    if auth:
        args += ["-u", "alice:s3cret-Passw0rd"]
    for h in headers:
        args += ["-H", h]
    if method == "POST":
        args += ["-H", "Content-Type: application/vnd.ms-sync.wbxml", "--data-binary", "@-"]
    return util.curl(target, mg.port, mg.ca, *args, timeout=15,
                     input_data=b"\x03\x01\x6a\x00" if method == "POST" else None)


@pytest.mark.parametrize("name,target,headers,expected", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_vectors_are_decoded_forwarded_byte_for_byte_and_logged(mailgate, origin, name, target,
                                                                  headers, expected):
    mg = mailgate(eas_config())
    r = post(mg, target, headers)
    # The demo origin serves only /Microsoft-Server-ActiveSync: P4 and V4 (other products'
    # prefixes) get its 404, which proves they were forwarded.
    assert r.status == (200 if target.startswith(EAS) else 404), (r.status, r.stderr)
    # R9: the origin got the very bytes of the target.
    assert origin.last_request["target"] == target, origin.last_request["target"]
    rec = mg.wait_access(1)[-1]
    assert "eas" in rec, rec
    for k, v in expected.items():
        assert rec["eas"].get(k) == v, (k, rec["eas"])
    if "user" not in expected:
        # base64 form without a user parameter: the Basic user name, never the password
        assert rec["eas"]["user"] == "alice", rec["eas"]
    line = mg.access_lines()[-1]
    assert "s3cret" not in line and "Basic " not in line and "YWxpY2U6" not in line, line


@pytest.mark.parametrize("name,target,reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_malformed_queries_get_400_and_never_reach_the_origin(mailgate, origin, name, target,
                                                              reason):
    mg = mailgate(eas_config())
    before = origin.requests
    r = post(mg, target, ["MS-ASProtocolVersion: 14.0"])
    assert r.status == 400, (r.status, r.stderr)
    assert origin.requests == before
    rec = mg.wait_access(1)[-1]
    assert rec["status"] == 400 and rec["error"].startswith("ActiveSync query"), rec
    assert reason in rec["error"], rec


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PROPFIND"])
def test_only_post_and_options_reach_activesync(mailgate, origin, method):
    mg = mailgate(eas_config())
    before = origin.requests
    r = util.curl(EAS + "?Cmd=Sync&User=u&DeviceId=d&DeviceType=t", mg.port, mg.ca,
                  "-X", method, timeout=15)
    assert r.status == 405, (r.status, r.stderr)
    assert origin.requests == before


def test_options_without_query_is_forwarded(mailgate, origin):
    mg = mailgate(eas_config())
    r = post(mg, EAS, method="OPTIONS")
    assert r.status == 200, r.stderr
    assert "MS-ASProtocolVersions" in [n for n, _ in r.headers], r.headers
    rec = mg.wait_access(1)[-1]
    assert rec["eas"]["form"] == "none", rec


def test_base64_percent_escapes_decode_the_same(mailgate, origin):
    """R4: %2B/%2F/%3D are decoded before the base64 check; '+' is never a space."""
    mg = mailgate(eas_config())
    v3 = "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y"
    r = post(mg, EAS + "?" + v3.replace("/", "%2F"))
    assert r.status == 200, r.stderr
    rec = mg.wait_access(1)[-1]
    assert rec["eas"]["device_id_hex"] == "ae4ecd19f592ba5657706ff74cf09bac", rec


@pytest.mark.parametrize("pattern", ["^Nine342BA3F3E6C6$", "^4e696e65333432424133463345364336$",
                                     "^nine342ba3f3e6c6$"])
def test_device_rule_matches_ascii_or_hex_form(mailgate, origin, pattern):
    """R8: a block rule on either form of the device ID blocks V4, in either query form."""
    rules = [{"name": "lost-phone", "if": {"eas": {"device_id": [pattern]}}, "action": "forbidden"}]
    mg = mailgate(eas_config(rules=rules))
    before = origin.requests
    r = post(mg, EAS + "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==")
    assert r.status == 403, (r.status, r.stderr)
    r = post(mg, EAS + "?Cmd=Sync&User=u&DeviceId=Nine342BA3F3E6C6&DeviceType=Android",
             ["MS-ASProtocolVersion: 14.1"])
    assert r.status == 403, (r.status, r.stderr)
    assert origin.requests == before
    # Another device passes.
    r = post(mg, EAS + "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
    assert r.status == 200, r.stderr
    recs = mg.wait_access(3)
    assert [x["rule"] for x in recs] == [EAS + "/lost-phone"] * 2 + [None], recs


def test_device_id_file_blocks_both_query_forms(mailgate, origin, tmp_path):
    ids = tmp_path / "blocked-devices.txt"
    ids.write_text("# lost and stolen\nNINE342BA3F3E6C6\nsomeotherdevice\n")
    rules = [{"name": "blocked-devices", "if": {"eas": {"device_id_file": str(ids)}},
              "action": "forbidden"}]
    mg = mailgate(eas_config(rules=rules))
    assert post(mg, EAS + "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==").status == 403
    assert post(mg, EAS + "?Cmd=Ping&User=u&DeviceId=Nine342BA3F3E6C6&DeviceType=Android",
                ["MS-ASProtocolVersion: 14.1"]).status == 403
    assert post(mg, EAS + "?Cmd=Ping&User=u&DeviceId=v140Device&DeviceType=Android",
                ["MS-ASProtocolVersion: 14.1"]).status == 200


def test_cmd_and_device_type_rules(mailgate, origin):
    rules = [{"name": "no-android-sync", "if": {"eas": {"cmd": ["^Sync$"],
                                                         "device_type": ["^android$"]}},
              "action": "forbidden"}]
    mg = mailgate(eas_config(rules=rules))
    v4_sync = EAS + "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA=="
    assert post(mg, v4_sync).status == 403
    v2_settings = EAS + "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA=="
    assert post(mg, v2_settings).status == 200


def test_generic_location_does_not_decode(mailgate, origin):
    """Only `kind: activesync` locations decode: a generic one forwards any method and query."""
    mg = mailgate({"locations": [{"path": "/", "upstream": "exchange"}]})
    before = origin.requests
    r = util.curl(EAS + "?jAAJBAp2MTQ=", mg.port, mg.ca, "-X", "GET", timeout=15)
    assert r.status == 405 and origin.requests == before + 1, r.status  # the origin's 405
    rec = mg.wait_access(1)[-1]
    assert "eas" not in rec, rec


def test_device_id_file_change_takes_effect_without_a_signal(mailgate, origin, tmp_path):
    ids = tmp_path / "blocked-devices.txt"
    ids.write_text("someotherdevice\n")
    rules = [{"name": "blocked-devices", "if": {"eas": {"device_id_file": str(ids)}},
              "action": "forbidden"}]
    mg = mailgate(eas_config(rules=rules))
    v4 = EAS + "?jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA=="
    assert post(mg, v4).status == 200
    ids.write_text("someotherdevice\nNine342BA3F3E6C6\n")
    assert mg.wait_stderr(r"configuration reloaded \(a device_id_file changed\)", 10), mg.stderr
    assert post(mg, v4).status == 403
    # A broken file keeps the running list (and says so), as a bad SIGHUP reload does.
    ids.write_text("bad id with spaces\n")
    assert mg.wait_stderr(r"reload \(a device_id_file changed\) failed", 10), mg.stderr
    assert post(mg, v4).status == 403
