#include "tls/key_files.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace mailgate::tls {

namespace {

constexpr std::size_t max_key_file = 1024 * 1024;
constexpr std::size_t max_passphrase_file = 4096;

std::string user_name(uid_t uid) {
    if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return "uid " + std::to_string(uid);
}

std::string octal_mode(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

struct fd_closer {
    int fd;
    ~fd_closer() {
        if (fd >= 0) ::close(fd);
    }
};

struct passphrase_request {
    const secret_bytes* passphrase = nullptr;
    bool asked = false;
};

// OpenSSL asks here when the key is encrypted; without a passphrase file it gets none
// (instead of a prompt on the terminal).
int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
    auto* request = static_cast<passphrase_request*>(user);
    request->asked = true;
    if (request->passphrase == nullptr || size <= 0) return -1;
    const std::size_t n = std::min(request->passphrase->size(), static_cast<std::size_t>(size));
    std::memcpy(buf, request->passphrase->data(), n);
    return static_cast<int>(n);
}

// Why a secret file with status `st` is not protected well enough, or empty.
std::string protection_problem(const struct stat& st, const std::string& path,
                               std::string_view noun) {
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        const bool readable = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
        return std::string(noun) + " " + quoted(path) + " is " +
               (readable ? "readable" : "accessible") + " by group or others (mode " +
               octal_mode(st.st_mode) + "); fix: chmod 600 " + quoted(path);
    }
    const uid_t me = ::geteuid();
    if (st.st_uid != 0 && st.st_uid != me) {
        const std::string runner = me == 0 ? "root" : "root or " + user_name(me);
        return std::string(noun) + " " + quoted(path) + " is owned by " + user_name(st.st_uid) +
               ", not by " + runner + ", who runs mailgate; fix: chown " + user_name(me) + " " +
               quoted(path);
    }
    return {};
}

}  // namespace

std::string secret_file_problem(const std::string& path, std::string_view noun) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return "cannot read " + std::string(noun) + " " + quoted(path) + ": " +
               std::error_code(errno, std::generic_category()).message();
    }
    return protection_problem(st, path, noun);
}

secret_bytes::secret_bytes(secret_bytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
}

secret_bytes& secret_bytes::operator=(secret_bytes&& other) noexcept {
    if (this != &other) {
        clear();
        bytes_ = std::move(other.bytes_);
        other.bytes_.clear();
    }
    return *this;
}

secret_bytes::~secret_bytes() { clear(); }

void secret_bytes::assign(const unsigned char* data, std::size_t size) {
    clear();
    bytes_.assign(data, data + size);
}

void secret_bytes::clear() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
    bytes_.shrink_to_fit();
}

void secret_bytes::resize(std::size_t size) {
    if (size < bytes_.size()) {
        OPENSSL_cleanse(bytes_.data() + size, bytes_.size() - size);
        bytes_.resize(size);
        return;
    }
    // Growing may move the bytes; the old block is wiped first.
    std::vector<unsigned char> grown(size);
    if (!bytes_.empty()) std::memcpy(grown.data(), bytes_.data(), bytes_.size());
    clear();
    bytes_ = std::move(grown);
}

std::optional<secret_bytes> read_secret_file(const std::string& path, std::string_view noun,
                                             std::size_t max_size, std::string& error) {
    // Judged on the file that is read (not on the path, which may change in between).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    fd_closer closer{fd};
    auto fail = [&](int err) {
        error = "cannot read " + std::string(noun) + " " + quoted(path) + ": " +
                std::error_code(err, std::generic_category()).message();
        return std::nullopt;
    };
    if (fd < 0) return fail(errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail(errno);
    if (!S_ISREG(st.st_mode)) {
        error = std::string(noun) + " " + quoted(path) + " is not a regular file";
        return std::nullopt;
    }
    if (auto problem = protection_problem(st, path, noun); !problem.empty()) {
        error = std::move(problem);
        return std::nullopt;
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_size) {
        error = std::string(noun) + " " + quoted(path) + " is larger than " +
                std::to_string(max_size) + " bytes";
        return std::nullopt;
    }
    secret_bytes out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

loaded_key load_private_key(const std::string& key_path,
                            const std::optional<std::string>& passphrase_path) {
    loaded_key out;
    secret_bytes passphrase;
    if (passphrase_path) {
        auto bytes =
            read_secret_file(*passphrase_path, "passphrase file", max_passphrase_file, out.error);
        if (!bytes) {
            out.passphrase_error = true;
            return out;
        }
        // The first line is the passphrase, as with `openssl -passin file:`.
        std::size_t len = 0;
        while (len < bytes->size() && bytes->data()[len] != '\n' && bytes->data()[len] != '\r')
            ++len;
        bytes->resize(len);
        if (bytes->empty()) {
            out.error = "passphrase file '" + *passphrase_path + "' is empty";
            out.passphrase_error = true;
            return out;
        }
        passphrase = std::move(*bytes);
    }

    auto bytes = read_secret_file(key_path, "key file", max_key_file, out.error);
    if (!bytes) return out;
    ERR_clear_error();
    bio_ptr bio(BIO_new_mem_buf(bytes->data(), static_cast<int>(bytes->size())));
    passphrase_request request{passphrase_path ? &passphrase : nullptr, false};
    if (bio) {
        out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback, &request));
    }
    bio.reset();
    ERR_clear_error();  // OpenSSL's text may quote what it failed to parse
    if (!out.key) {
        if (request.asked && !passphrase_path) {
            out.error = "private key '" + key_path +
                        "' is encrypted: give its passphrase with key_passphrase_file";
        } else if (request.asked) {
            out.error = "cannot decrypt private key '" + key_path + "' with the passphrase from '" +
                        *passphrase_path + "' (wrong passphrase?)";
            out.passphrase_error = true;
        } else {
            out.error = "no PEM private key in '" + key_path + "'";
        }
        return out;
    }
    if (passphrase_path && !request.asked) {
        out.warning =
            "key_passphrase_file is set but private key '" + key_path + "' is not encrypted";
    }
    return out;
}

}  // namespace mailgate::tls
