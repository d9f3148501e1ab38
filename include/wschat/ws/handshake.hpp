// wschat — the WebSocket opening handshake (RFC 6455 §4): what makes a request an upgrade, and
// the server's answer.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/detail/sha1.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/http.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {
/// The GUID that RFC 6455 §1.3 appends to the client key before hashing.
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
} // namespace detail

/// True when the request asks for a WebSocket (an Upgrade header containing the token
/// "websocket"). A request for which this is false is plain HTTP and goes to the on_http
/// handler; one for which it is true goes through validate_upgrade().
inline bool is_websocket_request(const http_request& req) noexcept {
    return detail::any_header_has_token(req.headers, "Upgrade", "websocket");
}

/// Checks RFC 6455 §4.2.1: GET, HTTP/1.1 or later, Host, `Upgrade: websocket`, Connection
/// containing `upgrade`, exactly one Sec-WebSocket-Key that is the strict base64 of 16
/// bytes, and `Sec-WebSocket-Version: 13`. Returns the first failure (error::not_get,
/// bad_http_version, missing_host, missing_upgrade, missing_connection_upgrade, bad_key,
/// bad_version; answer it with http_status_for()) or an empty error_code.
inline std::error_code validate_upgrade(const http_request& req) noexcept {
    if (req.method != "GET")
        return error::not_get;
    if (req.version_major < 1 || (req.version_major == 1 && req.version_minor < 1))
        return error::bad_http_version;
    if (!req.header("Host"))
        return error::missing_host;
    if (!is_websocket_request(req))
        return error::missing_upgrade;
    if (!detail::any_header_has_token(req.headers, "Connection", "upgrade"))
        return error::missing_connection_upgrade;

    const std::optional<std::string_view> key = req.header("Sec-WebSocket-Key");
    if (detail::header_count(req.headers, "Sec-WebSocket-Key") != 1 ||
        detail::base64_decoded_size(*key) != std::optional<std::size_t>{16})
        return error::bad_key;

    if (req.header("Sec-WebSocket-Version") != std::optional<std::string_view>{"13"})
        return error::bad_version;
    return {};
}

/// The Sec-WebSocket-Accept value for a client key: base64(SHA-1(key + GUID)).
///
/// accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (RFC 6455 §1.3).
inline std::string accept_key(std::string_view client_key) {
    std::string keyed{client_key};
    keyed += detail::websocket_guid;
    const auto digest = detail::sha1(keyed);
    return detail::base64_encode(digest.data(), digest.size());
}

/// The Sec-WebSocket-Protocol tokens the client offered, in order (empty when none). The
/// views point into `req`.
inline std::vector<std::string_view> requested_subprotocols(const http_request& req) {
    std::vector<std::string_view> protocols;
    for (const http_header& h : req.headers) {
        if (!detail::iequals(h.name, "Sec-WebSocket-Protocol"))
            continue;
        detail::any_list_element(h.value, [&protocols](std::string_view element) {
            protocols.push_back(element);
            return false;
        });
    }
    return protocols;
}

/// The 101 Switching Protocols answer to a request that passed validate_upgrade(): Upgrade,
/// Connection, Sec-WebSocket-Accept, and Sec-WebSocket-Protocol when `subprotocol` is not
/// empty (it should be one of requested_subprotocols(req)).
inline http_response make_upgrade_response(const http_request& req,
                                           std::string_view subprotocol = {}) {
    http_response response;
    response.status = 101;
    response.headers.push_back({"Upgrade", "websocket"});
    response.headers.push_back({"Connection", "Upgrade"});
    response.headers.push_back(
        {"Sec-WebSocket-Accept", accept_key(req.header("Sec-WebSocket-Key").value_or(""))});
    if (!subprotocol.empty())
        response.headers.push_back({"Sec-WebSocket-Protocol", std::string{subprotocol}});
    return response;
}

WSCHAT_END_NAMESPACE
