// mailgate: a hardened reverse proxy for corporate email.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "app/server.hpp"

int main(int argc, char** argv) {
    CLI::App app{"mailgate: a hardened reverse proxy for Exchange ActiveSync, EWS, OWA and MAPI"};
    app.require_subcommand(1);

    std::string config_path;
    auto* run = app.add_subcommand("run", "Run the proxy with a configuration file");
    run->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
    auto* check = app.add_subcommand("check", "Validate a configuration file and exit");
    check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
    auto* version = app.add_subcommand("version", "Print the version");

    CLI11_PARSE(app, argc, argv);
    if (*version) {
        std::cout << "mailgate " << MAILGATE_VERSION << '\n';
        return 0;
    }
    if (*check) return mailgate::app::check(config_path);
    if (*run) return mailgate::app::run(config_path);
    return 2;
}
