#pragma once
// One JSON object per request. Each record is written with a single write(2) on an
// O_APPEND descriptor, so workers never share a lock and lines never interleave.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mailgate::eas {
struct eas_facts;
}  // namespace mailgate::eas

namespace mailgate::observe {

struct access_record {
    std::chrono::system_clock::time_point time;
    std::string_view client;  // the resolved client (PROXY protocol / trusted X-Forwarded-For)
    std::string_view peer;    // the socket peer
    std::string_view listener;
    std::string_view method;
    std::string_view target;
    int status = 0;               // 0: no response (connection closed/aborted)
    std::uint64_t bytes_in = 0;   // request head + body from the client
    std::uint64_t bytes_out = 0;  // response head + body to the client
    double duration_ms = 0;
    std::string_view upstream;  // server label, empty if none was used
    double upstream_ms = -1;    // time to the upstream's response head; -1 if none
    std::string_view tls_version;
    std::string_view tls_cipher;
    std::string_view user_agent;
    std::string_view rule;    // the rule that decided (or reported), "location/name"
    std::string_view action;  // what that rule does
    std::string_view mode;    // enforce | report
    std::string_view error;   // why mailgate answered or closed, if it did
    // The decoded ActiveSync request (R29: user, device, command, version, policy key).
    // Never Authorization values: the decoder keeps only a Basic user name.
    const eas::eas_facts* eas = nullptr;
    std::string_view auth_user;     // auth_failure_limits: salted hash (or the name)
    std::string_view auth_outcome;  // failed | succeeded | throttled
    bool store_error = false;       // the shared limit store did not decide in time
};

class access_log {
public:
    // "stdout", "off" or a path (opened O_APPEND|O_CREAT, mode 0640). Throws on failure.
    static std::shared_ptr<access_log> open(const std::string& where);
    ~access_log();

    bool enabled() const { return fd_ >= 0; }
    void write(const access_record& r) const;

private:
    int fd_ = -1;
    bool owned_ = false;
};

std::string format_record(const access_record& r);

}  // namespace mailgate::observe
