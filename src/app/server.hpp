#pragma once
// Loading, compiling and running: the one path shared by `check` and `run`.
#include <memory>
#include <string>

#include "config/diagnostics.hpp"
#include "runtime/snapshot.hpp"

namespace mailgate::app {

// Load, validate, compile. Returns nullptr when there were errors; `diags` holds every
// error and warning with file:line:col. `loaded_config`, when given, receives the loaded
// configuration the snapshot was built from (for the start-up checks that need it).
std::shared_ptr<const runtime::snapshot> load_snapshot(const std::string& path,
                                                       config::diagnostics& diags,
                                                       config::root* loaded_config = nullptr);

// Prints every diagnostic to stderr, one per line.
void print_diagnostics(const config::diagnostics& diags);

int check(const std::string& path);
int run(const std::string& path);

}  // namespace mailgate::app
