#pragma once
// Response header policy (compiled): which upstream fields are stripped, which are sent
// when the upstream lacks them (add), and which always replace the upstream's (set).
// HSTS is the listener's, passed beside the policy.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::http {

struct header_policy {
    using field_list = std::vector<std::pair<std::string, std::string>>;
    std::vector<std::string> remove;  // lower-case names
    field_list add;                   // at most 64 (a mask tracks which the upstream sent)
    field_list set;

    // A location's policy applied on top of the global one: the location's entries win
    // for the names they mention; every other global entry stays.
    static header_policy merged(const header_policy& global, const header_policy& local);

    // True when an upstream field must not reach the client: removed, or set by the policy.
    bool strips(std::string_view name) const;
    // Bit i set when `name` is add[i]'s name (then the upstream's field is kept instead).
    std::uint64_t added_mask(std::string_view name) const;
    // Appends set, then the add entries whose bit is not in `present`, then `hsts`.
    void append_fields(std::string& out, std::uint64_t present, std::string_view hsts) const;
};

}  // namespace mailgate::http
