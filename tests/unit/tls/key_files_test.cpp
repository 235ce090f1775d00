// Key protection: permissions and ownership of secret files, encrypted keys, and messages
// that never quote key material.
#include "tls/key_files.hpp"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_pki.hpp"

namespace mailgate::tls {
namespace {

using namespace testing;

TEST(SecretFile, OwnerOnlyIsFine) {
    temp_dir dir;
    EXPECT_EQ(secret_file_problem(dir.write("k.key", "x", 0600), "key file"), "");
    EXPECT_EQ(secret_file_problem(dir.write("r.key", "x", 0400), "key file"), "");
}

TEST(SecretFile, GroupOrOtherAccessIsRefusedWithTheFix) {
    temp_dir dir;
    const auto world = dir.write("world.key", "x", 0644);
    EXPECT_EQ(secret_file_problem(world, "key file"),
              "key file '" + world +
                  "' is readable by group or others (mode 0644); fix: chmod "
                  "600 '" +
                  world + "'");
    const auto group = dir.write("group.key", "x", 0640);
    EXPECT_NE(secret_file_problem(group, "key file").find("(mode 0640); fix: chmod 600"),
              std::string::npos);
    const auto writable = dir.write("w.key", "x", 0620);
    EXPECT_NE(secret_file_problem(writable, "passphrase file")
                  .find("passphrase file '" + writable + "' is accessible by group or others"),
              std::string::npos);
}

TEST(SecretFile, AnotherUsersFileIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
    const passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
    temp_dir dir;
    const auto theirs = dir.write("theirs.key", "x", 0600);
    ASSERT_EQ(::chown(theirs.c_str(), nobody->pw_uid, static_cast<gid_t>(-1)), 0);
    EXPECT_EQ(secret_file_problem(theirs, "key file"),
              "key file '" + theirs +
                  "' is owned by nobody, not by root, who runs mailgate; "
                  "fix: chown root '" +
                  theirs + "'");
}

TEST(SecretFile, MissingFileIsNamed) {
    temp_dir dir;
    const auto missing = (dir.path() / "missing.key").string();
    EXPECT_EQ(secret_file_problem(missing, "key file"),
              "cannot read key file '" + missing + "': No such file or directory");
}

TEST(SecretBytes, AreCleansedAndMovable) {
    secret_bytes a;
    const unsigned char data[] = {1, 2, 3, 4};
    a.assign(data, sizeof data);
    a.resize(2);
    EXPECT_EQ(a.size(), 2u);
    secret_bytes b = std::move(a);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(b.data()[1], 2);
    b.resize(6);
    EXPECT_EQ(b.data()[0], 1);
    EXPECT_EQ(b.data()[5], 0);
}

TEST(LoadPrivateKey, PlainKey) {
    temp_dir dir;
    auto key = make_key(key_kind::ec256);
    auto loaded = load_private_key(dir.write("k.key", pem(key.get())), std::nullopt);
    ASSERT_TRUE(loaded.key) << loaded.error;
    EXPECT_EQ(EVP_PKEY_eq(loaded.key.get(), key.get()), 1);
    EXPECT_EQ(loaded.warning, "");
}

TEST(LoadPrivateKey, WorldReadableKeyIsRefusedBeforeItIsRead) {
    temp_dir dir;
    auto key = make_key(key_kind::ec256);
    const auto path = dir.write("k.key", pem(key.get()), 0644);
    auto loaded = load_private_key(path, std::nullopt);
    EXPECT_FALSE(loaded.key);
    EXPECT_NE(loaded.error.find("chmod 600 '" + path + "'"), std::string::npos) << loaded.error;
}

TEST(LoadPrivateKey, EncryptedKeyWithItsPassphrase) {
    temp_dir dir;
    auto key = make_key(key_kind::rsa2048);
    const auto path = dir.write("k.key", pem(key.get(), "correct horse"));
    auto loaded = load_private_key(path, dir.write("pass", "correct horse\n"));
    ASSERT_TRUE(loaded.key) << loaded.error;
    EXPECT_EQ(EVP_PKEY_eq(loaded.key.get(), key.get()), 1);
}

TEST(LoadPrivateKey, EncryptedKeyProblemsAreNamed) {
    temp_dir dir;
    auto key = make_key(key_kind::ec256);
    const auto path = dir.write("k.key", pem(key.get(), "secret"));
    auto none = load_private_key(path, std::nullopt);
    EXPECT_FALSE(none.key);
    EXPECT_EQ(none.error, "private key '" + path +
                              "' is encrypted: give its passphrase with "
                              "key_passphrase_file");
    EXPECT_FALSE(none.passphrase_error);

    const auto wrong_file = dir.write("wrong", "guess\n");
    auto wrong = load_private_key(path, wrong_file);
    EXPECT_FALSE(wrong.key);
    EXPECT_TRUE(wrong.passphrase_error);
    EXPECT_EQ(wrong.error, "cannot decrypt private key '" + path + "' with the passphrase from '" +
                               wrong_file + "' (wrong passphrase?)");
    EXPECT_EQ(wrong.error.find("guess"), std::string::npos);

    const auto open_pass = dir.write("open", "secret\n", 0644);
    auto exposed = load_private_key(path, open_pass);
    EXPECT_FALSE(exposed.key);
    EXPECT_TRUE(exposed.passphrase_error);
    EXPECT_NE(exposed.error.find("passphrase file '" + open_pass + "' is readable"),
              std::string::npos);

    auto empty = load_private_key(path, dir.write("empty", "\n"));
    EXPECT_FALSE(empty.key);
    EXPECT_NE(empty.error.find("is empty"), std::string::npos);
}

TEST(LoadPrivateKey, PassphraseForAPlainKeyWarns) {
    temp_dir dir;
    auto key = make_key(key_kind::ec256);
    const auto path = dir.write("k.key", pem(key.get()));
    auto loaded = load_private_key(path, dir.write("pass", "unused\n"));
    ASSERT_TRUE(loaded.key);
    EXPECT_EQ(loaded.warning,
              "key_passphrase_file is set but private key '" + path + "' is not encrypted");
}

TEST(LoadPrivateKey, GarbageIsNotQuoted) {
    temp_dir dir;
    const auto path = dir.write("k.key",
                                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE "
                                "KEY-----\n");
    auto loaded = load_private_key(path, std::nullopt);
    EXPECT_FALSE(loaded.key);
    EXPECT_EQ(loaded.error, "no PEM private key in '" + path + "'");
}

}  // namespace
}  // namespace mailgate::tls
