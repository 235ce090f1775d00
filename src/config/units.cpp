#include "config/units.hpp"

#include <array>
#include <charconv>
#include <limits>

namespace mailgate::config {

namespace {

struct unit {
    std::string_view name;
    std::uint64_t factor;
};

constexpr std::uint64_t ms_per_day = 24ull * 60 * 60 * 1000;

// Largest first, so that format_* picks the largest exact unit.
constexpr std::array<unit, 6> duration_units{{
    {"y", 365 * ms_per_day},
    {"d", ms_per_day},
    {"h", 60ull * 60 * 1000},
    {"m", 60ull * 1000},
    {"s", 1000},
    {"ms", 1},
}};

constexpr std::array<unit, 3> size_units{{
    {"GiB", 1ull << 30},
    {"MiB", 1ull << 20},
    {"KiB", 1ull << 10},
}};

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct split_number {
    std::string_view digits;
    std::string_view suffix;
};

split_number split(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i])) ++i;
    return {text.substr(0, i), text.substr(i)};
}

// Returns false when the digits do not fit in 64 bits.
bool to_u64(std::string_view digits, std::uint64_t& out) {
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc{} && ptr == digits.data() + digits.size();
}

// The usual ways of writing a number that these grammars refuse, each named, so the
// message says what to write instead of only that the unit is unknown.
std::string suffix_mistake(std::string_view suffix, std::string_view fraction_example,
                           std::string_view compound_example) {
    if (suffix.empty()) return {};
    if (suffix.front() == ' ' || suffix.front() == '\t') {
        return "no space is allowed between the number and the unit";
    }
    if ((suffix.front() == '.' || suffix.front() == ',') && suffix.size() > 1 &&
        is_digit(suffix[1])) {
        return "fractions are not allowed (use a smaller unit, as in " +
               std::string(fraction_example) + ")";
    }
    for (char c : suffix) {
        if (is_digit(c)) {
            return "write a single number and unit, as in " + std::string(compound_example);
        }
    }
    return {};
}

}  // namespace

parse_result<duration> parse_duration(std::string_view text) {
    constexpr std::string_view units_hint = "ms, s, m, h, d or y";
    if (text.empty()) return {std::nullopt, "empty value"};
    auto [digits, suffix] = split(text);
    if (digits.empty()) {
        return {std::nullopt,
                "expected a number followed by a unit (" + std::string(units_hint) + ")"};
    }
    if (suffix.empty()) return {std::nullopt, "missing unit (" + std::string(units_hint) + ")"};
    if (auto why = suffix_mistake(suffix, "500ms", "90m"); !why.empty()) return {std::nullopt, why};

    const unit* found = nullptr;
    for (const auto& u : duration_units) {
        if (u.name == suffix) found = &u;
    }
    if (!found) {
        return {std::nullopt,
                "unknown unit '" + std::string(suffix) + "' (use " + std::string(units_hint) + ")"};
    }

    const auto max_ms = static_cast<std::uint64_t>(max_duration.count());
    std::uint64_t n = 0;
    if (!to_u64(digits, n) || n > max_ms / found->factor) {
        return {std::nullopt, "too large (the maximum is " + format_duration(max_duration) + ")"};
    }
    return {duration(static_cast<duration::rep>(n * found->factor)), {}};
}

parse_result<std::uint64_t> parse_size(std::string_view text) {
    constexpr std::string_view units_hint = "KiB, MiB or GiB, or no unit for bytes";
    if (text.empty()) return {std::nullopt, "empty value"};
    auto [digits, suffix] = split(text);
    if (digits.empty()) {
        return {std::nullopt, "expected a number of bytes, optionally followed by KiB, MiB or GiB"};
    }
    if (auto why = suffix_mistake(suffix, "1536KiB", "1536KiB"); !why.empty())
        return {std::nullopt, why};

    std::uint64_t factor = 1;
    if (!suffix.empty()) {
        const unit* found = nullptr;
        for (const auto& u : size_units) {
            if (u.name == suffix) found = &u;
        }
        if (!found) {
            std::string why =
                "unknown unit '" + std::string(suffix) + "' (use " + std::string(units_hint) + ")";
            // The common mistake, answered with the unit that was most likely meant.
            if (suffix == "KB" || suffix == "MB" || suffix == "GB" || suffix == "kB" ||
                suffix == "K" || suffix == "M" || suffix == "G") {
                why = "unknown unit '" + std::string(suffix) + "' (sizes are binary: use " +
                      std::string(1, suffix[0] == 'k' ? 'K' : suffix[0]) + "iB)";
            }
            return {std::nullopt, why};
        }
        factor = found->factor;
    }

    std::uint64_t n = 0;
    if (!to_u64(digits, n) || n > std::numeric_limits<std::uint64_t>::max() / factor) {
        return {std::nullopt, "too large"};
    }
    return {n * factor, {}};
}

std::string format_duration(duration d) {
    const auto ms = d.count();
    if (ms <= 0) return ms == 0 ? "0s" : std::to_string(ms) + "ms";
    for (const auto& u : duration_units) {
        if (static_cast<std::uint64_t>(ms) % u.factor == 0) {
            return std::to_string(static_cast<std::uint64_t>(ms) / u.factor) + std::string(u.name);
        }
    }
    return std::to_string(ms) + "ms";  // unreachable: the last unit divides everything
}

std::string format_size(std::uint64_t bytes) {
    if (bytes != 0) {
        for (const auto& u : size_units) {
            if (bytes % u.factor == 0)
                return std::to_string(bytes / u.factor) + std::string(u.name);
        }
    }
    return std::to_string(bytes);
}

}  // namespace mailgate::config
