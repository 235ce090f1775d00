#pragma once
// Loader for tests/corpus/http/*.txt (format shared with the e2e tests):
//   '#' comment lines, then "expect: <status|pass>", then the request bytes written as
//   lines whose own newlines are dropped, with C escapes \r \n \t \0 \\ \xHH and the macro
//   {{repeat:X:N}} (the single literal char X, N times).
// Comments are only recognised before the expect line; everything after it is payload.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::test {

struct corpus_case {
    std::string name;    // file stem
    std::string expect;  // "400", "414", "431", "413", "417" or "pass"
    std::string bytes;   // the unescaped request (head, possibly followed by a body)
};

inline int corpus_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Throws std::runtime_error on a malformed line: a broken corpus file must fail loudly.
inline void corpus_unescape_line(std::string_view line, std::string& out) {
    constexpr std::string_view macro = "{{repeat:";
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '{' && line.substr(i, macro.size()) == macro) {
            const std::size_t x = i + macro.size();
            if (x + 1 >= line.size() || line[x + 1] != ':') {
                throw std::runtime_error("bad repeat macro");
            }
            const std::size_t end = line.find("}}", x + 2);
            if (end == std::string_view::npos || end == x + 2) {
                throw std::runtime_error("bad repeat macro");
            }
            std::size_t count = 0;
            for (const char d : line.substr(x + 2, end - (x + 2))) {
                if (d < '0' || d > '9') throw std::runtime_error("bad repeat count");
                count = count * 10 + static_cast<std::size_t>(d - '0');
            }
            out.append(count, line[x]);
            i = end + 1;
            continue;
        }
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (i + 1 >= line.size()) throw std::runtime_error("dangling backslash");
        const char e = line[++i];
        switch (e) {
            case 'r':
                out.push_back('\r');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 't':
                out.push_back('\t');
                break;
            case '0':
                out.push_back('\0');
                break;
            case '\\':
                out.push_back('\\');
                break;
            case 'x': {
                if (i + 2 >= line.size()) throw std::runtime_error("short \\x escape");
                const int hi = corpus_hex(line[i + 1]);
                const int lo = corpus_hex(line[i + 2]);
                if (hi < 0 || lo < 0) throw std::runtime_error("bad \\x escape");
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                break;
            }
            default:
                throw std::runtime_error(std::string("unknown escape \\") + e);
        }
    }
}

inline corpus_case load_corpus_case(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + file.string());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();

    corpus_case out;
    out.name = file.stem().string();
    bool have_expect = false;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF-saved files
        pos = nl + 1;
        if (!have_expect) {
            if (line.empty() || line.front() == '#') continue;
            constexpr std::string_view key = "expect:";
            if (line.substr(0, key.size()) != key) {
                throw std::runtime_error(file.string() + ": expected 'expect:' line");
            }
            std::string_view v = line.substr(key.size());
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
            out.expect = std::string(v);
            have_expect = true;
            continue;
        }
        try {
            corpus_unescape_line(line, out.bytes);
        } catch (const std::exception& e) {
            throw std::runtime_error(file.string() + ": " + e.what());
        }
    }
    if (!have_expect) throw std::runtime_error(file.string() + ": no 'expect:' line");
    return out;
}

inline std::vector<corpus_case> load_corpus(const std::filesystem::path& dir) {
    std::vector<corpus_case> cases;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".txt") {
            cases.push_back(load_corpus_case(entry.path()));
        }
    }
    std::sort(cases.begin(), cases.end(),
              [](const corpus_case& a, const corpus_case& b) { return a.name < b.name; });
    return cases;
}

}  // namespace mailgate::test
