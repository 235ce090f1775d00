// OCSP responses are checked against their certificate before they are stapled.
#include "tls/ocsp.hpp"

#include <gtest/gtest.h>

#include "test_pki.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;

struct ocsp_pki {
    issued ca = make_ca("OCSP Test CA");
    issued leaf = make_cert({}, &ca);
    issued other_leaf =
        make_cert(cert_spec().named("other.example.com", "DNS:other.example.com"), &ca);
    issued stranger_ca = make_ca("Stranger CA");

    std::optional<ocsp_staple> check(const std::vector<unsigned char>& der, std::string& error) {
        return check_ocsp_response(der, leaf.cert.get(), ca.cert.get(), std::time(nullptr), error);
    }
    std::vector<unsigned char> response(const ocsp_spec& spec = ocsp_spec()) {
        return make_ocsp(spec, leaf.cert.get(), ca.cert.get(), ca);
    }
};

ocsp_pki& pki() {
    static ocsp_pki p;
    return p;
}

TEST(Ocsp, GoodResponseFromTheIssuer) {
    std::string error;
    const auto der = pki().response();
    auto staple = pki().check(der, error);
    ASSERT_TRUE(staple) << error;
    EXPECT_EQ(staple->der, der);
    EXPECT_NEAR(static_cast<double>(staple->next_update),
                static_cast<double>(std::time(nullptr) + 86400), 5.0);
}

TEST(Ocsp, Sha256CertIdsAreFoundToo) {
    std::string error;
    EXPECT_TRUE(pki().check(pki().response(ocsp_spec().id_digest(EVP_sha256())), error)) << error;
}

TEST(Ocsp, ResponseForAnotherCertificateIsRefused) {
    std::string error;
    const auto der = make_ocsp({}, pki().other_leaf.cert.get(), pki().ca.cert.get(), pki().ca);
    EXPECT_FALSE(pki().check(der, error));
    EXPECT_EQ(error, "it is not a response for certificate 'CN=mail.example.com'");
}

TEST(Ocsp, RevokedAndUnknownAreRefused) {
    std::string error;
    EXPECT_FALSE(
        pki().check(pki().response(ocsp_spec().with_status(V_OCSP_CERTSTATUS_REVOKED)), error));
    EXPECT_TRUE(error.starts_with("it says certificate 'CN=mail.example.com' is revoked (since "))
        << error;
    EXPECT_FALSE(
        pki().check(pki().response(ocsp_spec().with_status(V_OCSP_CERTSTATUS_UNKNOWN)), error));
    EXPECT_EQ(error, "its status for certificate 'CN=mail.example.com' is 'unknown'");
}

TEST(Ocsp, ExpiredOrFutureResponsesAreRefused) {
    std::string error;
    EXPECT_FALSE(pki().check(pki().response(ocsp_spec().times(-7200, -3600)), error));
    EXPECT_TRUE(error.starts_with("it expired on ")) << error;
    EXPECT_FALSE(pki().check(pki().response(ocsp_spec().times(7200, 86400)), error));
    EXPECT_TRUE(error.starts_with("it is not valid before ")) << error;
}

TEST(Ocsp, UnsuccessfulOrForeignOrGarbageResponsesAreRefused) {
    std::string error;
    EXPECT_FALSE(pki().check(
        pki().response(ocsp_spec().answered(OCSP_RESPONSE_STATUS_UNAUTHORIZED)), error));
    EXPECT_EQ(error, "the responder answered 'unauthorized'");
    const auto forged =
        make_ocsp({}, pki().leaf.cert.get(), pki().ca.cert.get(), pki().stranger_ca);
    EXPECT_FALSE(pki().check(forged, error));
    EXPECT_EQ(error,
              "its signature does not verify against the issuer of certificate "
              "'CN=mail.example.com'");
    EXPECT_FALSE(pki().check({0x30, 0x03, 0x0a, 0x01, 0x00, 0xff}, error));
    EXPECT_EQ(error, "not a DER OCSP response");
}

TEST(Ocsp, LoadsFromAFile) {
    temp_dir dir;
    std::string error;
    const auto path = dir.write("staple.der", pki().response(), 0644);
    EXPECT_TRUE(load_ocsp_response(path, pki().leaf.cert.get(), pki().ca.cert.get(),
                                   std::time(nullptr), error))
        << error;
    EXPECT_FALSE(load_ocsp_response((dir.path() / "none.der").string(), pki().leaf.cert.get(),
                                    pki().ca.cert.get(), std::time(nullptr), error));
    EXPECT_EQ(error, "cannot open it");
}

}  // namespace
}  // namespace mailgate::tls
