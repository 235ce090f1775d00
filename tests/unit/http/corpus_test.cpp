// Every corpus case through the scanner and parse_request_head, whole and split.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "corpus.hpp"
#include "http/head_scanner.hpp"
#include "http/request_head.hpp"

namespace mailgate::http {
namespace {

using test::corpus_case;

constexpr std::uint64_t request_body_limit = 150ull * 1024 * 1024;

struct corpus_load {
    std::vector<corpus_case> cases;
    std::string error;
};

// Loaded once at static-init time for INSTANTIATE_TEST_SUITE_P; a broken file is reported
// by CorpusFiles.Load instead of aborting the whole binary.
const corpus_load& corpus() {
    static const corpus_load loaded = [] {
        corpus_load l;
        try {
            l.cases = test::load_corpus(std::string(MAILGATE_CORPUS_DIR) + "/http");
        } catch (const std::exception& e) {
            l.error = e.what();
        }
        return l;
    }();
    return loaded;
}

// What the client would see: a status for a refusal, "pass" for a forwarded head.
std::string outcome_of(const std::string& bytes, const head_limits& limits) {
    head_scanner scanner(limits);
    const scan_result scanned = scanner.scan(bytes);
    if (scanned.status == scan_status::reject) return std::to_string(scanned.http_status);
    if (scanned.status == scan_status::incomplete) return "incomplete";

    request_parser parser;
    request_info info;
    std::string normalized;
    const head_outcome parsed = parse_request_head(
        std::string_view(bytes).substr(0, scanned.head_size), limits, parser, info, normalized);
    if (!parsed) return std::to_string(parsed.http_status);

    // The session frames the body with what the validator decided; Beast must agree, or
    // the bytes it decodes would not be the bytes we think we forward.
    if (info.framing == body_framing::chunked && !parser.chunked()) return "framing mismatch";
    if (info.framing == body_framing::content_length &&
        parser.content_length() != info.content_length) {
        return "framing mismatch";
    }
    if (info.framing == body_framing::none && parser.content_length() &&
        *parser.content_length() != 0) {
        return "framing mismatch";
    }
    if (normalized.empty()) return "empty normalized path";
    if (info.framing == body_framing::content_length && info.content_length > request_body_limit) {
        return "413";
    }
    return "pass";
}

bool same(const scan_result& a, const scan_result& b) {
    return a.status == b.status && a.head_size == b.head_size && a.http_status == b.http_status &&
           a.reason == b.reason;
}

std::string describe(const scan_result& r) {
    switch (r.status) {
        case scan_status::incomplete:
            return "incomplete";
        case scan_status::complete:
            return "complete(" + std::to_string(r.head_size) + ")";
        case scan_status::reject:
            return "reject(" + std::to_string(r.http_status) + ", " + std::string(r.reason) + ")";
    }
    return "?";
}

TEST(CorpusFiles, Load) {
    ASSERT_EQ(corpus().error, "");
    EXPECT_GE(corpus().cases.size(), 40u);
    const std::set<std::string> known = {"pass", "400", "413", "414", "417", "431"};
    std::set<std::string> seen;
    for (const corpus_case& c : corpus().cases) {
        EXPECT_TRUE(known.count(c.expect)) << c.name << ": expect " << c.expect;
        EXPECT_FALSE(c.bytes.empty()) << c.name;
        seen.insert(c.expect);
    }
    EXPECT_EQ(seen, known) << "every outcome should have at least one case";
}

TEST(CorpusFiles, LoaderUnescapes) {
    std::string out;
    test::corpus_unescape_line(R"(a\r\n\t\0\\\x41\xfF{{repeat:z:3}}{{repeat:::2}}b)", out);
    EXPECT_EQ(out, std::string("a\r\n\t\0\\A\xff"
                               "zzz::b",
                               14));
}

class CorpusTest : public ::testing::TestWithParam<corpus_case> {};

TEST_P(CorpusTest, Whole) {
    const corpus_case& c = GetParam();
    EXPECT_EQ(outcome_of(c.bytes, head_limits{}), c.expect);
}

// The scanner is fed the growing buffer one byte at a time: every prefix is a possible
// read boundary. It may say "incomplete" until the decisive byte, and from then on must
// give exactly the answer it gives for the whole input.
TEST_P(CorpusTest, EveryPrefixAnswersLikeWhole) {
    const corpus_case& c = GetParam();
    const head_limits limits;
    const scan_result whole = head_scanner(limits).scan(c.bytes);
    ASSERT_NE(whole.status, scan_status::incomplete) << c.name;

    head_scanner scanner(limits);
    bool decided = false;
    for (std::size_t k = 0; k <= c.bytes.size(); ++k) {
        const scan_result r = scanner.scan(std::string_view(c.bytes).substr(0, k));
        if (r.status == scan_status::incomplete) {
            ASSERT_FALSE(decided) << c.name << ": went back to incomplete at " << k;
            continue;
        }
        ASSERT_TRUE(same(r, whole)) << c.name << " at prefix " << k << ": " << describe(r)
                                    << " vs whole " << describe(whole);
        if (r.status == scan_status::complete && !decided) {
            // Complete means the last byte of the head just arrived, not earlier, not later.
            ASSERT_EQ(k, r.head_size) << c.name;
        }
        decided = true;
    }
    EXPECT_TRUE(decided) << c.name;
}

// Two reads split at each boundary (at every one for small cases; large cases sample
// the middle to keep the quadratic cost down).
TEST_P(CorpusTest, EveryTwoWaySplitAnswersLikeWhole) {
    const corpus_case& c = GetParam();
    const head_limits limits;
    const scan_result whole = head_scanner(limits).scan(c.bytes);
    const std::size_t n = c.bytes.size();
    for (std::size_t k = 0; k <= n; ++k) {
        if (n > 4096 && k > 512 && k + 512 < n && k % 97 != 0) continue;
        head_scanner scanner(limits);
        const scan_result first = scanner.scan(std::string_view(c.bytes).substr(0, k));
        ASSERT_TRUE(first.status == scan_status::incomplete || same(first, whole))
            << c.name << " first part " << k << ": " << describe(first);
        const scan_result second = scanner.scan(c.bytes);
        ASSERT_TRUE(same(second, whole))
            << c.name << " split at " << k << ": " << describe(second) << " vs " << describe(whole);
    }
}

// A corpus that fails to load is reported by CorpusFiles.Load.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CorpusTest);

INSTANTIATE_TEST_SUITE_P(Http, CorpusTest, ::testing::ValuesIn(corpus().cases),
                         [](const ::testing::TestParamInfo<corpus_case>& p) {
                             return p.param.name;
                         });

}  // namespace
}  // namespace mailgate::http
