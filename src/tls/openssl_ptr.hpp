#pragma once
// unique_ptr aliases for the OpenSSL objects the tls module owns.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

namespace mailgate::tls {

template <auto Free>
struct openssl_deleter {
    template <typename T>
    void operator()(T* p) const {
        Free(p);
    }
};

using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO_free_all>>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_deleter<SSL_CTX_free>>;
using ssl_ptr = std::unique_ptr<SSL, openssl_deleter<SSL_free>>;
using asn1_time_ptr = std::unique_ptr<ASN1_TIME, openssl_deleter<ASN1_TIME_free>>;
using ocsp_response_ptr = std::unique_ptr<OCSP_RESPONSE, openssl_deleter<OCSP_RESPONSE_free>>;
using ocsp_basic_ptr = std::unique_ptr<OCSP_BASICRESP, openssl_deleter<OCSP_BASICRESP_free>>;
using ocsp_certid_ptr = std::unique_ptr<OCSP_CERTID, openssl_deleter<OCSP_CERTID_free>>;
using x509_store_ptr = std::unique_ptr<X509_STORE, openssl_deleter<X509_STORE_free>>;

inline x509_ptr up_ref(X509* x) {
    X509_up_ref(x);
    return x509_ptr(x);
}

inline pkey_ptr up_ref(EVP_PKEY* k) {
    EVP_PKEY_up_ref(k);
    return pkey_ptr(k);
}

}  // namespace mailgate::tls
