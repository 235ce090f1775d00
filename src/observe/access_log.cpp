#include "observe/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "eas/query_decoder.hpp"

namespace mailgate::observe {

std::shared_ptr<access_log> access_log::open(const std::string& where) {
    auto log = std::shared_ptr<access_log>(new access_log());
    if (where == "off") return log;
    if (where == "stdout") {
        log->fd_ = STDOUT_FILENO;
        return log;
    }
    log->fd_ = ::open(where.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd_ < 0)
        throw std::runtime_error("cannot open access log '" + where + "': " + std::strerror(errno));
    log->owned_ = true;
    return log;
}

access_log::~access_log() {
    if (owned_) ::close(fd_);
}

std::string format_record(const access_record& r) {
    using json = nlohmann::ordered_json;
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch());
    const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[40];
    const auto n = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(when + n, sizeof when - n, ".%03dZ", static_cast<int>(ms.count() % 1000));
    auto sv = [](std::string_view v) { return std::string(v); };
    json j = {
        {"time", when},
        {"client", sv(r.client)},
        {"peer", sv(r.peer)},
        {"listener", sv(r.listener)},
        {"method", sv(r.method)},
        {"target", sv(r.target)},
        {"status", r.status},
        {"bytes_in", r.bytes_in},
        {"bytes_out", r.bytes_out},
        {"duration_ms", r.duration_ms},
        {"upstream", sv(r.upstream)},
        {"upstream_ms", r.upstream_ms < 0 ? json(nullptr) : json(r.upstream_ms)},
        {"tls_version", sv(r.tls_version)},
        {"tls_cipher", sv(r.tls_cipher)},
        {"user_agent", sv(r.user_agent)},
        {"rule", r.rule.empty() ? json(nullptr) : json(sv(r.rule))},
        {"action", r.action.empty() ? json(nullptr) : json(sv(r.action))},
        {"mode", r.mode.empty() ? json(nullptr) : json(sv(r.mode))},
    };
    if (!r.error.empty()) j["error"] = sv(r.error);
    if (r.store_error) j["store_error"] = true;
    if (!r.auth_user.empty())
        j["auth"] = {{"user", sv(r.auth_user)}, {"outcome", sv(r.auth_outcome)}};
    if (r.eas != nullptr) {
        const auto& e = *r.eas;
        json eas = {
            {"cmd", sv(e.cmd)},
            {"protocol", sv(e.protocol_version)},
            {"device_id", sv(e.device_id_ascii.empty() ? e.device_id_hex : e.device_id_ascii)},
            {"device_id_hex", sv(e.device_id_hex)},
            {"device_type", sv(e.device_type)},
            {"user", sv(e.user)},
            {"form", e.form == eas::query_form::base64  ? "base64"
                     : e.form == eas::query_form::plain ? "plain"
                                                        : "none"}};
        if (e.policy_key) eas["policy_key"] = *e.policy_key;
        j["eas"] = std::move(eas);
    }
    // Attacker-controlled bytes (target, User-Agent) may be invalid UTF-8: replace, never throw.
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    return line;
}

void access_log::write(const access_record& r) const {
    if (fd_ < 0) return;
    const std::string line = format_record(r);
    // One write per record keeps lines whole; a short write on a full disk loses the tail
    // of one record rather than blocking the worker.
    [[maybe_unused]] const auto written = ::write(fd_, line.data(), line.size());
}

}  // namespace mailgate::observe
