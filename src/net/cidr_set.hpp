#pragma once
// A set of IPv4/IPv6 networks, compiled into sorted, merged interval tables so that a
// lookup is one binary search and allocates nothing. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are looked up as the IPv4 address they carry. Otherwise the families stay
// apart: ::/0 is all of IPv6 and holds no IPv4 client; 0.0.0.0/0 holds every IPv4 one.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace mailgate::net {

class cidr_set {
public:
    // "10.0.0.0/8", "2001:db8::/32", "192.0.2.1" (a host), "::ffff:10.0.0.0/104" (stored as
    // 10.0.0.0/8). Host bits set below the prefix are an error ("10.0.0.1/8"), as are
    // prefixes out of range. Returns false and sets `error` on bad input.
    bool add(std::string_view cidr, std::string& error);
    // Sorts and merges; call once after the last add() and before contains().
    void finalize();

    bool contains(const boost::asio::ip::address& a) const;
    bool empty() const { return v4_.empty() && v6_.empty(); }

private:
    struct range4 {
        std::uint32_t lo, hi;
    };
    // __extension__: unsigned __int128 is a GCC/Clang extension, and -Wpedantic says so.
    __extension__ using u128 = unsigned __int128;
    struct range6 {
        u128 lo, hi;
    };
    std::vector<range4> v4_;
    std::vector<range6> v6_;
};

}  // namespace mailgate::net
