// The TLS keys of a listener and an upstream: profiles, custom suites, certificates with
// passphrases and OCSP responses, server names, HSTS preload, session tickets, mTLS and
// insecure_skip_verify.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "config/load.hpp"

namespace mailgate::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;

const std::string files_dir = (fs::path(MAILGATE_CORPUS_DIR) / "config" / "files").string();

// Line 5 is `tls:` of the listener, its keys start on line 6; line 10 is the upstream's
// `tls:` (empty unless `upstream_tls` is given).
std::string config(const std::string& listener_tls, const std::string& upstream_tls = "{}") {
    return "listeners:\n"
           "  - name: public\n"
           "    address: \"0.0.0.0:443\"\n"
           "    # listener tls\n"
           "    tls:\n" +
           listener_tls +
           "upstreams:\n"
           "  - name: exchange\n"
           "    servers: [\"10.0.0.11:443\"]\n"
           "    tls: " +
           upstream_tls +
           "\n"
           "locations:\n"
           "  - path: /\n"
           "    upstream: exchange\n";
}

const std::string certs = "      certificates:\n        - { cert: mail.pem, key: mail.key }\n";

load_result load(const std::string& yaml) { return load_string(yaml, "test.yaml", files_dir); }

std::string lines(const load_result& r) {
    std::string out;
    for (const auto& d : r.diags.items()) out += d.to_string() + "\n";
    return out;
}

TEST(LoadTls, DefaultsAreTheHardenedOnes) {
    const auto r = load(config(certs));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& t = r.config->listeners[0].tls;
    EXPECT_EQ(t.profile, tls_profile::intermediate);
    EXPECT_TRUE(t.ciphers.empty());
    EXPECT_FALSE(t.allow_weak);
    EXPECT_FALSE(t.hsts.preload);
    EXPECT_EQ(t.session_tickets.mode, session_ticket_mode::rotate);
    EXPECT_EQ(t.session_tickets.rotate, hours(12));
    EXPECT_TRUE(t.server_names.empty());
    EXPECT_FALSE(t.certificates[0].key_passphrase_file);
    EXPECT_FALSE(t.certificates[0].ocsp_response);
    const auto& u = r.config->upstreams[0].tls;
    EXPECT_FALSE(u.insecure_skip_verify);
    EXPECT_FALSE(u.client_cert);
}

TEST(LoadTls, CustomProfileTakesCipherLists) {
    const auto r =
        load(config("      profile: custom\n"
                    "      ciphers: [ECDHE-ECDSA-AES128-GCM-SHA256, "
                    "ECDHE-RSA-AES128-GCM-SHA256]\n"
                    "      ciphersuites: TLS_AES_128_GCM_SHA256\n" +
                    certs));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& t = r.config->listeners[0].tls;
    EXPECT_EQ(t.profile, tls_profile::custom);
    EXPECT_EQ(t.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
    EXPECT_EQ(t.ciphersuites, "TLS_AES_128_GCM_SHA256");
    EXPECT_EQ(t.ciphers_mark.line, 7);
    EXPECT_EQ(t.ciphers_mark.column, 16);
    EXPECT_EQ(lines(r), "");
}

TEST(LoadTls, AllowWeakIsAWarningEveryTime) {
    const auto r =
        load(config("      profile: custom\n"
                    "      ciphers: \"HIGH:!aNULL\"\n"
                    "      allow_weak: true\n" +
                    certs));
    ASSERT_TRUE(r.config);
    EXPECT_TRUE(r.config->listeners[0].tls.allow_weak);
    EXPECT_EQ(lines(r),
              "test.yaml:8:19: warning: allow_weak is on: RC4, 3DES, DES, NULL, EXPORT, "
              "anonymous, MD5, static-RSA and CBC suites in 'ciphers' are not refused\n");
}

TEST(LoadTls, CipherKeysBelongToTheCustomProfileOnly) {
    EXPECT_EQ(lines(load(config("      ciphers: \"RC4-SHA\"\n      allow_weak: false\n" + certs))),
              "test.yaml:6:7: error: 'ciphers' is only allowed with 'profile: custom' (the "
              "intermediate and modern profiles are fixed)\n"
              "test.yaml:7:7: error: 'allow_weak' is only allowed with 'profile: custom' (the "
              "intermediate and modern profiles are fixed)\n");
    EXPECT_EQ(lines(load(config("      profile: custom\n" + certs))),
              "test.yaml:6:7: error: missing required key 'ciphers' (profile: custom)\n");
    EXPECT_EQ(lines(load(config("      profile: custom\n      ciphers: []\n" + certs))),
              "test.yaml:7:16: error: 'ciphers' must not be empty\n");
    EXPECT_EQ(lines(load(config("      profile: old\n" + certs))),
              "test.yaml:6:16: error: invalid value 'old' for 'profile' (expected intermediate, "
              "modern or custom)\n");
}

TEST(LoadTls, CertificateEntriesTakePassphraseAndOcspFiles) {
    const auto r =
        load(config("      certificates:\n"
                    "        - cert: mail.pem\n"
                    "          key: mail.key\n"
                    "          key_passphrase_file: ca.pem\n"
                    "          ocsp_response: mail.pem\n"
                    "        - { cert: mail.pem, key: mail.key, key_passphrase_file: nope, "
                    "ocsp_response: x }\n"));
    EXPECT_EQ(lines(r), "test.yaml:11:65: error: cannot read passphrase file '" + files_dir +
                            "/nope': No such file or directory\n"
                            "test.yaml:11:86: error: cannot read OCSP response file '" +
                            files_dir + "/x': No such file or directory\n");
    const auto ok =
        load(config("      certificates:\n"
                    "        - cert: mail.pem\n"
                    "          key: mail.key\n"
                    "          key_passphrase_file: ca.pem\n"
                    "          ocsp_response: mail.pem\n"));
    ASSERT_TRUE(ok.config) << lines(ok);
    const auto& c = ok.config->listeners[0].tls.certificates[0];
    EXPECT_EQ(c.key_passphrase_file, files_dir + "/ca.pem");
    EXPECT_EQ(c.ocsp_response, files_dir + "/mail.pem");
    EXPECT_EQ(c.key_passphrase_mark.line, 9);
    EXPECT_EQ(c.ocsp_mark.line, 10);
}

TEST(LoadTls, ServerNames) {
    const auto r = load(config(
        "      server_names: [Mail.Example.com, \"*.example.org\", 192.0.2.1, \"::1\"]\n" + certs));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& names = r.config->listeners[0].tls.server_names;
    ASSERT_EQ(names.size(), 4u);
    EXPECT_EQ(names[0].text, "mail.example.com");
    EXPECT_EQ(names[1].text, "*.example.org");
    EXPECT_EQ(names[0].mark.line, 6);
    EXPECT_EQ(lines(load(config("      server_names: [\"mail example\", \"a.*.com\"]\n" + certs))),
              "test.yaml:6:22: error: invalid server name 'mail example' (expected a host name, "
              "'*.' and a domain, or an IP address)\n"
              "test.yaml:6:38: error: invalid server name 'a.*.com' (expected a host name, '*.' "
              "and a domain, or an IP address)\n");
}

TEST(LoadTls, HstsPreload) {
    const auto r = load(config(certs + "      hsts: { max_age: 2y, preload: true }\n"));
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_TRUE(r.config->listeners[0].tls.hsts.preload);
    EXPECT_EQ(lines(r), "");
    EXPECT_EQ(
        lines(load(config(
            certs + "      hsts: { max_age: 200d, include_subdomains: false, preload: true }\n"))),
        "test.yaml:8:66: warning: hsts preload needs max_age of at least 1y to be accepted "
        "by the preload list\n"
        "test.yaml:8:66: warning: hsts preload needs include_subdomains: true to be "
        "accepted by the preload list\n");
    EXPECT_EQ(lines(load(config(certs + "      hsts: { max_age: 30d }\n"))),
              "test.yaml:8:24: warning: hsts max_age below 180d is not enough for an A+ rating\n");
}

TEST(LoadTls, SessionTickets) {
    auto mode = [](const std::string& value) {
        const auto r = load(config(certs + "      session_tickets: " + value + "\n"));
        session_ticket_settings failed;
        failed.rotate = minutes(-1);
        return r.config ? r.config->listeners[0].tls.session_tickets : failed;
    };
    EXPECT_EQ(mode("off").mode, session_ticket_mode::off);
    EXPECT_EQ(mode("{ rotate: 1h }").rotate, hours(1));
    EXPECT_EQ(mode("{ rotate: 1h }").mode, session_ticket_mode::rotate);
    const auto file = mode("{ key_file: mail.key }");
    EXPECT_EQ(file.mode, session_ticket_mode::key_file);
    EXPECT_EQ(file.key_file, files_dir + "/mail.key");
    EXPECT_EQ(file.key_file_mark.line, 8);

    auto errors = [](const std::string& value) {
        return lines(load(config(certs + "      session_tickets: " + value + "\n")));
    };
    EXPECT_EQ(errors("on"),
              "test.yaml:8:24: error: invalid value 'on' for 'session_tickets' (expected off, { "
              "rotate: DURATION } or { key_file: PATH })\n");
    EXPECT_EQ(errors("{ rotate: 30s }"),
              "test.yaml:8:34: error: 'rotate' must be from 1m to 7d, got '30s'\n");
    EXPECT_EQ(errors("{ rotate: 8d }"),
              "test.yaml:8:34: error: 'rotate' must be from 1m to 7d, got '8d'\n");
    EXPECT_EQ(errors("{ rotate: 1h, key_file: mail.key }"),
              "test.yaml:8:38: error: 'rotate' and 'key_file' exclude each other (a shared key "
              "file is rotated by replacing it and reloading)\n");
    EXPECT_EQ(errors("{}"), "test.yaml:8:24: error: missing required key 'rotate' or 'key_file'\n");
    EXPECT_EQ(errors("{ key_file: missing.key }"),
              "test.yaml:8:36: error: cannot read session ticket key file '" + files_dir +
                  "/missing.key': No such file or directory\n");
}

TEST(LoadTls, UpstreamClientCertificate) {
    const auto r = load(config(certs, "{ client_cert: mail.pem, client_key: mail.key }"));
    ASSERT_TRUE(r.config) << lines(r);
    const auto& u = r.config->upstreams[0].tls;
    EXPECT_EQ(u.client_cert, files_dir + "/mail.pem");
    EXPECT_EQ(u.client_key, files_dir + "/mail.key");
    EXPECT_EQ(u.client_key_mark.line, 11);
    EXPECT_EQ(lines(load(config(certs, "{ client_cert: mail.pem }"))),
              "test.yaml:11:12: error: 'client_cert' needs 'client_key'\n");
    EXPECT_EQ(lines(load(config(certs, "{ client_key: mail.key }"))),
              "test.yaml:11:12: error: 'client_key' needs 'client_cert'\n");
}

TEST(LoadTls, InsecureSkipVerifyIsAlwaysWarned) {
    const auto r = load(config(certs, "{ insecure_skip_verify: true, ca: ca.pem }"));
    ASSERT_TRUE(r.config) << lines(r);
    EXPECT_TRUE(r.config->upstreams[0].tls.insecure_skip_verify);
    EXPECT_EQ(lines(r),
              "test.yaml:11:34: warning: insecure_skip_verify is on: the upstream's certificate "
              "and name are not verified, so anyone on the path to it can read and change the "
              "traffic\n"
              "test.yaml:11:40: warning: 'ca' is not used while insecure_skip_verify is on\n");
    EXPECT_EQ(lines(load(config(certs, "{ insecure_skip_verify: false }"))), "");
    EXPECT_EQ(lines(load(config(certs, "{ insecure_skip_verify: yes }"))),
              "test.yaml:11:34: error: 'insecure_skip_verify' must be true or false, got 'yes'\n");
}

}  // namespace
}  // namespace mailgate::config
