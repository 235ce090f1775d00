// Every file under tests/corpus/config: valid ones load (with the warnings of
// NAME.expected, if any), invalid ones report exactly the lines of NAME.expected.
// In .expected files, FILE stands for the configuration's path and CORPUS for
// tests/corpus/config, so they hold no machine-specific paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/load.hpp"

namespace mailgate::config {
namespace {

namespace fs = std::filesystem;

const fs::path corpus = fs::path(MAILGATE_CORPUS_DIR) / "config";

std::vector<std::string> yaml_files(const char* kind) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(corpus / kind)) {
        if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos;
         at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
}

std::string expected_lines(const fs::path& expected_file, const fs::path& yaml) {
    std::string text = read(expected_file);
    replace_all(text, "CORPUS", corpus.string());
    std::string out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("FILE:")) line = yaml.string() + line.substr(4);
        out += line + "\n";
    }
    return out;
}

std::string actual_lines(const load_result& r) {
    std::string out;
    for (const auto& d : r.diags.items()) out += d.to_string() + "\n";
    return out;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string name = info.param;
    for (auto& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return name;
}

class ValidConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(ValidConfig, Loads) {
    const fs::path yaml = corpus / "valid" / (GetParam() + ".yaml");
    const fs::path expected = corpus / "valid" / (GetParam() + ".expected");
    const auto r = load_file(yaml.string());
    EXPECT_TRUE(r.config.has_value());
    EXPECT_FALSE(r.diags.has_errors());
    const std::string want = fs::exists(expected) ? expected_lines(expected, yaml) : "";
    EXPECT_EQ(actual_lines(r), want);
}

INSTANTIATE_TEST_SUITE_P(Corpus, ValidConfig, ::testing::ValuesIn(yaml_files("valid")), test_name);

class InvalidConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidConfig, ReportsExactlyTheExpectedDiagnostics) {
    const fs::path yaml = corpus / "invalid" / (GetParam() + ".yaml");
    const fs::path expected = corpus / "invalid" / (GetParam() + ".expected");
    ASSERT_TRUE(fs::exists(expected)) << expected << " is missing";
    const auto r = load_file(yaml.string());
    EXPECT_FALSE(r.config.has_value());
    EXPECT_TRUE(r.diags.has_errors());
    EXPECT_EQ(actual_lines(r), expected_lines(expected, yaml));
}

INSTANTIATE_TEST_SUITE_P(Corpus, InvalidConfig, ::testing::ValuesIn(yaml_files("invalid")),
                         test_name);

}  // namespace
}  // namespace mailgate::config
