#pragma once
// ActiveSync (MS-ASHTTP) request decoding: the plain query (2.2.1.1.1.2, parameters in any
// order) and the base64 query (2.2.1.1.1.1), both into one normalised record that rules and
// the access log read. Every length is checked against the bytes there are; anything
// malformed or unknown is an error with a short reason, and the request is answered 400.
//
// The request target itself is never touched: the decoder reads a view of the query and
// copies what it decodes into the record, so the bytes forwarded are the bytes received.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

namespace mailgate::eas {

enum class query_form : std::uint8_t {
    none,    // an OPTIONS request without a query
    plain,   // Cmd=...&User=...&DeviceId=...&DeviceType=...
    base64,  // the binary record of 2.2.1.1.1.1, base64-encoded
};

enum class user_source : std::uint8_t {
    none,           // neither the query nor a Basic Authorization header named one
    query,          // User= (plain) or parameter tag 8 (base64)
    authorization,  // the user name of `Authorization: Basic` (the password is never kept)
};

// Why a request was refused. ok is not an error.
enum class decode_error : std::uint8_t {
    ok = 0,
    // Either form.
    empty_query,          // a POST without a query
    not_plain_or_base64,  // no Cmd parameter, and not strict base64 either
    duplicate_header,     // MS-ASProtocolVersion, X-MS-PolicyKey or Authorization twice
    // Plain form.
    bad_percent_escape,   // '%' not followed by two hex digits
    malformed_parameter,  // a parameter without a name ("=x")
    duplicate_parameter,  // any parameter name twice (case-insensitively); also base64 tags
    too_many_parameters,  // more than eas_facts::max_parameters besides the four named ones
    missing_cmd,
    missing_user,
    missing_device_id,
    missing_device_type,
    unknown_command,       // Cmd is not a command of MS-ASHTTP (nor a legacy name)
    bad_user,              // empty, longer than max_user, or control characters
    bad_device_id,         // empty, longer than max_device_id, or not printable ASCII
    bad_device_type,       // empty, longer than 255 bytes, or not printable ASCII
    bad_parameter_value,   // control characters in a plain parameter value
    bad_protocol_version,  // MS-ASProtocolVersion header (plain) or version byte (base64)
    bad_policy_key,        // X-MS-PolicyKey header is not a uint32 in decimal
    // Base64 form.
    truncated,              // a length runs past the end of the record
    unknown_command_code,   // 5-8 or above 23
    empty_device_id,        // device ID length 0 (the spec: MUST be greater than 0)
    bad_policy_key_length,  // neither 0 nor 4
    unknown_parameter_tag,  // not 0-8
    bad_options_length,     // the Options parameter (tag 7) is not one byte
    trailing_bytes,         // one byte left over: a parameter tag without its length
};

// A short English reason for logs, e.g. "device ID length is 0".
std::string_view describe(decode_error e);

struct parameter {
    // The spec's name ("ItemId", "SaveInSent", "Options"...); a plain-form parameter the
    // spec does not list keeps its name as sent.
    std::string_view name;
    // Plain form: percent-decoded. Base64 form: the raw bytes (Options is one binary byte).
    std::string_view value;
};

// The normalised record. Views point into static tables or into the record's own storage,
// so a record can be neither copied nor moved; decode() refills one in place (keep one per
// session and reuse it). Fields the request does not carry are empty / nullopt.
struct eas_facts {
    static constexpr std::size_t max_parameters = 8;
    static constexpr std::size_t max_device_id = 255;  // the base64 length byte's limit
    static constexpr std::size_t max_user = 512;

    query_form form = query_form::none;
    std::string_view protocol_version;        // "2.5" ... "16.1"; plain form: from the header
    std::string_view cmd;                     // the command's canonical name, e.g. "Sync"
    std::optional<std::uint16_t> locale;      // base64 form only (LCID, e.g. 1033)
    std::string_view device_id;               // raw bytes (binary GUIDs exist)
    std::string_view device_id_hex;           // lowercase hex of device_id
    std::string_view device_id_ascii;         // device_id when all printable ASCII, else ""
    std::optional<std::uint32_t> policy_key;  // base64 field, or X-MS-PolicyKey (plain)
    std::string_view device_type;             // printable ASCII
    std::string_view user;                    // as sent: "DOMAIN\user", "user@domain"...
    user_source user_from = user_source::none;
    std::optional<std::uint8_t> options;  // base64 tag 7: 0x01 SaveInSent, 0x02 AcceptMultiPart
    // Base64 form with an MS-ASProtocolVersion or X-MS-PolicyKey header that disagrees with
    // the record (R10: log a warning, forward unchanged).
    bool headers_conflict = false;
    std::array<parameter, max_parameters> parameters{};
    std::uint8_t parameter_count = 0;

    eas_facts() = default;
    eas_facts(const eas_facts&) = delete;
    eas_facts& operator=(const eas_facts&) = delete;

    // The value of the parameter of that name (ASCII case-insensitive), if present.
    std::optional<std::string_view> parameter_value(std::string_view name) const;

    // Back to the empty record. Keeps a heap buffer, if one was needed, for reuse.
    void clear();

    // Storage for decoded bytes: `n` bytes, inline when they fit (the common case: no
    // allocation), else one heap buffer. Invalidates every view into earlier storage.
    char* reserve(std::size_t n);

private:
    static constexpr std::size_t inline_capacity = 256;
    std::array<char, inline_capacity> inline_{};
    std::unique_ptr<char[]> heap_;
    std::size_t heap_capacity_ = 0;
};

// What the decoder reads of a request. Header values are "" when the header is absent.
struct request_input {
    std::string_view query{};             // raw, after '?' (never decoded by the caller)
    std::string_view protocol_version{};  // MS-ASProtocolVersion
    std::string_view policy_key{};        // X-MS-PolicyKey
    std::string_view authorization{};     // Authorization (only a Basic user name is taken)
    // OPTIONS: no query is fine, and a plain query need not name Cmd, User, DeviceId or
    // DeviceType (what it does carry is still checked).
    bool options = false;
};

// Fills `out` (cleared first; on error it is left cleared). Allocates nothing unless the
// decoded bytes exceed 256 (then one buffer, kept by `out` for reuse).
decode_error decode(const request_input& in, eas_facts& out);

// The same, reading the three headers from `headers`; any of them twice is an error.
decode_error decode(std::string_view query, const boost::beast::http::fields& headers,
                    bool options_request, eas_facts& out);

// The user name of `Authorization: Basic ...` credentials ("" for another scheme or malformed
// credentials). At most two bytes of the password are ever decoded, into a wiped local.
std::string authorization_basic_user(std::string_view authorization);

// The canonical name of a base64 command code, or "" for an unassigned code.
std::string_view command_name(std::uint8_t code);

}  // namespace mailgate::eas
