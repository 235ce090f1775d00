#include "http/ms_location.hpp"

#include "http/ascii.hpp"

#include <algorithm>
#include <array>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>

namespace mailgate::http {
namespace {

bool private_address(const boost::asio::ip::address& a) {
    if (a.is_loopback() || a.is_unspecified()) return true;
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
               (b[0] == 169 && b[1] == 254) || (b[0] == 100 && (b[1] & 0xc0) == 64);  // CGNAT
    }
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped())
        return private_address(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
    const auto b = v6.to_bytes();
    return v6.is_link_local() || (b[0] & 0xfe) == 0xfc;  // fc00::/7 unique local
}

}  // namespace

bool is_internal_host(std::string_view host, const std::vector<std::string>& internal_names) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(std::string(host), ec);
    if (!ec) return private_address(addr);
    const auto name =
        ascii::to_lower_copy(host.ends_with('.') ? host.substr(0, host.size() - 1) : host);
    if (std::find(internal_names.begin(), internal_names.end(), name) != internal_names.end())
        return true;
    if (name.find('.') == std::string::npos) return true;
    static constexpr std::array<std::string_view, 7> suffixes{
        ".local", ".internal", ".lan", ".corp", ".localdomain", ".intranet", ".home.arpa"};
    return std::any_of(suffixes.begin(), suffixes.end(),
                       [&](std::string_view s) { return name.ends_with(s); });
}

std::optional<std::string> rewrite_ms_location(std::string_view location,
                                               const std::vector<std::string>& internal_names,
                                               std::string_view public_host) {
    std::string_view rest;
    if (location.size() > 8 && boost::beast::iequals(location.substr(0, 8), "https://"))
        rest = location.substr(8);
    else if (location.size() > 7 && boost::beast::iequals(location.substr(0, 7), "http://"))
        rest = location.substr(7);
    else
        return std::nullopt;
    const auto end = rest.find_first_of("/?#");
    const auto authority = rest.substr(0, end);
    const auto tail = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    // userinfo@ never belongs in a redirect; treat the whole authority as suspect.
    std::string_view host = authority.substr(authority.rfind('@') + 1);
    if (!host.empty() && host.front() == '[') {
        host = host.substr(0, host.find(']') + 1);
    } else {
        host = host.substr(0, host.find(':'));
    }
    if (authority.find('@') == std::string_view::npos && !is_internal_host(host, internal_names))
        return std::nullopt;
    std::string out = "https://";
    out.append(public_host).append(tail.empty() ? std::string_view("/") : tail);
    return out;
}

}  // namespace mailgate::http
