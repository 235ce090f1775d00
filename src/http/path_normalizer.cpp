#include "http/path_normalizer.hpp"

#include <vector>

#include "http/ascii.hpp"

namespace mailgate::http {

namespace {

normalize_result refuse(std::string_view reason) { return {false, {}, reason}; }

constexpr char upper_hex(int v) { return "0123456789ABCDEF"[v & 0xf]; }

}  // namespace

// Two passes: decode and check each segment, then resolve dot segments. Dot segments are
// only ever literal '.', because an encoded dot is refused outright: "%2e%2e" must not be
// a way to climb past a location prefix that a backend would later climb for us.
normalize_result normalize_path(std::string_view raw_path) {
    if (raw_path.empty() || raw_path.front() != '/') return refuse("path not absolute");

    std::string decoded;
    decoded.reserve(raw_path.size());
    for (std::size_t i = 0; i < raw_path.size(); ++i) {
        const char c = raw_path[i];
        const unsigned char b = ascii::byte(c);
        if (b < 0x21 || b > 0x7e) return refuse("invalid byte in path");
        // IIS treats '\' as '/', so "/owa\..\ecp" would bypass prefix matching.
        if (c == '\\') return refuse("backslash in path");
        if (c != '%') {
            decoded.push_back(ascii::to_lower(c));
            continue;
        }
        if (i + 2 >= raw_path.size()) return refuse("truncated percent-encoding");
        const int hi = ascii::hex_value(raw_path[i + 1]);
        const int lo = ascii::hex_value(raw_path[i + 2]);
        if (hi < 0 || lo < 0) return refuse("invalid percent-encoding");
        const char v = static_cast<char>(hi * 16 + lo);
        // Each of these changes the segment structure depending on who decodes it.
        if (v == '.') return refuse("encoded dot in path");
        if (v == '/') return refuse("encoded slash in path");
        if (v == '\\') return refuse("encoded backslash in path");
        if (v == '\0') return refuse("encoded NUL in path");
        if (ascii::is_unreserved(v)) {
            decoded.push_back(ascii::to_lower(v));
        } else {
            // Kept encoded (so "%3F" never becomes a query separator); the hex is
            // upper-cased so "%3f" and "%3F" match the same location.
            decoded.push_back('%');
            decoded.push_back(upper_hex(hi));
            decoded.push_back(upper_hex(lo));
        }
        i += 2;
    }

    // RFC 3986 5.2.4 on the segment list, with '//' merged and '..' at the root refused
    // (silently clamping it hides probing for traversal).
    std::vector<std::string_view> segments;
    std::string_view rest = std::string_view(decoded).substr(1);
    bool trailing_slash = false;
    for (;;) {
        const std::size_t slash = rest.find('/');
        const std::string_view seg = rest.substr(0, slash);
        const bool last = slash == std::string_view::npos;
        if (seg == "..") {
            if (segments.empty()) return refuse("dot segment above root");
            segments.pop_back();
            trailing_slash = true;
        } else if (seg == "." || seg.empty()) {
            trailing_slash = true;
        } else {
            segments.push_back(seg);
            trailing_slash = false;
        }
        if (last) break;
        rest.remove_prefix(slash + 1);
    }

    normalize_result out;
    out.ok = true;
    out.path.reserve(decoded.size());
    for (const std::string_view seg : segments) {
        out.path.push_back('/');
        out.path.append(seg);
    }
    if (out.path.empty() || trailing_slash) out.path.push_back('/');
    return out;
}

}  // namespace mailgate::http
