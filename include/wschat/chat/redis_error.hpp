// wschat — the error codes of the Redis client layer and bus, and their std::error_category.
#pragma once

#include <wschat/detail/config.hpp>

#include <string>
#include <system_error>
#include <type_traits>

WSCHAT_BEGIN_NAMESPACE(chat)

/// Every failure the Redis client layer (the connection under `chat::redis_bus`) reports to a
/// command's or a subscription's handler, and the Redis bus passes on to the application.
///
/// What matters to a caller is whether the command may have run: `unavailable`, `queue_full`
/// and `stopped` say it was never sent; `connection_lost` and `timeout` say it was sent and
/// its outcome is unknown (a retried PUBLISH may then be delivered twice).
///
/// A `redis_errc` converts implicitly to a `std::error_code` of redis_category():
///
/// ```cpp
/// if (ec == chat::redis_errc::unavailable) { ... } // Redis is away; nothing was sent
/// ```
enum class redis_errc {
    unavailable = 1,  ///< not connected (Redis down or reconnecting): the command was not sent
    connection_lost,  ///< the connection dropped after the command was sent: outcome unknown
    timeout,          ///< no reply (or no connection) within the configured time: outcome unknown
    protocol,         ///< the server sent bytes that are not RESP: the connection is dropped
    reply_error,      ///< Redis answered with an error reply; the reply holds its text
    queue_full,       ///< too many commands pending (bounded memory): the command was not sent
    stopped,          ///< `stop()` was called: the command was not sent or its reply is dropped
    handshake_failed, ///< AUTH, SELECT or the first PING after connecting was refused
    invalid_url,      ///< a Redis URL that is not `redis://...` or `unix://...` or is malformed
    invalid_command,  ///< a command with no arguments, or one the connection does not allow
};

/// The std::error_category of `redis_errc`: named "wschat.redis", with an English message for
/// each value. One instance per program, safe to use from any thread.
inline const std::error_category& redis_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "wschat.redis"; }
        std::string message(int value) const override {
            switch (static_cast<redis_errc>(value)) {
            case redis_errc::unavailable:
                return "Redis is not connected; the command was not sent";
            case redis_errc::connection_lost:
                return "connection to Redis lost before the reply arrived";
            case redis_errc::timeout:
                return "Redis did not answer in time";
            case redis_errc::protocol:
                return "Redis sent bytes that are not RESP";
            case redis_errc::reply_error:
                return "Redis answered with an error";
            case redis_errc::queue_full:
                return "too many Redis commands pending";
            case redis_errc::stopped:
                return "Redis connection stopped";
            case redis_errc::handshake_failed:
                return "Redis refused AUTH, SELECT or PING after connecting";
            case redis_errc::invalid_url:
                return "invalid Redis URL (expected redis://[user:password@]host[:port][/db] "
                       "or unix:///path)";
            case redis_errc::invalid_command:
                return "invalid Redis command";
            }
            return "unknown Redis error";
        }
    };
    static const category instance;
    return instance;
}

/// `e` as a std::error_code of redis_category(); found by argument-dependent lookup, which is
/// what lets a `redis_errc` convert to a `std::error_code` implicitly.
inline std::error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

WSCHAT_END_NAMESPACE

namespace std {
/// Makes `chat::redis_errc` an error code enum: it converts to `std::error_code` implicitly.
template <>
struct is_error_code_enum<chat::redis_errc> : true_type {};
} // namespace std
