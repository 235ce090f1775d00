#pragma once
// NTLM and Negotiate authenticate a connection, not a request (R18): once either appears,
// the upstream connection must stay with that one client connection.
#include <optional>
#include <string>
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

// The user name of an NTLM type 3 (authenticate) message in `Authorization: NTLM|Negotiate`,
// as "DOMAIN\\user" or "user" (UTF-16 folded to ASCII, other characters as '?'); nullopt
// for any other message. Only the name fields are read: never the responses (hashes).
std::optional<std::string> ntlm_authenticate_user(std::string_view authorization);

// The NTLM message type (1, 2, 3) of such credentials, 0 when it is not one.
int ntlm_message_type(std::string_view authorization);

}  // namespace mailgate::http
