// wschat — what a ws::client tells the application: attempts, opens, closes, sends.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Where a `ws::client` stands (`client::current_state`).
enum class client_state : std::uint8_t {
    idle,       ///< connect() not called yet
    connecting, ///< an attempt is under way
    open,       ///< the connection is open
    closing,    ///< close() was called; the close handshake is under way
    waiting,    ///< between attempts (see client_closed::retry_delay)
    stopped,    ///< closed by the application, or gave up (see client_closed::stop_reason)
};

/// An attempt to connect begins (`client::on_connecting`).
struct client_connecting {
    /// 1 for the first attempt, counting up while attempts fail in a row; back to 1 after
    /// an open.
    unsigned attempt = 1;
};

/// The server accepted the upgrade (`client::before_open`, `client::on_open`).
struct client_open {
    /// The subprotocol the server chose among those offered, or empty.
    std::string subprotocol;
    /// The Sec-WebSocket-Extensions the server accepted, or empty.
    std::string extensions;
    /// False for the first open of the client, true for every open after a reconnection.
    bool reconnected = false;
};

/// An attempt or a connection ended (`client::on_close`), and what happens next.
struct client_closed {
    /// The close code of the closing handshake: the server's when it closed first, ours
    /// when we did; 1006 when the connection ended without one (or never opened).
    std::uint16_t code = static_cast<std::uint16_t>(close_code::abnormal);
    /// The reason that went with `code`.
    std::string reason;
    /// What went wrong, if anything: a socket or TLS error, a `ws::error` (handshake refused,
    /// bad accept key, masked server frame, timeouts), a `ws::client_error`.
    std::error_code error;
    /// The status of the server's answer when it refused the upgrade (403, 503), or of the
    /// proxy's when it refused the tunnel; 0 otherwise.
    int http_status = 0;
    /// The connection had opened (false: the attempt failed before).
    bool was_open = false;
    /// The server sent the first Close frame.
    bool closed_by_peer = false;
    /// The client will try again after `retry_delay`.
    bool will_retry = false;
    /// How long until the next attempt (when `will_retry`).
    std::chrono::milliseconds retry_delay{0};
    /// When the client stops for good (`!will_retry`): why, in words ("closed by the
    /// application", "HTTP 403 at the handshake", "close code 1008 means do not retry",
    /// "gave up after 5 attempts", "reconnection disabled").
    std::string stop_reason;
};

/// What `client::send_text` and `send_binary` did with a message.
enum class send_status {
    sent,           ///< queued on the open connection
    queued_offline, ///< kept in the offline queue, sent once the connection (re)opens
    dropped,        ///< disconnected and the offline queue is full: not sent
    queue_full,     ///< connected, but `max_send_queue_bytes` is reached: not sent
    rate_limited,   ///< over `max_sends_per_second`: not sent
    closed,         ///< the client is stopped (never connected, or closed): not sent
};

/// True when the message will be sent (now or once connected).
constexpr bool accepted(send_status status) noexcept {
    return status == send_status::sent || status == send_status::queued_offline;
}

WSCHAT_END_NAMESPACE
