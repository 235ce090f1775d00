#pragma once
// NTLM and Negotiate authenticate a connection, not a request (R18): once either appears,
// the upstream connection must stay with that one client connection.
#include <string_view>

#include <boost/beast/http/fields.hpp>

namespace mailgate::http {

// `Authorization: NTLM ...` or `Negotiate ...` (scheme case-insensitive).
bool is_connection_bound_credential(std::string_view authorization);

// A request that carries such credentials.
bool carries_connection_bound_auth(const boost::beast::http::fields& request);

// A response (a 401) that offers NTLM or Negotiate in any WWW-Authenticate field, also
// inside a comma-separated list of challenges.
bool offers_connection_bound_auth(const boost::beast::http::fields& response);

}  // namespace mailgate::http
