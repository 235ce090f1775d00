#include "eas/query_decoder.hpp"

#include <algorithm>
#include <cstring>

#include "http/ascii.hpp"

namespace mailgate::eas {

namespace {

namespace ascii = http::ascii;

constexpr std::size_t npos = std::string_view::npos;

// MS-ASHTTP 2.2.1.1.1.1.2; codes 5-8 are unassigned, 23 (Find) came with 16.1.
// clang-format off
constexpr std::array<std::string_view, 24> command_names = {
    "Sync", "SendMail", "SmartForward", "SmartReply", "GetAttachment",  // 0-4
    "", "", "", "",                                                      // 5-8
    "FolderSync", "FolderCreate", "FolderDelete", "FolderUpdate",       // 9-12
    "MoveItems", "GetItemEstimate", "MeetingResponse", "Search",        // 13-16
    "Settings", "Ping", "ItemOperations", "Provision",                  // 17-20
    "ResolveRecipients", "ValidateCert", "Find",                        // 21-23
};
// clang-format on

// Plain form only: the pre-12.0 names that OPTIONS still advertises (no base64 code).
constexpr std::array<std::string_view, 4> legacy_command_names = {
    "GetHierarchy", "CreateCollection", "DeleteCollection", "MoveCollection"};

// MS-ASHTTP 2.2.1.1.2.6: the values of MS-ASProtocolVersion.
constexpr std::array<std::string_view, 7> protocol_versions = {"2.5",  "12.0", "12.1", "14.0",
                                                               "14.1", "16.0", "16.1"};

// MS-ASHTTP 2.2.1.1.1.1.3, with the deprecated tags 2 and 5 by their old names.
constexpr std::array<std::string_view, 9> tag_names = {
    "AttachmentName", "CollectionId", "CollectionName", "ItemId", "LongId",
    "ParentId",       "Occurrence",   "Options",        "User"};
constexpr std::uint8_t tag_options = 7;
constexpr std::uint8_t tag_user = 8;

// MS-ASHTTP 2.2.1.1.1.2.5: the command-specific parameters of the plain form.
constexpr std::array<std::string_view, 6> plain_parameter_names = {
    "AttachmentName", "CollectionId", "ItemId", "LongId", "Occurrence", "SaveInSent"};

constexpr std::size_t max_device_type = 255;
constexpr std::size_t max_cmd = 32;

// RFC 2045 alphabet: value of each byte, -1 for bytes outside it.
constexpr std::array<std::int8_t, 256> base64_values = [] {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}();

constexpr bool is_vchar(char c) { return c > 0x20 && c < 0x7f; }
constexpr bool is_control(char c) { return ascii::byte(c) < 0x20 || c == 0x7f; }

bool all_vchar(std::string_view s) {
    for (char c : s) {
        if (!is_vchar(c)) return false;
    }
    return true;
}

bool has_control(std::string_view s) {
    for (char c : s) {
        if (is_control(c)) return true;
    }
    return false;
}

std::string_view canonical_command(std::string_view name) {
    for (auto c : command_names) {
        if (!c.empty() && ascii::iequals(c, name)) return c;
    }
    for (auto c : legacy_command_names) {
        if (ascii::iequals(c, name)) return c;
    }
    return {};
}

std::string_view version_of_byte(std::uint8_t b) {
    switch (b) {
        case 121:
            return "12.1";
        case 140:
            return "14.0";
        case 141:
            return "14.1";
        case 160:
            return "16.0";
        case 161:
            return "16.1";
        default:
            return {};
    }
}

std::string_view canonical_version(std::string_view header) {
    header = ascii::trim_ows(header);
    for (auto v : protocol_versions) {
        if (v == header) return v;
    }
    return {};
}

// X-MS-PolicyKey: a uint32 in decimal.
std::optional<std::uint32_t> parse_policy_key(std::string_view header) {
    header = ascii::trim_ows(header);
    if (header.empty() || header.size() > 10) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : header) {
        if (!ascii::is_digit(c)) return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n > 0xffffffffu) return std::nullopt;
    return static_cast<std::uint32_t>(n);
}

// The size `raw` percent-decodes to, or npos when an escape is malformed.
std::size_t percent_decoded_size(std::string_view raw) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < raw.size(); ++i, ++n) {
        if (raw[i] != '%') continue;
        if (raw.size() - i < 3 || !ascii::is_hex(raw[i + 1]) || !ascii::is_hex(raw[i + 2]))
            return npos;
        i += 2;
    }
    return n;
}

// Decodes an already checked `raw` into `out`. '+' stays '+': a query is not a form.
std::size_t percent_decode(std::string_view raw, char* out) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%') {
            out[n++] =
                static_cast<char>(ascii::hex_value(raw[i + 1]) * 16 + ascii::hex_value(raw[i + 2]));
            i += 2;
        } else {
            out[n++] = raw[i];
        }
    }
    return n;
}

// The query as strict base64 (groups of four, '=' only to pad the last group), with %2B,
// %2F and %3D read as '+', '/' and '=' (R4; any other escape is not base64). Returns the
// decoded size, or npos; writes the bytes to `out` unless it is null.
std::size_t base64_query(std::string_view q, unsigned char* out) {
    std::uint32_t acc = 0;
    int in_group = 0;
    int pad = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < q.size(); ++i) {
        char c = q[i];
        if (c == '%') {
            if (q.size() - i < 3) return npos;
            const int hi = ascii::hex_value(q[i + 1]);
            const int lo = ascii::hex_value(q[i + 2]);
            if (hi < 0 || lo < 0) return npos;
            c = static_cast<char>(hi * 16 + lo);
            if (c != '+' && c != '/' && c != '=') return npos;
            i += 2;
        }
        if (c == '=') {
            // Only the last two places of a group can pad it.
            if (++pad > 2 || in_group < 2) return npos;
            acc <<= 6;
        } else {
            const int v = base64_values[ascii::byte(c)];
            if (v < 0 || pad > 0) return npos;  // data after padding
            acc = (acc << 6) | static_cast<std::uint32_t>(v);
        }
        if (++in_group == 4) {
            if (out) {
                out[n] = static_cast<unsigned char>(acc >> 16);
                if (pad < 2) out[n + 1] = static_cast<unsigned char>(acc >> 8);
                if (pad < 1) out[n + 2] = static_cast<unsigned char>(acc);
            }
            n += static_cast<std::size_t>(3 - pad);
            in_group = 0;
            acc = 0;
        }
    }
    if (in_group != 0 || n == 0) return npos;
    return n;
}

// Overwrites memory the compiler may not prove dead (it holds bytes of a password).
void wipe(unsigned char* p, std::size_t n) {
    volatile unsigned char* v = p;
    for (std::size_t i = 0; i < n; ++i) v[i] = 0;
}

// The base64 token of `Authorization: Basic <token>`, or "" for any other scheme.
std::string_view basic_token(std::string_view authorization) {
    authorization = ascii::trim_ows(authorization);
    const auto sp = authorization.find(' ');
    if (sp == npos || !ascii::iequals(authorization.substr(0, sp), "Basic")) return {};
    auto token = authorization.substr(sp + 1);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return token;
}

// How many bytes basic_user() may write.
std::size_t basic_user_bound(std::string_view authorization) {
    const auto token = basic_token(authorization);
    return std::min(eas_facts::max_user, (token.size() + 3) / 4 * 3);
}

// The user name of Basic credentials, written to `out` (at most basic_user_bound() bytes);
// "" when the scheme is not Basic or the credentials are malformed. The token is decoded
// one group of four at a time and decoding stops at the group that holds ':', so of the
// password at most two bytes are ever decoded, into a local that is wiped. Padding may be
// left out, as some clients do.
std::string_view basic_user(std::string_view authorization, char* out) {
    const auto token = basic_token(authorization);
    std::size_t n = 0;
    bool found = false;
    bool bad = false;
    unsigned char group[3] = {0, 0, 0};
    for (std::size_t i = 0; i < token.size() && !found && !bad; i += 4) {
        const auto chunk = token.substr(i, 4);
        std::uint32_t acc = 0;
        int data = 0;
        int pad = 0;
        for (char c : chunk) {
            if (c == '=' && data >= 2) {
                ++pad;
                acc <<= 6;
                continue;
            }
            const int v = base64_values[ascii::byte(c)];
            if (v < 0 || pad > 0) {
                bad = true;
                break;
            }
            acc = (acc << 6) | static_cast<std::uint32_t>(v);
            ++data;
        }
        if (bad || data < 2 || (pad > 0 && i + 4 < token.size())) {
            bad = true;
            break;
        }
        acc <<= 6 * (4 - data - pad);  // an unpadded last group
        const int bytes = data - 1;
        group[0] = static_cast<unsigned char>(acc >> 16);
        group[1] = static_cast<unsigned char>(acc >> 8);
        group[2] = static_cast<unsigned char>(acc);
        for (int b = 0; b < bytes; ++b) {
            const char c = static_cast<char>(group[b]);
            if (c == ':') {
                found = true;
                break;
            }
            if (is_control(c) || n == eas_facts::max_user) {
                bad = true;
                break;
            }
            out[n++] = c;
        }
    }
    wipe(group, sizeof group);
    if (bad || !found) return {};
    return {out, n};
}

// Storage handed out front to back; reserved with a bound first, so it never runs out.
struct writer {
    char* at;

    std::string_view put(std::string_view s) {
        if (!s.empty()) std::memcpy(at, s.data(), s.size());
        const std::string_view out(at, s.size());
        at += s.size();
        return out;
    }
    std::string_view put_decoded(std::string_view raw) {
        const std::size_t n = percent_decode(raw, at);
        const std::string_view out(at, n);
        at += n;
        return out;
    }
    std::string_view put_hex(std::string_view raw) {
        constexpr std::string_view digits = "0123456789abcdef";
        char* start = at;
        for (char c : raw) {
            *at++ = digits[ascii::byte(c) >> 4];
            *at++ = digits[ascii::byte(c) & 0xf];
        }
        return {start, raw.size() * 2};
    }
};

void set_device_id(eas_facts& out, std::string_view raw, writer& w) {
    out.device_id = raw;
    out.device_id_hex = w.put_hex(raw);
    if (all_vchar(raw)) out.device_id_ascii = raw;
}

void set_user_from_authorization(eas_facts& out, std::string_view authorization, writer& w) {
    const auto user = basic_user(authorization, w.at);
    if (user.empty()) return;
    w.at += user.size();
    out.user = user;
    out.user_from = user_source::authorization;
}

// ---- plain form ----------------------------------------------------------------------------

// Whether the query names a Cmd parameter (the R3 test for the plain form).
bool has_cmd_parameter(std::string_view query) {
    while (true) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        if (ascii::iequals(pair.substr(0, pair.find('=')), "Cmd")) return true;
        if (amp == npos) return false;
        query.remove_prefix(amp + 1);
    }
}

// Whether a query that is not base64 was at least meant as the plain form (it names one of
// its parameters), so that the reason given is what it lacks.
bool looks_plain(std::string_view query) {
    while (true) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto name = pair.substr(0, pair.find('='));
        if (ascii::iequals(name, "User") || ascii::iequals(name, "DeviceId") ||
            ascii::iequals(name, "DeviceType"))
            return true;
        if (amp == npos) return false;
        query.remove_prefix(amp + 1);
    }
}

decode_error decode_plain(const request_input& in, eas_facts& out) {
    struct raw_value {
        std::string_view raw;
        std::size_t size = 0;  // decoded
        bool present = false;
    };
    raw_value cmd, user, device_id, device_type;
    struct raw_parameter {
        std::string_view name;  // canonical, or as sent
        bool copy_name = false;
        raw_value value;
    };
    std::array<raw_parameter, eas_facts::max_parameters> params{};
    std::size_t param_count = 0;
    std::size_t need = 0;

    std::string_view query = in.query;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;  // "a=1&&b=2": empty pairs carry nothing
        const auto eq = pair.find('=');
        const auto name = pair.substr(0, eq);
        if (name.empty()) return decode_error::malformed_parameter;
        raw_value v;
        v.raw = eq == npos ? std::string_view{} : pair.substr(eq + 1);
        v.size = percent_decoded_size(v.raw);
        if (v.size == npos) return decode_error::bad_percent_escape;
        v.present = true;

        raw_value* slot = nullptr;
        if (ascii::iequals(name, "Cmd")) {
            slot = &cmd;
        } else if (ascii::iequals(name, "User")) {
            slot = &user;
        } else if (ascii::iequals(name, "DeviceId")) {
            slot = &device_id;
        } else if (ascii::iequals(name, "DeviceType")) {
            slot = &device_type;
        }
        if (slot) {
            if (slot->present) return decode_error::duplicate_parameter;
            *slot = v;
            continue;
        }
        for (std::size_t i = 0; i < param_count; ++i) {
            if (ascii::iequals(params[i].name, name)) return decode_error::duplicate_parameter;
        }
        if (param_count == params.size()) return decode_error::too_many_parameters;
        auto& p = params[param_count++];
        p.name = name;
        p.copy_name = true;
        for (auto known : plain_parameter_names) {
            if (ascii::iequals(known, name)) {
                p.name = known;
                p.copy_name = false;
            }
        }
        p.value = v;
        need += v.size + (p.copy_name ? name.size() : 0);
    }

    if (!in.options) {
        if (!cmd.present || cmd.size == 0) return decode_error::missing_cmd;
        if (!user.present) return decode_error::missing_user;
        if (!device_id.present) return decode_error::missing_device_id;
        if (!device_type.present) return decode_error::missing_device_type;
    }

    if (cmd.present) {
        char name[max_cmd];
        if (cmd.size == 0) return decode_error::missing_cmd;
        if (cmd.size > max_cmd) return decode_error::unknown_command;
        out.cmd = canonical_command({name, percent_decode(cmd.raw, name)});
        if (out.cmd.empty()) return decode_error::unknown_command;
    }
    if (user.present && (user.size == 0 || user.size > eas_facts::max_user))
        return decode_error::bad_user;
    if (device_id.present && (device_id.size == 0 || device_id.size > eas_facts::max_device_id))
        return decode_error::bad_device_id;
    if (device_type.present && (device_type.size == 0 || device_type.size > max_device_type))
        return decode_error::bad_device_type;

    if (!ascii::trim_ows(in.protocol_version).empty()) {
        out.protocol_version = canonical_version(in.protocol_version);
        if (out.protocol_version.empty()) return decode_error::bad_protocol_version;
    }
    if (!ascii::trim_ows(in.policy_key).empty()) {
        out.policy_key = parse_policy_key(in.policy_key);
        if (!out.policy_key) return decode_error::bad_policy_key;
    }

    need += user.size + device_id.size * 3 + device_type.size;
    if (!user.present) need += basic_user_bound(in.authorization);
    writer w{out.reserve(need)};

    if (user.present) {
        out.user = w.put_decoded(user.raw);
        if (has_control(out.user)) return decode_error::bad_user;
        out.user_from = user_source::query;
    } else {
        set_user_from_authorization(out, in.authorization, w);
    }
    if (device_id.present) {
        const auto id = w.put_decoded(device_id.raw);
        if (!all_vchar(id)) return decode_error::bad_device_id;
        set_device_id(out, id, w);
    }
    if (device_type.present) {
        out.device_type = w.put_decoded(device_type.raw);
        if (!all_vchar(out.device_type)) return decode_error::bad_device_type;
    }
    for (std::size_t i = 0; i < param_count; ++i) {
        const auto& p = params[i];
        auto& o = out.parameters[i];
        o.name = p.copy_name ? w.put(p.name) : p.name;
        o.value = w.put_decoded(p.value.raw);
        if (has_control(o.value)) return decode_error::bad_parameter_value;
    }
    out.parameter_count = static_cast<std::uint8_t>(param_count);
    out.form = query_form::plain;
    return decode_error::ok;
}

// ---- base64 form ---------------------------------------------------------------------------

decode_error decode_base64(const request_input& in, std::size_t size, eas_facts& out) {
    // The record, then the device ID in hex (at most twice the record), then a user name.
    const std::size_t need =
        size + 2 * std::min(size, eas_facts::max_device_id) + basic_user_bound(in.authorization);
    char* base = out.reserve(need);
    auto* bytes = reinterpret_cast<unsigned char*>(base);
    base64_query(in.query, bytes);
    writer w{base + size};

    std::size_t at = 0;
    auto left = [&] { return size - at; };
    auto text = [&](std::size_t n) {
        const std::string_view s(base + at, n);
        at += n;
        return s;
    };

    // Version, command, locale and the device ID length: five bytes.
    if (left() < 5) return decode_error::truncated;
    out.protocol_version = version_of_byte(bytes[0]);
    if (out.protocol_version.empty()) return decode_error::bad_protocol_version;
    out.cmd = command_name(bytes[1]);
    if (out.cmd.empty()) return decode_error::unknown_command_code;
    out.locale = static_cast<std::uint16_t>(bytes[2] | (bytes[3] << 8));
    const std::size_t id_size = bytes[4];
    at = 5;
    if (id_size == 0) return decode_error::empty_device_id;
    if (left() < id_size) return decode_error::truncated;
    set_device_id(out, text(id_size), w);

    if (left() < 1) return decode_error::truncated;
    const std::size_t key_size = bytes[at++];
    if (key_size != 0 && key_size != 4) return decode_error::bad_policy_key_length;
    if (left() < key_size) return decode_error::truncated;
    if (key_size == 4) {
        out.policy_key = static_cast<std::uint32_t>(bytes[at]) |
                         (static_cast<std::uint32_t>(bytes[at + 1]) << 8) |
                         (static_cast<std::uint32_t>(bytes[at + 2]) << 16) |
                         (static_cast<std::uint32_t>(bytes[at + 3]) << 24);
        at += 4;
    }

    if (left() < 1) return decode_error::truncated;
    const std::size_t type_size = bytes[at++];
    if (left() < type_size) return decode_error::truncated;
    out.device_type = text(type_size);
    if (type_size == 0 || !all_vchar(out.device_type)) return decode_error::bad_device_type;

    std::uint16_t seen = 0;  // bit per tag
    std::size_t count = 0;
    while (left() > 0) {
        if (left() < 2) return decode_error::trailing_bytes;
        const std::uint8_t tag = bytes[at];
        const std::size_t value_size = bytes[at + 1];
        at += 2;
        if (left() < value_size) return decode_error::truncated;
        const auto value = text(value_size);
        if (tag >= tag_names.size()) return decode_error::unknown_parameter_tag;
        if (seen & (1u << tag)) return decode_error::duplicate_parameter;
        seen = static_cast<std::uint16_t>(seen | (1u << tag));
        if (tag == tag_user) {
            if (value.size() > eas_facts::max_user || has_control(value))
                return decode_error::bad_user;
            if (!value.empty()) {
                out.user = value;
                out.user_from = user_source::query;
            }
            continue;
        }
        if (tag == tag_options) {
            if (value_size != 1) return decode_error::bad_options_length;
            out.options = ascii::byte(value[0]);
        }
        out.parameters[count++] = {tag_names[tag], value};
    }
    out.parameter_count = static_cast<std::uint8_t>(count);
    if (out.user_from == user_source::none) set_user_from_authorization(out, in.authorization, w);

    // R10: headers the base64 form should not send, disagreeing with the record.
    if (const auto v = ascii::trim_ows(in.protocol_version);
        !v.empty() && v != out.protocol_version)
        out.headers_conflict = true;
    if (!ascii::trim_ows(in.policy_key).empty() &&
        parse_policy_key(in.policy_key) != out.policy_key)
        out.headers_conflict = true;

    out.form = query_form::base64;
    return decode_error::ok;
}

}  // namespace

std::string_view describe(decode_error e) {
    switch (e) {
        case decode_error::ok:
            return "ok";
        case decode_error::empty_query:
            return "no query";
        case decode_error::not_plain_or_base64:
            return "query is neither plain nor base64";
        case decode_error::duplicate_header:
            return "ActiveSync header sent twice";
        case decode_error::bad_percent_escape:
            return "bad percent escape";
        case decode_error::malformed_parameter:
            return "query parameter without a name";
        case decode_error::duplicate_parameter:
            return "query parameter sent twice";
        case decode_error::too_many_parameters:
            return "too many query parameters";
        case decode_error::missing_cmd:
            return "no Cmd";
        case decode_error::missing_user:
            return "no User";
        case decode_error::missing_device_id:
            return "no DeviceId";
        case decode_error::missing_device_type:
            return "no DeviceType";
        case decode_error::unknown_command:
            return "unknown Cmd";
        case decode_error::bad_user:
            return "bad User";
        case decode_error::bad_device_id:
            return "bad DeviceId";
        case decode_error::bad_device_type:
            return "bad DeviceType";
        case decode_error::bad_parameter_value:
            return "control character in a parameter";
        case decode_error::bad_protocol_version:
            return "unknown protocol version";
        case decode_error::bad_policy_key:
            return "bad X-MS-PolicyKey";
        case decode_error::truncated:
            return "base64 query truncated";
        case decode_error::unknown_command_code:
            return "unknown command code";
        case decode_error::empty_device_id:
            return "device ID length is 0";
        case decode_error::bad_policy_key_length:
            return "policy key length is not 0 or 4";
        case decode_error::unknown_parameter_tag:
            return "unknown parameter tag";
        case decode_error::bad_options_length:
            return "Options parameter is not one byte";
        case decode_error::trailing_bytes:
            return "trailing byte after the parameters";
    }
    return "unknown error";
}

std::string authorization_basic_user(std::string_view authorization) {
    char buf[eas_facts::max_user];
    return std::string(basic_user(authorization, buf));
}

std::string_view command_name(std::uint8_t code) {
    return code < command_names.size() ? command_names[code] : std::string_view{};
}

std::optional<std::string_view> eas_facts::parameter_value(std::string_view name) const {
    for (std::size_t i = 0; i < parameter_count; ++i) {
        if (ascii::iequals(parameters[i].name, name)) return parameters[i].value;
    }
    return std::nullopt;
}

void eas_facts::clear() {
    form = query_form::none;
    protocol_version = {};
    cmd = {};
    locale.reset();
    device_id = {};
    device_id_hex = {};
    device_id_ascii = {};
    policy_key.reset();
    device_type = {};
    user = {};
    user_from = user_source::none;
    options.reset();
    headers_conflict = false;
    parameters = {};
    parameter_count = 0;
}

char* eas_facts::reserve(std::size_t n) {
    if (n <= inline_capacity) return inline_.data();
    if (n > heap_capacity_) {
        heap_ = std::make_unique_for_overwrite<char[]>(n);
        heap_capacity_ = n;
    }
    return heap_.get();
}

decode_error decode(const request_input& in, eas_facts& out) {
    out.clear();
    decode_error e;
    if (in.query.empty()) {
        if (!in.options) return decode_error::empty_query;
        writer w{out.reserve(basic_user_bound(in.authorization))};
        set_user_from_authorization(out, in.authorization, w);
        return decode_error::ok;
    }
    if (has_cmd_parameter(in.query)) {
        e = decode_plain(in, out);
    } else if (const auto size = base64_query(in.query, nullptr); size != npos) {
        e = decode_base64(in, size, out);
    } else if (in.options || looks_plain(in.query)) {
        e = decode_plain(in, out);
    } else {
        e = decode_error::not_plain_or_base64;
    }
    if (e != decode_error::ok) out.clear();
    return e;
}

decode_error decode(std::string_view query, const boost::beast::http::fields& headers,
                    bool options_request, eas_facts& out) {
    request_input in;
    in.query = query;
    in.options = options_request;
    const std::pair<const char*, std::string_view*> wanted[] = {
        {"MS-ASProtocolVersion", &in.protocol_version},
        {"X-MS-PolicyKey", &in.policy_key},
        {"Authorization", &in.authorization}};
    for (const auto& [name, value] : wanted) {
        bool seen = false;
        // Not equal_range: in Beast 1.81 it can span fields of other names.
        for (const auto& f : headers) {
            if (!boost::beast::iequals(f.name_string(), name)) continue;
            if (seen) {
                out.clear();
                return decode_error::duplicate_header;
            }
            seen = true;
            *value = std::string_view(f.value().data(), f.value().size());
        }
    }
    return decode(in, out);
}

}  // namespace mailgate::eas
