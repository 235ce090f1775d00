// Which requests and responses make an upstream connection belong to one client (R18).
#include "http/connection_auth.hpp"

#include <gtest/gtest.h>

namespace bhttp = boost::beast::http;
using namespace mailgate::http;

TEST(ConnectionAuth, CredentialsByScheme) {
    EXPECT_TRUE(is_connection_bound_credential("NTLM TlRMTVNTUAABAAAAB4IIogAAAAA="));
    EXPECT_TRUE(is_connection_bound_credential("ntlm TlRMTVNT"));
    EXPECT_TRUE(is_connection_bound_credential("Negotiate YIIGhgYGKwYBBQUCoIIGejCC"));
    EXPECT_TRUE(is_connection_bound_credential("  NEGOTIATE x"));
    EXPECT_FALSE(is_connection_bound_credential("Basic dTpw"));
    EXPECT_FALSE(is_connection_bound_credential("Bearer eyJ0eXAi"));
    EXPECT_FALSE(is_connection_bound_credential("NTLMx abc"));
    EXPECT_FALSE(is_connection_bound_credential(""));
}

TEST(ConnectionAuth, RequestCarriesThem) {
    bhttp::fields f;
    f.insert("Authorization", "Basic dTpw");
    EXPECT_FALSE(carries_connection_bound_auth(f));
    bhttp::fields g;
    g.insert("X-Authorization", "NTLM abc");
    EXPECT_FALSE(carries_connection_bound_auth(g));
    g.insert("authorization", "NTLM abc");
    EXPECT_TRUE(carries_connection_bound_auth(g));
}

TEST(ConnectionAuth, ChallengesInAnyFieldOrList) {
    const auto offers = [](std::initializer_list<const char*> values) {
        bhttp::fields f;
        for (const char* v : values) f.insert("WWW-Authenticate", v);
        return offers_connection_bound_auth(f);
    };
    EXPECT_TRUE(offers({"Negotiate"}));
    EXPECT_TRUE(offers({"Basic realm=\"mail\"", "NTLM"}));
    EXPECT_TRUE(offers({"Basic realm=\"mail\", NTLM"}));
    EXPECT_TRUE(offers({"NTLM TlRMTVNTUAACAAAAAAAAAAAAAAA="}));
    EXPECT_FALSE(offers({"Basic realm=\"mail\""}));
    EXPECT_FALSE(offers({"Bearer realm=\"x\", error=\"invalid_token\""}));
    EXPECT_FALSE(offers({"Basic realm=NTLM"}));
    EXPECT_FALSE(offers({"Basic realm=x, ntlm=1"}));  // a parameter named like the scheme
    EXPECT_FALSE(offers({}));
    bhttp::fields other;
    other.insert("Proxy-Authenticate", "NTLM");
    EXPECT_FALSE(offers_connection_bound_auth(other));
}
