// `eas:` conditions against records made by the real decoder from the vectors of
// EXCHANGE-PROTOCOL.md, and the device_id_file list.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config/load.hpp"
#include "eas/query_decoder.hpp"
#include "policy/conditions.hpp"
#include "policy/policy.hpp"
#include "policy_test_util.hpp"

namespace {

using namespace mailgate;
using namespace mailgate::policy;
using namespace mailgate::policy::test;
namespace fs = std::filesystem;

// ---- requests ---------------------------------------------------------------------------------

const char* const v1 = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l";  // Sync, v140Device, SmartPhone
const char* const v3 =
    "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y";         // binary
const char* const v4 = "jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==";  // Nine342BA3F3E6C6
const char* const p2 =
    "User=deviceuser&DeviceId=6F24CAD599A5BF1A690246B8C68FAE8D&DeviceType=PocketPC&Cmd=Provision";
const char* const p4 =
    "User=t1@example.de&DeviceId=O8S9UD4DOH0SLEPOQC5AJ9AE3C&DeviceType=iPhone&Cmd=Settings";

// A request at an ActiveSync location: the record lives as long as this object.
struct eas_request {
    request http;
    std::unique_ptr<eas::eas_facts> record = std::make_unique<eas::eas_facts>();

    explicit eas_request(std::string query, std::string version = "",
                         std::string authorization = "") {
        http.with_method("POST").q(std::move(query));
        if (!version.empty()) http.header("MS-ASProtocolVersion", version.c_str());
        if (!authorization.empty()) http.header("Authorization", authorization.c_str());
        const auto e = eas::decode(http.query, http.fields, false, *record);
        EXPECT_EQ(e, eas::decode_error::ok) << eas::describe(e) << " for " << http.query;
    }
    request_facts facts() const {
        auto f = http.facts();
        f.eas = record.get();
        return f;
    }
};

// eas: condition builder; each call marks the key as written.
struct eas_block {
    config::eas_condition e;
    eas_block& cmd(std::initializer_list<const char*> v) {
        e.cmd = list(v);
        e.has_cmd = true;
        return *this;
    }
    eas_block& user(std::initializer_list<const char*> v) {
        e.user = list(v);
        e.has_user = true;
        return *this;
    }
    eas_block& device_id(std::initializer_list<const char*> v) {
        e.device_id = list(v);
        e.has_device_id = true;
        return *this;
    }
    eas_block& device_type(std::initializer_list<const char*> v) {
        e.device_type = list(v);
        e.has_device_type = true;
        return *this;
    }
    eas_block& protocol(std::initializer_list<const char*> v) {
        e.protocol = list(v);
        e.has_protocol = true;
        return *this;
    }
    eas_block& file(std::string path) {
        e.device_id_file = std::move(path);
        e.device_id_file_mark = {7, 9};
        return *this;
    }
    operator config::condition_block() const {
        config::condition_block b;
        b.eas = e;
        return b;
    }
};

config::root activesync(std::vector<config::rule_section> rules) {
    config::root cfg;
    auto loc = location("/Microsoft-Server-ActiveSync", std::move(rules));
    loc.kind = config::location_kind::activesync;
    cfg.locations.push_back(std::move(loc));
    return cfg;
}

bool fires(config::condition_block b, const request_facts& f, bool negate = false) {
    auto r = negate ? rule_if_not("r", std::move(b), action::forbidden)
                    : rule_if("r", std::move(b), action::forbidden);
    auto c = compile(activesync({std::move(r)}));
    EXPECT_TRUE(c.set) << (c.diags.items().empty() ? "" : c.diags.items()[0].to_string());
    if (!c.set) return false;
    verdict v;
    c.set->evaluate(f, 0, v);
    return v.decided_by != nullptr;
}
bool fires(config::condition_block b, const eas_request& r, bool negate = false) {
    return fires(std::move(b), r.facts(), negate);
}

// A file under /tmp, removed at the end of the test.
class temp_file {
public:
    explicit temp_file(const std::string& content) {
        std::string templ = (fs::temp_directory_path() / "mailgate-devices-XXXXXX").string();
        const int fd = ::mkstemp(templ.data());
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path_ = templ;
        std::ofstream(path_, std::ios::binary) << content;
    }
    ~temp_file() {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string dump(const config::diagnostics& d) {
    std::string out;
    for (const auto& i : d.items()) out += i.to_string() + "\n";
    return out;
}

// ---- R8: device IDs by either form -------------------------------------------------------------

TEST(EasDeviceId, R8AsciiRuleAndHexRuleEachBlockV4) {
    const eas_request r(v4);
    EXPECT_TRUE(fires(eas_block{}.device_id({"Nine342BA3F3E6C6"}), r));
    EXPECT_TRUE(fires(eas_block{}.device_id({"4e696e65333432424133463345364336"}), r));
    // Case-insensitively, both forms.
    EXPECT_TRUE(fires(eas_block{}.device_id({"^nine342ba3f3e6c6$"}), r));
    EXPECT_TRUE(fires(eas_block{}.device_id({"^4E696E65333432424133463345364336$"}), r));
    EXPECT_FALSE(fires(eas_block{}.device_id({"^Nine2EC7EC0BB54D$"}), r));
    EXPECT_FALSE(fires(eas_block{}.device_id({"^4e696e65324543374543304242353444$"}), r));
}

TEST(EasDeviceId, ABinaryIdHasOnlyItsHexForm) {
    const eas_request r(v3);
    EXPECT_TRUE(fires(eas_block{}.device_id({"^ae4ecd19f592ba5657706ff74cf09bac$"}), r));
    EXPECT_TRUE(fires(eas_block{}.device_id({"^AE4ECD19"}), r));
    EXPECT_FALSE(fires(eas_block{}.device_id({"^$"}), r));  // no empty ASCII form to match
}

TEST(EasDeviceId, PlainAndBase64FormsOfOneDeviceMatchTheSameRules) {
    const eas_request b64(v4);
    const eas_request plain("Cmd=Sync&User=u&DeviceId=Nine342BA3F3E6C6&DeviceType=Android");
    for (const char* rule : {"^Nine342BA3F3E6C6$", "^4e696e65333432424133463345364336$"}) {
        EXPECT_TRUE(fires(eas_block{}.device_id({rule}), b64)) << rule;
        EXPECT_TRUE(fires(eas_block{}.device_id({rule}), plain)) << rule;
    }
}

// ---- the other facts ------------------------------------------------------------------------

TEST(EasFacts, CommandOnTheCanonicalNameOfEitherForm) {
    EXPECT_TRUE(fires(eas_block{}.cmd({"^Sync$"}), eas_request(v1)));
    EXPECT_TRUE(fires(eas_block{}.cmd({"^sync$"}), eas_request(v4)));  // case-insensitive
    EXPECT_TRUE(fires(eas_block{}.cmd({"^Provision$"}), eas_request(p2)));
    EXPECT_FALSE(fires(eas_block{}.cmd({"^Search$", "^ItemOperations$"}), eas_request(p2)));
    // The plain form's own spelling is canonicalised before rules see it.
    EXPECT_TRUE(fires(eas_block{}.cmd({"(?-i)^Search$"}),
                      eas_request("cmd=search&User=u&DeviceId=d&DeviceType=t")));
    EXPECT_TRUE(fires(eas_block{}.cmd({"^Search$"}),
                      eas_request("Cmd=%53earch&User=u&DeviceId=d&DeviceType=t")));
}

TEST(EasFacts, DeviceTypeAndProtocol) {
    const eas_request r(p4, "16.1");
    EXPECT_TRUE(fires(eas_block{}.device_type({"^iPhone$"}), r));
    EXPECT_FALSE(fires(eas_block{}.device_type({"^Android$"}), r));
    EXPECT_TRUE(fires(eas_block{}.protocol({"^16\\."}), r));
    EXPECT_FALSE(fires(eas_block{}.protocol({"^14\\.[01]$"}), r));
    EXPECT_TRUE(fires(eas_block{}.protocol({"^14\\.1$"}), eas_request(v4)));
    // Plain form without the header: the protocol is empty.
    EXPECT_TRUE(fires(eas_block{}.protocol({"^$"}), eas_request(p4)));
}

TEST(EasFacts, UserFromTheQueryOrTheBasicCredentials) {
    EXPECT_TRUE(fires(eas_block{}.user({"@example\\.de$"}), eas_request(p4)));
    // V1 names no user: the Basic user name stands in ("CONTOSO\jdoe:hunter2").
    const eas_request basic(v1, "", "Basic Q09OVE9TT1xqZG9lOmh1bnRlcjI=");
    EXPECT_TRUE(fires(eas_block{}.user({"^contoso\\\\jdoe$"}), basic));
    EXPECT_FALSE(fires(eas_block{}.user({"hunter2"}), basic));
    // NTLM names nobody (yet): the user is empty.
    const eas_request ntlm(v1, "", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==");
    EXPECT_FALSE(fires(eas_block{}.user({"."}), ntlm));
    EXPECT_TRUE(fires(eas_block{}.user({"^$"}), ntlm));
}

TEST(EasFacts, EveryKeyWrittenMustHold) {
    const eas_request r(v4);
    EXPECT_TRUE(fires(eas_block{}.cmd({"Sync"}).device_type({"Android"}).protocol({"14.1"}), r));
    EXPECT_FALSE(fires(eas_block{}.cmd({"Sync"}).device_type({"iPhone"}), r));
    EXPECT_FALSE(fires(eas_block{}.cmd({"Ping"}).device_type({"Android"}), r));
    // An empty list never matches.
    EXPECT_FALSE(fires(eas_block{}.cmd({}), r));
    // With other conditions of the block too.
    auto b = static_cast<config::condition_block>(eas_block{}.device_type({"Android"}));
    b.method = list({"POST"});
    b.has_method = true;
    EXPECT_TRUE(fires(b, r));
    b.method = list({"OPTIONS"});
    EXPECT_FALSE(fires(b, r));
}

TEST(EasFacts, AnAllowListOfDeviceTypes) {
    const auto allow = eas_block{}.device_type({"^(?:iPhone|iPad)$"});
    EXPECT_FALSE(fires(allow, eas_request(p4), true));  // iPhone: passes
    EXPECT_TRUE(fires(allow, eas_request(v4), true));   // Android: refused
}

TEST(EasFacts, WithoutARecordEveryFactIsEmpty) {
    request plain_http;
    const auto f = plain_http.facts();  // f.eas == nullptr
    EXPECT_FALSE(fires(eas_block{}.cmd({"Sync"}), f));
    EXPECT_TRUE(fires(eas_block{}.cmd({"^$"}), f));
    EXPECT_TRUE(fires(eas_block{}.device_id({"^$"}), f));
    EXPECT_TRUE(fires(eas_block{}.cmd({"Sync"}), f, true));  // if_not: fires
}

TEST(EasFacts, BadRegexesAreReportedAtTheirMarks) {
    eas_block b;
    b.e.device_type = {ms("iPhone", 3, 5), ms("(unclosed", 4, 7)};
    b.e.has_device_type = true;
    auto c = compile(activesync({rule_if("r", b, action::forbidden)}));
    EXPECT_FALSE(c.set);
    ASSERT_EQ(c.diags.items().size(), 1u);
    EXPECT_EQ(c.diags.items()[0].mark.line, 4);
    EXPECT_EQ(c.diags.items()[0].mark.column, 7);
}

// ---- device_id_file --------------------------------------------------------------------------

TEST(DeviceIdFile, BlocksListedDevicesByEitherForm) {
    const temp_file list(
        "# blocked devices\n"
        "NINE342ba3f3e6c6\n"                            // V4, ASCII form, any case
        "  AE4ECD19F592BA5657706FF74CF09BAC  # V3\r\n"  // V3, binary: hex form
        "\n"
        "6f24cad599a5bf1a690246b8c68fae8d\n");  // P2's plain DeviceId
    const auto b = eas_block{}.file(list.path());
    EXPECT_TRUE(fires(b, eas_request(v4)));
    EXPECT_TRUE(fires(b, eas_request("Cmd=Sync&User=u&DeviceId=nine342BA3F3E6C6&DeviceType=x")));
    EXPECT_TRUE(fires(b, eas_request(v3)));
    EXPECT_TRUE(fires(b, eas_request(p2)));
    EXPECT_FALSE(fires(b, eas_request(v1)));
    EXPECT_FALSE(fires(b, eas_request(p4)));
    // Exact: a prefix or a longer ID is another device.
    EXPECT_FALSE(fires(b, eas_request("Cmd=Sync&User=u&DeviceId=Nine342BA3F3E6C&DeviceType=x")));
    EXPECT_FALSE(fires(b, eas_request("Cmd=Sync&User=u&DeviceId=Nine342BA3F3E6C66&DeviceType=x")));
    // The hex form of an ASCII ID listed is the same device.
    const temp_file hex_list("4e696e65333432424133463345364336\n");
    EXPECT_TRUE(fires(eas_block{}.file(hex_list.path()),
                      eas_request("Cmd=Sync&User=u&DeviceId=Nine342BA3F3E6C6&DeviceType=x")));
}

TEST(DeviceIdFile, AndOtherEasKeys) {
    const temp_file list("Nine342BA3F3E6C6\n");
    EXPECT_TRUE(fires(eas_block{}.file(list.path()).cmd({"^Sync$"}), eas_request(v4)));
    EXPECT_FALSE(fires(eas_block{}.file(list.path()).cmd({"^Ping$"}), eas_request(v4)));
}

TEST(DeviceIdFile, ReadSortedLowercasedAndUnique) {
    const temp_file list("b\nA\na # dup\n\t c\t\n#only a comment\n");
    std::vector<std::string> ids;
    config::diagnostics diags("test.yaml");
    ASSERT_TRUE(read_device_ids(list.path(), {3, 4}, ids, diags)) << dump(diags);
    EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(diags.items().empty());
    EXPECT_TRUE(contains_device_id(ids, "A"));
    EXPECT_TRUE(contains_device_id(ids, "c"));
    EXPECT_FALSE(contains_device_id(ids, "d"));
    EXPECT_FALSE(contains_device_id(ids, ""));
    EXPECT_FALSE(contains_device_id({}, "a"));
}

TEST(DeviceIdFile, ProblemsNameTheFileAndLine) {
    const temp_file list("good\nwith space\nok\n" + std::string(511, 'x') + "\nctl\x01x\n");
    std::vector<std::string> ids;
    config::diagnostics diags("test.yaml");
    EXPECT_FALSE(read_device_ids(list.path(), {3, 4}, ids, diags));
    EXPECT_EQ(dump(diags),
              "test.yaml:3:4: error: device_id_file '" + list.path() +
                  "' line 2: a device ID is printable ASCII without spaces (one ID per line)\n"
                  "test.yaml:3:4: error: device_id_file '" +
                  list.path() +
                  "' line 4: longer than 510 characters, which no device ID is\n"
                  "test.yaml:3:4: error: device_id_file '" +
                  list.path() +
                  "' line 5: a device ID is printable ASCII without spaces (one ID per line)\n");
}

TEST(DeviceIdFile, ManyBadLinesAreCounted) {
    std::string content;
    for (int i = 0; i < 9; ++i) content += "bad id\n";
    const temp_file list(content);
    std::vector<std::string> ids;
    config::diagnostics diags("test.yaml");
    EXPECT_FALSE(read_device_ids(list.path(), {3, 4}, ids, diags));
    ASSERT_EQ(diags.items().size(), 6u);
    EXPECT_EQ(diags.items()[5].message,
              "device_id_file '" + list.path() + "': 4 more lines with errors");
}

TEST(DeviceIdFile, MissingOrEmpty) {
    std::vector<std::string> ids;
    config::diagnostics diags("test.yaml");
    EXPECT_FALSE(read_device_ids("/nonexistent/devices.txt", {3, 4}, ids, diags));
    EXPECT_EQ(dump(diags),
              "test.yaml:3:4: error: cannot read device_id_file '/nonexistent/devices.txt': No "
              "such file or directory\n");

    const temp_file empty("# nothing yet\n\n");
    config::diagnostics d2("test.yaml");
    EXPECT_TRUE(read_device_ids(empty.path(), {3, 4}, ids, d2));
    EXPECT_TRUE(ids.empty());
    EXPECT_EQ(dump(d2), "test.yaml:3:4: warning: device_id_file '" + empty.path() +
                            "' lists no device IDs: it never matches\n");
    EXPECT_FALSE(fires(eas_block{}.file(empty.path()), eas_request(v4)));
}

TEST(DeviceIdFile, AMissingFileStopsTheCompile) {
    auto c = compile(activesync(
        {rule_if("r", eas_block{}.file("/nonexistent/devices.txt"), action::forbidden)}));
    EXPECT_FALSE(c.set);
    ASSERT_EQ(c.diags.items().size(), 1u);
    EXPECT_EQ(c.diags.items()[0].mark.line, 7);
    EXPECT_EQ(c.diags.items()[0].mark.column, 9);
}

TEST(DeviceIdFile, ReadAgainOnEveryCompile) {
    // A reload compiles the policy again, and so picks up the file as it is then.
    const temp_file list("Nine342BA3F3E6C6\n");
    const auto cfg = activesync({rule_if("r", eas_block{}.file(list.path()), action::forbidden)});
    const eas_request r(v4);
    auto first = compile(cfg);
    ASSERT_TRUE(first.set);
    std::ofstream(list.path(), std::ios::binary | std::ios::trunc) << "someone-else\n";
    auto second = compile(cfg);
    ASSERT_TRUE(second.set);
    verdict v;
    first.set->evaluate(r.facts(), 0, v);
    EXPECT_TRUE(v.decided_by);
    second.set->evaluate(r.facts(), 0, v);
    EXPECT_FALSE(v.decided_by);
}

// ---- through the loader ------------------------------------------------------------------------

TEST(EasLoaded, TheCorpusExampleDecides) {
    const auto loaded =
        config::load_file(std::string(MAILGATE_CORPUS_DIR) + "/config/valid/activesync.yaml");
    ASSERT_TRUE(loaded.config) << dump(loaded.diags);
    config::diagnostics diags(loaded.config->file);
    const auto set = policy_set::compile(*loaded.config, diags);
    ASSERT_TRUE(set) << dump(diags);
    const std::size_t eas_location = 1;
    ASSERT_EQ(loaded.config->locations[eas_location].kind, config::location_kind::activesync);

    auto decide = [&](const eas_request& r, const char* ua) {
        auto f = r.facts();
        f.user_agent = ua;
        verdict v;
        set->evaluate(f, eas_location, v);
        std::string out = v.decided_by ? v.decided_by->name : "";
        for (std::size_t i = 0; i < v.reported_count; ++i) out += " +" + v.reported[i]->name;
        return out;
    };
    // Listed in files/devices.txt (V4's ASCII form; V3's hex form).
    EXPECT_EQ(decide(eas_request(v4), "Android"), "/Microsoft-Server-ActiveSync/blocked-devices");
    EXPECT_EQ(decide(eas_request(v3), "Android"), "/Microsoft-Server-ActiveSync/blocked-devices");
    // A Search by an approved device is only reported; then "empties" never fires, and
    // "empty-eas" fires for every POST.
    const eas_request search("Cmd=Search&User=CONTOSO%5Cjdoe&DeviceId=ApplF17XYZ&DeviceType=iPhone",
                             "16.1");
    EXPECT_EQ(decide(search, "Apple-iPhone15C2/2101"),
              "/Microsoft-Server-ActiveSync/empty-eas +/Microsoft-Server-ActiveSync/no-search");
    // Not an approved user: aborted.
    const eas_request stranger("Cmd=Sync&User=mallory&DeviceId=ApplF17XYZ&DeviceType=iPhone",
                               "16.1");
    EXPECT_EQ(decide(stranger, "Apple-iPhone15C2/2101"), "/Microsoft-Server-ActiveSync/approved");
}

}  // namespace
