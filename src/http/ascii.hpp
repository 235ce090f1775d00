#pragma once
// Locale-free ASCII helpers shared by the src/http parsers. <cctype> depends on the global
// locale and is undefined for negative chars, neither of which attacker bytes may touch.
#include <cstddef>
#include <string>
#include <string_view>

namespace mailgate::http::ascii {

constexpr unsigned char byte(char c) { return static_cast<unsigned char>(c); }

constexpr char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline std::string to_lower_copy(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower(c);
    return out;
}

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// RFC 9110 5.6.2 tchar: the only bytes allowed in a field name or a method.
constexpr bool is_tchar(char c) {
    constexpr std::string_view symbols = "!#$%&'*+-.^_`|~";
    return is_alpha(c) || is_digit(c) || symbols.find(c) != std::string_view::npos;
}

// RFC 3986 unreserved.
constexpr bool is_unreserved(char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(token) for each OWS-trimmed, non-empty element of a comma-separated list
// (RFC 9110 5.6.1: empty elements are legal and ignored). Stops early if f returns false.
template <typename F>
constexpr void for_each_list_token(std::string_view list, F&& f) {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string_view item =
            trim_ows(comma == std::string_view::npos ? list : list.substr(0, comma));
        if (!item.empty() && !f(item)) return;
        if (comma == std::string_view::npos) return;
        list.remove_prefix(comma + 1);
    }
}

}  // namespace mailgate::http::ascii
