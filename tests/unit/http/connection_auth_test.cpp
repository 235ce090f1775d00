// Which requests and responses make an upstream connection belong to one client (R18).
#include "http/connection_auth.hpp"

#include <gtest/gtest.h>

#include <boost/beast/core/detail/base64.hpp>

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

namespace {

// An NTLM type 3 message with the given domain and user (UTF-16LE), other fields empty.
std::string type3(std::u16string domain, std::u16string user, bool unicode = true) {
    std::string m("NTLMSSP\0", 8);
    auto le = [&](std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) m.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    le(3, 4);
    const auto enc = [&](const std::u16string& s) {
        std::string out;
        for (char16_t c : s) {
            out.push_back(static_cast<char>(c & 0xff));
            if (unicode) out.push_back(static_cast<char>(c >> 8));
        }
        return out;
    };
    const std::string d = enc(domain), u = enc(user);
    const std::uint32_t base = 64;
    le(0, 8);  // LM response (empty)
    le(0, 8);  // NT response (empty)
    le(static_cast<std::uint32_t>(d.size()) | static_cast<std::uint32_t>(d.size()) << 16, 4);
    le(base, 4);  // domain
    le(static_cast<std::uint32_t>(u.size()) | static_cast<std::uint32_t>(u.size()) << 16, 4);
    le(base + static_cast<std::uint32_t>(d.size()), 4);  // user
    le(0, 8);                                            // workstation
    le(0, 8);                                            // session key
    le(unicode ? 1 : 2, 4);                              // flags
    m += d + u;
    std::string b64(boost::beast::detail::base64::encoded_size(m.size()), '\0');
    b64.resize(boost::beast::detail::base64::encode(b64.data(), m.data(), m.size()));
    return "NTLM " + b64;
}

}  // namespace

TEST(ConnectionAuth, NtlmAuthenticateUser) {
    EXPECT_EQ(ntlm_authenticate_user(type3(u"CONTOSO", u"alice")), "CONTOSO\\alice");
    EXPECT_EQ(ntlm_authenticate_user(type3(u"", u"bob@contoso.com")), "bob@contoso.com");
    EXPECT_EQ(ntlm_authenticate_user(type3(u"D", u"carol", false)), "D\\carol");
    EXPECT_EQ(ntlm_message_type(type3(u"D", u"x")), 3);
    EXPECT_EQ(ntlm_message_type("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="),
              1);
    EXPECT_EQ(
        ntlm_authenticate_user("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="),
        std::nullopt);
    EXPECT_EQ(ntlm_authenticate_user("Basic dTpw"), std::nullopt);
    EXPECT_EQ(ntlm_authenticate_user("NTLM !!!"), std::nullopt);
    EXPECT_EQ(ntlm_message_type("Negotiate YIIGhgYGKwYBBQUCoIIGejCC"), 0);  // Kerberos SPNEGO
    // A user field pointing past the end is refused, not read.
    auto bad = type3(u"D", u"x");
    EXPECT_EQ(ntlm_authenticate_user(bad.substr(0, bad.size() - 8)), std::nullopt);
}
