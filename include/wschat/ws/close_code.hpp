// wschat — WebSocket close status codes (RFC 6455 §7.4 and the IANA registry).
#pragma once

#include <wschat/detail/config.hpp>

#include <cstdint>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A close status code as carried in the first two bytes of a Close frame.
///
/// Codes marked "never on the wire" are reserved for reporting locally (RFC 6455 §7.4.1):
/// an endpoint must not send them and must treat a peer that does as a protocol error.
enum class close_code : std::uint16_t {
    normal = 1000,              ///< the purpose of the connection is fulfilled
    going_away = 1001,          ///< server shutting down or browser leaving the page
    protocol_error = 1002,      ///< the peer broke RFC 6455
    unsupported_data = 1003,    ///< a message type this endpoint does not accept
    no_status = 1005,           ///< never on the wire: the Close frame carried no code
    abnormal = 1006,            ///< never on the wire: the TCP connection ended without a Close
    invalid_payload = 1007,     ///< message data inconsistent with its type (bad UTF-8)
    policy_violation = 1008,    ///< a generic policy refusal (rate, slow reader, origin)
    message_too_big = 1009,     ///< a message larger than this endpoint accepts
    mandatory_extension = 1010, ///< client only: the server did not negotiate an extension
    internal_error = 1011,      ///< an unexpected condition prevented fulfilling the request
    service_restart = 1012,     ///< the service is restarting
    try_again_later = 1013,     ///< temporary overload
    bad_gateway = 1014,         ///< a gateway got an invalid response upstream
    tls_handshake = 1015,       ///< never on the wire: the TLS handshake failed
};

/// True when `code` may legally appear in a Close frame: 1000–1003, 1007–1014 (the
/// registered codes an endpoint may send) and 3000–4999 (libraries and applications).
///
/// A Close frame from a peer with any other code is a protocol error
/// (`error::bad_close_code`).
constexpr bool is_valid_wire_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999)
        return true;
    if (code >= 1000 && code <= 1003)
        return true;
    return code >= 1007 && code <= 1014;
}

/// A short English name for a close code, for logs: "normal closure" for 1000, "application
/// defined" for an unregistered code in 3000–4999, "unknown" for any other. The view refers
/// to a string literal, valid for the whole program.
constexpr std::string_view close_code_name(std::uint16_t code) noexcept {
    switch (static_cast<close_code>(code)) {
    case close_code::normal:
        return "normal closure";
    case close_code::going_away:
        return "going away";
    case close_code::protocol_error:
        return "protocol error";
    case close_code::unsupported_data:
        return "unsupported data";
    case close_code::no_status:
        return "no status received";
    case close_code::abnormal:
        return "abnormal closure";
    case close_code::invalid_payload:
        return "invalid frame payload data";
    case close_code::policy_violation:
        return "policy violation";
    case close_code::message_too_big:
        return "message too big";
    case close_code::mandatory_extension:
        return "mandatory extension";
    case close_code::internal_error:
        return "internal error";
    case close_code::service_restart:
        return "service restart";
    case close_code::try_again_later:
        return "try again later";
    case close_code::bad_gateway:
        return "bad gateway";
    case close_code::tls_handshake:
        return "TLS handshake failure";
    }
    return code >= 3000 && code <= 4999 ? "application defined" : "unknown";
}

WSCHAT_END_NAMESPACE
