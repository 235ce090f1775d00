#pragma once
// What the YAML said, as plain structs with the defaults of the design brief.
// Only src/config includes yaml-cpp; everything else sees these structs.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mailgate::config {

using duration = std::chrono::milliseconds;

// Where a value came from, so that compile steps (certificate loading, address
// resolution) can report file:line:col too. line/column are 1-based; 0 = unknown.
struct source_mark {
    int line = 0;
    int column = 0;
};

struct server_section {
    unsigned workers = 0;  // 0 = auto: one per core
    std::optional<std::string> user;
    std::optional<std::string> admin;  // "127.0.0.1:9901": /metrics and /status; off when unset
    source_mark admin_mark;
    duration drain_timeout{std::chrono::seconds(30)};
    source_mark mark;
};

enum class log_level { trace, debug, info, warn, error };

struct log_section {
    log_level level = log_level::info;
    std::string access = "stdout";  // "stdout" | "off" | a path
    bool user_names = false;        // auth failure records name users in clear (else a salted hash)
    source_mark access_mark;
};

// A string from a list in the file, with its own position (regexes and CIDRs are
// compiled later, and a bad one must be reported where it is written).
struct marked_string {
    std::string text;
    source_mark mark;
};

// What a rule does when it fires. IIS denyAction values plus 429 and allow.
enum class action {
    allow,
    abort,
    forbidden,
    not_found,
    unauthorized,
    too_many_requests,
    bad_request
};
enum class rule_mode { enforce, report };

// R24: failed logins counted per user; past max_failures within `per` the user's attempts
// are answered by mailgate until cool_off has passed, and never reach Active Directory.
struct auth_failure_section {
    std::uint64_t max_failures = 4;  // below the usual AD lockout threshold of 5
    // Failures from one address, over all users (a spray tries many users with one password
    // each); 0: not counted. Higher than max_failures: an office NAT has many users.
    std::uint64_t max_failures_per_address = 20;
    duration per{std::chrono::minutes(30)};
    duration cool_off{std::chrono::minutes(30)};
    std::optional<rule_mode> mode;
    source_mark mark;
};

// `eas:` in a condition block: RE2 patterns (case-insensitive unless (?-i)) on the decoded
// ActiveSync request. device_id patterns match the ASCII form or the lowercase hex form of
// the device ID; device_id_file lists exact IDs in either form, one per line, read when the
// policy is compiled.
struct eas_condition {
    std::vector<marked_string> cmd;             // canonical command name, e.g. "Sync"
    std::vector<marked_string> user;            // as sent (DOMAIN\user or user@domain), else Basic
    std::vector<marked_string> device_id;       // ASCII form or lowercase hex form
    std::vector<marked_string> device_type;     // e.g. "iPhone"
    std::vector<marked_string> protocol;        // "14.1", "16.1"...
    std::optional<std::string> device_id_file;  // resolved path
    bool has_cmd = false, has_user = false, has_device_id = false, has_device_type = false,
         has_protocol = false;
    source_mark mark;
    source_mark device_id_file_mark;
};

// All conditions present must hold; inside one condition, a list means "any of".
struct condition_block {
    std::vector<marked_string> user_agent;  // RE2 patterns, case-insensitive unless (?-i)
    std::vector<marked_string> client_ip;   // CIDRs or bare addresses
    std::vector<marked_string> method;      // exact, case-sensitive tokens
    // Field name -> RE2 patterns on the field value(s); a missing field is the empty string.
    std::vector<std::pair<marked_string, std::vector<marked_string>>> header;
    // Query parameter name (raw, as sent) -> RE2 patterns on its raw value.
    std::vector<std::pair<marked_string, std::vector<marked_string>>> query;
    // RE2 patterns on the decoded request URI: the path and the query percent-decoded (twice,
    // so double encoding hides nothing), dot segments and duplicate slashes resolved, lower
    // case, joined by '?' (IIS's {UrlDecode:{REQUEST_URI}}, which Microsoft's rules match).
    std::vector<marked_string> uri;
    // Built-in shape checks that hold when the request is malformed: autodiscover_json (R22).
    std::vector<marked_string> malformed;
    // Which condition keys were written, to tell "absent" from "empty list" (never matches).
    bool has_user_agent = false, has_client_ip = false, has_method = false, has_uri = false;
    // ActiveSync facts (`eas:`), only in the rules of a location of kind activesync.
    std::optional<eas_condition> eas;
    source_mark mark;
};

struct rule_section {
    std::string name;
    condition_block condition;
    bool negate = false;  // written as `if_not` alone
    // `if` and `if_not` together: the rule fires when `if` holds and this does not (an
    // exception, e.g. the admin networks).
    std::optional<condition_block> unless;
    action act = action::forbidden;
    std::optional<rule_mode> mode;  // unset: enforce (or policy_mode)
    source_mark mark;
    source_mark name_mark;
};

// IIS Dynamic IP Restrictions, per resolved client address: a request rate, a number of
// concurrent requests, and a block once either is exceeded. Global, or per location (a
// location's own replaces the global one for its requests).
struct dynamic_ip_section {
    unsigned max_concurrent_requests = 0;  // 0: not limited
    std::uint64_t max_requests = 0;        // per `per`; 0: not limited
    duration per{};
    action act = action::too_many_requests;
    duration block_for{};
    std::vector<marked_string> exempt;  // CIDRs never limited
    std::optional<rule_mode> mode;
    // Top level only: where the counters live, and what a request gets when that store
    // does not answer within store_timeout (allow: fail open, as a limiter should).
    std::string store = "local";
    bool deny_on_store_error = false;
    duration store_timeout{std::chrono::milliseconds(100)};
    bool has_limits = false;  // the top level may name only the store
    source_mark mark;
    source_mark store_mark;
};

struct ip_restrictions_section {
    std::vector<marked_string> allow;  // when present, everything not listed is denied
    std::vector<marked_string> deny;   // listed addresses are denied; deny wins over allow
    bool has_allow = false;
    action act = action::forbidden;
    std::optional<rule_mode> mode;
    source_mark mark;
};

enum class proxy_protocol_mode { off, v1, v2, any };

struct certificate_entry {
    std::string cert;                                // PEM chain, leaf first
    std::string key;                                 // PEM private key, possibly encrypted
    std::optional<std::string> key_passphrase_file;  // the passphrase of an encrypted key
    std::optional<std::string> ocsp_response;        // DER OCSP response to staple
    source_mark cert_mark;
    source_mark key_mark;
    source_mark key_passphrase_mark;
    source_mark ocsp_mark;
};

// intermediate: Mozilla intermediate 6.0 (TLS 1.2 + 1.3); modern: TLS 1.3 only;
// custom: TLS 1.2 + 1.3 with the operator's suites (weak ones refused unless allow_weak).
enum class tls_profile { intermediate, modern, custom };

struct hsts_settings {
    duration max_age{std::chrono::hours(24 * 730)};  // 2y
    bool include_subdomains = true;
    bool preload = false;
};

// Stateless session resumption: keys made in memory and rotated (the previous key still
// decrypts), none, or one shared key file for a fleet behind a load balancer.
enum class session_ticket_mode { rotate, off, key_file };

struct session_ticket_settings {
    session_ticket_mode mode = session_ticket_mode::rotate;
    duration rotate{std::chrono::hours(12)};
    std::string key_file;  // 48 or 80 bytes, mode 0600
    source_mark mark;
    source_mark key_file_mark;
};

struct listener_tls {
    tls_profile profile = tls_profile::intermediate;
    std::string ciphers;                      // custom: OpenSSL cipher list for TLS 1.2
    std::optional<std::string> ciphersuites;  // custom: TLS 1.3 suites; default: the profile's
    bool allow_weak = false;                  // custom: weak TLS 1.2 suites are not refused
    std::vector<certificate_entry> certificates;
    std::vector<marked_string> server_names;  // names the certificates must cover (warning)
    hsts_settings hsts;
    session_ticket_settings session_tickets;
    source_mark mark;
    source_mark ciphers_mark;
    source_mark ciphersuites_mark;
};

// A plain-HTTP listener (port 80) that answers every request with a 301 to the https URL
// and never proxies. No HSTS on it: RFC 6797 forbids the header over plain HTTP.
struct http_redirect_settings {
    unsigned port = 443;              // the https port written into Location (omitted if 443)
    std::optional<std::string> host;  // a fixed host name; default: the request's Host
};

struct listener_section {
    std::string name;
    std::vector<std::string> addresses;  // "ip:port" or "[v6]:port"; port 0 = any free port
    listener_tls tls;                    // absent on a redirect listener
    std::optional<http_redirect_settings> http_redirect;  // set: plain HTTP, 301 to https
    proxy_protocol_mode proxy_protocol = proxy_protocol_mode::off;
    // PROXY headers and X-Forwarded-For are believed only from these peers.
    std::vector<marked_string> trusted_proxies;
    source_mark mark;
    source_mark address_mark;
};

struct upstream_tls {
    std::optional<std::string>
        server_name;                // SNI and the name to verify; default: host of the server
    std::optional<std::string> ca;  // PEM bundle; default: system trust store
    std::optional<std::string> client_cert;  // PEM chain presented to the upstream (mTLS)
    std::optional<std::string> client_key;   // its private key (same permission rule as listeners')
    bool insecure_skip_verify = false;       // no certificate or name verification (warned)
    source_mark ca_mark;
    source_mark client_cert_mark;
    source_mark client_key_mark;
    source_mark mark;
};

struct pool_settings {
    unsigned max_idle = 64;
    duration idle_timeout{std::chrono::seconds(60)};
};

// R19: Extended Protection binds NTLM/Kerberos logins to the certificate the client sees,
// so Exchange accepts them only when mailgate presents Exchange's own certificate. `check`
// and each start compare the two: off (no connection), warn, or refuse when they differ.
enum class extended_protection_mode { off, warn, require_same_certificate };

struct upstream_section {
    std::string name;
    std::vector<std::string> servers;  // "host:port"
    upstream_tls tls;
    pool_settings pool;
    // The public name clients use; an X-MS-Location naming an internal host on a 451 is
    // rewritten to it (default: the request's Host).
    std::optional<std::string> external_host;
    extended_protection_mode extended_protection = extended_protection_mode::warn;
    source_mark mark;
    source_mark servers_mark;
};

// add: sent when the upstream response lacks the field (the upstream's own value is kept,
// never duplicated); set: always sent, any upstream field of that name dropped; remove:
// upstream fields stripped. Emitted in this order after the upstream's own fields.
struct header_policy_section {
    std::vector<std::pair<std::string, std::string>> add{
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "SAMEORIGIN"},
        {"Referrer-Policy", "strict-origin-when-cross-origin"},
    };
    std::vector<std::string> remove{
        "Server",        "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version",
        "X-OWA-Version", "X-FEServer",   "X-BEServer",       "X-CalculatedBETarget",
        "X-DiagInfo"};
    std::vector<std::pair<std::string, std::string>> set;

    // A location's own policy starts empty and is applied on top of the global one.
    static header_policy_section empty() {
        header_policy_section h;
        h.add.clear();
        h.remove.clear();
        return h;
    }
};

struct limits_section {
    std::uint64_t request_line = 8 * 1024;
    std::uint64_t request_headers = 16 * 1024;
    unsigned header_count = 100;
    std::uint64_t request_body = 150ull * 1024 * 1024;
    // Past `connections` open client connections (all listeners and workers), a new one is
    // accepted and closed at once; likewise past `connections_per_ip` from one address
    // (the socket peer; not applied to trusted proxies and PROXY protocol listeners, whose
    // peer is a load balancer).
    std::uint64_t connections = 50000;
    std::uint64_t connections_per_ip = 200;
};

struct timeouts_section {
    duration tls_handshake{std::chrono::seconds(10)};
    duration request_header{std::chrono::seconds(15)};
    duration idle{std::chrono::seconds(60)};
    duration upstream_connect{std::chrono::seconds(5)};
    duration upstream_response{std::chrono::seconds(120)};
    duration send{std::chrono::seconds(60)};
    // Slow POST: after a grace of `request_header`, a request body must keep arriving at
    // this average rate (bytes/s) or the connection closes. 0: off. Apache mod_reqtimeout's
    // MinRate default.
    std::uint64_t body_min_rate = 500;
};

// Per-location overrides: unset fields take the global value.
struct location_timeouts {
    std::optional<duration> idle;
    std::optional<duration> upstream_response;
};

// What a location carries: `default` (HTTP only) or `activesync` (requests are decoded as
// MS-ASHTTP and rules can name ActiveSync facts with `eas:`).
enum class location_kind { generic, activesync };

struct location_section {
    std::string path;  // prefix, matched case-insensitively on the normalized path
    location_kind kind = location_kind::generic;
    std::string upstream;
    location_timeouts timeouts;
    std::optional<std::uint64_t> request_body;  // limits: { request_body: ... }
    std::optional<ip_restrictions_section> ip_restrictions;
    std::vector<rule_section> request_blocking;                 // first rule that fires decides
    std::optional<header_policy_section> headers;               // on top of the global policy
    std::optional<dynamic_ip_section> dynamic_ip_restrictions;  // replaces the global one
    // The same limits keyed by ActiveSync device ID (kind: activesync locations only).
    std::optional<dynamic_ip_section> dynamic_device_restrictions;
    std::optional<auth_failure_section> auth_failure_limits;  // replaces the global one
    source_mark mark;
    source_mark upstream_mark;
    source_mark kind_mark;
};

struct root {
    std::string file;  // the path the configuration was loaded from, for diagnostics
    server_section server;
    log_section log;
    std::vector<listener_section> listeners;
    std::vector<upstream_section> upstreams;
    header_policy_section headers;
    limits_section limits;
    timeouts_section timeouts;
    rule_mode policy_mode = rule_mode::enforce;  // report: every rule reports only
    std::vector<rule_section> request_blocking;  // global, evaluated before the location's
    std::optional<dynamic_ip_section> dynamic_ip_restrictions;
    std::optional<auth_failure_section> auth_failure_limits;
    // R26: anonymous /autodiscover/autodiscover.json requests per client address (they tell
    // whether an address exists). On by default, 30 a minute; `off` removes it.
    std::optional<dynamic_ip_section> anonymous_autodiscover = default_anonymous_autodiscover();
    std::vector<location_section> locations;

    static dynamic_ip_section default_anonymous_autodiscover() {
        dynamic_ip_section d;
        d.max_requests = 30;
        d.per = std::chrono::minutes(1);
        d.has_limits = true;
        return d;
    }
};

}  // namespace mailgate::config
