// wschat — the error codes of the library and their std::error_category.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>

#include <string>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Every failure wschat reports. Each maps to the close code sent to the peer
/// (`close_code_for`) and, for handshake failures, to an HTTP status (`http_status_for`).
///
/// A `ws::error` converts implicitly to a `std::error_code` of error_category(), so it
/// compares directly with the codes handlers receive:
///
/// ```cpp
/// if (info.error == ws::error::send_queue_full) { ... } // the peer read too slowly
/// ```
enum class error {
    // Framing (RFC 6455 §5): the connection is failed with the mapped close code.
    unmasked_frame = 1,      ///< a client frame without the MASK bit (1002)
    masked_frame,            ///< a server frame with the MASK bit, seen by a client (1002)
    reserved_bits,           ///< RSV1-3 set with no extension negotiated (1002)
    unknown_opcode,          ///< opcode 0x3-0x7 or 0xB-0xF (1002)
    non_minimal_length,      ///< a payload length not in its shortest encoding (1002)
    length_msb_set,          ///< a 64-bit payload length with its top bit set (1002)
    control_too_long,        ///< a control frame payload over 125 bytes (1002)
    fragmented_control,      ///< a control frame without FIN (1002)
    unexpected_continuation, ///< a continuation frame with no message in progress (1002)
    expected_continuation,   ///< a new data frame while a fragmented message is open (1002)
    invalid_utf8,            ///< a text message that is not valid UTF-8 (1007)
    message_too_big,         ///< a message over the configured maximum (1009)
    bad_close_payload,       ///< a close frame with a 1-byte payload (1002)
    bad_close_code,          ///< a close code that may not appear on the wire (1002)
    invalid_close_reason,    ///< a close reason that is not valid UTF-8 (1007)
    unsupported_data,        ///< a message type the application does not accept (1003)

    // Handshake (RFC 6455 §4.2.1): the request is answered with the mapped HTTP status.
    bad_request,                ///< malformed request line or header (400)
    header_too_large,           ///< a head exceeds its size or header-count bound (431)
    not_get,                    ///< an upgrade request whose method is not GET (400)
    bad_http_version,           ///< an upgrade request older than HTTP/1.1 (400)
    missing_host,               ///< no Host header (400)
    missing_upgrade,            ///< no `Upgrade: websocket` (400; also in a server's 101)
    missing_connection_upgrade, ///< no `upgrade` token in Connection (400; also in a 101)
    bad_key,                    ///< Sec-WebSocket-Key absent or not 16 base64-encoded bytes (400)
    bad_version,                ///< Sec-WebSocket-Version is not 13 (426)

    // Connection life.
    handshake_timeout,  ///< the peer did not finish its handshake in time
    heartbeat_timeout,  ///< the peer stopped answering pings
    idle_timeout,       ///< the peer sent no message within `idle_timeout` (1001)
    close_timeout,      ///< the peer did not answer our Close frame in time
    send_queue_full,    ///< the peer reads too slowly; its queue passed the bound (1008)
    rate_limited,       ///< the peer sends more messages per second than allowed (1008)
    origin_not_allowed, ///< a browser Origin outside `allowed_origins` (403)
    server_busy,        ///< a connection limit (total or per address) is reached (503)
    server_stopping,    ///< the server is shutting down (1001)
    connection_closed,  ///< an operation on a connection that is already closed

    // Client handshake (RFC 6455 §4.1, §4.2.2): what a client refuses in its own offer (before
    // sending) or in the server's answer (the connection is then dropped: it never opened).
    // Appended here so that the values above keep their numbers.
    bad_response,           ///< malformed HTTP status line or header in the server's answer
    unexpected_status,      ///< the server answered with a status other than 101
    bad_accept_key,         ///< Sec-WebSocket-Accept absent or not the one the key calls for
    duplicate_header,       ///< a header the handshake allows once appears several times
    unexpected_subprotocol, ///< a Sec-WebSocket-Protocol that was not offered, or several
    unexpected_extension,   ///< a Sec-WebSocket-Extensions element that was not offered
    invalid_host,           ///< the host to connect to cannot go into a Host header
    invalid_target,         ///< the request target is not `/path[?query]` in visible ASCII
    invalid_header,         ///< an offered header with a bad name or value, or one the
                            ///< handshake sets itself
    invalid_subprotocol,    ///< an offered subprotocol that is not a token, or offered twice

    // Extensions (RFC 6455 §9, RFC 7692).
    bad_extensions,      ///< a Sec-WebSocket-Extensions value that is malformed (400)
    bad_compressed_data, ///< a compressed message that does not inflate (1007)
};

/// The std::error_category of `ws::error`: named "wschat", with an English message for
/// each value. One instance per program (a function-local static), safe to use from any
/// thread.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "wschat"; }
        std::string message(int value) const override {
            switch (static_cast<error>(value)) {
            case error::unmasked_frame:
                return "client frame is not masked";
            case error::masked_frame:
                return "server frame is masked";
            case error::reserved_bits:
                return "reserved bits set without an extension";
            case error::unknown_opcode:
                return "unknown opcode";
            case error::non_minimal_length:
                return "payload length not minimally encoded";
            case error::length_msb_set:
                return "64-bit payload length has its top bit set";
            case error::control_too_long:
                return "control frame payload longer than 125 bytes";
            case error::fragmented_control:
                return "fragmented control frame";
            case error::unexpected_continuation:
                return "continuation frame without a message";
            case error::expected_continuation:
                return "new message inside a fragmented message";
            case error::invalid_utf8:
                return "text message is not valid UTF-8";
            case error::message_too_big:
                return "message exceeds the size limit";
            case error::bad_close_payload:
                return "close frame payload of one byte";
            case error::bad_close_code:
                return "close code not allowed on the wire";
            case error::invalid_close_reason:
                return "close reason is not valid UTF-8";
            case error::unsupported_data:
                return "message type not accepted";
            case error::bad_compressed_data:
                return "compressed message does not inflate";
            case error::bad_extensions:
                return "malformed Sec-WebSocket-Extensions header";
            case error::bad_request:
                return "malformed HTTP request";
            case error::header_too_large:
                return "HTTP header section too large";
            case error::not_get:
                return "WebSocket upgrade must use GET";
            case error::bad_http_version:
                return "WebSocket upgrade needs HTTP/1.1";
            case error::missing_host:
                return "missing Host header";
            case error::missing_upgrade:
                return "missing 'Upgrade: websocket' header";
            case error::missing_connection_upgrade:
                return "Connection header lacks 'upgrade'";
            case error::bad_key:
                return "missing or malformed Sec-WebSocket-Key";
            case error::bad_version:
                return "unsupported Sec-WebSocket-Version (need 13)";
            case error::handshake_timeout:
                return "handshake not completed in time";
            case error::heartbeat_timeout:
                return "peer stopped answering pings";
            case error::idle_timeout:
                return "idle timeout";
            case error::close_timeout:
                return "peer did not complete the close handshake";
            case error::send_queue_full:
                return "send queue limit exceeded (slow reader)";
            case error::rate_limited:
                return "message rate limit exceeded";
            case error::origin_not_allowed:
                return "origin not allowed";
            case error::server_busy:
                return "connection limit reached";
            case error::server_stopping:
                return "server is stopping";
            case error::connection_closed:
                return "connection is closed";
            case error::bad_response:
                return "malformed HTTP response";
            case error::unexpected_status:
                return "server did not answer the upgrade with 101";
            case error::bad_accept_key:
                return "missing or wrong Sec-WebSocket-Accept";
            case error::duplicate_header:
                return "handshake header sent more than once";
            case error::unexpected_subprotocol:
                return "server chose a subprotocol that was not offered";
            case error::unexpected_extension:
                return "server accepted an extension that was not offered";
            case error::invalid_host:
                return "host cannot be sent in a Host header";
            case error::invalid_target:
                return "request target is not /path[?query] in visible ASCII";
            case error::invalid_header:
                return "invalid or reserved header in the handshake request";
            case error::invalid_subprotocol:
                return "subprotocol is not a token or is offered twice";
            }
            return "unknown wschat error";
        }
    };
    static const category instance;
    return instance;
}

/// `e` as a std::error_code of error_category(); found by argument-dependent lookup, which is
/// what lets a `ws::error` convert to a `std::error_code` implicitly.
inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The close code sent to the peer when the connection fails with `ec`.
///
/// The codes in the comments of `ws::error`: 1007 for bad UTF-8 or compressed data, 1009
/// for a message too big, 1003 for unsupported data, 1008 for a slow reader or a rate
/// limit, 1001 when the server stops or the peer idles, 1006 (the connection ends without a
/// Close frame) for the timeouts and an already closed connection, and 1002 for the other
/// wschat errors. An error of any other category (a socket error) gives 1011, internal
/// error.
inline close_code close_code_for(std::error_code ec) noexcept {
    if (ec.category() != error_category())
        return close_code::internal_error;
    switch (static_cast<error>(ec.value())) {
    case error::invalid_utf8:
    case error::invalid_close_reason:
    case error::bad_compressed_data:
        return close_code::invalid_payload;
    case error::message_too_big:
        return close_code::message_too_big;
    case error::unsupported_data:
        return close_code::unsupported_data;
    case error::send_queue_full:
    case error::rate_limited:
        return close_code::policy_violation;
    case error::server_stopping:
    case error::idle_timeout:
        return close_code::going_away;
    case error::handshake_timeout:
    case error::heartbeat_timeout:
    case error::close_timeout:
    case error::connection_closed:
        return close_code::abnormal;
    default:
        return close_code::protocol_error;
    }
}

/// The HTTP status that answers a handshake failing with `ec`: 426 for a wrong
/// Sec-WebSocket-Version, 431 for a header section too large, 403 for an origin not
/// allowed, 503 when the server is busy, and 400 for anything else.
inline int http_status_for(std::error_code ec) noexcept {
    if (ec == make_error_code(error::bad_version))
        return 426;
    if (ec == make_error_code(error::header_too_large))
        return 431;
    if (ec == make_error_code(error::origin_not_allowed))
        return 403;
    if (ec == make_error_code(error::server_busy))
        return 503;
    return 400;
}

WSCHAT_END_NAMESPACE

namespace std {
/// Makes `ws::error` an error code enum: it converts to `std::error_code` implicitly.
template <>
struct is_error_code_enum<ws::error> : true_type {};
} // namespace std
