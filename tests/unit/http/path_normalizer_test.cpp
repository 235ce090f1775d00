#include "http/path_normalizer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::http {
namespace {

struct path_row {
    std::string raw;
    const char* expected;  // nullptr = refused
};

void PrintTo(const path_row& row, std::ostream* os) { *os << '"' << row.raw << '"'; }

class PathNormalizerTable : public ::testing::TestWithParam<path_row> {};

TEST_P(PathNormalizerTable, Normalizes) {
    const path_row& row = GetParam();
    const normalize_result r = normalize_path(row.raw);
    if (row.expected == nullptr) {
        EXPECT_FALSE(r.ok) << "accepted as " << r.path;
        EXPECT_FALSE(r.reason.empty());
    } else {
        ASSERT_TRUE(r.ok) << r.reason;
        EXPECT_EQ(r.path, row.expected);
    }
}

using namespace std::string_literals;

INSTANTIATE_TEST_SUITE_P(
    Http, PathNormalizerTable,
    ::testing::Values(
        // plain paths, case and slashes
        path_row{"/", "/"}, path_row{"/owa", "/owa"}, path_row{"/owa/", "/owa/"},
        path_row{"/OWA/Auth/Logon.aspx", "/owa/auth/logon.aspx"},
        path_row{"/Microsoft-Server-ActiveSync", "/microsoft-server-activesync"},
        path_row{"//owa", "/owa"}, path_row{"/owa//auth///x", "/owa/auth/x"},
        path_row{"/owa//", "/owa/"}, path_row{"///", "/"},
        // dot segments
        path_row{"/./owa", "/owa"}, path_row{"/owa/.", "/owa/"},
        path_row{"/owa/./auth", "/owa/auth"}, path_row{"/owa/auth/..", "/owa/"},
        path_row{"/owa/auth/../ecp", "/owa/ecp"}, path_row{"/owa/a/b/../../ecp/", "/owa/ecp/"},
        path_row{"/a/..", "/"}, path_row{"/owa/..x/.x/x..", "/owa/..x/.x/x.."},
        path_row{"/..", nullptr}, path_row{"/../owa", nullptr}, path_row{"/owa/../..", nullptr},
        path_row{"/owa/../../ecp", nullptr},
        // percent-encoding: unreserved decoded, others kept with upper-case hex
        path_row{"/%7Euser", "/~user"}, path_row{"/%6Fwa", "/owa"}, path_row{"/%4FWA", "/owa"},
        path_row{"/a%2Db%5fc", "/a-b_c"}, path_row{"/a%3fb", "/a%3Fb"},
        path_row{"/a%3Fb", "/a%3Fb"}, path_row{"/a%20B", "/a%20b"},
        path_row{"/a%c3%a9", "/a%C3%A9"}, path_row{"/a%25", "/a%25"},
        path_row{"/a%2541", "/a%2541"}, path_row{"/a%0a", "/a%0A"},
        // refused encodings
        path_row{"/%2e%2e/ecp", nullptr}, path_row{"/owa/%2E", nullptr},
        path_row{"/owa/.%2e/", nullptr}, path_row{"/owa%2fecp", nullptr},
        path_row{"/owa%2Fecp", nullptr}, path_row{"/owa%5cecp", nullptr},
        path_row{"/owa%5C", nullptr}, path_row{"/owa%00", nullptr}, path_row{"/owa%", nullptr},
        path_row{"/owa%4", nullptr}, path_row{"/owa%g0", nullptr}, path_row{"/owa%%41", nullptr},
        path_row{"/owa\\..\\ecp", nullptr},
        // bytes outside 0x21..0x7e
        path_row{"/a b", nullptr}, path_row{"/a\tb", nullptr}, path_row{"/a\0b"s, nullptr},
        path_row{"/a\x7f", nullptr}, path_row{"/caf\xc3\xa9", nullptr},
        // not absolute
        path_row{"", nullptr}, path_row{"owa", nullptr}, path_row{"*", nullptr},
        path_row{"http://x/", nullptr}));

}  // namespace
}  // namespace mailgate::http
