#include "net/cidr_set.hpp"

#include <algorithm>
#include <charconv>
#include <string>

namespace mailgate::net {

namespace {

namespace ip = boost::asio::ip;

// Parsed once at configuration time, so plain strings and asio parsing are fine here.
bool parse_prefix(std::string_view text, unsigned max, unsigned& out) {
    // Plain decimal digits only: no sign, no space, nothing a from_chars prefix would skip.
    if (text.empty() || text.size() > 3) return false;
    if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    unsigned v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    if (v > max) return false;
    out = v;
    return true;
}

// The network bits of a /prefix; a shift by the full width would be undefined, hence /0 apart.
template <class U>
U mask_of(unsigned prefix) {
    constexpr unsigned bits = sizeof(U) * 8;
    return prefix == 0 ? U{0} : ~U{0} << (bits - prefix);
}

template <class U>
U from_bytes(const ip::address_v6::bytes_type& b) {
    U v = 0;
    for (auto byte : b) v = (v << 8) | byte;
    return v;
}

template <class U>
ip::address_v6 to_v6(U v) {
    ip::address_v6::bytes_type b{};
    for (std::size_t i = b.size(); i-- > 0;) {
        b[i] = static_cast<unsigned char>(v & 0xff);
        v >>= 8;
    }
    return ip::address_v6(b);
}

// Sorted by lo, overlapping and adjacent ranges fused, so that at most one range can hold
// a given address and a lookup is one binary search.
template <class Range>
void sort_and_merge(std::vector<Range>& ranges) {
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return a.lo < b.lo; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        if (out > 0) {
            auto& last = ranges[out - 1];
            // `lo - 1` cannot wrap: lo == 0 sorts first, so it never meets a `last`.
            if (ranges[i].lo <= last.hi || ranges[i].lo - 1 <= last.hi) {
                last.hi = std::max(last.hi, ranges[i].hi);
                continue;
            }
        }
        ranges[out++] = ranges[i];
    }
    ranges.resize(out);
    ranges.shrink_to_fit();
}

template <class Range, class U>
bool lookup(const std::vector<Range>& ranges, U value) {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), value,
                               [](U v, const Range& r) { return v < r.lo; });
    if (it == ranges.begin()) return false;
    return value <= std::prev(it)->hi;
}

}  // namespace

bool cidr_set::add(std::string_view cidr, std::string& error) {
    const auto slash = cidr.find('/');
    const std::string addr_text(cidr.substr(0, slash));
    // A zone index ("fe80::1%eth0") names an interface, not a network; asio would accept it.
    if (addr_text.find('%') != std::string::npos) {
        error = "zone index not allowed in a CIDR";
        return false;
    }
    boost::system::error_code ec;
    const auto addr = ip::make_address(addr_text, ec);
    if (ec) {
        error = "not an IP address";
        return false;
    }

    const bool mapped = addr.is_v6() && addr.to_v6().is_v4_mapped();
    const unsigned max = addr.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos && !parse_prefix(cidr.substr(slash + 1), max, prefix)) {
        error = "prefix length must be a number from 0 to " + std::to_string(max);
        return false;
    }

    if (addr.is_v4()) {
        const std::uint32_t v = addr.to_v4().to_uint();
        const std::uint32_t m = mask_of<std::uint32_t>(prefix);
        if ((v & ~m) != 0) {
            error = "host bits set (the network is " + ip::address_v4(v & m).to_string() + "/" +
                    std::to_string(prefix) + ")";
            return false;
        }
        v4_.push_back({v, v | ~m});
        return true;
    }

    const u128 v = from_bytes<u128>(addr.to_v6().to_bytes());
    const u128 m = mask_of<u128>(prefix);
    if ((v & ~m) != 0) {
        error = "host bits set (the network is " + to_v6(v & m).to_string() + "/" +
                std::to_string(prefix) + ")";
        return false;
    }
    // A v4-mapped address has all of ::ffff:0:0/96 above its low 32 bits, so with host bits
    // clear the prefix is at least 96 here and the network is an IPv4 network. Other IPv6
    // networks never hold IPv4 clients, even ::/0: the families are kept apart on purpose,
    // so that "deny all IPv6" does not also lock out every IPv4 client.
    if (mapped) {
        const auto lo = static_cast<std::uint32_t>(v);
        v4_.push_back({lo, lo | ~mask_of<std::uint32_t>(prefix - 96)});
        return true;
    }
    v6_.push_back({v, v | ~m});
    return true;
}

void cidr_set::finalize() {
    sort_and_merge(v4_);
    sort_and_merge(v6_);
}

bool cidr_set::contains(const boost::asio::ip::address& a) const {
    if (a.is_v4()) return lookup(v4_, a.to_v4().to_uint());
    const auto v6 = a.to_v6();
    const auto bytes = v6.to_bytes();
    if (v6.is_v4_mapped()) {
        const std::uint32_t v = (std::uint32_t{bytes[12]} << 24) |
                                (std::uint32_t{bytes[13]} << 16) | (std::uint32_t{bytes[14]} << 8) |
                                std::uint32_t{bytes[15]};
        return lookup(v4_, v);
    }
    return lookup(v6_, from_bytes<u128>(bytes));
}

}  // namespace mailgate::net
