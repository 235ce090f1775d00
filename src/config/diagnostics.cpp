#include "config/diagnostics.hpp"

#include <algorithm>

namespace mailgate::config {

std::string diagnostic::to_string() const {
    std::string out = file;
    out += ':';
    out += std::to_string(mark.line);
    out += ':';
    out += std::to_string(mark.column);
    out += level == severity::error ? ": error: " : ": warning: ";
    out += message;
    return out;
}

void diagnostics::error(source_mark m, std::string message) {
    items_.push_back({severity::error, file_, m, std::move(message)});
}

void diagnostics::warning(source_mark m, std::string message) {
    items_.push_back({severity::warning, file_, m, std::move(message)});
}

bool diagnostics::has_errors() const {
    return std::any_of(items_.begin(), items_.end(),
                       [](const diagnostic& d) { return d.level == severity::error; });
}

}  // namespace mailgate::config
