// wschat — one Redis reply as an owning value (status, error, integer, bulk string, nil, array).
#pragma once

#include <wschat/detail/config.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// A reply from Redis (RESP2), owning its bytes, so it outlives the read buffer it came from
/// and may be moved into a handler. Strings are binary-safe (NUL bytes included).
///
/// ```cpp
/// conn->command({"INCR", "counter"}, [](std::error_code ec, chat::detail::redis_reply r) {
///     if (!ec && r.is_integer()) use(r.integer);
/// });
/// ```
struct redis_reply {
    /// What Redis sent; `nil` for a null bulk string or a null array alike.
    enum class kind { nil, status, error, integer, string, array };

    kind type = kind::nil;
    /// The value of an `integer` reply; 0 otherwise.
    long long integer = 0;
    /// The text of a `status` or `error` reply, the bytes of a `string` reply; empty otherwise.
    std::string str;
    /// The elements of an `array` reply, in order; empty otherwise.
    std::vector<redis_reply> elements;

    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_status() const noexcept { return type == kind::status; }
    bool is_error() const noexcept { return type == kind::error; }
    bool is_integer() const noexcept { return type == kind::integer; }
    bool is_string() const noexcept { return type == kind::string; }
    bool is_array() const noexcept { return type == kind::array; }

    /// The text of a status, error or string reply (the decimal value of an integer reply is
    /// not produced: ask `integer`).
    std::string_view text() const noexcept { return str; }

    /// True when this is an error reply whose first word (Redis' error code) is `code`, such
    /// as "NOSCRIPT" or "WRONGTYPE".
    bool is_error_code(std::string_view code) const noexcept {
        if (type != kind::error || str.size() < code.size() || str.compare(0, code.size(), code))
            return false;
        return str.size() == code.size() || str[code.size()] == ' ';
    }

    /// A status reply with `text`, as Redis sends "+OK".
    static redis_reply status(std::string text) {
        redis_reply r;
        r.type = kind::status;
        r.str = std::move(text);
        return r;
    }
    /// A bulk string reply holding `bytes`.
    static redis_reply string(std::string bytes) {
        redis_reply r;
        r.type = kind::string;
        r.str = std::move(bytes);
        return r;
    }
    /// An error reply with `text`, as Redis sends "-ERR ...".
    static redis_reply error(std::string text) {
        redis_reply r;
        r.type = kind::error;
        r.str = std::move(text);
        return r;
    }
    /// An integer reply.
    static redis_reply number(long long value) {
        redis_reply r;
        r.type = kind::integer;
        r.integer = value;
        return r;
    }

    friend bool operator==(const redis_reply& a, const redis_reply& b) {
        return a.type == b.type && a.integer == b.integer && a.str == b.str &&
               a.elements == b.elements;
    }
    friend bool operator!=(const redis_reply& a, const redis_reply& b) { return !(a == b); }
};

} // namespace detail

WSCHAT_END_NAMESPACE
