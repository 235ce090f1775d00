#include "http/form_login.hpp"

#include <gtest/gtest.h>

namespace mailgate::http {
namespace {

TEST(FormLogin, OnlyPostsToAuthOwa) {
    EXPECT_TRUE(is_forms_login("POST", "/owa/auth.owa"));
    EXPECT_TRUE(is_forms_login("POST", "/OWA/Auth.OWA"));
    EXPECT_FALSE(is_forms_login("GET", "/owa/auth.owa"));
    EXPECT_FALSE(is_forms_login("POST", "/owa/auth.owa/x"));
    EXPECT_FALSE(is_forms_login("POST", "/owa/"));
}

TEST(FormLogin, FieldsAreDecoded) {
    const std::string_view form =
        "destination=https%3A%2F%2Fmail%2Fowa%2F&flags=4&username=CONTOSO%5Cj+doe"
        "&password=p%26ss&username=second";
    EXPECT_EQ(form_field(form, "username"), "CONTOSO\\j doe");  // the first one
    EXPECT_EQ(form_field(form, "password"), "p&ss");
    EXPECT_EQ(form_field(form, "flags"), "4");
    EXPECT_EQ(form_field(form, "user"), std::nullopt);  // names match whole
    EXPECT_EQ(form_field("username=", "username"), "");
    EXPECT_EQ(form_field("username=a%4", "username"), std::nullopt);  // cut escape
    EXPECT_EQ(form_field("username=a%zz", "username"), std::nullopt);
    EXPECT_EQ(form_field("", "username"), std::nullopt);
}

TEST(FormLogin, FailureIsARedirectToTheLogonPage) {
    EXPECT_TRUE(is_failed_forms_login(302, "/owa/auth/logon.aspx?url=x&reason=2"));
    EXPECT_TRUE(
        is_failed_forms_login(302, "https://mail.contoso.com/OWA/auth/Logon.aspx?reason=2"));
    EXPECT_FALSE(is_failed_forms_login(302, "/owa/"));
    EXPECT_FALSE(is_failed_forms_login(200, "/owa/auth/logon.aspx"));
}

}  // namespace
}  // namespace mailgate::http
