#pragma once
// Durations and sizes as written in the configuration. Both grammars are strict on
// purpose: a bare number is never a duration (is `30` seconds or milliseconds?) and
// decimal size units are refused (is `10MB` 10^7 or 2^20 * 10?), so a value means
// exactly one thing.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/schema.hpp"

namespace mailgate::config {

// The value, or why the text is not one (worded to follow "invalid duration 'X': ").
template <typename T>
struct parse_result {
    std::optional<T> value;
    std::string error;

    explicit operator bool() const { return value.has_value(); }
};

// Longest accepted duration. Timers downstream count nanoseconds in 64 bits (about
// 292 years); capping well below that keeps every conversion free of overflow.
inline constexpr duration max_duration{std::chrono::hours(24 * 365 * 100)};

// `<digits><unit>`, unit one of ms, s, m, h, d, y (365 days). No sign, no spaces,
// no fractions, no compound forms like `1h30m`.
parse_result<duration> parse_duration(std::string_view text);

// `<digits>` (bytes) or `<digits><unit>`, unit one of KiB, MiB, GiB.
parse_result<std::uint64_t> parse_size(std::string_view text);

// The largest unit that represents the value exactly: "2y", "90s", "1500ms".
std::string format_duration(duration d);

// The largest unit that represents the value exactly: "16KiB", "1000".
std::string format_size(std::uint64_t bytes);

}  // namespace mailgate::config
