// wschat — where a Redis server is and how to log in: parsed from a redis:// or unix:// URL.
#pragma once

#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// A Redis server's address and the login sent when connecting.
///
/// | URL | meaning |
/// |---|---|
/// | `redis://host` | TCP, port 6379, database 0, no AUTH |
/// | `redis://host:6380/2` | TCP port 6380, `SELECT 2` after connecting |
/// | `redis://:secret@127.0.0.1` | `AUTH secret` (the `requirepass` password) |
/// | `redis://user:secret@[::1]:6379` | `AUTH user secret` (an ACL user, Redis 6+) |
/// | `unix:///run/redis/redis.sock` | the Unix socket at that path |
/// | `unix:///run/redis/redis.sock?db=2&password=secret` | with SELECT and AUTH (`user=` too) |
///
/// User and password may be percent-encoded (`%40` for `@`). `rediss://` (TLS) is refused:
/// the connection has no TLS.
struct redis_endpoint {
    /// TCP host name or IP literal (without brackets); empty for a Unix socket.
    std::string host;
    /// TCP port.
    std::uint16_t port = 6379;
    /// Path of the Unix socket; empty for TCP.
    std::string path;
    /// ACL user name for `AUTH user password`; empty means `AUTH password` alone.
    std::string username;
    /// Password; empty means no AUTH is sent.
    std::string password;
    /// Database number for `SELECT`; 0 sends none.
    int database = 0;

    /// True for a Unix socket endpoint.
    bool is_unix() const noexcept { return !path.empty(); }

    /// Where this endpoint leads, for logs, without the password: "redis://host:port/db" or
    /// "unix:///path".
    std::string describe() const {
        std::string out =
            is_unix()
                ? "unix://" + path
                : "redis://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                      ":" + std::to_string(port);
        if (database != 0)
            out += (is_unix() ? "?db=" : "/") + std::to_string(database);
        return out;
    }
};

namespace redis_url_detail {

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// `text` with its %XX escapes decoded; false on a malformed escape.
inline bool percent_decode(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size())
            return false;
        const int high = hex_value(text[i + 1]);
        const int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0)
            return false;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return true;
}

/// A decimal number in [0, max]; false for anything else (empty, sign, junk, overflow).
inline bool parse_number(std::string_view text, long max, long& value) {
    if (text.empty() || text.size() > 9)
        return false;
    value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + (c - '0');
    }
    return value <= max;
}

} // namespace redis_url_detail

/// Parses `url` (see `redis_endpoint`). On failure sets `ec` to `redis_errc::invalid_url`,
/// puts the reason in `why` and returns an empty endpoint.
inline redis_endpoint parse_redis_url(std::string_view url, std::error_code& ec, std::string& why) {
    using namespace redis_url_detail;
    ec.clear();
    why.clear();
    redis_endpoint ep;
    const auto fail = [&](const char* reason) {
        ec = make_error_code(redis_errc::invalid_url);
        why = reason;
        return redis_endpoint{};
    };
    long number = 0;
    if (url.substr(0, 7) == "unix://") {
        std::string_view rest = url.substr(7);
        std::string_view query;
        if (const auto q = rest.find('?'); q != std::string_view::npos) {
            query = rest.substr(q + 1);
            rest = rest.substr(0, q);
        }
        if (rest.empty() || rest.front() != '/')
            return fail("a unix:// URL needs an absolute path: unix:///path/to/redis.sock");
        ep.path = std::string{rest};
        while (!query.empty()) {
            const auto amp = query.find('&');
            const std::string_view item = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
            const auto eq = item.find('=');
            if (eq == std::string_view::npos)
                return fail("a unix:// URL's query must be key=value pairs");
            const std::string_view key = item.substr(0, eq);
            std::string value;
            if (!percent_decode(item.substr(eq + 1), value))
                return fail("malformed %-escape in the URL");
            if (key == "db") {
                if (!parse_number(value, 1 << 30, number))
                    return fail("the database must be a non-negative number");
                ep.database = static_cast<int>(number);
            } else if (key == "password") {
                ep.password = std::move(value);
            } else if (key == "user") {
                ep.username = std::move(value);
            } else {
                return fail("unknown parameter in a unix:// URL (db, password and user are known)");
            }
        }
        if (!ep.username.empty() && ep.password.empty())
            return fail("a user name needs a password");
        return ep;
    }
    if (url.substr(0, 9) == "rediss://")
        return fail("rediss:// (TLS) is not supported: use redis:// or unix://");
    if (url.substr(0, 8) != "redis://")
        return fail("the URL must start with redis:// or unix://");
    std::string_view rest = url.substr(8);
    std::string_view authority = rest.substr(0, rest.find('/'));
    const std::string_view db =
        authority.size() < rest.size() ? rest.substr(authority.size() + 1) : std::string_view{};
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos)
            return fail("credentials must be user:password@ or :password@");
        if (!percent_decode(userinfo.substr(0, colon), ep.username) ||
            !percent_decode(userinfo.substr(colon + 1), ep.password))
            return fail("malformed %-escape in the URL");
        if (ep.password.empty())
            return fail("an empty password: leave out the credentials instead");
    }
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return fail("an IPv6 address needs its closing ]");
        ep.host = std::string{authority.substr(1, close - 1)};
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':')
            return fail("junk after the IPv6 address");
        if (!after.empty())
            port = after.substr(1);
        if (after.size() == 1)
            return fail("an empty port");
    } else {
        const auto colon = authority.find(':');
        ep.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty())
                return fail("an empty port");
        }
    }
    if (ep.host.empty())
        return fail("the URL has no host");
    if (!port.empty()) {
        if (!parse_number(port, 65535, number) || number == 0)
            return fail("the port must be a number from 1 to 65535");
        ep.port = static_cast<std::uint16_t>(number);
    }
    if (!db.empty()) {
        if (!parse_number(db, 1 << 30, number))
            return fail("the path must be a database number: redis://host:port/0");
        ep.database = static_cast<int>(number);
    }
    return ep;
}

/// Parses `url` (see `redis_endpoint`); throws `std::system_error` with
/// `redis_errc::invalid_url` and a message naming the URL's problem.
inline redis_endpoint parse_redis_url(std::string_view url) {
    std::error_code ec;
    std::string why;
    redis_endpoint ep = parse_redis_url(url, ec, why);
    if (ec)
        throw std::system_error(ec, "Redis URL '" + std::string{url} + "': " + why);
    return ep;
}

} // namespace detail

WSCHAT_END_NAMESPACE
