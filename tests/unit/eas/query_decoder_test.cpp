#include "eas/query_decoder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace mailgate::eas;
using namespace std::string_literals;

// ---- helpers ------------------------------------------------------------------------------

std::string b64(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                           static_cast<unsigned char>(bytes[i + 1]) << 8 |
                           static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (bytes.size() - i == 1) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (bytes.size() - i == 2) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                           static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string unhex(std::string_view spaced) {
    std::string out;
    auto val = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i < spaced.size();) {
        if (spaced[i] == ' ') {
            ++i;
            continue;
        }
        out += static_cast<char>(val(spaced[i]) * 16 + val(spaced[i + 1]));
        i += 2;
    }
    return out;
}

// A base64-form record built from the layout of MS-ASHTTP 2.2.1.1.1.1.
struct record {
    std::uint8_t version = 141;
    std::uint8_t command = 0;
    std::uint16_t locale = 0x0409;
    std::string device_id = "v140Device";
    std::optional<std::uint32_t> policy_key;
    std::string device_type = "SmartPhone";
    std::vector<std::pair<std::uint8_t, std::string>> params;

    std::string bytes() const {
        std::string b;
        b += static_cast<char>(version);
        b += static_cast<char>(command);
        b += static_cast<char>(locale & 0xff);
        b += static_cast<char>(locale >> 8);
        b += static_cast<char>(device_id.size());
        b += device_id;
        if (policy_key) {
            b += '\x04';
            for (int i = 0; i < 4; ++i) b += static_cast<char>((*policy_key >> (8 * i)) & 0xff);
        } else {
            b += '\x00';
        }
        b += static_cast<char>(device_type.size());
        b += device_type;
        for (const auto& [tag, value] : params) {
            b += static_cast<char>(tag);
            b += static_cast<char>(value.size());
            b += value;
        }
        return b;
    }
    std::string query() const { return b64(bytes()); }
};

struct req {
    std::string query{};
    std::string version{};  // MS-ASProtocolVersion
    std::string key{};      // X-MS-PolicyKey
    std::string auth{};     // Authorization
    bool options = false;

    request_input input() const { return {query, version, key, auth, options}; }
};

decode_error run(const req& r, eas_facts& f) { return decode(r.input(), f); }

decode_error error_of(const req& r) {
    eas_facts f;
    return run(r, f);
}
decode_error error_of(const std::string& query) { return error_of(req{query}); }

std::string hex_of(std::string_view s) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : s) {
        out += digits[static_cast<unsigned char>(c) >> 4];
        out += digits[static_cast<unsigned char>(c) & 15];
    }
    return out;
}

std::vector<std::string> params_of(const eas_facts& f) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < f.parameter_count; ++i)
        out.push_back(std::string(f.parameters[i].name) + "=" + std::string(f.parameters[i].value));
    return out;
}

// Every view of a successful record: device ID forms agree with each other.
void expect_consistent(const eas_facts& f) {
    EXPECT_EQ(f.device_id_hex, hex_of(f.device_id));
    if (!f.device_id_ascii.empty()) {
        EXPECT_EQ(f.device_id_ascii, f.device_id);
    }
}

// ---- EXCHANGE-PROTOCOL.md section 7: plain-text query (P) ------------------------------------

TEST(PlainVectors, P1) {
    eas_facts f;
    ASSERT_EQ(run({"Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone", "14.0"}, f),
              decode_error::ok);
    EXPECT_EQ(f.form, query_form::plain);
    EXPECT_EQ(f.cmd, "Sync");
    EXPECT_EQ(f.user, "rmjones");
    EXPECT_EQ(f.user_from, user_source::query);
    EXPECT_EQ(f.device_id, "v140Device");
    EXPECT_EQ(f.device_id_ascii, "v140Device");
    EXPECT_EQ(f.device_id_hex, "76313430446576696365");
    EXPECT_EQ(f.device_type, "SmartPhone");
    EXPECT_EQ(f.protocol_version, "14.0");
    EXPECT_FALSE(f.policy_key);
    EXPECT_FALSE(f.locale);
    EXPECT_EQ(f.parameter_count, 0);
}

TEST(PlainVectors, P2CmdLast) {
    eas_facts f;
    ASSERT_EQ(run({"User=deviceuser&DeviceId=6F24CAD599A5BF1A690246B8C68FAE8D&DeviceType=PocketPC&"
                   "Cmd=Provision",
                   "14.0", "1307199584"},
                  f),
              decode_error::ok);
    EXPECT_EQ(f.cmd, "Provision");
    EXPECT_EQ(f.user, "deviceuser");
    EXPECT_EQ(f.device_id, "6F24CAD599A5BF1A690246B8C68FAE8D");
    EXPECT_EQ(f.device_type, "PocketPC");
    EXPECT_EQ(f.protocol_version, "14.0");
    EXPECT_EQ(f.policy_key, 1307199584u);
    expect_consistent(f);
}

TEST(PlainVectors, P3) {
    eas_facts f;
    ASSERT_EQ(
        run({"Cmd=FolderSync&User=fakename&DeviceId=v140Device&DeviceType=SmartPhone", "14.0"}, f),
        decode_error::ok);
    EXPECT_EQ(f.cmd, "FolderSync");
    EXPECT_EQ(f.user, "fakename");
    EXPECT_EQ(f.device_id, "v140Device");
    EXPECT_EQ(f.device_type, "SmartPhone");
}

TEST(PlainVectors, P4RawAtSign) {
    eas_facts f;
    ASSERT_EQ(run({"User=t1@example.de&DeviceId=O8S9UD4DOH0SLEPOQC5AJ9AE3C&DeviceType=iPhone&"
                   "Cmd=Settings",
                   "16.1", "0", "Basic dDFAZXhhbXBsZS5kZTpzZWNyZXQ="},
                  f),
              decode_error::ok);
    EXPECT_EQ(f.cmd, "Settings");
    EXPECT_EQ(f.user, "t1@example.de");
    EXPECT_EQ(f.user_from, user_source::query);  // the query wins over Authorization
    EXPECT_EQ(f.device_id, "O8S9UD4DOH0SLEPOQC5AJ9AE3C");
    EXPECT_EQ(f.device_type, "iPhone");
    EXPECT_EQ(f.protocol_version, "16.1");
    EXPECT_EQ(f.policy_key, 0u);
}

TEST(PlainVectors, P5MissingDeviceIdIsRefused) {
    EXPECT_EQ(error_of("Cmd=Sync&User=a&DeviceType=iPhone"), decode_error::missing_device_id);
}

// ---- section 7: base64 query (V) ------------------------------------------------------------

TEST(Base64Vectors, V1SpecExample) {
    eas_facts f;
    ASSERT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"}, f), decode_error::ok);
    EXPECT_EQ(f.form, query_form::base64);
    EXPECT_EQ(f.protocol_version, "14.0");
    EXPECT_EQ(f.cmd, "Sync");
    EXPECT_EQ(f.locale, 1033);
    EXPECT_EQ(f.device_id, "v140Device");
    EXPECT_EQ(f.device_id_ascii, "v140Device");
    EXPECT_FALSE(f.policy_key);
    EXPECT_EQ(f.device_type, "SmartPhone");
    EXPECT_EQ(f.parameter_count, 0);
    EXPECT_EQ(f.user, "");
    EXPECT_EQ(f.user_from, user_source::none);
    EXPECT_FALSE(f.headers_conflict);
}

TEST(Base64Vectors, V1HexDumpIsTheRecord) {
    const std::string bytes =
        unhex("8c 00 09 04 0a 76 31 34 30 44 65 76 69 63 65 00 0a 53 6d 61 72 74 50 68 6f 6e 65");
    EXPECT_EQ(bytes.size(), 27u);
    EXPECT_EQ(b64(bytes), "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l");
}

TEST(Base64Vectors, V2Settings) {
    eas_facts f;
    ASSERT_EQ(run({"oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA=="}, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "16.0");
    EXPECT_EQ(f.cmd, "Settings");
    EXPECT_EQ(f.locale, 1033);
    EXPECT_EQ(f.device_id, "Nine2EC7EC0BB54D");
    EXPECT_EQ(f.device_id_ascii, "Nine2EC7EC0BB54D");
    EXPECT_EQ(f.device_id_hex, "4e696e65324543374543304242353444");
    EXPECT_EQ(f.policy_key, 1655081217u);
    EXPECT_EQ(f.device_type, "Android");
    EXPECT_EQ(params_of(f), std::vector<std::string>{"Options="s + '\0'});
    EXPECT_EQ(f.options, 0x00);
    EXPECT_EQ(b64(unhex("a0 11 09 04 10 4e 69 6e 65 32 45 43 37 45 43 30 42 42 35 34 44 04 01 89 "
                        "a6 62 07 41 6e 64 72 6f 69 64 07 01 00")),
              "oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==");
}

TEST(Base64Vectors, V3SmartForwardBinaryDeviceId) {
    eas_facts f;
    ASSERT_EQ(run({"eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y"}, f),
              decode_error::ok);
    EXPECT_EQ(f.protocol_version, "12.1");
    EXPECT_EQ(f.cmd, "SmartForward");
    EXPECT_EQ(f.locale, 1033);
    EXPECT_EQ(f.device_id.size(), 16u);
    EXPECT_EQ(f.device_id_hex, "ae4ecd19f592ba5657706ff74cf09bac");
    EXPECT_EQ(f.device_id_ascii, "");  // binary: no ASCII form
    EXPECT_EQ(f.policy_key, 2216451701u);
    EXPECT_EQ(f.device_type, "PPC");
    EXPECT_EQ(params_of(f),
              (std::vector<std::string>{"Options=\x01", "ItemId=119281", "CollectionId=INBOX"}));
    EXPECT_EQ(f.options, 0x01);
    EXPECT_EQ(f.parameter_value("itemid"), "119281");
    EXPECT_EQ(f.parameter_value("CollectionId"), "INBOX");
    EXPECT_FALSE(f.parameter_value("LongId"));
    EXPECT_EQ(b64(unhex("79 02 09 04 10 ae 4e cd 19 f5 92 ba 56 57 70 6f f7 4c f0 9b ac 04 75 5e "
                        "1c 84 03 50 50 43 07 01 01 03 06 31 31 39 32 38 31 01 05 49 4e 42 4f "
                        "58")),
              "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y");
}

TEST(Base64Vectors, V4PolicyKeyPresentButZero) {
    eas_facts f;
    ASSERT_EQ(run({"jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA=="}, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "14.1");
    EXPECT_EQ(f.cmd, "Sync");
    EXPECT_EQ(f.locale, 1033);
    EXPECT_EQ(f.device_id, "Nine342BA3F3E6C6");
    EXPECT_EQ(f.device_id_hex, "4e696e65333432424133463345364336");
    ASSERT_TRUE(f.policy_key);     // present ...
    EXPECT_EQ(*f.policy_key, 0u);  // ... and zero
    EXPECT_EQ(f.device_type, "Android");
    EXPECT_EQ(f.options, 0x00);
}

// ---- section 7: base64 negatives (N) ---------------------------------------------------------

TEST(Base64Negatives, N1Truncated) { EXPECT_EQ(error_of("jAAJBAp2MTQ="), decode_error::truncated); }
TEST(Base64Negatives, N2PolicyKeyLengthThree) {
    EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAwECAwpTbWFydFBob25l"),
              decode_error::bad_policy_key_length);
}
TEST(Base64Negatives, N3DeviceIdLengthZero) {
    EXPECT_EQ(error_of("jAAJBAAAClNtYXJ0UGhvbmU="), decode_error::empty_device_id);
}
TEST(Base64Negatives, N7CommandCodeFive) {
    EXPECT_EQ(error_of("jAUJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"), decode_error::unknown_command_code);
}
TEST(Base64Negatives, N8NotBase64AndNoCmd) {
    EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l!"), decode_error::not_plain_or_base64);
}

// ---- R3/R4: form detection, '+' and '/' ----------------------------------------------------

// Built from the layout: a record whose base64 holds '+', '/' and '=' (R4's V8 kind).
const record plus_slash{161,
                        18,
                        0x0407,
                        unhex("fb ff bf 3e 00 00 00 00 00 00 00 00 00 00 00 00"),
                        0xffffffffu,
                        "WP8",
                        {{8, "CONTOSO\\jdoe"}}};

TEST(FormDetection, PlusAndSlashAreBase64NotForm) {
    const std::string q = plus_slash.query();
    ASSERT_EQ(q, "oRIHBBD7/78+AAAAAAAAAAAAAAAABP////8DV1A4CAxDT05UT1NPXGpkb2U=");
    eas_facts f;
    ASSERT_EQ(run({q}, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "16.1");
    EXPECT_EQ(f.cmd, "Ping");
    EXPECT_EQ(f.locale, 0x0407);
    EXPECT_EQ(f.device_id_hex, "fbffbf3e000000000000000000000000");
    EXPECT_EQ(f.policy_key, 0xffffffffu);
    EXPECT_EQ(f.device_type, "WP8");
    EXPECT_EQ(f.user, "CONTOSO\\jdoe");
    EXPECT_EQ(f.user_from, user_source::query);
    EXPECT_EQ(f.parameter_count, 0);  // User is the user, not a parameter
}

TEST(FormDetection, PercentEncodedPlusSlashAndEqualsDecodeTheSame) {
    std::string q = plus_slash.query();
    for (const auto& [from, upper, lower] : std::array<std::array<std::string, 3>, 3>{
             {{"+", "%2B", "%2b"}, {"/", "%2F", "%2f"}, {"=", "%3D", "%3d"}}}) {
        for (const auto& to : {upper, lower}) {
            std::string e = q;
            for (auto at = e.find(from); at != std::string::npos; at = e.find(from, at + 3))
                e.replace(at, 1, to);
            eas_facts f;
            ASSERT_EQ(run({e}, f), decode_error::ok) << e;
            EXPECT_EQ(f.user, "CONTOSO\\jdoe");
            EXPECT_EQ(f.device_id_hex, "fbffbf3e000000000000000000000000");
        }
    }
    // Any other escape is not base64.
    EXPECT_EQ(error_of("%6AAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"),
              decode_error::not_plain_or_base64);
}

TEST(FormDetection, PlainVectorsAreNotBase64AndBase64VectorsNotPlain) {
    eas_facts f;
    EXPECT_EQ(run({"Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone"}, f),
              decode_error::ok);
    EXPECT_EQ(f.form, query_form::plain);
    EXPECT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"}, f), decode_error::ok);
    EXPECT_EQ(f.form, query_form::base64);
}

TEST(FormDetection, StrictBase64Only) {
    const std::string v1 = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l";
    EXPECT_EQ(error_of(v1.substr(0, v1.size() - 1)), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of(v1 + "="), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of(v1 + "===="), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("jAAJ=Ap2MTQwRGV2aWNlAApTbWFydFBob25l"), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("jAAJ BAp2MTQwRGV2aWNlAApTbWFydFBob25"), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("oRIHBBD7_78-AAAAAAAAAAAAAAAABP____8DV1A4CAxDT05UT1NPXGpkb2U="),
              decode_error::not_plain_or_base64);  // the URL-safe alphabet is not RFC 2045
    EXPECT_EQ(error_of("A==="), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("===="), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("QQ==QQ=="), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("QQ=A"), decode_error::not_plain_or_base64);
    EXPECT_EQ(error_of("%2"), decode_error::not_plain_or_base64);
    // Valid base64, too short to be a record.
    EXPECT_EQ(error_of("QQ=="), decode_error::truncated);
}

TEST(FormDetection, EveryPrefixOfTheBase64TextIsRefusedOrDecoded) {
    const std::string q = "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y";
    for (std::size_t n = 1; n < q.size(); ++n) {
        const auto e = error_of(q.substr(0, n));
        if (n % 4 != 0) {
            EXPECT_EQ(e, decode_error::not_plain_or_base64) << n;
        } else {
            // Whole groups: a shorter record, which is cut somewhere in the middle.
            EXPECT_NE(e, decode_error::not_plain_or_base64) << n;
        }
    }
}

// ---- R5/R6: the base64 layout, byte by byte ---------------------------------------------------

// Where a record may end: after the device type, and after each whole parameter.
std::vector<std::size_t> boundaries(const record& r) {
    std::vector<std::size_t> out;
    std::size_t at = 5 + r.device_id.size() + 1 + (r.policy_key ? 4 : 0) + 1 + r.device_type.size();
    out.push_back(at);
    for (const auto& p : r.params) {
        at += 2 + p.second.size();
        out.push_back(at);
    }
    return out;
}

TEST(Base64Layout, EveryPrefixOfARecordIsRefusedUnlessItEndsAtAParameter) {
    const std::vector<record> records = {
        record{},  // V1
        record{160, 17, 0x0409, "Nine2EC7EC0BB54D", 1655081217u, "Android", {{7, "\0"s}}},
        record{121,
               2,
               0x0409,
               unhex("ae 4e cd 19 f5 92 ba 56 57 70 6f f7 4c f0 9b ac"),
               2216451701u,
               "PPC",
               {{7, "\x01"}, {3, "119281"}, {1, "INBOX"}}},
        record{140,
               3,
               0x0409,
               "ApplDNPXYZ123456",
               std::nullopt,
               "iPhone",
               {{1, "5"},
                {3, "5:12"},
                {4, "RgAAAAD"},
                {6, "2024-01-01T00:00:00.000Z"},
                {7, "\x03"},
                {0, "att1"},
                {8, "jdoe@contoso.com"}}},
        plus_slash,
    };
    for (const auto& r : records) {
        const std::string bytes = r.bytes();
        const auto ends = boundaries(r);
        ASSERT_EQ(ends.back(), bytes.size());
        for (std::size_t n = 1; n <= bytes.size(); ++n) {
            eas_facts f;
            const auto e = run({b64(bytes.substr(0, n))}, f);
            const auto at = std::find(ends.begin(), ends.end(), n);
            if (at != ends.end()) {
                EXPECT_EQ(e, decode_error::ok) << n;
                expect_consistent(f);
                continue;
            }
            EXPECT_NE(e, decode_error::ok) << n;
            if (n > ends.front()) {
                const auto prev = *std::prev(std::upper_bound(ends.begin(), ends.end(), n));
                EXPECT_EQ(e, n - prev == 1 ? decode_error::trailing_bytes : decode_error::truncated)
                    << n;
            }
        }
    }
}

TEST(Base64Layout, AllParameterTagsAndNames) {
    record r{140,
             3,
             0x0409,
             "ApplDNPXYZ123456",
             std::nullopt,
             "iPhone",
             {{1, "5"},
              {3, "5:12"},
              {4, "RgAAAAD"},
              {6, "2024-01-01T00:00:00.000Z"},
              {7, "\x03"},
              {0, "att1"}}};
    eas_facts f;
    ASSERT_EQ(run({r.query()}, f), decode_error::ok);
    EXPECT_EQ(f.cmd, "SmartReply");
    EXPECT_EQ(params_of(f),
              (std::vector<std::string>{"CollectionId=5", "ItemId=5:12", "LongId=RgAAAAD",
                                        "Occurrence=2024-01-01T00:00:00.000Z", "Options=\x03",
                                        "AttachmentName=att1"}));
    EXPECT_EQ(f.options, 0x03);
}

TEST(Base64Layout, LegacyTagsTwoAndFiveAreAccepted) {
    eas_facts f;
    ASSERT_EQ(run({"jQkJBAhsZWdhY3kwMQADUFBDAgVJbmJveAUBMA=="}, f), decode_error::ok);
    EXPECT_EQ(f.cmd, "FolderSync");
    EXPECT_EQ(params_of(f), (std::vector<std::string>{"CollectionName=Inbox", "ParentId=0"}));
}

TEST(Base64Layout, VersionBytes) {
    const std::pair<int, const char*> good[] = {
        {121, "12.1"}, {140, "14.0"}, {141, "14.1"}, {160, "16.0"}, {161, "16.1"}};
    for (const auto& [byte, text] : good) {
        record r;
        r.version = static_cast<std::uint8_t>(byte);
        eas_facts f;
        ASSERT_EQ(run({r.query()}, f), decode_error::ok) << byte;
        EXPECT_EQ(f.protocol_version, text);
    }
    for (int byte = 0; byte < 256; ++byte) {
        if (byte == 121 || byte == 140 || byte == 141 || byte == 160 || byte == 161) continue;
        record r;
        r.version = static_cast<std::uint8_t>(byte);
        EXPECT_EQ(error_of(r.query()), decode_error::bad_protocol_version) << byte;
    }
}

TEST(Base64Layout, CommandCodeTable) {
    // clang-format off
    const std::array<const char*, 24> names = {
        "Sync", "SendMail", "SmartForward", "SmartReply", "GetAttachment",       // 0-4
        nullptr, nullptr, nullptr, nullptr,                                       // 5-8
        "FolderSync", "FolderCreate", "FolderDelete", "FolderUpdate",            // 9-12
        "MoveItems", "GetItemEstimate", "MeetingResponse", "Search",             // 13-16
        "Settings", "Ping", "ItemOperations", "Provision",                       // 17-20
        "ResolveRecipients", "ValidateCert", "Find",                             // 21-23
    };
    // clang-format on
    for (int code = 0; code < 256; ++code) {
        record r;
        r.command = static_cast<std::uint8_t>(code);
        eas_facts f;
        const auto e = run({r.query()}, f);
        const char* name = code < 24 ? names[code] : nullptr;
        if (name) {
            EXPECT_EQ(e, decode_error::ok) << code;
            EXPECT_EQ(f.cmd, name);
            EXPECT_EQ(command_name(static_cast<std::uint8_t>(code)), name);
        } else {
            EXPECT_EQ(e, decode_error::unknown_command_code) << code;
            EXPECT_EQ(command_name(static_cast<std::uint8_t>(code)), "");
        }
    }
}

TEST(Base64Layout, LocaleIsLittleEndian) {
    record r;
    r.locale = 0x0c0a;  // es-ES, modern sort
    eas_facts f;
    ASSERT_EQ(run({r.query()}, f), decode_error::ok);
    EXPECT_EQ(f.locale, 0x0c0a);
}

TEST(Base64Layout, DeviceIdsLongerThanAGuidAreFine) {
    // The spec bounds the device ID only by its length byte.
    for (std::size_t n : {1u, 16u, 17u, 32u, 64u, 255u}) {
        record r;
        r.device_id = std::string(n, 'A');
        eas_facts f;
        ASSERT_EQ(run({r.query()}, f), decode_error::ok) << n;
        EXPECT_EQ(f.device_id, r.device_id);
        EXPECT_EQ(f.device_id_ascii, r.device_id);
        std::string hex;
        for (std::size_t i = 0; i < n; ++i) hex += "41";
        EXPECT_EQ(f.device_id_hex, hex);
    }
}

TEST(Base64Layout, PrintableAsciiFormOnlyWhenEveryByteIsPrintable) {
    for (const std::string& id : {"abc def"s, "abc\x7f"s, "\x80xyz"s, "tab\t"s}) {
        record r;
        r.device_id = id;
        eas_facts f;
        ASSERT_EQ(run({r.query()}, f), decode_error::ok);
        EXPECT_EQ(f.device_id, id);
        EXPECT_EQ(f.device_id_ascii, "");
        EXPECT_EQ(f.device_id_hex, hex_of(id));
    }
}

TEST(Base64Layout, DeviceTypeMustBePrintableAndPresent) {
    record r;
    r.device_type = "";
    EXPECT_EQ(error_of(r.query()), decode_error::bad_device_type);
    r.device_type = "Smart Phone";
    EXPECT_EQ(error_of(r.query()), decode_error::bad_device_type);
    r.device_type = "Phone\x01";
    EXPECT_EQ(error_of(r.query()), decode_error::bad_device_type);
    r.device_type = std::string(255, 'x');
    EXPECT_EQ(error_of(r.query()), decode_error::ok);
}

TEST(Base64Layout, PolicyKeyLengths) {
    for (int n = 0; n < 256; ++n) {
        if (n == 0 || n == 4) continue;
        std::string bytes = record{}.bytes();
        bytes[5 + 10] = static_cast<char>(n);
        bytes.insert(16, std::string(static_cast<std::size_t>(n), '\0'));
        EXPECT_EQ(error_of(b64(bytes)), decode_error::bad_policy_key_length) << n;
    }
}

TEST(Base64Layout, ParameterErrors) {
    auto with = [](std::vector<std::pair<std::uint8_t, std::string>> params) {
        record r;
        r.params = std::move(params);
        return error_of(r.query());
    };
    EXPECT_EQ(with({{9, "x"}}), decode_error::unknown_parameter_tag);
    EXPECT_EQ(with({{255, ""}}), decode_error::unknown_parameter_tag);
    EXPECT_EQ(with({{3, "1"}, {3, "2"}}), decode_error::duplicate_parameter);
    EXPECT_EQ(with({{8, "a"}, {8, "b"}}), decode_error::duplicate_parameter);
    EXPECT_EQ(with({{7, ""}}), decode_error::bad_options_length);
    EXPECT_EQ(with({{7, "\x01\x02"}}), decode_error::bad_options_length);
    EXPECT_EQ(with({{8, "bad\nuser"}}), decode_error::bad_user);
    EXPECT_EQ(with({{8, std::string(255, 'u')}}), decode_error::ok);
    EXPECT_EQ(with({{0, ""}}), decode_error::ok);  // an empty value is a value

    std::string bytes = record{}.bytes();
    EXPECT_EQ(error_of(b64(bytes + "\x03")), decode_error::trailing_bytes);
    EXPECT_EQ(error_of(b64(bytes + "\x03\x05" + "123")), decode_error::truncated);
    EXPECT_EQ(error_of(b64(bytes + "\x03\x01")), decode_error::truncated);
}

TEST(Base64Layout, AnEmptyUserParameterFallsBackToAuthorization) {
    record r;
    r.params = {{8, ""}};
    eas_facts f;
    ASSERT_EQ(run({r.query(), "", "", "Basic dXNlcjpwYXNz"}, f), decode_error::ok);
    EXPECT_EQ(f.user, "user");
    EXPECT_EQ(f.user_from, user_source::authorization);
}

TEST(Base64Layout, HeadersThatDisagreeAreFlaggedNotRefused) {
    const std::string v4 = "jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==";
    eas_facts f;
    ASSERT_EQ(run({v4, "14.1", "0"}, f), decode_error::ok);
    EXPECT_FALSE(f.headers_conflict);
    ASSERT_EQ(run({v4, "16.1"}, f), decode_error::ok);
    EXPECT_TRUE(f.headers_conflict);
    EXPECT_EQ(f.protocol_version, "14.1");  // the record's, not the header's
    ASSERT_EQ(run({v4, "", "1307199584"}, f), decode_error::ok);
    EXPECT_TRUE(f.headers_conflict);
    EXPECT_EQ(f.policy_key, 0u);
    ASSERT_EQ(run({v4, "banana", "x"}, f), decode_error::ok);
    EXPECT_TRUE(f.headers_conflict);
    // V1 has no policy key: any X-MS-PolicyKey disagrees.
    ASSERT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "14.0", "0"}, f), decode_error::ok);
    EXPECT_TRUE(f.headers_conflict);
}

// ---- R2: the plain form ------------------------------------------------------------------------

TEST(PlainForm, AnyParameterOrderGivesTheSameRecord) {
    std::array<std::string, 4> parts = {"Cmd=Sync", "User=rmjones", "DeviceId=v140Device",
                                        "DeviceType=SmartPhone"};
    std::sort(parts.begin(), parts.end());
    int orders = 0;
    do {
        const std::string q = parts[0] + "&" + parts[1] + "&" + parts[2] + "&" + parts[3];
        eas_facts f;
        ASSERT_EQ(run({q, "14.0"}, f), decode_error::ok) << q;
        EXPECT_EQ(f.cmd, "Sync");
        EXPECT_EQ(f.user, "rmjones");
        EXPECT_EQ(f.device_id, "v140Device");
        EXPECT_EQ(f.device_type, "SmartPhone");
        ++orders;
    } while (std::next_permutation(parts.begin(), parts.end()));
    EXPECT_EQ(orders, 24);
}

TEST(PlainForm, NamesAndCommandsAreCaseInsensitiveAndCommandsCanonical) {
    eas_facts f;
    ASSERT_EQ(run({"cmd=itemoperations&USER=a&deviceid=d&DEVICETYPE=t"}, f), decode_error::ok);
    EXPECT_EQ(f.cmd, "ItemOperations");
    for (const char* legacy : {"GetHierarchy", "CreateCollection", "DeleteCollection",
                               "MoveCollection", "Find", "ValidateCert"}) {
        ASSERT_EQ(run({"Cmd="s + legacy + "&User=a&DeviceId=d&DeviceType=t"}, f), decode_error::ok)
            << legacy;
        EXPECT_EQ(f.cmd, legacy);
    }
    EXPECT_EQ(error_of("Cmd=Nope&User=a&DeviceId=d&DeviceType=t"), decode_error::unknown_command);
    EXPECT_EQ(error_of("Cmd=Sync%00&User=a&DeviceId=d&DeviceType=t"),
              decode_error::unknown_command);
    EXPECT_EQ(error_of("Cmd=" + std::string(100, 'S') + "&User=a&DeviceId=d&DeviceType=t"),
              decode_error::unknown_command);
    ASSERT_EQ(run({"Cmd=%53ync&User=a&DeviceId=d&DeviceType=t"}, f), decode_error::ok);
    EXPECT_EQ(f.cmd, "Sync");
}

TEST(PlainForm, RequiredParameters) {
    EXPECT_EQ(error_of("User=a&DeviceId=d&DeviceType=t"), decode_error::missing_cmd);
    EXPECT_EQ(error_of("Cmd=&User=a&DeviceId=d&DeviceType=t"), decode_error::missing_cmd);
    EXPECT_EQ(error_of("Cmd&User=a&DeviceId=d&DeviceType=t"), decode_error::missing_cmd);
    EXPECT_EQ(error_of("Cmd=Sync&DeviceId=d&DeviceType=t"), decode_error::missing_user);
    EXPECT_EQ(error_of("Cmd=Sync&User=a&DeviceType=t"), decode_error::missing_device_id);
    EXPECT_EQ(error_of("Cmd=Sync&User=a&DeviceId=d"), decode_error::missing_device_type);
    EXPECT_EQ(error_of("Cmd=Sync&User=&DeviceId=d&DeviceType=t"), decode_error::bad_user);
    EXPECT_EQ(error_of("Cmd=Sync&User=a&DeviceId=&DeviceType=t"), decode_error::bad_device_id);
    EXPECT_EQ(error_of("Cmd=Sync&User=a&DeviceId=d&DeviceType="), decode_error::bad_device_type);
}

TEST(PlainForm, PercentDecodingOfValuesButPlusStaysPlus) {
    eas_facts f;
    ASSERT_EQ(run({"Cmd=Sync&User=CONTOSO%5Cj+doe%40x&DeviceId=a%2Bb&DeviceType=i%50hone"}, f),
              decode_error::ok);
    EXPECT_EQ(f.user, "CONTOSO\\j+doe@x");
    EXPECT_EQ(f.device_id, "a+b");
    EXPECT_EQ(f.device_type, "iPhone");
    ASSERT_EQ(run({"Cmd=Sync&User=j%C3%BCrgen&DeviceId=d&DeviceType=t"}, f), decode_error::ok);
    EXPECT_EQ(f.user, "j\xc3\xbcrgen");  // UTF-8 user names are fine
    ASSERT_EQ(run({"Cmd=Sync&User=John%20Smith&DeviceId=d&DeviceType=t"}, f), decode_error::ok);
    EXPECT_EQ(f.user, "John Smith");
}

TEST(PlainForm, BadPercentEscapes) {
    for (const char* v : {"%", "%4", "%zz", "%G0", "a%", "%%41"}) {
        EXPECT_EQ(error_of("Cmd=Sync&User="s + v + "&DeviceId=d&DeviceType=t"),
                  decode_error::bad_percent_escape)
            << v;
        EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=t&ItemId="s + v),
                  decode_error::bad_percent_escape)
            << v;
    }
}

TEST(PlainForm, DeviceIdChecks) {
    eas_facts f;
    const std::string longest(255, 'A');
    ASSERT_EQ(run({"Cmd=Sync&User=u&DeviceType=t&DeviceId=" + longest}, f), decode_error::ok);
    EXPECT_EQ(f.device_id, longest);
    EXPECT_EQ(f.device_id_hex.size(), 510u);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceType=t&DeviceId=" + longest + "A"),
              decode_error::bad_device_id);
    for (const char* id : {"dev%00id", "dev%20id", "d%C3%A9v", "dev%7Fid", "dev%0Aid"}) {
        EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceType=t&DeviceId="s + id),
                  decode_error::bad_device_id)
            << id;
    }
    ASSERT_EQ(run({"Cmd=Sync&User=u&DeviceType=t&DeviceId=androidc195792594"}, f),
              decode_error::ok);
    EXPECT_EQ(f.device_id_ascii, "androidc195792594");
    EXPECT_EQ(f.device_id_hex, "616e64726f696463313935373932353934");
}

TEST(PlainForm, UserAndDeviceTypeChecks) {
    EXPECT_EQ(error_of("Cmd=Sync&User=a%0Ab&DeviceId=d&DeviceType=t"), decode_error::bad_user);
    EXPECT_EQ(error_of("Cmd=Sync&User=a%7Fb&DeviceId=d&DeviceType=t"), decode_error::bad_user);
    EXPECT_EQ(error_of("Cmd=Sync&User=" + std::string(512, 'u') + "&DeviceId=d&DeviceType=t"),
              decode_error::ok);
    EXPECT_EQ(error_of("Cmd=Sync&User=" + std::string(513, 'u') + "&DeviceId=d&DeviceType=t"),
              decode_error::bad_user);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=i%20Phone"),
              decode_error::bad_device_type);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=" + std::string(256, 't')),
              decode_error::bad_device_type);
}

TEST(PlainForm, DuplicatesAreRefused) {
    EXPECT_EQ(error_of("Cmd=Sync&Cmd=Ping&User=u&DeviceId=d&DeviceType=t"),
              decode_error::duplicate_parameter);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&deviceid=e&DeviceType=t"),
              decode_error::duplicate_parameter);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&User=v&DeviceId=d&DeviceType=t"),
              decode_error::duplicate_parameter);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=t&ItemId=1&itemid=2"),
              decode_error::duplicate_parameter);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=t&Foo=1&FOO=2"),
              decode_error::duplicate_parameter);
}

TEST(PlainForm, CommandParameters) {
    eas_facts f;
    ASSERT_EQ(run({"Cmd=SmartReply&User=u&DeviceId=d&DeviceType=t&itemid=5%3A12&CollectionId=5&"
                   "LongId=RgAAAA%2B&Occurrence=2024&SaveInSent=T&X-Custom=a+b"},
                  f),
              decode_error::ok);
    EXPECT_EQ(params_of(f),
              (std::vector<std::string>{"ItemId=5:12", "CollectionId=5", "LongId=RgAAAA+",
                                        "Occurrence=2024", "SaveInSent=T", "X-Custom=a+b"}));
    EXPECT_EQ(f.parameter_value("saveinsent"), "T");
    EXPECT_FALSE(f.options);  // base64 form only
    ASSERT_EQ(run({"Cmd=GetAttachment&User=u&DeviceId=d&DeviceType=t&AttachmentName=5%3a3%3a0"}, f),
              decode_error::ok);
    EXPECT_EQ(f.parameter_value("AttachmentName"), "5:3:0");
}

TEST(PlainForm, ParameterLimitsAndShapes) {
    std::string q = "Cmd=Sync&User=u&DeviceId=d&DeviceType=t";
    for (int i = 0; i < 8; ++i) q += "&p" + std::to_string(i) + "=x";
    EXPECT_EQ(error_of(q), decode_error::ok);
    EXPECT_EQ(error_of(q + "&p8=x"), decode_error::too_many_parameters);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=t&=x"),
              decode_error::malformed_parameter);
    EXPECT_EQ(error_of("Cmd=Sync&User=u&DeviceId=d&DeviceType=t&ItemId=a%01"),
              decode_error::bad_parameter_value);
    eas_facts f;
    ASSERT_EQ(run({"&&Cmd=Sync&&User=u&DeviceId=d&DeviceType=t&&Flag&"}, f), decode_error::ok);
    EXPECT_EQ(params_of(f), std::vector<std::string>{"Flag="});
}

TEST(PlainForm, ProtocolVersionHeader) {
    const std::string q = "Cmd=Sync&User=u&DeviceId=d&DeviceType=t";
    for (const char* v : {"2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1"}) {
        eas_facts f;
        ASSERT_EQ(run({q, v}, f), decode_error::ok) << v;
        EXPECT_EQ(f.protocol_version, v);
    }
    eas_facts f;
    ASSERT_EQ(run({q, " 14.1 "}, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "14.1");
    ASSERT_EQ(run({q, ""}, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "");
    for (const char* v : {"2.0", "2.1", "15.0", "14", "14.1,16.1", "16.10", "x"}) {
        EXPECT_EQ(error_of(req{q, v}), decode_error::bad_protocol_version) << v;
    }
}

TEST(PlainForm, PolicyKeyHeader) {
    const std::string q = "Cmd=Sync&User=u&DeviceId=d&DeviceType=t";
    eas_facts f;
    ASSERT_EQ(run({q, "", "4294967295"}, f), decode_error::ok);
    EXPECT_EQ(f.policy_key, 4294967295u);
    ASSERT_EQ(run({q, "", " 0 "}, f), decode_error::ok);
    EXPECT_EQ(f.policy_key, 0u);
    for (const char* k : {"4294967296", "-1", "0x10", "1 2", "12345678901", "abc"}) {
        EXPECT_EQ(error_of(req{q, "", k}), decode_error::bad_policy_key) << k;
    }
}

// ---- requests with no query, OPTIONS ----------------------------------------------------------

TEST(Options, WithoutAQuery) {
    EXPECT_EQ(error_of(""), decode_error::empty_query);
    eas_facts f;
    req r{"", "", "", "Basic dXNlcjpwYXNz"};
    r.options = true;
    ASSERT_EQ(run(r, f), decode_error::ok);
    EXPECT_EQ(f.form, query_form::none);
    EXPECT_EQ(f.cmd, "");
    EXPECT_EQ(f.user, "user");
}

TEST(Options, APartialPlainQueryIsChecked) {
    eas_facts f;
    req r{"User=u&DeviceId=d&DeviceType=t"};
    r.options = true;
    ASSERT_EQ(run(r, f), decode_error::ok);
    EXPECT_EQ(f.form, query_form::plain);
    EXPECT_EQ(f.cmd, "");
    EXPECT_EQ(f.device_id, "d");
    r.query = "DeviceId=d%00";
    EXPECT_EQ(run(r, f), decode_error::bad_device_id);
    r.query = "Cmd=Nope";
    EXPECT_EQ(run(r, f), decode_error::unknown_command);
}

// ---- the user from Authorization ---------------------------------------------------------------

std::string user_from_auth(const std::string& authorization, user_source* from = nullptr) {
    eas_facts f;
    EXPECT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "", "", authorization}, f),
              decode_error::ok);
    if (from) *from = f.user_from;
    return std::string(f.user);
}

TEST(AuthorizationUser, BasicUserNameOnly) {
    user_source from{};
    EXPECT_EQ(user_from_auth("Basic " + b64("CONTOSO\\jdoe:hunter2"), &from), "CONTOSO\\jdoe");
    EXPECT_EQ(from, user_source::authorization);
    EXPECT_EQ(user_from_auth("basic " + b64("jdoe@contoso.com:p:w")), "jdoe@contoso.com");
    EXPECT_EQ(user_from_auth("BASIC   " + b64("a:b") + "  "), "a");
    // Every split of the ':' within a group of four, padded or not.
    for (const std::string user : {"u", "us", "use", "user", "users"}) {
        for (const std::string password : {"", "p", "pw", "pwd", "pass"}) {
            std::string token = b64(user + ":" + password);
            EXPECT_EQ(user_from_auth("Basic " + token), user) << token;
            while (!token.empty() && token.back() == '=') token.pop_back();
            EXPECT_EQ(user_from_auth("Basic " + token), user) << token;
        }
    }
}

TEST(AuthorizationUser, NothingFromOtherSchemesOrMalformedCredentials) {
    user_source from{};
    EXPECT_EQ(
        user_from_auth("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==", &from), "");
    EXPECT_EQ(from, user_source::none);
    EXPECT_EQ(user_from_auth("Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag"), "");
    EXPECT_EQ(user_from_auth("Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.x"), "");
    EXPECT_EQ(user_from_auth("Basic"), "");
    EXPECT_EQ(user_from_auth("Basic "), "");
    EXPECT_EQ(user_from_auth("Basic " + b64("no-colon")), "");
    EXPECT_EQ(user_from_auth("Basic " + b64(":only-password")), "");
    EXPECT_EQ(user_from_auth("Basic " + b64("bad\nname:x")), "");
    EXPECT_EQ(user_from_auth("Basic !!!!"), "");
    EXPECT_EQ(user_from_auth("Basic dXNlcjpwYXNz!"), "user");  // stops at ':' before the junk
    EXPECT_EQ(user_from_auth("Basic dX=lcjpwYXNz"), "");
    EXPECT_EQ(user_from_auth("Basic " + b64(std::string(512, 'u') + ":p")), std::string(512, 'u'));
    EXPECT_EQ(user_from_auth("Basic " + b64(std::string(513, 'u') + ":p")), "");
    EXPECT_EQ(user_from_auth(""), "");
}

TEST(AuthorizationUser, ThePasswordIsNeverInTheRecord) {
    const std::string password = "Tr0ub4dor&3-correct-horse";
    for (const std::string user : {"u", "us", "use", "user"}) {
        eas_facts f;
        ASSERT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "", "",
                       "Basic " + b64(user + ":" + password)},
                      f),
                  decode_error::ok);
        EXPECT_EQ(f.user, user);
        const std::string_view memory(reinterpret_cast<const char*>(&f), sizeof f);
        EXPECT_EQ(memory.find(password.substr(0, 3)), std::string_view::npos) << user;
        EXPECT_EQ(memory.find(password.substr(2, 3)), std::string_view::npos) << user;
    }
}

// ---- the record itself ------------------------------------------------------------------------

TEST(Record, ReuseClearsThePreviousRequest) {
    eas_facts f;
    ASSERT_EQ(run({"eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y"}, f),
              decode_error::ok);
    ASSERT_EQ(run({"Cmd=Ping&User=u&DeviceId=d&DeviceType=t"}, f), decode_error::ok);
    EXPECT_FALSE(f.locale);
    EXPECT_FALSE(f.policy_key);
    EXPECT_FALSE(f.options);
    EXPECT_EQ(f.parameter_count, 0);
    EXPECT_EQ(f.device_id_hex, "64");
    EXPECT_EQ(run({"Cmd=Ping&User=u&DeviceId=d"}, f), decode_error::missing_device_type);
    EXPECT_EQ(f.cmd, "");  // an error leaves nothing behind
    EXPECT_EQ(f.device_id, "");
    EXPECT_EQ(f.form, query_form::none);
}

TEST(Record, LargeRecordsUseTheHeapAndStayCorrect) {
    std::string q = "Cmd=SmartForward&User=" + std::string(400, 'u') +
                    "&DeviceType=t&DeviceId=" + std::string(200, 'D') +
                    "&LongId=" + std::string(1000, 'L');
    eas_facts f;
    ASSERT_EQ(run({q}, f), decode_error::ok);
    EXPECT_EQ(f.user, std::string(400, 'u'));
    EXPECT_EQ(f.device_id, std::string(200, 'D'));
    EXPECT_EQ(f.parameter_value("LongId"), std::string(1000, 'L'));
    expect_consistent(f);
    ASSERT_EQ(run({"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"}, f), decode_error::ok);
    EXPECT_EQ(f.device_id, "v140Device");
}

TEST(Record, EveryErrorHasAReason) {
    for (int e = 0; e <= static_cast<int>(decode_error::trailing_bytes); ++e) {
        const auto text = describe(static_cast<decode_error>(e));
        EXPECT_FALSE(text.empty());
        EXPECT_NE(text, "unknown error") << e;
    }
}

// ---- the Beast fields overload -----------------------------------------------------------------

TEST(Fields, ReadsTheThreeHeaders) {
    boost::beast::http::fields h;
    h.insert("Host", "mail.example.com");
    h.insert("ms-asprotocolversion", "14.1");
    h.insert("X-MS-PolicyKey", "42");
    h.insert("Authorization", "Basic " + b64("CONTOSO\\jdoe:pw"));
    eas_facts f;
    ASSERT_EQ(decode("Cmd=Ping&DeviceId=d&DeviceType=t&User=x", h, false, f), decode_error::ok);
    EXPECT_EQ(f.protocol_version, "14.1");
    EXPECT_EQ(f.policy_key, 42u);
    ASSERT_EQ(decode("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", h, false, f), decode_error::ok);
    EXPECT_EQ(f.user, "CONTOSO\\jdoe");
    EXPECT_TRUE(f.headers_conflict);
    ASSERT_EQ(decode("", h, true, f), decode_error::ok);
    EXPECT_EQ(f.user, "CONTOSO\\jdoe");
}

TEST(Fields, AnyOfTheThreeTwiceIsRefused) {
    for (const char* name : {"MS-ASProtocolVersion", "X-MS-PolicyKey", "Authorization"}) {
        boost::beast::http::fields h;
        h.insert(name, "1");
        h.insert("X-Other", "1");
        h.insert(name, "2");
        eas_facts f;
        EXPECT_EQ(decode("Cmd=Ping&DeviceId=d&DeviceType=t&User=x", h, false, f),
                  decode_error::duplicate_header)
            << name;
    }
}

}  // namespace
