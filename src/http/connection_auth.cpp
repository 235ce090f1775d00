#include "http/connection_auth.hpp"

#include <cstdint>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/string.hpp>

namespace mailgate::http {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_front(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}

bool bound_scheme(std::string_view scheme) {
    return boost::beast::iequals(scheme, "NTLM") || boost::beast::iequals(scheme, "Negotiate");
}

// The auth-scheme token at the start of `s`.
std::string_view scheme_of(std::string_view s) {
    s = trim_front(s);
    std::size_t n = 0;
    while (n < s.size() && !is_space(s[n]) && s[n] != ',') ++n;
    return s.substr(0, n);
}

}  // namespace

bool is_connection_bound_credential(std::string_view authorization) {
    return bound_scheme(scheme_of(authorization));
}

bool carries_connection_bound_auth(const boost::beast::http::fields& request) {
    for (const auto& f : request)
        if (f.name() == boost::beast::http::field::authorization &&
            is_connection_bound_credential(f.value()))
            return true;
    return false;
}

bool offers_connection_bound_auth(const boost::beast::http::fields& response) {
    for (const auto& f : response) {
        if (f.name() != boost::beast::http::field::www_authenticate) continue;
        // Challenges are comma-separated, and so are their parameters: a scheme is the
        // first token of the field or a token that follows a comma and is not "name=".
        std::string_view v = f.value();
        while (!v.empty()) {
            const auto scheme = scheme_of(v);
            const auto rest = trim_front(v).substr(scheme.size());
            if (bound_scheme(scheme) && (rest.empty() || rest.front() != '=')) return true;
            const auto comma = v.find(',');
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return false;
}

namespace {

// The decoded NTLM message of NTLM/Negotiate credentials (a SPNEGO-wrapped Kerberos token
// is not one: empty).
std::string ntlm_message(std::string_view authorization) {
    if (!is_connection_bound_credential(authorization)) return {};
    const auto v = trim_front(authorization);
    const auto space = v.find_first_of(" \t");
    if (space == std::string_view::npos) return {};
    auto token = trim_front(v.substr(space));
    while (!token.empty() && is_space(token.back())) token.remove_suffix(1);
    if (token.size() > 16384) return {};
    std::size_t pad = 0;  // Beast's decoder stops at the padding
    while (pad < token.size() && pad < 2 && token[token.size() - 1 - pad] == '=') ++pad;
    std::string out(boost::beast::detail::base64::decoded_size(token.size()), '\0');
    const auto [written, read] =
        boost::beast::detail::base64::decode(out.data(), token.data(), token.size());
    if (read + pad != token.size()) return {};
    out.resize(written);
    if (out.size() < 12 || out.compare(0, 8, std::string_view("NTLMSSP\0", 8)) != 0) return {};
    return out;
}

std::uint32_t le32(const std::string& m, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(m[at])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(m[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(m[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(m[at + 3])) << 24;
}

// A security buffer (length, max length, offset) at `at`, as text; nullopt if out of bounds.
std::optional<std::string> ntlm_field(const std::string& m, std::size_t at, bool unicode) {
    if (m.size() < at + 8) return std::nullopt;
    const std::size_t len = le32(m, at) & 0xffff;
    const std::size_t off = le32(m, at + 4);
    if (off > m.size() || len > m.size() - off || len > 1024) return std::nullopt;
    std::string out;
    if (unicode) {
        for (std::size_t i = 0; i + 1 < len; i += 2) {
            const unsigned c = static_cast<unsigned char>(m[off + i]) |
                               static_cast<unsigned>(static_cast<unsigned char>(m[off + i + 1]))
                                   << 8;
            out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
        }
    } else {
        for (std::size_t i = 0; i < len; ++i) {
            const auto c = static_cast<unsigned char>(m[off + i]);
            out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
        }
    }
    return out;
}

}  // namespace

int ntlm_message_type(std::string_view authorization) {
    const auto m = ntlm_message(authorization);
    if (m.empty()) return 0;
    const auto type = le32(m, 8);
    return type >= 1 && type <= 3 ? static_cast<int>(type) : 0;
}

std::optional<std::string> ntlm_authenticate_user(std::string_view authorization) {
    const auto m = ntlm_message(authorization);
    if (m.size() < 64 || le32(m, 8) != 3) return std::nullopt;
    const bool unicode = (le32(m, 60) & 0x1) != 0;  // NTLMSSP_NEGOTIATE_UNICODE
    const auto domain = ntlm_field(m, 28, unicode);
    const auto user = ntlm_field(m, 36, unicode);
    if (!domain || !user || user->empty()) return std::nullopt;
    return domain->empty() ? *user : *domain + "\\" + *user;
}

}  // namespace mailgate::http
