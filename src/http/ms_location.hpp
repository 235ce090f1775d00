#pragma once
// R12: a 451 from Exchange names, in X-MS-Location, the server the device should use from
// now on. Behind a proxy that is often the backend's internal name, which must never reach
// the internet: such a location is rewritten to the public host, path and query kept.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::http {

// True for a host the outside cannot (or must not) know: one of `internal_names` (lower
// case), a single-label name, a private-use suffix (.local, .internal, .lan, .corp,
// .localdomain, .intranet, .home.arpa) or a private, loopback or link-local address.
bool is_internal_host(std::string_view host, const std::vector<std::string>& internal_names);

// The rewritten value when `location` is an absolute http(s) URL whose host is internal:
// "https://" + public_host + the original path and query. nullopt: keep the value as is.
std::optional<std::string> rewrite_ms_location(std::string_view location,
                                               const std::vector<std::string>& internal_names,
                                               std::string_view public_host);

}  // namespace mailgate::http
