#pragma once
// OCSP stapling from a file: a DER OCSP response (as `openssl ocsp -respout` writes it, or
// as fetched by a cron job), checked against its certificate when the configuration is
// compiled, stapled while it is current, reloaded with the configuration.
#include <openssl/ssl.h>

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace mailgate::tls {

struct ocsp_staple {
    std::vector<unsigned char> der;
    std::time_t next_update = 0;  // 0: the response names no next update
};

// The response in `der` checked against `leaf` and its `issuer`: a successful response,
// signed by the issuer or a responder it delegated to, with a "good" status for exactly
// this certificate, current at `now`. nullopt with `error` set otherwise.
std::optional<ocsp_staple> check_ocsp_response(std::vector<unsigned char> der, X509* leaf,
                                               X509* issuer, std::time_t now, std::string& error);

// Reads the file and checks it as above.
std::optional<ocsp_staple> load_ocsp_response(const std::string& path, X509* leaf, X509* issuer,
                                              std::time_t now, std::string& error);

}  // namespace mailgate::tls
