// wschat — WebSocket URLs as a client reads them: ws://, wss:// and ws+unix://.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A parsed WebSocket URL (RFC 6455 §3, plus the `ws+unix` scheme of Node's `ws`).
struct ws_url {
    /// How the URL is reached.
    enum class scheme_kind {
        ws,      ///< plain TCP, default port 80
        wss,     ///< TLS over TCP, default port 443
        ws_unix, ///< a Unix domain socket file
    };
    /// The scheme: ws, wss or ws+unix.
    scheme_kind scheme = scheme_kind::ws;
    /// The host as the Host header and TLS name it, without IPv6 brackets ("::1"); for
    /// ws+unix, "localhost".
    std::string host;
    /// The port, the scheme's default when the URL names none (0 for ws+unix).
    std::uint16_t port = 0;
    /// The request target: `/path` or `/path?query` ("/" when the URL has no path).
    std::string target = "/";
    /// ws+unix only: the socket file.
    std::string socket_path;

    /// True for wss://.
    bool secure() const noexcept { return scheme == scheme_kind::wss; }
};

namespace detail {

/// The port in `text` (1–65535, digits only), or nullopt.
inline std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
    if (text.empty() || text.size() > 5)
        return std::nullopt;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

/// Splits `authority` (`host[:port]` or `[v6][:port]`) into `host` and `port`; false when
/// malformed. `port` keeps its value when the authority names none.
inline bool parse_authority(std::string_view authority, std::string& host, std::uint16_t& port) {
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return false;
        host.assign(authority.substr(1, close - 1));
        const std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                return false;
            port_text = rest.substr(1);
            if (port_text.empty())
                return false;
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            authority = authority.substr(0, colon);
            if (port_text.empty() || authority.find(':') != std::string_view::npos)
                return false;
        }
        host.assign(authority);
    }
    if (host.empty())
        return false;
    if (!port_text.empty()) {
        const auto parsed = parse_port(port_text);
        if (!parsed)
            return false;
        port = *parsed;
    }
    return true;
}

/// Case-insensitive prefix test for a scheme.
inline bool starts_with_scheme(std::string_view text, std::string_view scheme) noexcept {
    if (text.size() < scheme.size())
        return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i])
            return false;
    }
    return true;
}

} // namespace detail

/// Parses `text` as a WebSocket URL: `ws://host[:port][/path][?query]`, the same with
/// `wss://`, or `ws+unix:///path/to.sock[:/path][?query]`. Schemes are case-insensitive; a
/// fragment, user information and whitespace are refused. Sets `ec` to
/// `client_error::invalid_url` and returns nullopt when it does not parse. The target's
/// characters are checked later, by the handshake (`ws::validate_offer`).
inline std::optional<ws_url> parse_ws_url(std::string_view text, std::error_code& ec) {
    ec = client_error::invalid_url;
    ws_url url;
    std::string_view rest;
    if (detail::starts_with_scheme(text, "ws+unix://")) {
        url.scheme = ws_url::scheme_kind::ws_unix;
        rest = text.substr(10);
    } else if (detail::starts_with_scheme(text, "wss://")) {
        url.scheme = ws_url::scheme_kind::wss;
        url.port = 443;
        rest = text.substr(6);
    } else if (detail::starts_with_scheme(text, "ws://")) {
        url.port = 80;
        rest = text.substr(5);
    } else {
        return std::nullopt;
    }
    for (const char c : rest)
        if (c <= ' ' || c > '~' || c == '#')
            return std::nullopt;

    if (url.scheme == ws_url::scheme_kind::ws_unix) {
        // ws+unix:///run/chat.sock:/rooms/a — the socket file is absolute, and a ':' ends it.
        if (rest.empty() || rest.front() != '/')
            return std::nullopt;
        const std::size_t colon = rest.find(':');
        url.socket_path.assign(rest.substr(0, colon));
        if (colon != std::string_view::npos) {
            const std::string_view target = rest.substr(colon + 1);
            if (target.empty() || target.front() != '/')
                return std::nullopt;
            url.target.assign(target);
        }
        url.host = "localhost";
        ec.clear();
        return url;
    }

    const std::size_t path_at = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, path_at);
    if (authority.find('@') != std::string_view::npos ||
        !detail::parse_authority(authority, url.host, url.port))
        return std::nullopt;
    if (path_at != std::string_view::npos) {
        const std::string_view target = rest.substr(path_at);
        url.target = target.front() == '?' ? "/" + std::string{target} : std::string{target};
    }
    ec.clear();
    return url;
}

WSCHAT_END_NAMESPACE
