#include "config/units.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace mailgate::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct good_duration {
    std::string text;
    duration expected;
};

class DurationGood : public ::testing::TestWithParam<good_duration> {};

TEST_P(DurationGood, Parses) {
    const auto r = parse_duration(GetParam().text);
    ASSERT_TRUE(r) << r.error;
    EXPECT_EQ(*r.value, GetParam().expected);
    EXPECT_TRUE(r.error.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, DurationGood,
    ::testing::Values(good_duration{"500ms", milliseconds(500)},
                      good_duration{"0ms", milliseconds(0)}, good_duration{"0s", seconds(0)},
                      good_duration{"30s", seconds(30)}, good_duration{"5m", minutes(5)},
                      good_duration{"1h", hours(1)}, good_duration{"2d", hours(48)},
                      good_duration{"2y", hours(24 * 730)}, good_duration{"3660s", seconds(3660)},
                      good_duration{"007s", seconds(7)},
                      good_duration{"100y", hours(24 * 365 * 100)},
                      good_duration{"36500d", hours(24 * 36500)}));

struct bad_value {
    std::string text;
    std::string error;
};

class DurationBad : public ::testing::TestWithParam<bad_value> {};

TEST_P(DurationBad, IsRefusedWithReason) {
    const auto r = parse_duration(GetParam().text);
    EXPECT_FALSE(r);
    EXPECT_FALSE(r.value.has_value());
    EXPECT_EQ(r.error, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DurationBad,
    ::testing::Values(
        bad_value{"", "empty value"}, bad_value{"30", "missing unit (ms, s, m, h, d or y)"},
        bad_value{"0", "missing unit (ms, s, m, h, d or y)"},
        bad_value{"s", "expected a number followed by a unit (ms, s, m, h, d or y)"},
        bad_value{"-5s", "expected a number followed by a unit (ms, s, m, h, d or y)"},
        bad_value{"+5s", "expected a number followed by a unit (ms, s, m, h, d or y)"},
        bad_value{" 5s", "expected a number followed by a unit (ms, s, m, h, d or y)"},
        bad_value{"5 s", "no space is allowed between the number and the unit"},
        bad_value{"5s ", "unknown unit 's ' (use ms, s, m, h, d or y)"},
        bad_value{"1.5s", "fractions are not allowed (use a smaller unit, as in 500ms)"},
        bad_value{"1h30m", "write a single number and unit, as in 90m"},
        bad_value{"10sec", "unknown unit 'sec' (use ms, s, m, h, d or y)"},
        bad_value{"5S", "unknown unit 'S' (use ms, s, m, h, d or y)"},
        bad_value{"5us", "unknown unit 'us' (use ms, s, m, h, d or y)"},
        bad_value{"1w", "unknown unit 'w' (use ms, s, m, h, d or y)"},
        bad_value{"101y", "too large (the maximum is 100y)"},
        bad_value{"36501d", "too large (the maximum is 100y)"},
        bad_value{"18446744073709551616ms", "too large (the maximum is 100y)"},
        bad_value{"99999999999999999999s", "too large (the maximum is 100y)"}));

struct good_size {
    std::string text;
    std::uint64_t expected;
};

class SizeGood : public ::testing::TestWithParam<good_size> {};

TEST_P(SizeGood, Parses) {
    const auto r = parse_size(GetParam().text);
    ASSERT_TRUE(r) << r.error;
    EXPECT_EQ(*r.value, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SizeGood,
    ::testing::Values(good_size{"0", 0}, good_size{"512", 512}, good_size{"16KiB", 16 * 1024},
                      good_size{"10MiB", 10ull * 1024 * 1024}, good_size{"1GiB", 1ull << 30},
                      good_size{"150MiB", 150ull << 20}, good_size{"0KiB", 0},
                      good_size{"18446744073709551615", std::numeric_limits<std::uint64_t>::max()},
                      good_size{"17179869183GiB", 17179869183ull << 30}));

class SizeBad : public ::testing::TestWithParam<bad_value> {};

TEST_P(SizeBad, IsRefusedWithReason) {
    const auto r = parse_size(GetParam().text);
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SizeBad,
    ::testing::Values(
        bad_value{"", "empty value"},
        bad_value{"KiB", "expected a number of bytes, optionally followed by KiB, MiB or GiB"},
        bad_value{"-1", "expected a number of bytes, optionally followed by KiB, MiB or GiB"},
        bad_value{"10MB", "unknown unit 'MB' (sizes are binary: use MiB)"},
        bad_value{"16KB", "unknown unit 'KB' (sizes are binary: use KiB)"},
        bad_value{"16kB", "unknown unit 'kB' (sizes are binary: use KiB)"},
        bad_value{"1GB", "unknown unit 'GB' (sizes are binary: use GiB)"},
        bad_value{"1G", "unknown unit 'G' (sizes are binary: use GiB)"},
        bad_value{"512B", "unknown unit 'B' (use KiB, MiB or GiB, or no unit for bytes)"},
        bad_value{"1TiB", "unknown unit 'TiB' (use KiB, MiB or GiB, or no unit for bytes)"},
        bad_value{"16kib", "unknown unit 'kib' (use KiB, MiB or GiB, or no unit for bytes)"},
        bad_value{"16 KiB", "no space is allowed between the number and the unit"},
        bad_value{"1.5MiB", "fractions are not allowed (use a smaller unit, as in 1536KiB)"},
        bad_value{"1MiB512KiB", "write a single number and unit, as in 1536KiB"},
        bad_value{"18446744073709551616", "too large"}, bad_value{"17179869184GiB", "too large"}));

TEST(FormatDuration, PicksTheLargestExactUnit) {
    EXPECT_EQ(format_duration(duration(0)), "0s");
    EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
    EXPECT_EQ(format_duration(seconds(90)), "90s");
    EXPECT_EQ(format_duration(seconds(120)), "2m");
    EXPECT_EQ(format_duration(hours(24)), "1d");
    EXPECT_EQ(format_duration(hours(24 * 730)), "2y");
    EXPECT_EQ(format_duration(max_duration), "100y");
}

TEST(FormatSize, PicksTheLargestExactUnit) {
    EXPECT_EQ(format_size(0), "0");
    EXPECT_EQ(format_size(1000), "1000");
    EXPECT_EQ(format_size(1024), "1KiB");
    EXPECT_EQ(format_size(1536 * 1024), "1536KiB");
    EXPECT_EQ(format_size(1ull << 20), "1MiB");
    EXPECT_EQ(format_size(3ull << 30), "3GiB");
}

TEST(Units, FormatAndParseRoundTrip) {
    const std::initializer_list<duration> durations{
        milliseconds(1), milliseconds(1500), seconds(59), minutes(61), hours(25), hours(24 * 365)};
    for (duration d : durations) EXPECT_EQ(parse_duration(format_duration(d)).value, d);
    for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{1023}, std::uint64_t{4096},
                            std::uint64_t{5} << 20, std::uint64_t{7} << 30}) {
        EXPECT_EQ(parse_size(format_size(n)).value, n);
    }
}

}  // namespace
}  // namespace mailgate::config
