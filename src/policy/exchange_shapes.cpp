// The request shapes the Exchange shields check: the decoded URI Microsoft's URL Rewrite
// mitigations match, and the two legitimate shapes of autodiscover.json (R22).
#include <array>
#include <string>
#include <string_view>

#include "http/ascii.hpp"
#include "policy/policy.hpp"

namespace mailgate::policy {
namespace {

// %xx decoded; a '%' without two hex digits stays as it is (IIS's UrlDecode does the same).
std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = http::ascii::hex_value(s[i + 1]), lo = http::ascii::hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

bool is_alnum(char c) { return http::ascii::is_alpha(c) || http::ascii::is_digit(c); }

// ^[^@/?#\s]+@[A-Za-z0-9.-]+$
bool valid_address(std::string_view a) {
    const auto at = a.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 == a.size()) return false;
    for (const char c : a.substr(0, at))
        if (c == '@' || c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\r' ||
            c == '\n' || c == '\f' || c == '\v')
            return false;
    for (const char c : a.substr(at + 1))
        if (!is_alnum(c) && c != '.' && c != '-') return false;
    return true;
}

bool valid_word(std::string_view w) {
    if (w.empty()) return false;
    for (const char c : w)
        if (!is_alnum(c)) return false;
    return true;
}

bool valid_redirect_count(std::string_view n) {
    if (n.empty() || n.size() > 2) return false;
    for (const char c : n)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

std::string decode_uri(std::string_view normalized_path, std::string_view raw_query) {
    std::string out = percent_decode(percent_decode(normalized_path));
    if (!raw_query.empty()) out.append("?").append(percent_decode(percent_decode(raw_query)));
    return http::ascii::to_lower_copy(out);
}

bool autodiscover_json_malformed(std::string_view path, std::string_view raw_query) {
    static constexpr std::string_view base = "/autodiscover/autodiscover.json";
    if (!path.starts_with(base)) return false;
    const auto rest = path.substr(base.size());
    if (!rest.empty() && rest.front() != '/') return false;  // autodiscover.jsonx: not ours

    // Each key at most once; every pair "key=value"; keys from `allowed` only.
    enum { email, protocol, redirect_count };
    static constexpr std::array<std::string_view, 3> names{"email", "protocol", "redirectcount"};
    std::array<std::string, 3> values;
    std::array<bool, 3> seen{};
    const bool query_form = rest.empty() || rest == "/";
    const std::size_t allowed = query_form ? 3 : 2;  // the path form takes Protocol only
    std::string_view q = raw_query;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos) return true;  // "@evil.com/mapi/...": no key
        const auto key = percent_decode(pair.substr(0, eq));
        std::size_t k = 0;
        while (k < allowed && !http::ascii::iequals(key, names[k])) ++k;
        if (k == allowed || (!query_form && k != protocol) || seen[k]) return true;
        seen[k] = true;
        values[k] = percent_decode(pair.substr(eq + 1));
    }
    if (seen[protocol] && !valid_word(values[protocol])) return true;
    if (seen[redirect_count] && !valid_redirect_count(values[redirect_count])) return true;
    if (query_form) return !seen[email] || !valid_address(values[email]);

    // Path form: /v1.0/<address>?Protocol=<word>
    static constexpr std::string_view v1 = "/v1.0/";
    if (!rest.starts_with(v1) || !seen[protocol]) return true;
    const auto address = percent_decode(rest.substr(v1.size()));
    return address.find('/') != std::string::npos || address.find("..") != std::string::npos ||
           !valid_address(address);
}

}  // namespace mailgate::policy
