// libFuzzer target for the ActiveSync query decoder. Input layout: one flag byte (bit 0:
// OPTIONS; bit 1: base64-encode the query first, so that the fuzzer reaches the record's
// layout without having to learn base64), then the query, then optionally '\n' and an
// Authorization value, '\n' and an MS-ASProtocolVersion value, '\n' and an X-MS-PolicyKey
// value. Seeds: tests/fuzz/corpus/eas_query; run it with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eas/query_decoder.hpp"

namespace {

std::string b64(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    auto at = [&](std::size_t k) {
        return static_cast<unsigned>(static_cast<unsigned char>(bytes[k]));
    };
    for (; i + 3 <= bytes.size(); i += 3) {
        const unsigned v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (bytes.size() - i == 1) {
        const unsigned v = at(i) << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (bytes.size() - i == 2) {
        const unsigned v = at(i) << 16 | at(i + 1) << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string_view next_line(std::string_view& rest) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    return line;
}

void check(bool ok) {
    if (!ok) std::abort();
}

// Whether a non-empty view points into `outer` (the record must hold copies, not views).
bool points_into(std::string_view inner, std::string_view outer) {
    return !inner.empty() && inner.data() >= outer.data() &&
           inner.data() + inner.size() <= outer.data() + outer.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto query_part = next_line(rest);
    const auto authorization = next_line(rest);
    const auto version = next_line(rest);
    const auto key = next_line(rest);

    // Copies, so that ASan sees reads past the end of exactly these bytes.
    const std::string query = (flags & 2) ? b64(query_part) : std::string(query_part);
    const std::string auth(authorization);

    mailgate::eas::request_input in;
    in.query = query;
    in.authorization = auth;
    in.protocol_version = version;
    in.policy_key = key;
    in.options = (flags & 1) != 0;

    static mailgate::eas::eas_facts reused;  // one record per session, as the server keeps it
    mailgate::eas::eas_facts fresh;
    for (auto* f : {&reused, &fresh}) {
        const auto e = mailgate::eas::decode(in, *f);
        check(!mailgate::eas::describe(e).empty());
        if (e != mailgate::eas::decode_error::ok) {
            check(f->cmd.empty() && f->device_id.empty() && f->parameter_count == 0);
            continue;
        }
        check(f->device_id_hex.size() == 2 * f->device_id.size());
        check(f->device_id_ascii.empty() || f->device_id_ascii == f->device_id);
        check(f->device_id.size() <= mailgate::eas::eas_facts::max_device_id);
        check(f->user.size() <= mailgate::eas::eas_facts::max_user);
        check(f->parameter_count <= mailgate::eas::eas_facts::max_parameters);
        check(!f->cmd.empty() || in.options);
        if (f->form == mailgate::eas::query_form::plain && !in.options)
            check(!f->device_id.empty() && !f->device_type.empty() && !f->user.empty());
        if (f->form == mailgate::eas::query_form::base64)
            check(f->locale.has_value() && !f->protocol_version.empty());
        // The user never carries what follows the ':' of Basic credentials.
        check(f->user.find(':') == std::string_view::npos ||
              f->user_from == mailgate::eas::user_source::query);
        check(!points_into(f->user, auth) && !points_into(f->device_id, query));
        volatile std::size_t sink = 0;
        for (std::size_t i = 0; i < f->parameter_count; ++i)
            sink = sink + f->parameters[i].name.size() + f->parameters[i].value.size();
    }
    return 0;
}
