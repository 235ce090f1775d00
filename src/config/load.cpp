#include "config/load.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/redis_url.hpp"
#include "config/units.hpp"

namespace mailgate::config {

namespace {

namespace fs = std::filesystem;

// A configuration larger than this is a mistake (or an attack on `check`), not a config.
constexpr std::uintmax_t max_file_size = 16ull * 1024 * 1024;

// Timeouts beyond a day are almost certainly a unit mistake (`3600h` for `3600s`).
constexpr duration max_timeout{std::chrono::hours(24)};
constexpr std::string_view max_timeout_text = "24h";

// HSTS below half a year does not earn an A+ rating.
constexpr duration min_hsts_for_a_plus{std::chrono::hours(24 * 180)};
// hstspreload.org accepts a domain only with max-age of a year or more.
constexpr duration min_hsts_for_preload{std::chrono::hours(24 * 365)};

// Session ticket keys: rotating faster than this only costs resumptions; slower keeps one
// key able to decrypt recorded sessions for too long.
constexpr duration min_ticket_rotation{std::chrono::minutes(1)};
constexpr duration max_ticket_rotation{std::chrono::hours(24 * 7)};

constexpr std::uint64_t min_head_limit = 1024;
constexpr std::uint64_t max_head_limit = 1024 * 1024;

source_mark mark_of(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {};
    return {m.line + 1, m.column + 1};
}

std::string_view kind_of(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "a scalar";
        case YAML::NodeType::Null:
            return "null";
        case YAML::NodeType::Undefined:
            break;
    }
    return "nothing";
}

// Configuration text quoted into a message, made safe for a terminal and kept short.
std::string quote(std::string_view text) {
    constexpr std::size_t max_len = 80;
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < max_len; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > max_len) out += "...";
    out += "'";
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Optimal string alignment distance: like Levenshtein, with a swap of two neighbours
// costing one, since `idel` for `idle` is the typical typo.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

// " (did you mean 'x'?)" when one candidate is close enough to be the intended word.
template <typename Range>
std::string suggestion(std::string_view word, const Range& candidates) {
    std::string_view best;
    std::size_t best_distance = 3;
    for (std::string_view c : candidates) {
        const std::size_t dist = edit_distance(word, c);
        if (dist < best_distance && dist < word.size()) {
            best = c;
            best_distance = dist;
        }
    }
    if (best.empty()) return {};
    return " (did you mean " + quote(best) + "?)";
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 9110 token: what a header name is made of.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return std::all_of(s.begin(), s.end(), [&](char c) {
        return is_alpha(c) || is_digit(c) || extra.find(c) != std::string_view::npos;
    });
}

// Names end up in log records and metric labels, where anything else needs escaping.
bool is_simple_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
    });
}

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::string canonical_ipv6(const std::string& s) {
    in6_addr a{};
    char buf[INET6_ADDRSTRLEN] = {};
    if (::inet_pton(AF_INET6, s.c_str(), &a) != 1 ||
        ::inet_ntop(AF_INET6, &a, buf, sizeof buf) == nullptr) {
        return s;
    }
    return buf;
}

// RFC 1123 host name. A name whose last label is numeric must be a valid IPv4 address
// instead: resolvers read `10.0.0.300` in surprising ways.
bool is_host_name(const std::string& s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t start = 0;
    bool last_numeric = false;
    while (start <= s.size()) {
        const std::size_t end = std::min(s.find('.', start), s.size());
        const std::string_view label(s.data() + start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (char c : label) {
            if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
        }
        last_numeric = std::all_of(label.begin(), label.end(), is_digit);
        start = end + 1;
    }
    return !last_numeric || is_ipv4(s);
}

struct host_port {
    std::string host;
    bool bracketed = false;
    unsigned port = 0;
    std::string error;  // empty when the split succeeded
};

// "host:port" or "[v6]:port". Port range is checked by the caller.
host_port split_host_port(std::string_view s, unsigned min_port) {
    host_port out;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        const std::size_t close = s.find(']');
        if (close == std::string_view::npos) {
            out.error = "missing ']' after the IPv6 address";
            return out;
        }
        out.host = std::string(s.substr(1, close - 1));
        out.bracketed = true;
        const std::string_view rest = s.substr(close + 1);
        if (rest.empty()) {
            out.error = "missing port";
            return out;
        }
        if (rest.front() != ':') {
            out.error = "expected ':' and a port after ']'";
            return out;
        }
        port = rest.substr(1);
    } else {
        const std::size_t colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            out.error = "missing port";
            return out;
        }
        out.host = std::string(s.substr(0, colon));
        if (out.host.find(':') != std::string::npos) {
            out.error = "an IPv6 address must be written in brackets, as in '[::1]:443'";
            return out;
        }
        port = s.substr(colon + 1);
    }
    const std::string range = "(expected " + std::to_string(min_port) + " to 65535)";
    if (port.empty()) {
        out.error = "missing port";
        return out;
    }
    unsigned value = 0;
    const bool digits_only = port.size() <= 5 && std::all_of(port.begin(), port.end(), is_digit);
    if (digits_only) {
        for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits_only || value > 65535 || value < min_port) {
        out.error = "invalid port " + quote(port) + " " + range;
        return out;
    }
    out.port = value;
    return out;
}

// The reason `s` is not a listen address, or empty; `canonical` gets a form in which
// equal addresses compare equal.
std::string check_listen_address(std::string_view s, std::string& canonical) {
    host_port hp = split_host_port(s, 0);
    if (!hp.error.empty()) return hp.error;
    if (hp.host.empty()) return "missing IP address (use 0.0.0.0 or [::] for all addresses)";
    if (hp.bracketed) {
        if (!is_ipv6(hp.host)) return quote(hp.host) + " is not an IPv6 address";
        canonical = "[" + canonical_ipv6(hp.host) + "]:" + std::to_string(hp.port);
    } else {
        if (!is_ipv4(hp.host)) return quote(hp.host) + " is not an IPv4 address";
        canonical = hp.host + ":" + std::to_string(hp.port);
    }
    return {};
}

std::string check_upstream_server(std::string_view s) {
    host_port hp = split_host_port(s, 1);
    if (!hp.error.empty()) return hp.error;
    if (hp.host.empty()) return "missing host";
    if (hp.bracketed) {
        if (!is_ipv6(hp.host)) return quote(hp.host) + " is not an IPv6 address";
    } else if (!is_host_name(hp.host)) {
        return quote(hp.host) + " is not a valid host name or IPv4 address";
    }
    return {};
}

// Why a location path could never equal a normalized request path (see
// http/path_normalizer.hpp), or empty.
std::string location_path_problem(std::string_view p) {
    for (char c : p) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x21 || u > 0x7e) return "it contains a space, a control or a non-ASCII character";
        if (c == '?' || c == '#') return "it contains '?' or '#' (locations match the path only)";
        if (c == '\\') return "it contains a backslash";
    }
    if (p.find("//") != std::string_view::npos) return "it contains an empty segment ('//')";
    std::size_t start = 1;
    while (start <= p.size()) {
        const std::size_t end = std::min(p.find('/', start), p.size());
        const std::string_view segment = p.substr(start, end - start);
        if (segment == "." || segment == "..") return "it contains a dot segment";
        start = end + 1;
    }
    return {};
}

// A query parameter name is compared with the raw query as sent, so it cannot hold what
// never appears in one name there.
bool is_query_name(std::string_view s) {
    return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u >= 0x7f || c == '&' || c == '=' || c == '#';
    });
}

// Headers whose value the proxy itself decides: framing, connection management, and
// HSTS (configured per listener under tls.hsts).
// The response builder tracks the policy's fields in a 64-bit mask.
constexpr std::size_t max_policy_headers = 64;

// A host name, address or [v6] literal with an optional port: what may be written into a
// Location or X-MS-Location header, and nothing that could end or extend it.
bool is_host_text(std::string_view h) {
    return std::all_of(h.begin(), h.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
               c == '[' || c == ']';
    });
}

bool is_managed_header(std::string_view name) {
    static const std::set<std::string, std::less<>> managed{
        "connection", "content-length",    "keep-alive", "proxy-connection",         "te",
        "trailer",    "transfer-encoding", "upgrade",    "strict-transport-security"};
    return managed.contains(lower(name));
}

std::string error_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// Why `path` cannot be read, or empty.
std::string readable_problem(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return error_text(errno);
    if (S_ISDIR(st.st_mode)) return error_text(EISDIR);
    if (::access(path.c_str(), R_OK) != 0) return error_text(errno);
    return {};
}

// Why `path` cannot be opened for appending (or created), or empty.
std::string writable_problem(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return error_text(EISDIR);
        if (::access(path.c_str(), W_OK) != 0) return error_text(errno);
        return {};
    }
    if (errno != ENOENT) return error_text(errno);
    const std::string dir = fs::path(path).parent_path().string();
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) return "directory " + quote(dir) + " does not exist";
        return error_text(errno);
    }
    if (!S_ISDIR(st.st_mode)) return quote(dir) + " is not a directory";
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return "directory " + quote(dir) + " is not writable";
    return {};
}

// A node and how messages name it.
struct value_ref {
    YAML::Node node;
    std::string what;  // "'idle'", "each entry of 'servers'"
    source_mark mark;  // where messages about it point
};

struct field {
    std::string key;
    source_mark key_mark;
    value_ref value;
};

// An empty value (`key:` and nothing) carries the mark of whatever follows it, often on
// another line, so messages about it point at its key instead.
value_ref value_of(const YAML::Node& key, const YAML::Node& value, const std::string& name) {
    return {value, quote(name), value.IsNull() ? mark_of(key) : mark_of(value)};
}

struct section {
    source_mark mark;
    std::vector<field> fields;

    const field* get(std::string_view key) const {
        for (const auto& f : fields) {
            if (f.key == key) return &f;
        }
        return nullptr;
    }
};

struct upstream_reference {
    std::string name;
    source_mark mark;
};

// Where a list of rules is, for the conditions that only some places can evaluate.
enum class rule_scope { global, location, activesync_location };

class loader {
public:
    loader(diagnostics& diags, fs::path base_dir) : diags_(diags), base_dir_(std::move(base_dir)) {}

    void load(const YAML::Node& doc, root& out);

private:
    void error(source_mark m, std::string message) { diags_.error(m, std::move(message)); }
    void warning(source_mark m, std::string message) { diags_.warning(m, std::move(message)); }

    // Structure.
    std::optional<section> open(const value_ref& v, std::initializer_list<std::string_view> known);
    const field* require(const section& s, std::string_view key);
    bool expect_map(const value_ref& v);
    std::optional<std::vector<value_ref>> items(const value_ref& v);

    // Scalars.
    std::optional<std::string> string(const value_ref& v, std::string_view noun = "a string");
    std::optional<std::string> non_empty_string(const value_ref& v);
    std::optional<duration> duration_value(const value_ref& v);
    std::optional<duration> timeout(const value_ref& v);
    std::optional<std::uint64_t> size(const value_ref& v);
    std::optional<std::uint64_t> integer(const value_ref& v, std::uint64_t min, std::uint64_t max);
    std::optional<bool> boolean(const value_ref& v);
    template <typename E>
    std::optional<E> choice(const value_ref& v,
                            std::initializer_list<std::pair<std::string_view, E>> options);
    std::optional<std::string> name(const value_ref& v);
    std::optional<std::vector<marked_string>> strings(const value_ref& v);
    std::optional<rule_mode> mode(const value_ref& v);
    std::optional<std::string> readable_file(const value_ref& v, std::string_view noun);
    std::string resolve(const std::string& p) const;

    // Sections.
    void read_server(const value_ref& v, server_section& out);
    void read_log(const value_ref& v, log_section& out);
    void read_listeners(const value_ref& v, std::vector<listener_section>& out);
    void read_listener(const value_ref& v, listener_section& out);
    void read_addresses(const value_ref& v, listener_section& out);
    void read_http_redirect(const value_ref& v, listener_section& out);
    void read_listener_tls(const value_ref& v, listener_tls& out);
    void read_cipher_settings(const section& s, listener_tls& out);
    void read_hsts(const value_ref& v, hsts_settings& out);
    void read_session_tickets(const value_ref& v, session_ticket_settings& out);
    void read_upstream_tls(const value_ref& v, upstream_tls& out);
    void read_upstreams(const value_ref& v, std::vector<upstream_section>& out);
    void read_upstream(const value_ref& v, upstream_section& out);
    void read_headers(const value_ref& v, header_policy_section& out);
    void read_header_additions(const value_ref& v,
                               std::vector<std::pair<std::string, std::string>>& out);
    void read_header_removals(const value_ref& v, std::vector<std::string>& out);
    void read_limits(const value_ref& v, limits_section& out);
    void read_timeouts(const value_ref& v, timeouts_section& out);
    void read_locations(const value_ref& v, std::vector<location_section>& out);
    void read_location(const value_ref& v, location_section& out);
    void read_rules(const value_ref& v, rule_scope scope, std::vector<rule_section>& out);
    void read_rule(const value_ref& v, rule_scope scope,
                   std::unordered_map<std::string, int>& names, std::vector<rule_section>& out);
    void read_preset(const value_ref& v, std::unordered_map<std::string, int>& names,
                     std::vector<rule_section>& out);
    void read_condition(const value_ref& v, bool negate, rule_scope scope, condition_block& out);
    void read_eas_condition(const field& f, rule_scope scope, condition_block& out);
    void read_patterns(const value_ref& v, std::vector<marked_string>& out);
    void read_named_patterns(
        const value_ref& v, std::string_view noun,
        std::vector<std::pair<marked_string, std::vector<marked_string>>>& out);
    void read_ip_restrictions(const value_ref& v, ip_restrictions_section& out);
    void read_dynamic_ip(const value_ref& v, bool top_level, dynamic_ip_section& out);
    void read_auth_failures(const value_ref& v, auth_failure_section& out);

    diagnostics& diags_;
    fs::path base_dir_;

    // Cross-references and uniqueness, checked once everything is read.
    using line_number = int;
    std::unordered_map<std::string, line_number> listener_names_;
    // canonical address -> (listener name, line)
    std::unordered_map<std::string, std::pair<std::string, line_number>> listen_addresses_;
    std::unordered_map<std::string, line_number> upstream_names_;
    // lower-case path -> (path as written, line)
    std::unordered_map<std::string, std::pair<std::string, line_number>> location_paths_;
    std::vector<upstream_reference> upstream_references_;
    // Whether every upstream's name is known, so that a reference to another name is
    // certainly wrong rather than a consequence of an error already reported.
    bool upstream_names_complete_ = false;
};

std::optional<section> loader::open(const value_ref& v,
                                    std::initializer_list<std::string_view> known) {
    if (!expect_map(v)) return std::nullopt;
    section s;
    s.mark = v.mark;
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        const YAML::Node key = it->first;
        if (!key.IsScalar()) {
            error(mark_of(key), "keys must be strings, got " + std::string(kind_of(key)));
            continue;
        }
        const std::string& k = key.Scalar();
        if (std::find(known.begin(), known.end(), k) == known.end()) {
            error(mark_of(key), "unknown key " + quote(k) + suggestion(k, known));
            continue;
        }
        if (const field* first = s.get(k)) {
            error(mark_of(key), "duplicate key " + quote(k) + " (first defined at line " +
                                    std::to_string(first->key_mark.line) + ")");
            continue;
        }
        s.fields.push_back({k, mark_of(key), value_of(key, it->second, k)});
    }
    return s;
}

const field* loader::require(const section& s, std::string_view key) {
    const field* f = s.get(key);
    if (!f) error(s.mark, "missing required key " + quote(key));
    return f;
}

bool loader::expect_map(const value_ref& v) {
    if (v.node.IsMap()) return true;
    error(v.mark, v.what + " must be a map, got " + std::string(kind_of(v.node)));
    return false;
}

std::optional<std::vector<value_ref>> loader::items(const value_ref& v) {
    if (!v.node.IsSequence()) {
        error(v.mark, v.what + " must be a list, got " + std::string(kind_of(v.node)));
        return std::nullopt;
    }
    std::vector<value_ref> out;
    for (const auto& item : v.node) {
        const source_mark m = item.IsNull() ? v.mark : mark_of(item);
        out.push_back({item, "each entry of " + v.what, m});
    }
    return out;
}

std::optional<std::string> loader::string(const value_ref& v, std::string_view noun) {
    if (v.node.IsScalar()) return v.node.Scalar();
    error(v.mark,
          v.what + " must be " + std::string(noun) + ", got " + std::string(kind_of(v.node)));
    return std::nullopt;
}

std::optional<std::string> loader::non_empty_string(const value_ref& v) {
    auto s = string(v);
    if (s && s->empty()) {
        error(v.mark, v.what + " must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<duration> loader::duration_value(const value_ref& v) {
    auto text = string(v, "a duration");
    if (!text) return std::nullopt;
    auto parsed = parse_duration(*text);
    if (!parsed) {
        error(v.mark, "invalid duration " + quote(*text) + " for " + v.what + ": " + parsed.error);
    }
    return parsed.value;
}

std::optional<duration> loader::timeout(const value_ref& v) {
    auto d = duration_value(v);
    if (d && (d->count() <= 0 || *d > max_timeout)) {
        error(v.mark, v.what + " must be more than 0 and at most " + std::string(max_timeout_text) +
                          ", got " + quote(v.node.Scalar()));
        return std::nullopt;
    }
    return d;
}

std::optional<std::uint64_t> loader::size(const value_ref& v) {
    auto text = string(v, "a size");
    if (!text) return std::nullopt;
    auto parsed = parse_size(*text);
    if (!parsed) {
        error(v.mark, "invalid size " + quote(*text) + " for " + v.what + ": " + parsed.error);
    }
    return parsed.value;
}

std::optional<std::uint64_t> loader::integer(const value_ref& v, std::uint64_t min,
                                             std::uint64_t max) {
    auto text = string(v, "an integer");
    if (!text) return std::nullopt;
    const bool digits_only =
        !text->empty() && text->size() <= 19 && std::all_of(text->begin(), text->end(), is_digit);
    const std::uint64_t n = digits_only ? std::stoull(*text) : 0;
    if (!digits_only || n < min || n > max) {
        error(v.mark, v.what + " must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got " + quote(*text));
        return std::nullopt;
    }
    return n;
}

std::optional<bool> loader::boolean(const value_ref& v) {
    auto text = string(v, "true or false");
    if (!text) return std::nullopt;
    // YAML 1.2 core schema only: `yes`/`on` are strings there, and guessing is how
    // configuration means something other than what it says.
    if (*text == "true" || *text == "True" || *text == "TRUE") return true;
    if (*text == "false" || *text == "False" || *text == "FALSE") return false;
    error(v.mark, v.what + " must be true or false, got " + quote(*text));
    return std::nullopt;
}

template <typename E>
std::optional<E> loader::choice(const value_ref& v,
                                std::initializer_list<std::pair<std::string_view, E>> options) {
    auto text = string(v);
    if (!text) return std::nullopt;
    std::string expected;
    std::size_t i = 0;
    for (const auto& [word, value] : options) {
        if (word == *text) return value;
        if (i > 0) expected += i + 1 == options.size() ? " or " : ", ";
        expected += word;
        ++i;
    }
    error(v.mark,
          "invalid value " + quote(*text) + " for " + v.what + " (expected " + expected + ")");
    return std::nullopt;
}

std::optional<std::string> loader::name(const value_ref& v) {
    auto s = non_empty_string(v);
    if (s && !is_simple_name(*s)) {
        error(v.mark, "invalid name " + quote(*s) + " (use letters, digits, '.', '_' and '-')");
        return std::nullopt;
    }
    return s;
}

// A string or a list of strings (one string stands for a list of one), each non-empty
// and with its own mark. nullopt when the value is of the wrong kind; entries that are
// not usable are reported and left out.
std::optional<std::vector<marked_string>> loader::strings(const value_ref& v) {
    std::vector<value_ref> list;
    if (v.node.IsScalar()) {
        list.push_back(v);
    } else if (v.node.IsSequence()) {
        list = *items(v);
    } else {
        error(v.mark, v.what + " must be a string or a list of strings, got " +
                          std::string(kind_of(v.node)));
        return std::nullopt;
    }
    std::vector<marked_string> out;
    for (const auto& item : list) {
        if (auto text = non_empty_string(item)) out.push_back({*text, item.mark});
    }
    return out;
}

std::optional<rule_mode> loader::mode(const value_ref& v) {
    return choice<rule_mode>(v, {{"enforce", rule_mode::enforce}, {"report", rule_mode::report}});
}

std::string loader::resolve(const std::string& p) const {
    fs::path path(p);
    if (path.is_relative()) path = base_dir_ / path;
    return path.lexically_normal().string();
}

std::optional<std::string> loader::readable_file(const value_ref& v, std::string_view noun) {
    auto s = non_empty_string(v);
    if (!s) return std::nullopt;
    std::string path = resolve(*s);
    if (auto problem = readable_problem(path); !problem.empty()) {
        error(v.mark, "cannot read " + std::string(noun) + " " + quote(path) + ": " + problem);
    }
    return path;
}

void loader::load(const YAML::Node& doc, root& out) {
    auto top = open({doc, "the configuration", mark_of(doc)},
                    {"server", "log", "listeners", "upstreams", "headers", "limits", "timeouts",
                     "policy_mode", "request_blocking", "locations", "dynamic_ip_restrictions",
                     "auth_failure_limits", "anonymous_autodiscover"});
    if (!top) return;
    if (auto f = top->get("server")) read_server(f->value, out.server);
    if (auto f = top->get("log")) read_log(f->value, out.log);
    if (auto f = require(*top, "listeners")) read_listeners(f->value, out.listeners);
    if (auto f = require(*top, "upstreams")) read_upstreams(f->value, out.upstreams);
    if (auto f = top->get("headers")) read_headers(f->value, out.headers);
    if (auto f = top->get("auth_failure_limits"))
        read_auth_failures(f->value, out.auth_failure_limits.emplace());
    if (auto f = top->get("dynamic_ip_restrictions")) {
        dynamic_ip_section d;
        read_dynamic_ip(f->value, true, d);
        out.dynamic_ip_restrictions = std::move(d);
    }
    if (auto f = top->get("anonymous_autodiscover")) {
        if (f->value.node.IsScalar() && f->value.node.Scalar() == "off") {
            out.anonymous_autodiscover.reset();
        } else {
            dynamic_ip_section d;
            read_dynamic_ip(f->value, false, d);
            out.anonymous_autodiscover = std::move(d);
        }
    }
    if (auto f = top->get("limits")) read_limits(f->value, out.limits);
    if (auto f = top->get("timeouts")) read_timeouts(f->value, out.timeouts);
    if (auto f = top->get("policy_mode")) {
        if (auto m = mode(f->value)) out.policy_mode = *m;
    }
    if (auto f = top->get("request_blocking")) {
        read_rules(f->value, rule_scope::global, out.request_blocking);
    }
    if (auto f = require(*top, "locations")) read_locations(f->value, out.locations);

    // Otherwise every reference might be reported as unknown, burying the one error
    // that matters.
    if (upstream_names_complete_) {
        std::vector<std::string> known;
        for (const auto& [n, line] : upstream_names_) known.push_back(n);
        std::sort(known.begin(), known.end());
        for (const auto& ref : upstream_references_) {
            if (!upstream_names_.contains(ref.name)) {
                error(ref.mark,
                      "unknown upstream " + quote(ref.name) + suggestion(ref.name, known));
            }
        }
    }
}

void loader::read_server(const value_ref& v, server_section& out) {
    auto s = open(v, {"workers", "user", "admin", "drain_timeout"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = s->get("workers")) {
        if (auto text = string(f->value, "'auto' or an integer")) {
            if (*text == "auto") {
                out.workers = 0;
            } else {
                const bool digits_only = !text->empty() && text->size() <= 3 &&
                                         std::all_of(text->begin(), text->end(), is_digit);
                const unsigned n = digits_only ? static_cast<unsigned>(std::stoul(*text)) : 0;
                if (n >= 1 && n <= 256) {
                    out.workers = n;
                } else {
                    error(f->value.mark,
                          "'workers' must be 'auto' or an integer from 1 to 256, got " +
                              quote(*text));
                }
            }
        }
    }
    if (auto f = s->get("user")) {
        if (auto user = non_empty_string(f->value)) out.user = *user;
    }
    if (auto f = s->get("admin")) {
        if (auto admin = non_empty_string(f->value)) {
            out.admin = *admin;
            out.admin_mark = f->value.mark;
        }
    }
    if (auto f = s->get("drain_timeout")) {
        if (auto d = duration_value(f->value)) out.drain_timeout = *d;
    }
}

void loader::read_log(const value_ref& v, log_section& out) {
    auto s = open(v, {"level", "access", "user_names"});
    if (!s) return;
    if (auto f = s->get("user_names")) {
        if (auto b = boolean(f->value)) out.user_names = *b;
    }
    if (auto f = s->get("level")) {
        if (auto level = choice<log_level>(f->value, {{"trace", log_level::trace},
                                                      {"debug", log_level::debug},
                                                      {"info", log_level::info},
                                                      {"warn", log_level::warn},
                                                      {"error", log_level::error}})) {
            out.level = *level;
        }
    }
    if (auto f = s->get("access")) {
        out.access_mark = f->value.mark;
        auto access = non_empty_string(f->value);
        if (!access) return;
        if (*access == "stdout" || *access == "off") {
            out.access = *access;
        } else if (*access == "stderr") {
            // Not a destination mailgate knows; a file of that name is surely not meant.
            error(f->value.mark,
                  "invalid value 'stderr' for 'access' (expected stdout, off or a path; write "
                  "./stderr for a file of that name)");
        } else {
            out.access = resolve(*access);
            if (auto problem = writable_problem(out.access); !problem.empty()) {
                error(f->value.mark,
                      "cannot write access log " + quote(out.access) + ": " + problem);
            }
        }
    }
}

void loader::read_listeners(const value_ref& v, std::vector<listener_section>& out) {
    auto list = items(v);
    if (!list) return;
    if (list->empty()) error(v.mark, v.what + " must not be empty");
    for (const auto& item : *list) {
        listener_section l;
        read_listener(item, l);
        out.push_back(std::move(l));
    }
}

void loader::read_listener(const value_ref& v, listener_section& out) {
    auto s =
        open(v, {"name", "address", "proxy_protocol", "trusted_proxies", "tls", "http_redirect"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = require(*s, "name")) {
        if (auto n = name(f->value)) {
            out.name = *n;
            auto [it, inserted] = listener_names_.try_emplace(*n, f->value.mark.line);
            if (!inserted) {
                error(f->value.mark, "duplicate listener name " + quote(*n) +
                                         " (first defined at line " + std::to_string(it->second) +
                                         ")");
            }
        }
    }
    if (auto f = require(*s, "address")) read_addresses(f->value, out);
    if (auto f = s->get("http_redirect")) {
        read_http_redirect(f->value, out);
        if (auto t = s->get("tls")) {
            error(t->key_mark, "a listener with http_redirect speaks plain HTTP and has no tls");
        }
    } else if (auto t = require(*s, "tls")) {
        read_listener_tls(t->value, out.tls);
    }
    if (auto f = s->get("trusted_proxies")) {
        // CIDRs are parsed where they are compiled (src/net), at these marks.
        if (auto list = strings(f->value)) out.trusted_proxies = std::move(*list);
    }
    if (auto f = s->get("proxy_protocol")) {
        // YAML 1.1 would read a bare `off` as false; yaml-cpp keeps the text, as meant.
        if (auto p = choice<proxy_protocol_mode>(f->value, {{"off", proxy_protocol_mode::off},
                                                            {"v1", proxy_protocol_mode::v1},
                                                            {"v2", proxy_protocol_mode::v2},
                                                            {"any", proxy_protocol_mode::any}})) {
            out.proxy_protocol = *p;
            if (*p != proxy_protocol_mode::off && out.http_redirect)
                error(f->value.mark,
                      "proxy_protocol is not supported on an http_redirect listener");
            const field* trusted = s->get("trusted_proxies");
            const bool no_proxies = trusted == nullptr || (trusted->value.node.IsSequence() &&
                                                           trusted->value.node.size() == 0);
            if (*p != proxy_protocol_mode::off && no_proxies) {
                warning(f->value.mark,
                        "proxy_protocol is on but trusted_proxies is empty: every connection "
                        "will be refused");
            }
        }
    }
}

void loader::read_http_redirect(const value_ref& v, listener_section& out) {
    http_redirect_settings r;
    if (v.node.IsScalar()) {
        // `http_redirect: true`; `false` is refused rather than read as a TLS listener
        // without tls.
        if (auto b = boolean(v); b && !*b) {
            error(v.mark, "http_redirect: false is not a listener: remove the key and add tls");
            return;
        } else if (!b) {
            return;
        }
    } else if (auto s = open(v, {"port", "host"})) {
        if (auto f = s->get("port")) {
            if (auto p = integer(f->value, 1, 65535)) r.port = static_cast<unsigned>(*p);
        }
        if (auto f = s->get("host")) {
            if (auto h = non_empty_string(f->value)) {
                // It goes into a Location header: a host name or address, nothing else.
                const bool ok = is_host_text(*h);
                if (ok) {
                    r.host = *h;
                } else {
                    error(f->value.mark, "invalid redirect host " + quote(*h));
                }
            }
        }
    } else {
        return;
    }
    out.http_redirect = r;
}

void loader::read_addresses(const value_ref& v, listener_section& out) {
    out.address_mark = v.mark;
    std::vector<value_ref> list;
    if (v.node.IsScalar()) {
        list.push_back(v);
    } else if (v.node.IsSequence()) {
        list = *items(v);
        if (list.empty()) error(v.mark, v.what + " must not be empty");
    } else {
        error(v.mark, v.what + " must be an address or a list of addresses, got " +
                          std::string(kind_of(v.node)));
        return;
    }
    for (const auto& item : list) {
        auto text = string(item, "an address");
        if (!text) continue;
        std::string canonical;
        if (auto problem = check_listen_address(*text, canonical); !problem.empty()) {
            error(item.mark, "invalid listener address " + quote(*text) + ": " + problem);
            continue;
        }
        out.addresses.push_back(*text);
        // Port 0 asks the kernel for a free port, so those never collide.
        if (canonical.ends_with(":0")) continue;
        auto [it, inserted] = listen_addresses_.try_emplace(canonical, out.name, item.mark.line);
        if (!inserted) {
            error(item.mark, "address " + quote(*text) + " is already used by listener " +
                                 quote(it->second.first) + " at line " +
                                 std::to_string(it->second.second));
        }
    }
}

void loader::read_listener_tls(const value_ref& v, listener_tls& out) {
    auto s = open(v, {"profile", "ciphers", "ciphersuites", "allow_weak", "certificates",
                      "server_names", "hsts", "session_tickets"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = s->get("profile")) {
        if (auto p = choice<tls_profile>(f->value, {{"intermediate", tls_profile::intermediate},
                                                    {"modern", tls_profile::modern},
                                                    {"custom", tls_profile::custom}})) {
            out.profile = *p;
        }
    }
    read_cipher_settings(*s, out);
    if (auto f = require(*s, "certificates")) {
        if (auto list = items(f->value)) {
            if (list->empty()) error(f->value.mark, f->value.what + " must not be empty");
            for (const auto& item : *list) {
                auto c = open(item, {"cert", "key", "key_passphrase_file", "ocsp_response"});
                if (!c) continue;
                certificate_entry entry;
                if (auto cert = require(*c, "cert")) {
                    entry.cert_mark = cert->value.mark;
                    if (auto path = readable_file(cert->value, "certificate file")) {
                        entry.cert = *path;
                    }
                }
                if (auto key = require(*c, "key")) {
                    entry.key_mark = key->value.mark;
                    if (auto path = readable_file(key->value, "key file")) entry.key = *path;
                }
                // Permissions of key and passphrase files are checked where they are read
                // (src/tls), so that `check` and `run` refuse the same files.
                if (auto pass = c->get("key_passphrase_file")) {
                    entry.key_passphrase_mark = pass->value.mark;
                    entry.key_passphrase_file = readable_file(pass->value, "passphrase file");
                }
                if (auto ocsp = c->get("ocsp_response")) {
                    entry.ocsp_mark = ocsp->value.mark;
                    entry.ocsp_response = readable_file(ocsp->value, "OCSP response file");
                }
                out.certificates.push_back(std::move(entry));
            }
        }
    }
    if (auto f = s->get("server_names")) {
        if (auto list = strings(f->value)) {
            for (auto& n : *list) {
                const std::string name = lower(n.text);
                const bool wildcard = name.starts_with("*.") && is_host_name(name.substr(2));
                if (!wildcard && !is_host_name(name) && !is_ipv6(name)) {
                    error(n.mark, "invalid server name " + quote(n.text) +
                                      " (expected a host name, '*.' and a domain, or an IP "
                                      "address)");
                    continue;
                }
                out.server_names.push_back({name, n.mark});
            }
        }
    }
    if (auto f = s->get("hsts")) read_hsts(f->value, out.hsts);
    if (auto f = s->get("session_tickets")) read_session_tickets(f->value, out.session_tickets);
}

// `ciphers`, `ciphersuites` and `allow_weak` belong to `profile: custom` only: the named
// profiles are fixed so that nobody weakens them by accident. The suites themselves are
// judged by src/tls, which knows what OpenSSL makes of the list.
void loader::read_cipher_settings(const section& s, listener_tls& out) {
    const bool custom = out.profile == tls_profile::custom;
    auto cipher_list = [&](const field& f, source_mark& mark) -> std::optional<std::string> {
        mark = f.value.mark;
        auto list = strings(f.value);
        if (!list) return std::nullopt;
        if (list->empty()) {
            error(f.value.mark, f.value.what + " must not be empty");
            return std::nullopt;
        }
        std::string joined;
        for (const auto& item : *list) {
            const bool clean = std::none_of(item.text.begin(), item.text.end(), [](char c) {
                const auto u = static_cast<unsigned char>(c);
                return u < 0x20 || u >= 0x7f;
            });
            if (!clean) {
                error(item.mark, "invalid cipher list " + quote(item.text));
                return std::nullopt;
            }
            if (!joined.empty()) joined += ':';
            joined += item.text;
        }
        return joined;
    };
    for (const auto& f : s.fields) {
        if ((f.key == "ciphers" || f.key == "ciphersuites" || f.key == "allow_weak") && !custom) {
            error(f.key_mark, quote(f.key) +
                                  " is only allowed with 'profile: custom' (the intermediate "
                                  "and modern profiles are fixed)");
        }
    }
    if (!custom) return;
    if (auto f = s.get("ciphers")) {
        if (auto list = cipher_list(*f, out.ciphers_mark)) out.ciphers = *list;
    } else {
        error(s.mark, "missing required key 'ciphers' (profile: custom)");
    }
    if (auto f = s.get("ciphersuites")) out.ciphersuites = cipher_list(*f, out.ciphersuites_mark);
    if (auto f = s.get("allow_weak")) {
        if (auto b = boolean(f->value)) {
            out.allow_weak = *b;
            if (*b) {
                warning(f->value.mark,
                        "allow_weak is on: RC4, 3DES, DES, NULL, EXPORT, anonymous, MD5, "
                        "static-RSA and CBC suites in 'ciphers' are not refused");
            }
        }
    }
}

void loader::read_hsts(const value_ref& v, hsts_settings& out) {
    auto h = open(v, {"max_age", "include_subdomains", "preload"});
    if (!h) return;
    if (auto m = h->get("max_age")) {
        if (auto d = duration_value(m->value)) {
            out.max_age = *d;
            if (*d < min_hsts_for_a_plus) {
                warning(m->value.mark, "hsts max_age below 180d is not enough for an A+ rating");
            }
        }
    }
    if (auto i = h->get("include_subdomains")) {
        if (auto b = boolean(i->value)) out.include_subdomains = *b;
    }
    if (auto p = h->get("preload")) {
        if (auto b = boolean(p->value)) {
            out.preload = *b;
            // What hstspreload.org requires before it accepts a domain.
            if (*b && out.max_age < min_hsts_for_preload) {
                warning(p->value.mark,
                        "hsts preload needs max_age of at least 1y to be accepted by the "
                        "preload list");
            }
            if (*b && !out.include_subdomains) {
                warning(p->value.mark,
                        "hsts preload needs include_subdomains: true to be accepted by the "
                        "preload list");
            }
        }
    }
}

// `off`, `{ rotate: 12h }` or `{ key_file: path }`.
void loader::read_session_tickets(const value_ref& v, session_ticket_settings& out) {
    out.mark = v.mark;
    if (v.node.IsScalar()) {
        if (v.node.Scalar() == "off") {
            out.mode = session_ticket_mode::off;
        } else {
            error(v.mark, "invalid value " + quote(v.node.Scalar()) + " for " + v.what +
                              " (expected off, { rotate: DURATION } or { key_file: PATH })");
        }
        return;
    }
    auto s = open(v, {"rotate", "key_file"});
    if (!s) return;
    const field* rotate = s->get("rotate");
    const field* key_file = s->get("key_file");
    if (rotate && key_file) {
        error(key_file->key_mark,
              "'rotate' and 'key_file' exclude each other (a shared key file is rotated by "
              "replacing it and reloading)");
        return;
    }
    if (!rotate && !key_file) {
        error(s->mark, "missing required key 'rotate' or 'key_file'");
        return;
    }
    if (rotate) {
        if (auto d = duration_value(rotate->value)) {
            if (*d < min_ticket_rotation || *d > max_ticket_rotation) {
                error(rotate->value.mark,
                      "'rotate' must be from 1m to 7d, got " + quote(rotate->value.node.Scalar()));
            } else {
                out.mode = session_ticket_mode::rotate;
                out.rotate = *d;
            }
        }
    }
    if (key_file) {
        out.key_file_mark = key_file->value.mark;
        if (auto path = readable_file(key_file->value, "session ticket key file")) {
            out.mode = session_ticket_mode::key_file;
            out.key_file = *path;
        }
    }
}

void loader::read_upstreams(const value_ref& v, std::vector<upstream_section>& out) {
    auto list = items(v);
    if (!list) return;
    upstream_names_complete_ = true;
    if (list->empty()) error(v.mark, v.what + " must not be empty");
    for (const auto& item : *list) {
        upstream_section u;
        read_upstream(item, u);
        if (u.name.empty()) upstream_names_complete_ = false;
        out.push_back(std::move(u));
    }
}

void loader::read_upstream(const value_ref& v, upstream_section& out) {
    auto s = open(v, {"name", "servers", "tls", "pool", "external_host", "extended_protection"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = require(*s, "name")) {
        if (auto n = name(f->value)) {
            out.name = *n;
            auto [it, inserted] = upstream_names_.try_emplace(*n, f->value.mark.line);
            if (!inserted) {
                error(f->value.mark, "duplicate upstream name " + quote(*n) +
                                         " (first defined at line " + std::to_string(it->second) +
                                         ")");
            }
        }
    }
    if (auto f = require(*s, "servers")) {
        out.servers_mark = f->value.mark;
        if (auto list = items(f->value)) {
            if (list->empty()) error(f->value.mark, f->value.what + " must not be empty");
            for (const auto& item : *list) {
                auto text = string(item, "a server address");
                if (!text) continue;
                if (auto problem = check_upstream_server(*text); !problem.empty()) {
                    error(item.mark, "invalid upstream server " + quote(*text) + ": " + problem);
                    continue;
                }
                out.servers.push_back(*text);
            }
        }
    }
    if (auto f = s->get("tls")) read_upstream_tls(f->value, out.tls);
    if (auto f = s->get("external_host")) {
        if (auto h = non_empty_string(f->value)) {
            // It is written into a response header: a host name (and port), nothing else.
            const bool ok = is_host_text(*h);
            if (ok)
                out.external_host = *h;
            else
                error(f->value.mark, "invalid external_host " + quote(*h));
        }
    }
    if (auto f = s->get("extended_protection")) {
        if (auto m = choice<extended_protection_mode>(
                f->value,
                {{"off", extended_protection_mode::off},
                 {"warn", extended_protection_mode::warn},
                 {"require_same_certificate", extended_protection_mode::require_same_certificate}}))
            out.extended_protection = *m;
    }
    if (auto f = s->get("pool")) {
        if (auto p = open(f->value, {"max_idle", "idle_timeout"})) {
            if (auto m = p->get("max_idle")) {
                if (auto n = integer(m->value, 0, 100000)) {
                    out.pool.max_idle = static_cast<unsigned>(*n);
                }
            }
            if (auto t = p->get("idle_timeout")) {
                if (auto d = timeout(t->value)) out.pool.idle_timeout = *d;
            }
        }
    }
}

// SSL bridging: verification is on unless `insecure_skip_verify: true` says otherwise,
// and that is a warning every time the configuration is checked or loaded.
void loader::read_upstream_tls(const value_ref& v, upstream_tls& out) {
    auto t = open(v, {"server_name", "ca", "client_cert", "client_key", "insecure_skip_verify"});
    if (!t) return;
    out.mark = t->mark;
    if (auto sn = t->get("server_name")) {
        if (auto text = non_empty_string(sn->value)) {
            if (is_host_name(*text) || is_ipv4(*text) || is_ipv6(*text)) {
                out.server_name = *text;
            } else {
                error(sn->value.mark, "invalid server_name " + quote(*text) +
                                          " (expected a host name or an IP address)");
            }
        }
    }
    if (auto ca = t->get("ca")) {
        out.ca_mark = ca->value.mark;
        if (auto path = readable_file(ca->value, "CA file")) out.ca = *path;
    }
    const field* cert = t->get("client_cert");
    const field* key = t->get("client_key");
    if (cert) {
        out.client_cert_mark = cert->value.mark;
        out.client_cert = readable_file(cert->value, "client certificate file");
    }
    if (key) {
        out.client_key_mark = key->value.mark;
        out.client_key = readable_file(key->value, "client key file");
    }
    if (cert && !key) error(cert->key_mark, "'client_cert' needs 'client_key'");
    if (key && !cert) error(key->key_mark, "'client_key' needs 'client_cert'");
    if (auto f = t->get("insecure_skip_verify")) {
        if (auto b = boolean(f->value)) {
            out.insecure_skip_verify = *b;
            if (*b) {
                warning(f->value.mark,
                        "insecure_skip_verify is on: the upstream's certificate and name are "
                        "not verified, so anyone on the path to it can read and change the "
                        "traffic");
                if (const field* ca = t->get("ca")) {
                    warning(ca->key_mark, "'ca' is not used while insecure_skip_verify is on");
                }
            }
        }
    }
}

void loader::read_headers(const value_ref& v, header_policy_section& out) {
    auto s = open(v, {"add", "set", "remove"});
    if (!s) return;
    // A key that is present replaces the default list: policies are written out whole,
    // so the file shows everything that is sent and stripped.
    if (auto f = s->get("add")) {
        out.add.clear();
        read_header_additions(f->value, out.add);
    }
    if (auto f = s->get("set")) {
        out.set.clear();
        read_header_additions(f->value, out.set);
    }
    if (auto f = s->get("remove")) {
        out.remove.clear();
        read_header_removals(f->value, out.remove);
    }
    // One name, one instruction: "add X" and "set X" (or "remove X") together would leave
    // the reader guessing which wins.
    // A default `add` list (not written here) gives way to the names set or removed.
    if (!s->get("add")) {
        std::erase_if(out.add, [&](const auto& f) {
            const auto named = [&](std::string_view n) { return lower(n) == lower(f.first); };
            return std::any_of(out.set.begin(), out.set.end(),
                               [&](const auto& g) { return named(g.first); }) ||
                   std::any_of(out.remove.begin(), out.remove.end(), named);
        });
    }
    std::unordered_map<std::string, std::string_view> owner;  // lower-case name -> list
    for (const auto& [n, value] : out.add) owner.emplace(lower(n), "add");
    for (const auto& [n, value] : out.set) {
        if (auto [it, inserted] = owner.emplace(lower(n), "set"); !inserted)
            error(s->mark, "header " + quote(n) + " is in both 'add' and 'set'");
    }
    for (const auto& n : out.remove) {
        if (auto it = owner.find(lower(n)); it != owner.end())
            error(s->mark, "header " + quote(n) + " is in both '" + std::string(it->second) +
                               "' and 'remove'");
    }
    if (out.add.size() + out.set.size() > max_policy_headers)
        error(s->mark, "at most " + std::to_string(max_policy_headers) +
                           " headers in 'add' and 'set' together");
}

void loader::read_header_additions(const value_ref& v,
                                   std::vector<std::pair<std::string, std::string>>& out) {
    if (!expect_map(v)) return;
    std::unordered_map<std::string, int> seen;  // lower-case name -> line
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        const YAML::Node key = it->first;
        if (!key.IsScalar()) {
            error(mark_of(key), "header names must be strings, got " + std::string(kind_of(key)));
            continue;
        }
        const std::string& header = key.Scalar();
        const source_mark key_mark = mark_of(key);
        if (!is_token(header)) {
            error(key_mark, "invalid header name " + quote(header));
            continue;
        }
        if (is_managed_header(header)) {
            error(key_mark, "header " + quote(header) + " cannot be added: " +
                                (lower(header) == "strict-transport-security"
                                     ? "set it with the listener's tls.hsts"
                                     : "the proxy manages it"));
            continue;
        }
        auto [seen_it, inserted] = seen.try_emplace(lower(header), key_mark.line);
        if (!inserted) {
            error(key_mark, "duplicate header " + quote(header) + " (first defined at line " +
                                std::to_string(seen_it->second) + ")");
            continue;
        }
        value_ref value = value_of(key, it->second, header);
        value.what = "the value of header " + quote(header);
        auto text = string(value);
        if (!text) continue;
        // RFC 9110 field-value: no control characters but HTAB. CR, LF and NUL would
        // let the configuration split the response.
        const bool clean = std::none_of(text->begin(), text->end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return (u < 0x20 && c != '\t') || u == 0x7f;
        });
        if (!clean) {
            error(value.mark, value.what + " contains a control character (CR, LF, NUL, ...)");
            continue;
        }
        out.emplace_back(header, *text);
    }
}

void loader::read_header_removals(const value_ref& v, std::vector<std::string>& out) {
    auto list = items(v);
    if (!list) return;
    std::unordered_map<std::string, int> seen;  // lower-case name -> line
    for (const auto& item : *list) {
        auto header = string(item, "a header name");
        if (!header) continue;
        if (!is_token(*header)) {
            error(item.mark, "invalid header name " + quote(*header));
            continue;
        }
        auto [it, inserted] = seen.try_emplace(lower(*header), item.mark.line);
        if (!inserted) {
            warning(item.mark, "header " + quote(*header) +
                                   " is listed twice in 'remove' (first at line " +
                                   std::to_string(it->second) + ")");
            continue;
        }
        out.push_back(*header);
    }
}

void loader::read_limits(const value_ref& v, limits_section& out) {
    auto s = open(v, {"request_line", "request_headers", "request_body", "header_count",
                      "connections", "connections_per_ip"});
    if (!s) return;
    for (auto [key, target] : {std::pair{"request_line", &out.request_line},
                               std::pair{"request_headers", &out.request_headers}}) {
        if (auto f = s->get(key)) {
            if (auto n = size(f->value)) {
                if (*n < min_head_limit || *n > max_head_limit) {
                    error(f->value.mark, f->value.what + " must be between " +
                                             format_size(min_head_limit) + " and " +
                                             format_size(max_head_limit) + ", got " +
                                             quote(f->value.node.Scalar()));
                } else {
                    *target = *n;
                }
            }
        }
    }
    if (auto f = s->get("request_body")) {
        if (auto n = size(f->value)) out.request_body = *n;
    }
    for (auto [key, target] : {std::pair{"connections", &out.connections},
                               std::pair{"connections_per_ip", &out.connections_per_ip}}) {
        if (auto f = s->get(key)) {
            if (auto n = integer(f->value, 1, 10000000)) *target = *n;
        }
    }
    if (auto f = s->get("header_count")) {
        if (auto n = integer(f->value, 1, 10000)) out.header_count = static_cast<unsigned>(*n);
    }
}

void loader::read_timeouts(const value_ref& v, timeouts_section& out) {
    auto s = open(v, {"tls_handshake", "request_header", "idle", "upstream_connect",
                      "upstream_response", "send", "body_min_rate"});
    if (!s) return;
    if (auto f = s->get("body_min_rate")) {
        if (auto n = size(f->value)) out.body_min_rate = *n;
    }
    for (auto [key, target] :
         {std::pair{"tls_handshake", &out.tls_handshake},
          std::pair{"request_header", &out.request_header}, std::pair{"idle", &out.idle},
          std::pair{"upstream_connect", &out.upstream_connect},
          std::pair{"upstream_response", &out.upstream_response}, std::pair{"send", &out.send}}) {
        if (auto f = s->get(key)) {
            if (auto d = timeout(f->value)) *target = *d;
        }
    }
}

void loader::read_locations(const value_ref& v, std::vector<location_section>& out) {
    auto list = items(v);
    if (!list) return;
    if (list->empty()) error(v.mark, v.what + " must not be empty");
    for (const auto& item : *list) {
        location_section l;
        read_location(item, l);
        out.push_back(std::move(l));
    }
}

void loader::read_location(const value_ref& v, location_section& out) {
    auto s = open(v, {"path", "kind", "upstream", "timeouts", "limits", "ip_restrictions",
                      "request_blocking", "headers", "dynamic_ip_restrictions",
                      "dynamic_device_restrictions", "auth_failure_limits"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = s->get("kind")) {
        out.kind_mark = f->value.mark;
        if (auto k = choice<location_kind>(f->value, {{"default", location_kind::generic},
                                                      {"activesync", location_kind::activesync}})) {
            out.kind = *k;
        }
    }
    if (auto f = require(*s, "path")) {
        if (auto path = non_empty_string(f->value)) {
            if (path->front() != '/') {
                error(f->value.mark, "location path " + quote(*path) + " must start with '/'");
            } else if (auto problem = location_path_problem(*path); !problem.empty()) {
                error(f->value.mark,
                      "location path " + quote(*path) + " can never match a request: " + problem);
            } else {
                out.path = *path;
                auto [it, inserted] =
                    location_paths_.try_emplace(lower(*path), *path, f->value.mark.line);
                const auto& [first_path, first_line] = it->second;
                if (!inserted) {
                    error(f->value.mark,
                          "duplicate location path " + quote(*path) +
                              (first_path == *path
                                   ? " (first defined at line " + std::to_string(first_line) + ")"
                                   : " (same as " + quote(first_path) + " at line " +
                                         std::to_string(first_line) +
                                         ": paths match case-insensitively)"));
                }
            }
        }
    }
    if (auto f = require(*s, "upstream")) {
        out.upstream_mark = f->value.mark;
        if (auto n = non_empty_string(f->value)) {
            out.upstream = *n;
            upstream_references_.push_back({*n, f->value.mark});
        }
    }
    if (auto f = s->get("timeouts")) {
        if (auto t = open(f->value, {"idle", "upstream_response"})) {
            if (auto idle = t->get("idle")) out.timeouts.idle = timeout(idle->value);
            if (auto r = t->get("upstream_response")) {
                out.timeouts.upstream_response = timeout(r->value);
            }
        }
    }
    if (auto f = s->get("limits")) {
        if (auto l = open(f->value, {"request_body"})) {
            if (auto b = l->get("request_body")) out.request_body = size(b->value);
        }
    }
    if (auto f = s->get("ip_restrictions")) {
        ip_restrictions_section r;
        read_ip_restrictions(f->value, r);
        out.ip_restrictions = std::move(r);
    }
    if (auto f = s->get("dynamic_ip_restrictions")) {
        dynamic_ip_section d;
        read_dynamic_ip(f->value, false, d);
        out.dynamic_ip_restrictions = std::move(d);
    }
    if (auto f = s->get("auth_failure_limits"))
        read_auth_failures(f->value, out.auth_failure_limits.emplace());
    if (auto f = s->get("dynamic_device_restrictions")) {
        dynamic_ip_section d;
        read_dynamic_ip(f->value, false, d);
        if (out.kind != location_kind::activesync)
            error(f->key_mark,
                  "dynamic_device_restrictions needs 'kind: activesync' on its location");
        out.dynamic_device_restrictions = std::move(d);
    }
    if (auto f = s->get("headers")) {
        auto h = header_policy_section::empty();
        read_headers(f->value, h);
        out.headers = std::move(h);
    }
    if (auto f = s->get("request_blocking")) {
        read_rules(f->value,
                   out.kind == location_kind::activesync ? rule_scope::activesync_location
                                                         : rule_scope::location,
                   out.request_blocking);
    }
}

// A list of rules: the global one or a location's. Names are unique within the list,
// since logs and counters name a rule by its list and its name.
void loader::read_rules(const value_ref& v, rule_scope scope, std::vector<rule_section>& out) {
    auto list = items(v);
    if (!list) return;
    std::unordered_map<std::string, int> names;  // name -> line
    for (const auto& item : *list) {
        bool preset = false;
        if (item.node.IsMap()) {
            for (auto it = item.node.begin(); it != item.node.end(); ++it) {
                if (it->first.IsScalar() && it->first.Scalar() == "preset") preset = true;
            }
        }
        if (preset) {
            read_preset(item, names, out);
        } else {
            read_rule(item, scope, names, out);
        }
    }
}

// `- preset: NAME`: rule sets that ship inside mailgate, expanded here into named rules
// ("<preset>/<rule>") that log, count and can be set to report mode like any other.
//   exchange-shields: Microsoft's Exchange mitigations and the strict shapes of
//     EXCHANGE-PROTOCOL.md R20-R23; `admin_networks` (default: loopback) may reach /ecp
//     and /powershell.
//   scanners: known scanner User-Agents aborted (R25: classification, never trust).
// `report: [rule, ...]` turns the named rules of the preset into report mode.
void loader::read_preset(const value_ref& v, std::unordered_map<std::string, int>& names,
                         std::vector<rule_section>& out) {
    auto s = open(v, {"preset", "admin_networks", "report"});
    if (!s) return;
    const field* f = s->get("preset");
    auto preset = f ? non_empty_string(f->value) : std::nullopt;
    if (!preset) return;
    const source_mark at = f->value.mark;
    const auto ms = [&](std::string text) { return marked_string{std::move(text), at}; };
    const auto block = [&] {
        condition_block b;
        b.mark = at;
        return b;
    };
    std::vector<rule_section> rules;
    const auto rule = [&](std::string name, condition_block when, action act) {
        rule_section r;
        r.name = *preset + "/" + name;
        r.condition = std::move(when);
        r.act = act;
        r.mark = s->mark;
        r.name_mark = at;
        rules.push_back(std::move(r));
        return &rules.back();
    };
    if (*preset == "exchange-shields") {
        std::vector<marked_string> admins;
        if (auto a = s->get("admin_networks")) {
            if (auto list = strings(a->value)) admins = std::move(*list);
        } else {
            admins = {ms("127.0.0.1/32"), ms("::1/128")};
        }
        const auto admin_block = [&] {
            auto b = block();
            b.has_client_ip = true;
            b.client_ip = admins;
            return b;
        };
        // R23, Microsoft's BackendCookieMitigation (ProxyLogon).
        auto cookies = block();
        cookies.header.push_back(
            {ms("Cookie"), {ms("X-AnonResource-Backend"), ms("X-BEResource=.+/.+~.+")}});
        rule("proxylogon-cookies", std::move(cookies), action::abort);
        // R21, Microsoft's M1.1 "PowerShell - inbound": (?=.*autodiscover)(?=.*powershell) on
        // {UrlDecode:{REQUEST_URI}}, without lookahead (RE2 has none): either order.
        auto m11 = block();
        m11.has_uri = true;
        m11.uri = {ms("autodiscover.*powershell|powershell.*autodiscover")};
        rule("m1-1", std::move(m11), action::abort);
        // R20: /ecp and /powershell only from the admin networks...
        auto admin_paths = block();
        admin_paths.has_uri = true;
        admin_paths.uri = {ms("^/(ecp|powershell)(/|\\?|$)")};
        rule("admin-paths", std::move(admin_paths), action::abort)->unless = admin_block();
        // ...and "powershell" anywhere else in the decoded path or query neither (ProxyShell,
        // ProxyNotShell, OWASSRF through /owa).
        auto anywhere = block();
        anywhere.has_uri = true;
        anywhere.uri = {ms("powershell")};
        rule("powershell", std::move(anywhere), action::abort)->unless = admin_block();
        // R22: autodiscover.json only in its two legitimate shapes.
        auto shapes = block();
        shapes.malformed = {ms("autodiscover_json")};
        rule("autodiscover-json", std::move(shapes), action::bad_request);
    } else if (*preset == "scanners") {
        if (auto a = s->get("admin_networks"))
            error(a->key_mark, "admin_networks belongs to the exchange-shields preset");
        auto ua = block();
        ua.has_user_agent = true;
        for (const char* p : {"masscan", "zgrab", "Nmap Scripting Engine", "Nikto", "sqlmap",
                              "CensysInspect", "nuclei", "WPScan", "DirBuster", "gobuster",
                              "Expanse, a Palo Alto Networks company", "l9explore", "httpx"})
            ua.user_agent.push_back(ms(p));
        rule("user-agents", std::move(ua), action::abort);
    } else {
        error(at, "unknown preset " + quote(*preset) + " (expected exchange-shields or scanners)");
        return;
    }
    if (auto r = s->get("report")) {
        if (auto list = strings(r->value)) {
            for (const auto& n : *list) {
                auto it = std::find_if(rules.begin(), rules.end(), [&](const rule_section& x) {
                    return x.name == *preset + "/" + n.text;
                });
                if (it == rules.end()) {
                    error(n.mark, "preset " + quote(*preset) + " has no rule " + quote(n.text));
                    continue;
                }
                it->mode = rule_mode::report;
            }
        }
    }
    if (auto it = names.find(rules.front().name); it != names.end()) {
        error(at, "preset " + quote(*preset) + " is already in this list (line " +
                      std::to_string(it->second) + ")");
        return;
    }
    for (auto& r : rules) {
        names.emplace(r.name, at.line);
        out.push_back(std::move(r));
    }
}

void loader::read_rule(const value_ref& v, rule_scope scope,
                       std::unordered_map<std::string, int>& names,
                       std::vector<rule_section>& out) {
    auto s = open(v, {"name", "if", "if_not", "action", "mode"});
    if (!s) return;
    rule_section rule;
    rule.mark = s->mark;
    if (auto f = require(*s, "name")) {
        rule.name_mark = f->value.mark;
        if (auto n = name(f->value)) {
            rule.name = *n;
            auto [it, inserted] = names.try_emplace(*n, f->value.mark.line);
            if (!inserted) {
                error(f->value.mark, "duplicate rule name " + quote(*n) + " (first at line " +
                                         std::to_string(it->second) + ")");
            }
        }
    }
    // `if` alone, `if_not` alone, or both: then the rule fires when `if` holds and `if_not`
    // does not.
    const field* when = s->get("if");
    const field* unless = s->get("if_not");
    const bool have_condition = when != nullptr || unless != nullptr;
    if (when != nullptr) read_condition(when->value, false, scope, rule.condition);
    if (unless != nullptr && when == nullptr) {
        rule.negate = true;
        read_condition(unless->value, true, scope, rule.condition);
    } else if (unless != nullptr) {
        read_condition(unless->value, true, scope, rule.unless.emplace());
    }
    if (!have_condition) error(s->mark, "missing required key 'if' or 'if_not'");
    if (auto f = require(*s, "action")) {
        if (auto a = choice<action>(f->value, {{"allow", action::allow},
                                               {"abort", action::abort},
                                               {"forbidden", action::forbidden},
                                               {"not_found", action::not_found},
                                               {"unauthorized", action::unauthorized},
                                               {"too_many_requests", action::too_many_requests},
                                               {"bad_request", action::bad_request}})) {
            rule.act = *a;
        }
    }
    if (auto f = s->get("mode")) rule.mode = mode(f->value);
    out.push_back(std::move(rule));
}

// Every condition written must hold; inside one, a list means "any of". Patterns and
// CIDRs are compiled by the policy module, which reports their errors at these marks.
void loader::read_condition(const value_ref& v, bool negate, rule_scope scope,
                            condition_block& out) {
    auto s = open(
        v, {"user_agent", "client_ip", "method", "header", "query", "eas", "uri", "malformed"});
    if (!s) return;
    out.mark = s->mark;
    if (v.node.size() == 0) {
        warning(v.mark, negate ? "empty condition block: the rule never fires"
                               : "empty condition block: the rule always fires");
        return;
    }
    if (auto f = s->get("user_agent")) {
        out.has_user_agent = true;
        read_patterns(f->value, out.user_agent);
    }
    if (auto f = s->get("client_ip")) {
        out.has_client_ip = true;
        read_patterns(f->value, out.client_ip);
    }
    if (auto f = s->get("method")) {
        out.has_method = true;
        std::vector<marked_string> methods;
        read_patterns(f->value, methods);
        for (auto& m : methods) {
            if (!is_token(m.text)) {
                error(m.mark, "invalid method " + quote(m.text) + " (expected an HTTP token)");
                continue;
            }
            out.method.push_back(std::move(m));
        }
    }
    if (auto f = s->get("header")) read_named_patterns(f->value, "header", out.header);
    if (auto f = s->get("query")) read_named_patterns(f->value, "query parameter", out.query);
    if (auto f = s->get("eas")) read_eas_condition(*f, scope, out);
    if (auto f = s->get("uri")) {
        out.has_uri = true;
        read_patterns(f->value, out.uri);
    }
    if (auto f = s->get("malformed")) {
        std::vector<marked_string> shapes;
        read_patterns(f->value, shapes);
        for (auto& m : shapes) {
            if (m.text != "autodiscover_json") {
                error(m.mark, "unknown shape " + quote(m.text) + " (expected autodiscover_json)");
                continue;
            }
            out.malformed.push_back(std::move(m));
        }
    }
}

// `eas: {cmd, user, device_id, device_type, protocol, device_id_file}`: facts of the decoded
// ActiveSync request, which only a location of kind activesync has. The file is read when
// the policy is compiled (and so again on every reload); here it must be readable.
void loader::read_eas_condition(const field& f, rule_scope scope, condition_block& out) {
    if (scope == rule_scope::global) {
        error(f.key_mark,
              "'eas' conditions are not allowed in the global request_blocking: only a location "
              "with 'kind: activesync' decodes ActiveSync requests");
    } else if (scope == rule_scope::location) {
        error(f.key_mark, "'eas' conditions need 'kind: activesync' on their location");
    }
    auto s =
        open(f.value, {"cmd", "user", "device_id", "device_type", "protocol", "device_id_file"});
    if (!s) return;
    eas_condition e;
    e.mark = s->mark;
    if (f.value.node.size() == 0) {
        warning(f.value.mark, f.value.what + " is an empty map: it adds no condition");
    }
    const std::tuple<std::string_view, std::vector<marked_string>*, bool*> lists[] = {
        {"cmd", &e.cmd, &e.has_cmd},
        {"user", &e.user, &e.has_user},
        {"device_id", &e.device_id, &e.has_device_id},
        {"device_type", &e.device_type, &e.has_device_type},
        {"protocol", &e.protocol, &e.has_protocol}};
    for (const auto& [key, list, has] : lists) {
        if (auto g = s->get(key)) {
            *has = true;
            read_patterns(g->value, *list);
        }
    }
    if (auto g = s->get("device_id_file")) {
        e.device_id_file_mark = g->value.mark;
        e.device_id_file = readable_file(g->value, "device_id_file");
    }
    out.eas = std::move(e);
}

// One condition's values; an empty list can never match, which is legal but surely not
// what was meant.
void loader::read_patterns(const value_ref& v, std::vector<marked_string>& out) {
    auto list = strings(v);
    if (!list) return;
    if (v.node.IsSequence() && v.node.size() == 0) {
        warning(v.mark, "condition " + v.what + " is an empty list: it never matches");
    }
    out = std::move(*list);
}

// `header: {Name: patterns}` or `query: {param: patterns}`.
void loader::read_named_patterns(
    const value_ref& v, std::string_view noun,
    std::vector<std::pair<marked_string, std::vector<marked_string>>>& out) {
    if (!expect_map(v)) return;
    const bool is_header = noun == "header";
    std::unordered_map<std::string, int> seen;  // name (lower-case for headers) -> line
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        const YAML::Node key = it->first;
        const source_mark key_mark = mark_of(key);
        if (!key.IsScalar()) {
            error(key_mark,
                  std::string(noun) + " names must be strings, got " + std::string(kind_of(key)));
            continue;
        }
        const std::string& n = key.Scalar();
        if (is_header && !is_token(n)) {
            error(key_mark, "invalid header name " + quote(n));
            continue;
        }
        if (!is_header && !is_query_name(n)) {
            error(key_mark, "invalid query parameter name " + quote(n) +
                                " (it is matched as sent: no spaces, control characters, "
                                "'&', '=' or '#')");
            continue;
        }
        auto [seen_it, inserted] = seen.try_emplace(is_header ? lower(n) : n, key_mark.line);
        if (!inserted) {
            error(key_mark, "duplicate " + std::string(noun) + " " + quote(n) + " (first at line " +
                                std::to_string(seen_it->second) + ")");
            continue;
        }
        value_ref value = value_of(key, it->second, n);
        value.what = std::string(noun) + " " + quote(n);
        std::vector<marked_string> patterns;
        read_patterns(value, patterns);
        out.emplace_back(marked_string{n, key_mark}, std::move(patterns));
    }
    if (v.node.size() == 0) {
        warning(v.mark, v.what + " is an empty map: it adds no condition");
    }
}

// IIS "IP Address and Domain Restrictions" for one location.
void loader::read_ip_restrictions(const value_ref& v, ip_restrictions_section& out) {
    auto s = open(v, {"allow", "deny", "action", "mode"});
    if (!s) return;
    out.mark = s->mark;
    const field* allow = s->get("allow");
    const field* deny = s->get("deny");
    if (allow == nullptr && deny == nullptr) {
        error(s->mark, "missing required key 'allow' or 'deny'");
    }
    if (allow) {
        out.has_allow = true;
        if (auto list = strings(allow->value)) {
            out.allow = std::move(*list);
            if (allow->value.node.IsSequence() && allow->value.node.size() == 0) {
                warning(allow->value.mark, "'allow' is an empty list: every client is refused");
            }
        }
    }
    if (deny) {
        if (auto list = strings(deny->value)) {
            out.deny = std::move(*list);
            if (allow == nullptr && deny->value.node.IsSequence() && deny->value.node.size() == 0) {
                warning(deny->value.mark,
                        "'deny' is an empty list and there is no 'allow': no client is refused");
            }
        }
    }
    if (auto f = s->get("action")) {
        if (auto a = choice<action>(f->value, {{"abort", action::abort},
                                               {"forbidden", action::forbidden},
                                               {"not_found", action::not_found},
                                               {"unauthorized", action::unauthorized},
                                               {"too_many_requests", action::too_many_requests}})) {
            out.act = *a;
        }
    }
    if (auto f = s->get("mode")) out.mode = mode(f->value);
}

void loader::read_auth_failures(const value_ref& v, auth_failure_section& out) {
    auto s = open(v, {"max_failures", "max_failures_per_address", "per", "cool_off", "mode"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = s->get("max_failures")) {
        if (auto n = integer(f->value, 1, 1000)) out.max_failures = *n;
    }
    if (auto f = s->get("max_failures_per_address")) {
        if (auto n = integer(f->value, 0, 100000)) out.max_failures_per_address = *n;
    }
    for (auto [key, target] : {std::pair{"per", &out.per}, std::pair{"cool_off", &out.cool_off}}) {
        if (auto f = s->get(key)) {
            if (auto d = duration_value(f->value)) {
                if (d->count() <= 0)
                    error(f->value.mark, "'" + std::string(key) + "' must be longer than 0");
                else
                    *target = *d;
            }
        }
    }
    if (auto f = s->get("mode")) out.mode = mode(f->value);
}

void loader::read_dynamic_ip(const value_ref& v, bool top_level, dynamic_ip_section& out) {
    auto s = top_level ? open(v, {"max_concurrent_requests", "max_requests", "action", "block_for",
                                  "exempt", "mode", "store", "on_store_error", "store_timeout"})
                       : open(v, {"max_concurrent_requests", "max_requests", "action", "block_for",
                                  "exempt", "mode"});
    if (!s) return;
    out.mark = s->mark;
    if (auto f = s->get("max_concurrent_requests")) {
        if (auto n = integer(f->value, 1, 1000000))
            out.max_concurrent_requests = static_cast<unsigned>(*n);
    }
    if (auto f = s->get("max_requests")) {
        if (auto r = open(f->value, {"count", "per"})) {
            if (auto c = require(*r, "count")) {
                if (auto n = integer(c->value, 1, 100000000)) out.max_requests = *n;
            }
            if (auto p = require(*r, "per")) {
                if (auto d = duration_value(p->value)) {
                    if (d->count() <= 0)
                        error(p->value.mark, "'per' must be longer than 0");
                    else
                        out.per = *d;
                }
            }
        }
    }
    out.has_limits = s->get("max_concurrent_requests") || s->get("max_requests");
    // At the top level, naming only the store is fine: the locations set their own limits,
    // and auth_failure_limits use the store too.
    if (!out.has_limits && !(top_level && s->get("store")))
        error(s->mark, "dynamic_ip_restrictions needs max_concurrent_requests or max_requests");
    if (auto f = s->get("action")) {
        if (auto a = choice<action>(f->value, {{"too_many_requests", action::too_many_requests},
                                               {"forbidden", action::forbidden},
                                               {"not_found", action::not_found},
                                               {"unauthorized", action::unauthorized},
                                               {"abort", action::abort}})) {
            out.act = *a;
        }
    }
    if (auto f = s->get("block_for")) {
        if (auto d = duration_value(f->value)) out.block_for = *d;
    }
    if (auto f = s->get("exempt")) {
        // CIDRs are parsed where they are compiled, at these marks.
        if (auto list = strings(f->value)) out.exempt = std::move(*list);
    }
    if (auto f = s->get("mode")) out.mode = mode(f->value);
    if (auto f = s->get("store")) {
        out.store_mark = f->value.mark;
        if (auto st = non_empty_string(f->value)) {
            out.store = *st;
            if (*st != "local") {
                std::string why;
                if (!st->starts_with("redis://"))
                    error(f->value.mark, *st + ": expected local or redis://host:port/db");
                else if (auto ep = parse_redis_url(*st, why); !ep)
                    error(f->value.mark, *st + ": " + why);
                else if (!is_loopback_host(ep->host))
                    warning(f->value.mark,
                            "the Redis store at " + ep->host +
                                " is reached in plaintext (no TLS in hiredis 0.14): keep it on a "
                                "private network, with a password");
            }
        }
    }
    if (auto f = s->get("on_store_error")) {
        if (auto deny = choice<bool>(f->value, {{"allow", false}, {"deny", true}}))
            out.deny_on_store_error = *deny;
    }
    if (auto f = s->get("store_timeout")) {
        if (auto d = duration_value(f->value)) {
            if (d->count() <= 0 || *d > std::chrono::seconds(5))
                error(f->value.mark, "'store_timeout' must be between 1ms and 5s");
            else
                out.store_timeout = *d;
        }
    }
}

// Diagnostics in file order, as a compiler prints them; cross-reference checks run last
// but belong where their node is.
diagnostics sorted(const diagnostics& in) {
    std::vector<diagnostic> items = in.items();
    std::stable_sort(items.begin(), items.end(), [](const diagnostic& a, const diagnostic& b) {
        return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
    });
    diagnostics out(in.file());
    for (auto& d : items) {
        if (d.level == severity::error) {
            out.error(d.mark, std::move(d.message));
        } else {
            out.warning(d.mark, std::move(d.message));
        }
    }
    return out;
}

}  // namespace

load_result load_string(std::string_view yaml, const std::string& file_name_for_diagnostics,
                        const std::string& base_dir) {
    load_result result{std::nullopt, diagnostics(file_name_for_diagnostics)};
    diagnostics& diags = result.diags;

    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(std::string(yaml));
    } catch (const YAML::DeepRecursion& e) {
        // yaml-cpp words this one "bad file", which sends the reader looking elsewhere.
        diags.error(
            e.mark.is_null() ? source_mark{} : source_mark{e.mark.line + 1, e.mark.column + 1},
            "invalid YAML: nested more than " + std::to_string(e.depth()) + " levels deep");
        return result;
    } catch (const YAML::Exception& e) {
        diags.error(
            e.mark.is_null() ? source_mark{} : source_mark{e.mark.line + 1, e.mark.column + 1},
            "invalid YAML: " + e.msg);
        return result;
    }
    if (docs.empty() || docs.front().IsNull()) {
        diags.error({1, 1}, "the configuration is empty");
        return result;
    }
    if (docs.size() > 1) {
        diags.error(mark_of(docs[1]), "only one YAML document is allowed");
        return result;
    }

    std::error_code ec;
    fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::absolute(base_dir, ec);
    if (ec) {
        diags.error({}, "cannot resolve base directory " + quote(base_dir) + ": " + ec.message());
        return result;
    }

    root config;
    config.file = file_name_for_diagnostics;
    diagnostics found(file_name_for_diagnostics);
    try {
        loader(found, base).load(docs.front(), config);
    } catch (const YAML::Exception& e) {
        // Not expected: every node is type-checked before use. Reported, never thrown on.
        found.error(mark_of(docs.front()),
                    "internal error while reading the configuration: " + std::string(e.what()));
    }
    diags = sorted(found);
    if (!diags.has_errors()) result.config = std::move(config);
    return result;
}

load_result load_file(const std::string& path) {
    auto fail = [&](const std::string& why) {
        load_result result{std::nullopt, diagnostics(path)};
        result.diags.error({}, "cannot read configuration file: " + path + ": " + why);
        return result;
    };

    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec) return fail(ec.message());
    if (fs::is_directory(status)) return fail(error_text(EISDIR));
    const auto file_size = fs::file_size(path, ec);
    if (!ec && file_size > max_file_size) return fail("larger than " + format_size(max_file_size));

    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(error_text(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return fail(error_text(errno));

    const fs::path absolute = fs::absolute(path, ec);
    const std::string base_dir = ec ? std::string() : absolute.parent_path().string();
    return load_string(text.str(), path, base_dir);
}

}  // namespace mailgate::config
