#pragma once
// The RE2 patterns of one condition (all user_agent patterns of a rule, or all patterns of
// one header or query parameter), compiled into one RE2::Set so that a match is one pass
// over the text, whatever the number of patterns.
#include <memory>
#include <string_view>
#include <vector>

#include <re2/re2.h>
#include <re2/set.h>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::policy {

class pattern_set {
public:
    // Reports each pattern that does not compile at its mark. Returns false on any error.
    bool compile(const std::vector<config::marked_string>& patterns, config::diagnostics& diags);

    // True when any pattern matches somewhere in `text` (search, not full match: `^` and `$`
    // anchor explicitly). An empty set matches nothing. Allocates nothing once RE2's lazily
    // built DFA has seen similar input.
    bool match(std::string_view text) const;

    // The same answer, one pattern at a time: the fallback for when the set's DFA gives up
    // (its memory budget exhausted by hostile input), public so tests can compare both.
    bool match_each(std::string_view text) const;

    std::size_t size() const { return each_.size(); }

    // Case-insensitive unless a pattern says (?-i); Latin-1, so that every byte of a header
    // is a character and `.` or `[^x]` cannot be dodged with bytes that are not UTF-8.
    static RE2::Options options();

private:
    std::unique_ptr<RE2::Set> set_;
    std::vector<std::unique_ptr<RE2>> each_;
};

}  // namespace mailgate::policy
