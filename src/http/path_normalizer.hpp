#pragma once
// The path used for location matching: percent-decoded unreserved characters, dot
// segments removed, duplicate slashes merged, ASCII lower case (IIS matches
// case-insensitively). Ambiguous encodings are refused rather than guessed.
// The upstream always receives the original target; this is only for matching.
#include <string>
#include <string_view>

namespace mailgate::http {

struct normalize_result {
    bool ok = false;
    std::string path;         // ok: normalized, starts with '/', lower case
    std::string_view reason;  // !ok: why (answer 400)
};

// `raw_path` is the target up to (not including) '?'. Refused: %2e/%2E, %2f, %5c, %00,
// an invalid %xx, a backslash, bytes outside 0x21..0x7e, a path not starting with '/'.
// A dot segment that would climb above the root is refused too.
normalize_result normalize_path(std::string_view raw_path);

}  // namespace mailgate::http
