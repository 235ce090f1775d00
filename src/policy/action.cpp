#include "policy/policy.hpp"

namespace mailgate::policy {

std::string_view to_string(action a) {
    switch (a) {
        case action::allow:
            return "allow";
        case action::abort:
            return "abort";
        case action::forbidden:
            return "forbidden";
        case action::not_found:
            return "not_found";
        case action::unauthorized:
            return "unauthorized";
        case action::too_many_requests:
            return "too_many_requests";
        case action::bad_request:
            return "bad_request";
    }
    return "unknown";
}

std::string_view to_string(rule_mode m) { return m == rule_mode::report ? "report" : "enforce"; }

int status_of(action a) {
    switch (a) {
        case action::forbidden:
            return 403;
        case action::not_found:
            return 404;
        case action::unauthorized:
            return 401;
        case action::too_many_requests:
            return 429;
        case action::bad_request:
            return 400;
        case action::allow:
        case action::abort:
            return 0;
    }
    return 0;
}

}  // namespace mailgate::policy
