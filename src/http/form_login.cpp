#include "http/form_login.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include "http/ascii.hpp"

namespace mailgate::http {

bool is_forms_login(std::string_view method, std::string_view normalized_path) {
    return method == "POST" && boost::algorithm::iends_with(normalized_path, "/auth.owa");
}

std::optional<std::string> form_field(std::string_view body, std::string_view name) {
    while (!body.empty()) {
        const auto amp = body.find('&');
        const auto pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
        std::string out;
        const auto value = pair.substr(eq + 1);
        for (std::size_t i = 0; i < value.size(); ++i) {
            if (value[i] == '+') {
                out += ' ';
            } else if (value[i] == '%') {
                if (i + 2 >= value.size()) return std::nullopt;
                const int hi = ascii::hex_value(value[i + 1]), lo = ascii::hex_value(value[i + 2]);
                if (hi < 0 || lo < 0) return std::nullopt;
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
            } else {
                out += value[i];
            }
        }
        return out;
    }
    return std::nullopt;
}

bool is_failed_forms_login(unsigned status, std::string_view location) {
    return status >= 300 && status < 400 &&
           boost::algorithm::icontains(location, "/auth/logon.aspx");
}

}  // namespace mailgate::http
