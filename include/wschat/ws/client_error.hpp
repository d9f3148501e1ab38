// wschat — the errors only a client reports: its URL, its proxy, its offline queue, TLS.
#pragma once

#include <wschat/detail/config.hpp>

#include <string>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// What `ws::client` reports beyond the protocol errors of `ws::error` (which it reports
/// too: a bad accept key, a masked server frame, a handshake timeout, ...).
enum class client_error {
    invalid_url = 1,           ///< the URL does not parse, or its scheme is not ws, wss, ws+unix
    transport_mismatch,        ///< the URL's scheme needs another transport (wss:// on asio_tcp)
    invalid_proxy,             ///< the proxy is not `http://[user:password@]host:port`
    proxy_refused,             ///< the proxy answered CONNECT with a status other than 2xx
    bad_proxy_response,        ///< the proxy's answer is not HTTP
    offline_queue_full,        ///< a message sent while disconnected did not fit the queue
    tls_verification_disabled, ///< a warning: `insecure_skip_verification` is set
    given_up,                  ///< `reconnect.max_attempts` attempts in a row failed
};

/// The std::error_category of `ws::client_error`, named "wschat.client".
inline const std::error_category& client_error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "wschat.client"; }
        std::string message(int value) const override {
            switch (static_cast<client_error>(value)) {
            case client_error::invalid_url:
                return "invalid WebSocket URL (ws://, wss:// or ws+unix://)";
            case client_error::transport_mismatch:
                return "the URL's scheme needs another transport";
            case client_error::invalid_proxy:
                return "invalid proxy (http://[user:password@]host:port)";
            case client_error::proxy_refused:
                return "the proxy refused the CONNECT request";
            case client_error::bad_proxy_response:
                return "malformed answer from the proxy";
            case client_error::offline_queue_full:
                return "offline queue full: message dropped";
            case client_error::tls_verification_disabled:
                return "TLS certificate verification is DISABLED: the connection is not secure";
            case client_error::given_up:
                return "reconnection given up after the maximum number of attempts";
            }
            return "unknown wschat client error";
        }
    };
    static const category instance;
    return instance;
}

/// `e` as a std::error_code of client_error_category().
inline std::error_code make_error_code(client_error e) noexcept {
    return {static_cast<int>(e), client_error_category()};
}

WSCHAT_END_NAMESPACE

namespace std {
/// Makes `ws::client_error` an error code enum: it converts to `std::error_code` implicitly.
template <>
struct is_error_code_enum<ws::client_error> : true_type {};
} // namespace std
