#pragma once
// Which request/response fields a proxy must not forward (RFC 9110 7.6.1), plus the framing
// fields that mailgate always rebuilds itself.
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/fields.hpp>

namespace mailgate::http {

// Collects the tokens named by every Connection field of `fields` (lower-cased, deduplicated)
// so that `is_hop_by_hop` can be asked per field without re-parsing Connection.
class hop_by_hop_set {
public:
    explicit hop_by_hop_set(const boost::beast::http::fields& fields);
    // True for Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
    // Transfer-Encoding, Content-Length, and any name listed in a Connection field.
    bool is_hop_by_hop(std::string_view name) const;

private:
    // Owned copies, so the caller may erase fields (the Connection field included) while
    // asking about the others.
    std::vector<std::string> named_;
};

}  // namespace mailgate::http
