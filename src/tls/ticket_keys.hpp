#pragma once
// Session ticket keys of a listener (RFC 5077 tickets in TLS 1.2, stateless PSKs in 1.3).
// Either made in memory and rotated (a new key encrypts from then on; the previous one
// still decrypts, so a ticket lives through one rotation), or read from a shared key file
// for a fleet of instances behind a load balancer (48 bytes: name, AES-128 key, HMAC key;
// 80 bytes: name, HMAC key, AES-256 key, as nginx's ssl_session_ticket_key).
//
// Every worker shares the SSL_CTX and so this object. The handshake path reads the key
// ring through an atomic shared_ptr; rotation is due at most every `rotate` and happens
// in the first handshake after it is due (under a mutex that only rotation takes), so no
// timer is needed and an idle listener does no work.
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tls/key_files.hpp"

namespace mailgate::tls {

class ticket_keys {
public:
    using clock = std::chrono::steady_clock;

    struct key {
        std::array<unsigned char, 16> name{};
        std::array<unsigned char, 32> hmac{};
        std::array<unsigned char, 32> aes{};
        std::size_t hmac_len = 32;
        std::size_t aes_len = 32;  // 16: AES-128-CBC, 32: AES-256-CBC
        ~key();
        key() = default;
        key(const key&) = default;
        key& operator=(const key&) = default;
    };

    // Keys made from the random generator, replaced every `rotate`.
    static std::shared_ptr<ticket_keys> rotating(std::chrono::milliseconds rotate,
                                                 clock::time_point now = clock::now());
    // The key of a 48- or 80-byte file (permissions checked); nullptr with `error` set.
    static std::shared_ptr<ticket_keys> from_file(const std::string& path, std::string& error);
    // The same rotating ring for the same listener across reloads, so that a reload does not
    // cost every client its resumption. Keyed by listener name and rotation period.
    static std::shared_ptr<ticket_keys> rotating_for(const std::string& listener,
                                                     std::chrono::milliseconds rotate);

    // Installs the ticket callback on `ctx` (each SSL_CTX of the listener).
    void install(SSL_CTX* ctx);

    // The callback's two halves, testable without a handshake. encrypt: fills name and iv,
    // initialises both contexts with the current key; 1, or -1 on failure. decrypt: 1 for
    // the current key, 2 for the previous one (renew the ticket), 0 for an unknown name.
    int encrypt(unsigned char name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                clock::time_point now);
    int decrypt(const unsigned char name[16], const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, clock::time_point now);

    // Names of the current and previous keys (for tests; never logged).
    std::array<unsigned char, 16> current_name(clock::time_point now);
    std::optional<std::array<unsigned char, 16>> previous_name(clock::time_point now);

    bool rotates() const { return rotate_.count() > 0; }

private:
    struct ring {
        key current;
        std::optional<key> previous;
        clock::time_point next_rotation;
    };

    ticket_keys() = default;
    std::shared_ptr<const ring> keys_at(clock::time_point now);

    std::chrono::milliseconds rotate_{0};  // 0: a fixed key from a file
    std::atomic<std::shared_ptr<const ring>> ring_;
    std::mutex rotation_;
};

}  // namespace mailgate::tls
