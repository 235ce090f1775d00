#include "tls/ocsp.hpp"

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include <fstream>
#include <iterator>

#include "tls/cert_checks.hpp"

namespace mailgate::tls {

namespace {

constexpr long clock_skew_seconds = 300;
constexpr std::size_t max_response_size = 64 * 1024;

std::time_t to_time_t(const ASN1_GENERALIZEDTIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return ::timegm(&tm);
}

}  // namespace

std::optional<ocsp_staple> check_ocsp_response(std::vector<unsigned char> der, X509* leaf,
                                               X509* issuer, std::time_t now, std::string& error) {
    ERR_clear_error();
    const unsigned char* p = der.data();
    ocsp_response_ptr response(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
    if (!response || p != der.data() + der.size()) {
        error = "not a DER OCSP response";
        ERR_clear_error();
        return std::nullopt;
    }
    const int status = OCSP_response_status(response.get());
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        error = std::string("the responder answered '") + OCSP_response_status_str(status) + "'";
        return std::nullopt;
    }
    ocsp_basic_ptr basic(OCSP_response_get1_basic(response.get()));
    if (!basic) {
        error = "the response holds no basic OCSP response";
        ERR_clear_error();
        return std::nullopt;
    }

    // The response must come from the issuer (or a responder it certified): trusting the
    // issuer alone is enough to tell a response for this certificate from any other.
    x509_store_ptr store(X509_STORE_new());
    STACK_OF(X509)* extra = sk_X509_new_null();
    if (!store || !extra || X509_STORE_add_cert(store.get(), issuer) != 1 ||
        X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN) != 1 ||
        sk_X509_push(extra, issuer) <= 0) {
        sk_X509_free(extra);
        error = "cannot set up the OCSP signature check";
        ERR_clear_error();
        return std::nullopt;
    }
    const int verified = OCSP_basic_verify(basic.get(), extra, store.get(), 0);
    sk_X509_free(extra);
    ERR_clear_error();
    if (verified != 1) {
        error = "its signature does not verify against the issuer of certificate '" +
                subject_of(leaf) + "'";
        return std::nullopt;
    }

    // Find the single response for this certificate, whatever hash its CertID uses.
    OCSP_SINGLERESP* single = nullptr;
    for (int i = 0; i < OCSP_resp_count(basic.get()); ++i) {
        OCSP_SINGLERESP* s = OCSP_resp_get0(basic.get(), i);
        const OCSP_CERTID* cid = OCSP_SINGLERESP_get0_id(s);
        ASN1_OBJECT* md_oid = nullptr;
        if (OCSP_id_get0_info(nullptr, &md_oid, nullptr, nullptr, const_cast<OCSP_CERTID*>(cid)) !=
            1) {
            continue;
        }
        const EVP_MD* md = EVP_get_digestbyobj(md_oid);
        if (md == nullptr) continue;
        ocsp_certid_ptr mine(OCSP_cert_to_id(md, leaf, issuer));
        if (mine && OCSP_id_cmp(mine.get(), cid) == 0) {
            single = s;
            break;
        }
    }
    ERR_clear_error();
    if (single == nullptr) {
        error = "it is not a response for certificate '" + subject_of(leaf) + "'";
        return std::nullopt;
    }
    int reason = 0;
    ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;
    const int cert_status =
        OCSP_single_get0_status(single, &reason, &revoked, &this_update, &next_update);
    if (cert_status == V_OCSP_CERTSTATUS_REVOKED) {
        error = "it says certificate '" + subject_of(leaf) + "' is revoked (since " +
                format_time(revoked) + ")";
        return std::nullopt;
    }
    if (cert_status != V_OCSP_CERTSTATUS_GOOD) {
        error = "its status for certificate '" + subject_of(leaf) + "' is '" +
                OCSP_cert_status_str(cert_status) + "'";
        return std::nullopt;
    }
    std::time_t later = now + clock_skew_seconds;
    std::time_t earlier = now - clock_skew_seconds;
    if (this_update != nullptr && X509_cmp_time(this_update, &later) > 0) {
        error = "it is not valid before " + format_time(this_update);
        return std::nullopt;
    }
    if (next_update != nullptr && X509_cmp_time(next_update, &earlier) < 0) {
        error = "it expired on " + format_time(next_update) + " (fetch a new one)";
        return std::nullopt;
    }
    ocsp_staple out;
    out.next_update = next_update ? to_time_t(next_update) : 0;
    out.der = std::move(der);
    return out;
}

std::optional<ocsp_staple> load_ocsp_response(const std::string& path, X509* leaf, X509* issuer,
                                              std::time_t now, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot open it";
        return std::nullopt;
    }
    std::vector<unsigned char> der;
    der.reserve(4096);
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        der.insert(der.end(), buf, buf + in.gcount());
        if (der.size() > max_response_size) {
            error = "larger than " + std::to_string(max_response_size) + " bytes";
            return std::nullopt;
        }
    }
    return check_ocsp_response(std::move(der), leaf, issuer, now, error);
}

}  // namespace mailgate::tls
