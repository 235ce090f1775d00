#pragma once
// Response header policy (compiled): which upstream fields are stripped, which are added,
// and the HSTS value that goes on every response, generated ones included.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::http {

struct header_policy {
    std::vector<std::string> remove;                       // lower-case names
    std::vector<std::pair<std::string, std::string>> add;  // emitted in this order
    std::string hsts;  // full "Strict-Transport-Security: ...\r\n" line, or empty

    // True when an upstream field must not reach the client: listed in `remove`, or a
    // name the policy sets itself (the policy's value wins over the upstream's).
    bool strips(std::string_view name) const;
    // Appends the policy's own fields (add list, then HSTS) as header lines.
    void append_fields(std::string& out) const;
};

}  // namespace mailgate::http
