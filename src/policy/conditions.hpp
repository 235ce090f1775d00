#pragma once
// One `if` / `if_not` block, compiled. Every condition written must hold; a condition not
// written is not checked; a condition written as an empty list holds for no request.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"
#include "http/ascii.hpp"
#include "net/cidr_set.hpp"
#include "policy/pattern_set.hpp"
#include "policy/policy.hpp"

namespace mailgate::policy {

// Calls f(value) for every occurrence of parameter `name` in a raw query string, with the
// value exactly as sent: no percent-decoding and no '+' to space, so a rule sees the bytes
// the client chose. Names compare ASCII case-insensitively, as IIS does. Returns whether any
// call returned true; f("") stands in for a parameter that is not there at all.
template <typename F>
bool any_query_value(std::string_view query, std::string_view name, F&& f) {
    bool seen = false;
    while (true) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        const auto key = pair.substr(0, eq);
        if (!pair.empty() && http::ascii::iequals(key, name)) {
            seen = true;
            if (f(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1)))
                return true;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return !seen && f(std::string_view{});
}

// CIDRs (or bare addresses) into `out`, finalized; each bad one reported at its mark.
bool compile_cidrs(const std::vector<config::marked_string>& in, net::cidr_set& out,
                   config::diagnostics& diags);

// The device IDs of a device_id_file, lowercased, sorted and without duplicates: one per
// line, blank lines and '#' comments ignored, each printable ASCII without spaces (the
// ASCII form of a device ID or the hex form of its bytes). Problems are reported at `mark`
// (the file name's place in the configuration), naming the line.
bool read_device_ids(const std::string& path, config::source_mark mark,
                     std::vector<std::string>& out, config::diagnostics& diags);

// Whether `id` is in a list made by read_device_ids, ASCII case-insensitively.
bool contains_device_id(const std::vector<std::string>& ids, std::string_view id);

class condition_block_matcher {
public:
    // Regex and CIDR errors go to `diags` at their marks; returns false on any.
    bool compile(const config::condition_block& block, config::diagnostics& diags);

    bool holds(const request_facts& facts) const;

private:
    struct keyed_patterns {
        std::string key;  // header field name or query parameter name
        pattern_set patterns;
    };

    bool has_method_ = false;
    std::vector<std::string> methods_;
    bool has_client_ip_ = false;
    net::cidr_set client_ip_;
    bool has_user_agent_ = false;
    pattern_set user_agent_;
    bool has_uri_ = false;
    pattern_set uri_;
    bool autodiscover_json_malformed_ = false;
    std::vector<keyed_patterns> headers_;
    std::vector<keyed_patterns> query_;

    // `eas:`; null when the block has none.
    struct eas_patterns {
        bool has_cmd = false, has_user = false, has_device_id = false, has_device_type = false,
             has_protocol = false, has_device_id_file = false;
        pattern_set cmd, user, device_id, device_type, protocol;
        std::vector<std::string> device_ids;  // from device_id_file

        bool holds(const eas::eas_facts* facts) const;
    };
    std::unique_ptr<eas_patterns> eas_;
};

}  // namespace mailgate::policy
