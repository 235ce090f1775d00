#pragma once
// YAML text to a validated `root`, with every problem reported as file:line:col.
// Loading never stops at the first error, so one `mailgate check` run shows them all.
#include <optional>
#include <string>
#include <string_view>

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace mailgate::config {

struct load_result {
    std::optional<root> config;  // set only when `diags` holds no error (warnings allowed)
    diagnostics diags;
};

// Relative paths inside the file (certificates, keys, CA bundles, the access log)
// resolve against the directory of `path`.
load_result load_file(const std::string& path);

// `file_name_for_diagnostics` names the source in diagnostics and in root::file.
// Relative paths resolve against `base_dir`; an empty `base_dir` means the current directory.
load_result load_string(std::string_view yaml, const std::string& file_name_for_diagnostics,
                        const std::string& base_dir);

}  // namespace mailgate::config
