#include "config/diagnostics.hpp"

#include <gtest/gtest.h>

namespace mailgate::config {
namespace {

TEST(Diagnostics, ToStringNamesFileLineAndColumn) {
    diagnostic d{severity::error, "mailgate.yaml", {12, 5}, "unknown key 'x'"};
    EXPECT_EQ(d.to_string(), "mailgate.yaml:12:5: error: unknown key 'x'");
    d.level = severity::warning;
    EXPECT_EQ(d.to_string(), "mailgate.yaml:12:5: warning: unknown key 'x'");
}

TEST(Diagnostics, CollectsInOrderWithTheirFile) {
    diagnostics diags("/etc/mailgate/mailgate.yaml");
    EXPECT_FALSE(diags.has_errors());
    diags.warning({3, 1}, "first");
    EXPECT_FALSE(diags.has_errors());
    diags.error({1, 2}, "second");
    EXPECT_TRUE(diags.has_errors());

    ASSERT_EQ(diags.items().size(), 2u);
    EXPECT_EQ(diags.items()[0].to_string(), "/etc/mailgate/mailgate.yaml:3:1: warning: first");
    EXPECT_EQ(diags.items()[1].to_string(), "/etc/mailgate/mailgate.yaml:1:2: error: second");
    EXPECT_EQ(diags.file(), "/etc/mailgate/mailgate.yaml");
}

TEST(Diagnostics, UnknownPositionIsZero) {
    diagnostics diags("missing.yaml");
    diags.error({}, "cannot read configuration file: missing.yaml: No such file or directory");
    EXPECT_EQ(diags.items()[0].to_string(),
              "missing.yaml:0:0: error: cannot read configuration file: missing.yaml: No such "
              "file or directory");
}

}  // namespace
}  // namespace mailgate::config
