#pragma once
// Long-term secrets on disk: private keys, their passphrases, session ticket keys.
// A secret file must be closed to group and others and owned by root or by the user
// mailgate runs as; its bytes live in buffers that are cleansed when they go away, and
// no message ever quotes them.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace mailgate::tls {

// Why the secret file at `path` is not protected well enough, naming the file and the
// command that fixes it; empty when it is fine. `noun` names it ("key file").
std::string secret_file_problem(const std::string& path, std::string_view noun);

// Bytes that are wiped (OPENSSL_cleanse) when the buffer is destroyed.
class secret_bytes {
public:
    secret_bytes() = default;
    secret_bytes(const secret_bytes&) = delete;
    secret_bytes& operator=(const secret_bytes&) = delete;
    secret_bytes(secret_bytes&& other) noexcept;
    secret_bytes& operator=(secret_bytes&& other) noexcept;
    ~secret_bytes();

    void assign(const unsigned char* data, std::size_t size);
    void clear();
    void resize(std::size_t size);  // cleanses what it drops
    unsigned char* data() { return bytes_.data(); }
    const unsigned char* data() const { return bytes_.data(); }
    std::size_t size() const { return bytes_.size(); }
    bool empty() const { return bytes_.empty(); }

private:
    std::vector<unsigned char> bytes_;
};

// Reads a secret file after checking its protection. At most `max_size` bytes; nullopt
// with `error` set (naming the file, never its content) otherwise.
std::optional<secret_bytes> read_secret_file(const std::string& path, std::string_view noun,
                                             std::size_t max_size, std::string& error);

struct loaded_key {
    pkey_ptr key;
    std::string error;              // why it could not be loaded (protection, format, passphrase)
    bool passphrase_error = false;  // the error is about the passphrase file
    std::string warning;            // e.g. a passphrase given for a key that is not encrypted
};

// Loads a PEM private key, encrypted or not. The passphrase (first line of its file) and
// the key's bytes are cleansed before returning. Never prompts on a terminal.
loaded_key load_private_key(const std::string& key_path,
                            const std::optional<std::string>& passphrase_path);

}  // namespace mailgate::tls
