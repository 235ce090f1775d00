#include "policy/conditions.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <boost/beast/http/fields.hpp>

#include "eas/query_decoder.hpp"

namespace mailgate::policy {

namespace {

// Larger than any list of device IDs a person keeps, small enough to refuse a wrong file
// (a log, a disk image) before it is read into memory.
constexpr std::uintmax_t max_device_id_file = 64u << 20;
// The hex form of the longest device ID the base64 form can carry.
constexpr std::size_t max_device_id_text = 2 * eas::eas_facts::max_device_id;
// Line problems reported per file before the rest are only counted.
constexpr int max_line_errors = 5;

bool ci_less(std::string_view a, std::string_view b) {
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        const char x = http::ascii::to_lower(a[i]);
        const char y = http::ascii::to_lower(b[i]);
        if (x != y) return static_cast<unsigned char>(x) < static_cast<unsigned char>(y);
    }
    return a.size() < b.size();
}

bool compile_keyed(
    const std::vector<std::pair<config::marked_string, std::vector<config::marked_string>>>& in,
    auto& out, config::diagnostics& diags) {
    bool ok = true;
    out.resize(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i].key = in[i].first.text;
        ok = out[i].patterns.compile(in[i].second, diags) && ok;
    }
    return ok;
}

}  // namespace

bool compile_cidrs(const std::vector<config::marked_string>& in, net::cidr_set& out,
                   config::diagnostics& diags) {
    bool ok = true;
    for (const auto& c : in) {
        std::string error;
        if (!out.add(c.text, error)) {
            diags.error(c.mark, "invalid CIDR '" + c.text + "': " + error);
            ok = false;
        }
    }
    out.finalize();
    return ok;
}

bool read_device_ids(const std::string& path, config::source_mark mark,
                     std::vector<std::string>& out, config::diagnostics& diags) {
    const std::string name = "device_id_file '" + path + "'";
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) {
        diags.error(mark, "cannot read " + name + ": " + ec.message());
        return false;
    }
    if (size > max_device_id_file) {
        diags.error(mark, "cannot read " + name + ": larger than 64 MiB");
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        diags.error(mark, "cannot read " + name + ": " +
                              std::error_code(errno, std::generic_category()).message());
        return false;
    }
    int errors = 0;
    auto line_error = [&](std::size_t line, const std::string& what) {
        if (++errors <= max_line_errors)
            diags.error(mark, name + " line " + std::to_string(line) + ": " + what);
    };
    std::string text;
    std::size_t line_number = 0;
    while (std::getline(in, text)) {
        ++line_number;
        std::string_view line(text);
        line = line.substr(0, line.find('#'));
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (line.empty()) continue;
        const bool printable = std::all_of(line.begin(), line.end(), [](char c) {
            return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
        });
        if (!printable) {
            line_error(line_number,
                       "a device ID is printable ASCII without spaces (one ID per line)");
            continue;
        }
        if (line.size() > max_device_id_text) {
            line_error(line_number, "longer than " + std::to_string(max_device_id_text) +
                                        " characters, which no device ID is");
            continue;
        }
        std::string id(line);
        for (char& c : id) c = http::ascii::to_lower(c);
        out.push_back(std::move(id));
    }
    if (in.bad()) {
        diags.error(mark, "cannot read " + name + ": read error");
        return false;
    }
    if (errors > max_line_errors) {
        diags.error(mark, name + ": " + std::to_string(errors - max_line_errors) +
                              " more lines with errors");
    }
    if (errors > 0) return false;
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    if (out.empty()) diags.warning(mark, name + " lists no device IDs: it never matches");
    return true;
}

bool contains_device_id(const std::vector<std::string>& ids, std::string_view id) {
    const auto it =
        std::lower_bound(ids.begin(), ids.end(), id,
                         [](const std::string& a, std::string_view b) { return ci_less(a, b); });
    return it != ids.end() && http::ascii::iequals(*it, id);
}

bool condition_block_matcher::compile(const config::condition_block& block,
                                      config::diagnostics& diags) {
    bool ok = true;

    // In the order of the schema, so that errors come out roughly in the order written.
    has_user_agent_ = block.has_user_agent;
    ok = user_agent_.compile(block.user_agent, diags) && ok;

    has_client_ip_ = block.has_client_ip;
    ok = compile_cidrs(block.client_ip, client_ip_, diags) && ok;

    has_uri_ = block.has_uri;
    ok = uri_.compile(block.uri, diags) && ok;
    autodiscover_json_malformed_ = !block.malformed.empty();

    has_method_ = block.has_method;
    for (const auto& m : block.method) methods_.push_back(m.text);

    ok = compile_keyed(block.header, headers_, diags) && ok;
    ok = compile_keyed(block.query, query_, diags) && ok;

    if (const auto& e = block.eas) {
        eas_ = std::make_unique<eas_patterns>();
        auto& m = *eas_;
        m.has_cmd = e->has_cmd;
        ok = m.cmd.compile(e->cmd, diags) && ok;
        m.has_user = e->has_user;
        ok = m.user.compile(e->user, diags) && ok;
        m.has_device_id = e->has_device_id;
        ok = m.device_id.compile(e->device_id, diags) && ok;
        m.has_device_type = e->has_device_type;
        ok = m.device_type.compile(e->device_type, diags) && ok;
        m.has_protocol = e->has_protocol;
        ok = m.protocol.compile(e->protocol, diags) && ok;
        if (e->device_id_file) {
            m.has_device_id_file = true;
            ok = read_device_ids(*e->device_id_file, e->device_id_file_mark, m.device_ids, diags) &&
                 ok;
        }
    }
    return ok;
}

// A missing record reads as empty values, as a missing header does. A device ID matches
// by its ASCII form or its hex form (R8); a binary ID has only the hex form, so that a
// pattern that matches "" (say `^$`) does not match it.
bool condition_block_matcher::eas_patterns::holds(const eas::eas_facts* facts) const {
    const auto field = [&](std::string_view eas::eas_facts::*member) {
        return facts ? facts->*member : std::string_view{};
    };
    if (has_cmd && !cmd.match(field(&eas::eas_facts::cmd))) return false;
    if (has_protocol && !protocol.match(field(&eas::eas_facts::protocol_version))) return false;
    if (has_device_type && !device_type.match(field(&eas::eas_facts::device_type))) return false;
    const auto ascii = field(&eas::eas_facts::device_id_ascii);
    const auto hex = field(&eas::eas_facts::device_id_hex);
    if (has_device_id) {
        const bool any = (ascii.empty() && hex.empty())
                             ? device_id.match(std::string_view{})
                             : (!ascii.empty() && device_id.match(ascii)) ||
                                   (!hex.empty() && device_id.match(hex));
        if (!any) return false;
    }
    if (has_device_id_file && !(!ascii.empty() && contains_device_id(device_ids, ascii)) &&
        !(!hex.empty() && contains_device_id(device_ids, hex)))
        return false;
    if (has_user && !user.match(field(&eas::eas_facts::user))) return false;
    return true;
}

// Cheapest conditions first: the block is an AND, so the first that fails settles it.
bool condition_block_matcher::holds(const request_facts& facts) const {
    if (has_method_ && std::find(methods_.begin(), methods_.end(), facts.method) == methods_.end())
        return false;

    if (has_client_ip_ && !client_ip_.contains(facts.client)) return false;

    if (has_user_agent_ && !user_agent_.match(facts.user_agent)) return false;

    if (has_uri_ && !uri_.match(facts.decoded_uri)) return false;

    if (autodiscover_json_malformed_ && !autodiscover_json_malformed(facts.path, facts.query))
        return false;

    if (eas_ && !eas_->holds(facts.eas)) return false;

    for (const auto& h : headers_) {
        bool any = false, seen = false;
        if (facts.fields) {
            // Not equal_range: in Beast 1.81 it spans every field between the first and the
            // last match, fields of other names included.
            for (auto it = facts.fields->begin(); it != facts.fields->end() && !any; ++it) {
                if (!boost::beast::iequals(it->name_string(), h.key)) continue;
                seen = true;
                const auto v = it->value();
                any = h.patterns.match(std::string_view(v.data(), v.size()));
            }
        }
        if (!seen) any = h.patterns.match(std::string_view{});
        if (!any) return false;
    }

    for (const auto& q : query_) {
        if (!any_query_value(facts.query, q.key,
                             [&](std::string_view v) { return q.patterns.match(v); }))
            return false;
    }
    return true;
}

}  // namespace mailgate::policy
