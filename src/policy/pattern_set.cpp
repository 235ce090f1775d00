#include "policy/pattern_set.hpp"

#include <string>

namespace mailgate::policy {

namespace {

// Per set, shared by all workers. The DFA grows lazily up to this, so it only costs what the
// traffic needs; RE2's default (8 MiB) is tight for the thousands of patterns a large
// allow-list can hold.
constexpr std::int64_t set_max_mem = 32 << 20;

re2::StringPiece piece(std::string_view s) { return re2::StringPiece(s.data(), s.size()); }

}  // namespace

RE2::Options pattern_set::options() {
    RE2::Options o;
    o.set_case_sensitive(false);
    o.set_encoding(RE2::Options::EncodingLatin1);
    o.set_never_capture(true);
    o.set_log_errors(false);  // errors go to the diagnostics, with file:line:col
    return o;
}

bool pattern_set::compile(const std::vector<config::marked_string>& patterns,
                          config::diagnostics& diags) {
    auto opts = options();
    bool ok = true;
    for (const auto& p : patterns) {
        auto re = std::make_unique<RE2>(piece(p.text), opts);
        if (!re->ok()) {
            diags.error(p.mark, "invalid regex '" + p.text + "': " + re->error());
            ok = false;
            continue;
        }
        each_.push_back(std::move(re));
    }
    if (!ok || each_.empty()) return ok;

    opts.set_max_mem(set_max_mem);
    set_ = std::make_unique<RE2::Set>(opts, RE2::UNANCHORED);
    for (std::size_t i = 0; i < each_.size(); ++i) {
        std::string error;
        if (set_->Add(piece(each_[i]->pattern()), &error) < 0) {
            // Cannot happen for a pattern RE2 itself accepted with the same options.
            diags.error(patterns[i].mark, "invalid regex '" + patterns[i].text + "': " + error);
            return false;
        }
    }
    if (!set_->Compile()) {
        // Matching an uncompiled set would crash, so this must stop the configuration.
        diags.error(patterns.front().mark,
                    "these " + std::to_string(patterns.size()) +
                        " patterns are too large to compile together; split them over rules");
        set_.reset();
        return false;
    }
    return true;
}

bool pattern_set::match(std::string_view text) const {
    if (!set_) return false;
    RE2::Set::ErrorInfo info{RE2::Set::kNoError};
    if (set_->Match(piece(text), nullptr, &info)) return true;
    if (info.kind == RE2::Set::kNoError) return false;
    // The set's DFA ran out of memory. Taking that as "no match" would lock good clients
    // out of an allow-list (`if_not`) or let a denied one through (`if`), so ask each
    // pattern: RE2 falls back to its NFA where the DFA fails, slower but always right.
    return match_each(text);
}

bool pattern_set::match_each(std::string_view text) const {
    for (const auto& re : each_) {
        if (RE2::PartialMatch(piece(text), *re)) return true;
    }
    return false;
}

}  // namespace mailgate::policy
