#include "tls/ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

namespace mailgate::tls {

namespace {

int ex_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

ticket_keys::key random_key() {
    ticket_keys::key k;
    if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
        RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1 ||
        RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1) {
        throw std::runtime_error("the random generator failed to make a session ticket key");
    }
    return k;
}

bool set_mac(EVP_MAC_CTX* mac, const ticket_keys::key& k) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                          const_cast<unsigned char*>(k.hmac.data()), k.hmac_len),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

const EVP_CIPHER* cipher_of(const ticket_keys::key& k) {
    return k.aes_len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
}

int ticket_callback(SSL* s, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                    EVP_MAC_CTX* mac, int enc) {
    auto* keys = static_cast<ticket_keys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ex_index()));
    if (keys == nullptr) return -1;
    const auto now = ticket_keys::clock::now();
    return enc == 1 ? keys->encrypt(key_name, iv, cipher, mac, now)
                    : keys->decrypt(key_name, iv, cipher, mac, now);
}

struct registry_key {
    std::string listener;
    long long rotate_ms;
    auto operator<=>(const registry_key&) const = default;
};

}  // namespace

ticket_keys::key::~key() {
    OPENSSL_cleanse(hmac.data(), hmac.size());
    OPENSSL_cleanse(aes.data(), aes.size());
}

std::shared_ptr<ticket_keys> ticket_keys::rotating(std::chrono::milliseconds rotate,
                                                   clock::time_point now) {
    std::shared_ptr<ticket_keys> out(new ticket_keys());
    out->rotate_ = rotate;
    out->ring_.store(std::make_shared<const ring>(ring{random_key(), std::nullopt, now + rotate}));
    return out;
}

std::shared_ptr<ticket_keys> ticket_keys::from_file(const std::string& path, std::string& error) {
    auto bytes = read_secret_file(path, "session ticket key file", 80, error);
    if (!bytes) return nullptr;
    key k;
    const unsigned char* b = bytes->data();
    if (bytes->size() == 48) {
        k.aes_len = 16;
        k.hmac_len = 16;
        std::memcpy(k.name.data(), b, 16);
        std::memcpy(k.aes.data(), b + 16, 16);
        std::memcpy(k.hmac.data(), b + 32, 16);
    } else if (bytes->size() == 80) {
        std::memcpy(k.name.data(), b, 16);
        std::memcpy(k.hmac.data(), b + 16, 32);
        std::memcpy(k.aes.data(), b + 48, 32);
    } else {
        error = "session ticket key file '" + path + "' must be 48 or 80 bytes, not " +
                std::to_string(bytes->size()) + " (make one with: openssl rand 80 > FILE)";
        return nullptr;
    }
    std::shared_ptr<ticket_keys> out(new ticket_keys());
    out->ring_.store(std::make_shared<const ring>(ring{k, std::nullopt, clock::time_point::max()}));
    return out;
}

std::shared_ptr<ticket_keys> ticket_keys::rotating_for(const std::string& listener,
                                                       std::chrono::milliseconds rotate) {
    static std::mutex mutex;
    static std::map<registry_key, std::weak_ptr<ticket_keys>> registry;
    std::lock_guard lock(mutex);
    auto& slot = registry[{listener, rotate.count()}];
    if (auto existing = slot.lock()) return existing;
    auto made = rotating(rotate);
    slot = made;
    return made;
}

void ticket_keys::install(SSL_CTX* ctx) {
    SSL_CTX_set_ex_data(ctx, ex_index(), this);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback);
}

std::shared_ptr<const ticket_keys::ring> ticket_keys::keys_at(clock::time_point now) {
    auto current = ring_.load(std::memory_order_acquire);
    if (rotate_.count() == 0 || now < current->next_rotation) return current;
    std::lock_guard lock(rotation_);
    current = ring_.load(std::memory_order_acquire);
    if (now < current->next_rotation) return current;  // another worker rotated it
    auto next = std::make_shared<const ring>(ring{random_key(), current->current, now + rotate_});
    ring_.store(next, std::memory_order_release);
    return next;
}

int ticket_keys::encrypt(unsigned char name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                         EVP_MAC_CTX* mac, clock::time_point now) {
    std::shared_ptr<const ring> keys;
    try {
        keys = keys_at(now);
    } catch (const std::exception&) {
        return -1;
    }
    const key& k = keys->current;
    const EVP_CIPHER* c = cipher_of(k);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(c)) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, c, nullptr, k.aes.data(), iv) != 1) return -1;
    if (!set_mac(mac, k)) return -1;
    std::memcpy(name, k.name.data(), k.name.size());
    return 1;
}

int ticket_keys::decrypt(const unsigned char name[16], const unsigned char* iv,
                         EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, clock::time_point now) {
    std::shared_ptr<const ring> keys;
    try {
        keys = keys_at(now);
    } catch (const std::exception&) {
        return -1;
    }
    const key* k = nullptr;
    int result = 0;
    if (std::memcmp(name, keys->current.name.data(), 16) == 0) {
        k = &keys->current;
        result = 1;
    } else if (keys->previous && std::memcmp(name, keys->previous->name.data(), 16) == 0) {
        k = &*keys->previous;
        result = 2;  // valid, but issue a ticket under the current key
    }
    if (k == nullptr) return 0;  // unknown key: a full handshake
    if (!set_mac(mac, *k)) return -1;
    if (EVP_DecryptInit_ex(cipher, cipher_of(*k), nullptr, k->aes.data(), iv) != 1) return -1;
    return result;
}

std::array<unsigned char, 16> ticket_keys::current_name(clock::time_point now) {
    return keys_at(now)->current.name;
}

std::optional<std::array<unsigned char, 16>> ticket_keys::previous_name(clock::time_point now) {
    auto keys = keys_at(now);
    if (!keys->previous) return std::nullopt;
    return keys->previous->name;
}

}  // namespace mailgate::tls
