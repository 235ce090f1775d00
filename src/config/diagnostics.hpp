#pragma once
// Errors and warnings gathered across loading, validation and compilation, each with
// file:line:col. Loading never stops at the first error.
#include <string>
#include <vector>

#include "config/schema.hpp"

namespace mailgate::config {

enum class severity { error, warning };

struct diagnostic {
    severity level = severity::error;
    std::string file;
    source_mark mark;
    std::string message;

    // "file:line:col: error: message" (or "warning:")
    std::string to_string() const;
};

class diagnostics {
public:
    explicit diagnostics(std::string file = {}) : file_(std::move(file)) {}

    void error(source_mark m, std::string message);
    void warning(source_mark m, std::string message);

    bool has_errors() const;
    const std::vector<diagnostic>& items() const { return items_; }
    const std::string& file() const { return file_; }

private:
    std::string file_;
    std::vector<diagnostic> items_;
};

}  // namespace mailgate::config
