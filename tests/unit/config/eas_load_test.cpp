// Location kinds and `eas:` conditions: what the loader keeps, and where it refuses them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/load.hpp"

namespace mailgate::config {
namespace {

namespace fs = std::filesystem;

const std::string files_dir = (fs::path(MAILGATE_CORPUS_DIR) / "config" / "files").string();

const std::string head = R"(listeners:
  - name: public
    address: "0.0.0.0:443"
    tls:
      certificates:
        - { cert: mail.pem, key: mail.key }
upstreams:
  - name: exchange
    servers: ["10.0.0.11:443"]
)";

load_result load(const std::string& yaml, const std::string& base = files_dir) {
    return load_string(yaml, "test.yaml", base);
}

std::string lines(const load_result& r) {
    std::string out;
    for (const auto& d : r.diags.items()) out += d.to_string() + "\n";
    return out;
}

TEST(LocationKind, DefaultUnlessSaid) {
    const auto r = load(head + R"(locations:
  - path: /
    upstream: exchange
  - path: /owa
    kind: default
    upstream: exchange
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
)");
    ASSERT_TRUE(r.config) << lines(r);
    const auto& l = r.config->locations;
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[0].kind, location_kind::generic);
    EXPECT_EQ(l[1].kind, location_kind::generic);
    EXPECT_EQ(l[2].kind, location_kind::activesync);
    EXPECT_EQ(l[2].kind_mark.line, 17);
    EXPECT_EQ(l[2].kind_mark.column, 11);
}

TEST(LocationKind, UnknownKindsAreErrors) {
    const auto r = load(head + R"(locations:
  - path: /
    kind: ActiveSync
    upstream: exchange
)");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r),
              "test.yaml:12:11: error: invalid value 'ActiveSync' for 'kind' (expected "
              "default or activesync)\n");
}

TEST(EasCondition, EveryKeyWithItsMarks) {
    const auto r = load(head + R"(locations:
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
    request_blocking:
      - name: r
        if:
          eas:
            cmd: Sync
            user: ['^CONTOSO\\', "@contoso\\.com$"]
            device_id: [Nine342BA3F3E6C6, "^appl"]
            device_type: iPhone
            protocol: ["^16\\."]
            device_id_file: devices.txt
        action: forbidden
)");
    ASSERT_TRUE(r.config) << lines(r);
    const auto& c = r.config->locations[0].request_blocking.at(0).condition;
    ASSERT_TRUE(c.eas);
    const eas_condition& e = *c.eas;
    EXPECT_TRUE(e.has_cmd && e.has_user && e.has_device_id && e.has_device_type && e.has_protocol);
    ASSERT_EQ(e.cmd.size(), 1u);
    EXPECT_EQ(e.cmd[0].text, "Sync");
    EXPECT_EQ(e.cmd[0].mark.line, 18);
    EXPECT_EQ(e.cmd[0].mark.column, 18);
    ASSERT_EQ(e.user.size(), 2u);
    EXPECT_EQ(e.user[0].text, "^CONTOSO\\\\");
    EXPECT_EQ(e.user[1].text, "@contoso\\.com$");
    ASSERT_EQ(e.device_id.size(), 2u);
    EXPECT_EQ(e.device_id[1].text, "^appl");
    EXPECT_EQ(e.device_id[1].mark.line, 20);
    EXPECT_EQ(e.device_id[1].mark.column, 43);
    ASSERT_EQ(e.device_type.size(), 1u);
    EXPECT_EQ(e.device_type[0].text, "iPhone");
    ASSERT_EQ(e.protocol.size(), 1u);
    EXPECT_EQ(e.protocol[0].text, "^16\\.");
    ASSERT_TRUE(e.device_id_file);
    EXPECT_EQ(*e.device_id_file, files_dir + "/devices.txt");  // relative to the file
    EXPECT_EQ(e.device_id_file_mark.line, 23);
    EXPECT_EQ(e.device_id_file_mark.column, 29);
    EXPECT_EQ(e.mark.line, 18);
    // Keys not written are not conditions.
    EXPECT_FALSE(c.has_user_agent || c.has_client_ip || c.has_method);
}

TEST(EasCondition, KeysNotWrittenStayUnset) {
    const auto r = load(head + R"(locations:
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
    request_blocking:
      - { name: r, if_not: { eas: { device_type: [] } }, action: abort }
      - { name: s, if: { user_agent: x }, action: abort }
)");
    ASSERT_TRUE(r.config) << lines(r);
    const auto& rules = r.config->locations[0].request_blocking;
    ASSERT_TRUE(rules[0].condition.eas);
    const auto& e = *rules[0].condition.eas;
    EXPECT_TRUE(e.has_device_type);
    EXPECT_TRUE(e.device_type.empty());
    EXPECT_FALSE(e.has_cmd || e.has_user || e.has_device_id || e.has_protocol);
    EXPECT_FALSE(e.device_id_file);
    EXPECT_FALSE(rules[1].condition.eas);
    EXPECT_EQ(lines(r),
              "test.yaml:15:50: warning: condition 'device_type' is an empty list: it never "
              "matches\n");
}

TEST(EasCondition, OnlyOnActiveSyncLocations) {
    const auto r = load(head + R"(request_blocking:
  - { name: g, if: { eas: { cmd: Sync } }, action: abort }
locations:
  - path: /
    upstream: exchange
    request_blocking:
      - name: r
        if_not: { user_agent: x, eas: { cmd: Sync } }
        action: abort
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
    request_blocking:
      - { name: ok, if: { eas: { cmd: Sync } }, action: abort }
)");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r),
              "test.yaml:11:22: error: 'eas' conditions are not allowed in the global "
              "request_blocking: only a location with 'kind: activesync' decodes ActiveSync "
              "requests\n"
              "test.yaml:17:34: error: 'eas' conditions need 'kind: activesync' on their "
              "location\n");
}

TEST(EasCondition, TheKindMayComeAfterTheRules) {
    const auto r = load(head + R"(locations:
  - path: /Microsoft-Server-ActiveSync
    upstream: exchange
    request_blocking:
      - { name: ok, if: { eas: { cmd: Sync } }, action: abort }
    kind: activesync
)");
    EXPECT_TRUE(r.config) << lines(r);
}

TEST(EasCondition, TheDeviceIdFileMustBeReadable) {
    const auto r = load(head + R"(locations:
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
    request_blocking:
      - { name: r, if: { eas: { device_id_file: nowhere/devices.txt } }, action: abort }
)");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines(r), "test.yaml:15:49: error: cannot read device_id_file '" + files_dir +
                            "/nowhere/devices.txt': No such file or directory\n");
}

TEST(EasCondition, AnUnreadableDeviceIdFileIsAnError) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
    const fs::path dir = fs::temp_directory_path() / ("mailgate-eas-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path file = dir / "devices.txt";
    std::ofstream(file) << "abc\n";
    fs::permissions(file, fs::perms::none);
    const auto r = load(head + R"(locations:
  - path: /Microsoft-Server-ActiveSync
    kind: activesync
    upstream: exchange
    request_blocking:
      - { name: r, if: { eas: { device_id_file: devices.txt } }, action: abort }
)",
                        dir.string());
    EXPECT_FALSE(r.config);
    EXPECT_NE(lines(r).find("cannot read device_id_file"), std::string::npos) << lines(r);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace mailgate::config
