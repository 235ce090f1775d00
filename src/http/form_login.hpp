#pragma once
// OWA forms-based login (POST /owa/auth.owa): the one login whose user name is in the body,
// and whose failure is a redirect back to the logon page instead of a 401.
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::http {

// Bodies larger than this are not logins (OWA's form is a few hundred bytes): they are
// streamed as any body and not read ahead.
inline constexpr std::size_t max_login_form = 8192;

// True for a POST whose path (normalized) ends in "/auth.owa", case-insensitively.
bool is_forms_login(std::string_view method, std::string_view normalized_path);

// The decoded value of the first `name` field of an application/x-www-form-urlencoded body
// ('+' is a space, %XX a byte); nullopt when absent or badly encoded.
std::optional<std::string> form_field(std::string_view body, std::string_view name);

// Exchange answers a failed forms login with a redirect to /owa/auth/logon.aspx (reason=2
// for a wrong password); a good one redirects elsewhere (the mailbox) with its cookies.
bool is_failed_forms_login(unsigned status, std::string_view location);

}  // namespace mailgate::http
