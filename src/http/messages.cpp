#include "http/messages.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

#include "http/hop_by_hop.hpp"

namespace mailgate::http {
namespace beast = boost::beast;

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    char* p = buf + sizeof buf;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

}  // namespace

void build_upstream_request(const beast::http::request_header<>& head, const request_info& info,
                            std::string_view client_ip, std::string_view default_host,
                            std::string& out) {
    out.append(head.method_string()).append(" ").append(head.target()).append(" HTTP/1.1\r\n");
    if (info.host.empty()) append_field(out, "Host", default_host);
    const hop_by_hop_set hop(head);
    for (const auto& f : head) {
        const auto name = f.name_string();
        // Host stays even when a Connection field names it: the upstream must see it.
        if ((hop.is_hop_by_hop(name) && !beast::iequals(name, "host")) ||
            beast::iequals(name, "expect") || beast::iequals(name, "x-forwarded-for") ||
            beast::iequals(name, "x-forwarded-proto"))
            continue;
        append_field(out, name, f.value());
    }
    append_field(out, "X-Forwarded-For", client_ip);
    append_field(out, "X-Forwarded-Proto", "https");
    // R27: 100-continue is the upstream's to answer; any other expectation was refused.
    if (info.expect_continue && has_body(info)) append_field(out, "Expect", "100-continue");
    switch (info.framing) {
        case body_framing::none:
            break;
        case body_framing::content_length:
            out.append("Content-Length: ");
            append_uint(out, info.content_length);
            out.append("\r\n");
            break;
        case body_framing::chunked:
            out.append("Transfer-Encoding: chunked\r\n");
            break;
    }
    out.append("\r\n");
}

void build_client_response(const beast::http::response_header<>& head, const header_policy& policy,
                           std::string_view hsts, response_framing framing, std::uint64_t length,
                           bool keep_alive, std::string& out) {
    out.append("HTTP/1.1 ");
    append_uint(out, head.result_int());
    out.append(" ");
    const std::string_view reason(head.reason().data(), head.reason().size());
    out.append(reason.empty() ? reason_phrase(static_cast<int>(head.result_int())) : reason);
    out.append("\r\n");
    const hop_by_hop_set hop(head);
    std::uint64_t present = 0;  // the add entries the upstream sent itself
    for (const auto& f : head) {
        const auto name = f.name_string();
        // HEAD and 304 responses describe the body they would have; 204 and 1xx have none.
        const auto status = head.result_int();
        const bool informational_length = framing == response_framing::none && status >= 200 &&
                                          status != 204 && beast::iequals(name, "content-length");
        if ((hop.is_hop_by_hop(name) && !informational_length) || policy.strips(name) ||
            (!hsts.empty() && beast::iequals(name, "strict-transport-security")))
            continue;
        present |= policy.added_mask(name);
        append_field(out, name, f.value());
    }
    policy.append_fields(out, present, hsts);
    switch (framing) {
        case response_framing::none:
        case response_framing::close:
            break;
        case response_framing::content_length:
            out.append("Content-Length: ");
            append_uint(out, length);
            out.append("\r\n");
            break;
        case response_framing::chunked:
            out.append("Transfer-Encoding: chunked\r\n");
            break;
    }
    if (!keep_alive) out.append("Connection: close\r\n");
    out.append("\r\n");
}

void build_error_reply(int status, const header_policy& policy, std::string_view hsts, bool close,
                       std::string& out, std::uint32_t retry_after, std::string_view extra_fields) {
    const auto reason = reason_phrase(status);
    out.append("HTTP/1.1 ");
    append_uint(out, static_cast<std::uint64_t>(status));
    out.append(" ").append(reason).append("\r\n");
    out.append("Content-Type: text/plain\r\nContent-Length: ");
    append_uint(out, reason.size() + 1);
    out.append("\r\nCache-Control: no-store\r\n");
    policy.append_fields(out, 0, hsts);
    if (retry_after != 0) {
        out.append("Retry-After: ");
        append_uint(out, retry_after);
        out.append("\r\n");
    }
    out.append(extra_fields);
    if (close) out.append("Connection: close\r\n");
    out.append("\r\n").append(reason).append("\n");
}

std::string https_location(const request_info& info, std::string_view fixed_host, unsigned port) {
    std::string_view host = fixed_host;
    if (host.empty()) {
        host = info.host;
        // Drop the port: "[v6]:80" keeps its brackets, "name:80" becomes "name".
        const auto colon = host.rfind(':');
        if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos)
            host = host.substr(0, colon);
    }
    if (host.empty()) return {};
    std::string out = "https://";
    out.append(host);
    if (port != 443) {
        out.push_back(':');
        append_uint(out, port);
    }
    // "OPTIONS *" and an empty path both go to the root.
    out.append(info.path.empty() || info.path == "*" ? std::string_view("/") : info.path);
    if (!info.query.empty()) out.append("?").append(info.query);
    return out;
}

void build_redirect_reply(std::string_view location, const header_policy& policy,
                          std::string& out) {
    static constexpr std::string_view body = "Moved Permanently\n";
    out.append("HTTP/1.1 301 Moved Permanently\r\nLocation: ").append(location);
    out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
    append_uint(out, body.size());
    out.append("\r\n");
    policy.append_fields(out, 0, {});
    out.append("Connection: close\r\n\r\n").append(body);
}

std::string_view reason_phrase(int status) {
    const auto r = beast::http::obsolete_reason(static_cast<beast::http::status>(status));
    return r.empty() ? std::string_view("Unknown") : std::string_view(r.data(), r.size());
}

}  // namespace mailgate::http
