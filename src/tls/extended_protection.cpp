#include "tls/extended_protection.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "runtime/snapshot.hpp"
#include "tls/cert_checks.hpp"
#include "tls/client_context.hpp"

namespace mailgate::tls {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string sha256_fingerprint(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "?";
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        if (i > 0) out += ':';
        out += hex[md[i] >> 4];
        out += hex[md[i] & 0x0f];
    }
    return out;
}

namespace {

// Why the comparison matters, in the words of the diagnostic.
constexpr std::string_view why =
    "NTLM and Kerberos logins through mailgate will fail where Exchange enforces Extended "
    "Protection, because the client binds its login to the certificate it sees (mailgate's) "
    "and Exchange checks that binding against its own certificate, so both must present the "
    "same certificate";

std::string describe(X509* cert, std::string_view listener = {}) {
    std::string out = "SHA-256 " + sha256_fingerprint(cert) + " (" + subject_of(cert);
    if (!listener.empty()) out += ", listener '" + std::string(listener) + "'";
    return out + ")";
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += separator;
        out += items[i];
    }
    return out;
}

std::string quoted(const std::vector<std::string>& names) {
    std::vector<std::string> q;
    for (const auto& n : names) q.push_back("'" + n + "'");
    return join(q, " or ");
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// The host of "host", "host:port" or "[v6]:port".
std::string host_of(const std::string& authority) {
    if (authority.starts_with('[')) return authority.substr(1, authority.find(']') - 1);
    if (std::count(authority.begin(), authority.end(), ':') == 1)
        return authority.substr(0, authority.find(':'));
    return authority;
}

// The names clients may reach this upstream by: the one mailgate verifies, and the public one.
std::vector<std::string> client_names(const runtime::compiled_upstream& u) {
    std::vector<std::string> names{lower(u.server_name)};
    if (!u.external_host.empty()) {
        const std::string external = lower(host_of(u.external_host));
        if (!external.empty() && external != names.front()) names.push_back(external);
    }
    return names;
}

std::vector<own_certificate> own_certificates(const config::root& cfg) {
    std::vector<own_certificate> out;
    for (const auto& l : cfg.listeners) {
        if (l.http_redirect) continue;
        for (const auto& c : l.tls.certificates) {
            std::string error;  // reported when the listener was compiled
            auto chain = read_certificate_chain(c.cert, error);
            if (!chain.empty()) out.push_back({l.name, std::move(chain.front())});
        }
    }
    return out;
}

// One connection to an upstream server: connect, handshake, keep the peer's leaf, close.
struct probe {
    probe(asio::io_context& io, ssl::context& ctx) : stream(io, ctx) {}

    ssl::stream<tcp::socket> stream;
    bool done = false;
    std::string failure;       // why no certificate was read
    std::string verify_error;  // the first verification error; the comparison still runs
    x509_ptr leaf;

    void start(const tcp::endpoint& ep, const std::string& server_name) {
        if (!prepare_client_stream(stream.native_handle(), server_name)) {
            done = true;
            failure = "invalid server name '" + server_name + "'";
            return;
        }
        // Verification as configured, except that a failure does not end the handshake: the
        // certificate is compared all the same, and the failure reported with it.
        stream.set_verify_callback([this](bool preverified, ssl::verify_context& vc) {
            if (!preverified && verify_error.empty())
                verify_error =
                    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc.native_handle()));
            return true;
        });
        stream.lowest_layer().async_connect(ep, [this](const boost::system::error_code& ec) {
            if (done) return;
            if (ec) {
                done = true;
                failure = ec.message();
                return;
            }
            stream.async_handshake(ssl::stream_base::client,
                                   [this](const boost::system::error_code& hs) {
                                       if (!done) finish(hs);
                                   });
        });
    }

    void finish(const boost::system::error_code& ec) {
        done = true;
        if (X509* peer = SSL_get0_peer_certificate(stream.native_handle()))
            leaf = up_ref(peer);
        else
            failure = ec ? "TLS handshake failed: " + ec.message() : "no server certificate";
        boost::system::error_code ignored;
        stream.lowest_layer().close(ignored);
    }

    void abandon(std::chrono::milliseconds timeout) {
        if (done) return;
        done = true;
        failure = "no TLS handshake within " + std::to_string(timeout.count()) + " ms";
        boost::system::error_code ignored;
        stream.lowest_layer().close(ignored);
    }
};

}  // namespace

ep_comparison compare_certificates(X509* upstream_leaf, const std::vector<own_certificate>& own,
                                   const std::vector<std::string>& names) {
    const std::string theirs = sha256_fingerprint(upstream_leaf);
    std::vector<std::string> seen;
    std::vector<std::string> all;             // mailgate's certificates, once each
    std::vector<std::string> covering_other;  // those for `names` that are not the upstream's
    bool covering_same = false, any_same = false;
    for (const auto& c : own) {
        const std::string fp = sha256_fingerprint(c.leaf.get());
        if (std::find(seen.begin(), seen.end(), fp) != seen.end()) continue;
        seen.push_back(fp);
        const bool same = fp == theirs;
        any_same = any_same || same;
        all.push_back(describe(c.leaf.get(), c.listener));
        const bool for_names = std::any_of(names.begin(), names.end(),
                                           [&](const auto& n) { return covers(c.leaf.get(), n); });
        if (!for_names) continue;
        if (same)
            covering_same = true;
        else
            covering_other.push_back(all.back());
    }
    ep_comparison out;
    const std::string presents = "presents certificate " + describe(upstream_leaf);
    if (covering_other.empty() && (covering_same || any_same)) {
        out.same = true;
    } else if (covering_same) {
        out.difference = presents + ", which mailgate presents for " + quoted(names) +
                         " together with " + join(covering_other, " and ") +
                         ", and clients may be given either";
    } else if (!covering_other.empty()) {
        out.difference = presents + ", but mailgate presents " + join(covering_other, " or ") +
                         " for " + quoted(names);
    } else if (all.empty()) {
        out.difference = presents + ", but mailgate has no certificate";
    } else {
        out.difference = presents + ", which is none of mailgate's certificates (" +
                         join(all, ", ") + "), and none of them covers " + quoted(names);
    }
    return out;
}

std::vector<std::string> check_extended_protection(const config::root& cfg,
                                                   const runtime::snapshot& snap,
                                                   config::diagnostics& diags,
                                                   std::chrono::milliseconds timeout) {
    struct target {
        const config::upstream_section& cfg;
        const runtime::compiled_upstream& compiled;
        std::unique_ptr<probe> conn;  // handlers hold its address
    };
    asio::io_context io;
    std::vector<target> targets;
    for (std::size_t i = 0; i < cfg.upstreams.size() && i < snap.upstreams.size(); ++i) {
        const auto& u = cfg.upstreams[i];
        const auto& c = snap.upstreams[i];
        if (u.extended_protection == config::extended_protection_mode::off || c.name != u.name ||
            c.servers.empty() || !c.tls)
            continue;
        // Every server of an upstream is expected to serve the same certificate: the first
        // one stands for all, so that one start makes one connection per upstream.
        targets.push_back({u, c, std::make_unique<probe>(io, *c.tls)});
        targets.back().conn->start(c.servers.front().endpoint, c.server_name);
    }
    if (targets.empty()) return {};
    io.run_for(timeout);
    for (auto& t : targets) t.conn->abandon(timeout);
    io.restart();
    io.run();  // the abandoned operations end at once

    const auto own = own_certificates(cfg);
    std::vector<std::string> same;
    for (const auto& t : targets) {
        const probe& p = *t.conn;
        const std::string who =
            "upstream '" + t.cfg.name + "' (" + t.compiled.servers.front().label + ")";
        const bool required =
            t.cfg.extended_protection == config::extended_protection_mode::require_same_certificate;
        if (!p.leaf) {
            // Never an error: refusing to start while Exchange is down (rebooting, patched)
            // would keep mail down after it is back. The next start compares again.
            diags.warning(t.cfg.mark, "extended protection: could not compare the certificate of " +
                                          who + " with mailgate's: " + p.failure +
                                          (required ? " (not an error: mailgate starts while the "
                                                      "upstream is unreachable)"
                                                    : ""));
            continue;
        }
        const bool verified = t.compiled.insecure_skip_verify || p.verify_error.empty();
        const auto cmp = compare_certificates(p.leaf.get(), own, client_names(t.compiled));
        if (cmp.same) {
            if (!verified)
                diags.warning(t.cfg.mark, "extended protection: " + who +
                                              " presents mailgate's own certificate, but it "
                                              "does not verify: " +
                                              p.verify_error);
            same.push_back("extended protection: " + who + " presents mailgate's own certificate " +
                           describe(p.leaf.get()));
            continue;
        }
        std::string message = "extended protection: " + who + " " + cmp.difference + ": ";
        message += why;
        if (!verified)
            message += "; besides, the upstream's certificate does not verify: " + p.verify_error;
        if (required)
            diags.error(t.cfg.mark, message);
        else
            diags.warning(t.cfg.mark,
                          message +
                              " (set extended_protection: off on this upstream if Exchange "
                              "does not use Extended Protection)");
    }
    return same;
}

}  // namespace mailgate::tls
