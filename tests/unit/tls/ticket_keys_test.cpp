// Session ticket keys: rotation with the previous key still decrypting, shared key files.
#include "tls/ticket_keys.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstring>

#include "test_pki.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using clock = ticket_keys::clock;

struct crypto_ctx {
    EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
    EVP_MAC* mac_alg = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* mac = EVP_MAC_CTX_new(mac_alg);
    ~crypto_ctx() {
        EVP_CIPHER_CTX_free(cipher);
        EVP_MAC_CTX_free(mac);
        EVP_MAC_free(mac_alg);
    }
};

// What OpenSSL does with the contexts the callback prepared: encrypt and MAC a ticket.
struct sealed {
    unsigned char name[16];
    unsigned char iv[EVP_MAX_IV_LENGTH];
    std::vector<unsigned char> ciphertext;
    std::vector<unsigned char> tag;
};

sealed seal(ticket_keys& keys, const std::string& plaintext, clock::time_point now) {
    sealed s;
    crypto_ctx c;
    EXPECT_EQ(keys.encrypt(s.name, s.iv, c.cipher, c.mac, now), 1);
    s.ciphertext.resize(plaintext.size() + 32);
    int len = 0, fin = 0;
    EVP_EncryptUpdate(c.cipher, s.ciphertext.data(), &len,
                      reinterpret_cast<const unsigned char*>(plaintext.data()),
                      static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(c.cipher, s.ciphertext.data() + len, &fin);
    s.ciphertext.resize(static_cast<std::size_t>(len + fin));
    EVP_MAC_init(c.mac, nullptr, 0, nullptr);
    EVP_MAC_update(c.mac, s.ciphertext.data(), s.ciphertext.size());
    s.tag.resize(64);
    size_t tag_len = 0;
    EVP_MAC_final(c.mac, s.tag.data(), &tag_len, s.tag.size());
    s.tag.resize(tag_len);
    return s;
}

// 1/2 and the plaintext when the ticket opens, 0 when its key is gone.
std::pair<int, std::string> open(ticket_keys& keys, const sealed& s, clock::time_point now) {
    crypto_ctx c;
    const int rc = keys.decrypt(s.name, s.iv, c.cipher, c.mac, now);
    if (rc <= 0) return {rc, ""};
    EVP_MAC_init(c.mac, nullptr, 0, nullptr);
    EVP_MAC_update(c.mac, s.ciphertext.data(), s.ciphertext.size());
    std::vector<unsigned char> tag(64);
    size_t tag_len = 0;
    EVP_MAC_final(c.mac, tag.data(), &tag_len, tag.size());
    tag.resize(tag_len);
    if (tag != s.tag) return {-1, "bad mac"};
    std::vector<unsigned char> out(s.ciphertext.size() + 32);
    int len = 0, fin = 0;
    EVP_DecryptUpdate(c.cipher, out.data(), &len, s.ciphertext.data(),
                      static_cast<int>(s.ciphertext.size()));
    if (EVP_DecryptFinal_ex(c.cipher, out.data() + len, &fin) != 1) return {-1, "bad padding"};
    return {rc, std::string(out.begin(), out.begin() + len + fin)};
}

TEST(TicketKeys, RotationKeepsThePreviousKeyForDecryption) {
    const auto t0 = clock::now();
    auto keys = ticket_keys::rotating(12h, t0);
    ASSERT_TRUE(keys->rotates());
    const auto first = keys->current_name(t0);
    EXPECT_FALSE(keys->previous_name(t0));
    const sealed ticket = seal(*keys, "session state", t0 + 1h);
    EXPECT_EQ(open(*keys, ticket, t0 + 2h), std::pair(1, std::string("session state")));
    EXPECT_EQ(keys->current_name(t0 + 11h), first);

    // After one rotation: a new key encrypts, the old one still decrypts (and asks for renewal).
    const auto t1 = t0 + 12h;
    EXPECT_NE(keys->current_name(t1), first);
    EXPECT_EQ(keys->previous_name(t1), first);
    EXPECT_EQ(open(*keys, ticket, t1 + 1h), std::pair(2, std::string("session state")));
    const sealed newer = seal(*keys, "newer", t1 + 1h);
    EXPECT_NE(std::memcmp(newer.name, ticket.name, 16), 0);

    // After the next rotation the first key is gone: a full handshake.
    const auto t2 = t1 + 12h + 1h;
    EXPECT_EQ(open(*keys, ticket, t2).first, 0);
    EXPECT_EQ(open(*keys, newer, t2), std::pair(2, std::string("newer")));
}

TEST(TicketKeys, AnIdleListenerRotatesOnceWhenNextUsed) {
    const auto t0 = clock::now();
    auto keys = ticket_keys::rotating(1h, t0);
    const auto first = keys->current_name(t0);
    const auto later = t0 + 100h;
    EXPECT_NE(keys->current_name(later), first);
    EXPECT_EQ(keys->previous_name(later), first);
}

TEST(TicketKeys, UnknownNameMeansFullHandshake) {
    auto keys = ticket_keys::rotating(12h);
    sealed s = seal(*keys, "x", clock::now());
    s.name[0] ^= 0xff;
    EXPECT_EQ(open(*keys, s, clock::now()).first, 0);
}

TEST(TicketKeys, KeyFilesOf48And80Bytes) {
    temp_dir dir;
    std::string error;
    for (std::size_t size : {48u, 80u}) {
        std::string bytes(size, '\0');
        for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7 + 1);
        auto keys = ticket_keys::from_file(dir.write("t" + std::to_string(size), bytes), error);
        ASSERT_TRUE(keys) << error;
        EXPECT_FALSE(keys->rotates());
        const auto name = keys->current_name(clock::now());
        EXPECT_EQ(std::string(name.begin(), name.end()), bytes.substr(0, 16));
        // Never rotates: a ticket from "a year ago" still opens.
        const sealed s = seal(*keys, "fleet", clock::now());
        EXPECT_EQ(open(*keys, s, clock::now() + 24h * 365), std::pair(1, std::string("fleet")));
        // Two instances with the same file open each other's tickets.
        auto other =
            ticket_keys::from_file((dir.path() / ("t" + std::to_string(size))).string(), error);
        EXPECT_EQ(open(*other, s, clock::now()), std::pair(1, std::string("fleet")));
    }
}

TEST(TicketKeys, KeyFileProblems) {
    temp_dir dir;
    std::string error;
    const auto short_file = dir.write("short", std::string(47, 'k'));
    EXPECT_FALSE(ticket_keys::from_file(short_file, error));
    EXPECT_EQ(error, "session ticket key file '" + short_file +
                         "' must be 48 or 80 bytes, not 47 (make one with: openssl rand 80 > "
                         "FILE)");
    const auto long_file = dir.write("long", std::string(81, 'k'));
    EXPECT_FALSE(ticket_keys::from_file(long_file, error));
    EXPECT_NE(error.find("larger than 80 bytes"), std::string::npos) << error;
    const auto open_file = dir.write("open", std::string(80, 'k'), 0644);
    EXPECT_FALSE(ticket_keys::from_file(open_file, error));
    EXPECT_EQ(error, "session ticket key file '" + open_file +
                         "' is readable by group or others (mode 0644); fix: chmod 600 '" +
                         open_file + "'");
}

TEST(TicketKeys, ReloadKeepsTheListenersRing) {
    auto a = ticket_keys::rotating_for("ticket-test-listener", 12h);
    auto b = ticket_keys::rotating_for("ticket-test-listener", 12h);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, ticket_keys::rotating_for("ticket-test-other", 12h));
    EXPECT_NE(a, ticket_keys::rotating_for("ticket-test-listener", 6h));
    const auto name = a->current_name(clock::now());
    a.reset();
    b.reset();
    // Once no snapshot holds it, a new ring is made.
    EXPECT_NE(ticket_keys::rotating_for("ticket-test-listener", 12h)->current_name(clock::now()),
              name);
}

}  // namespace
}  // namespace mailgate::tls
