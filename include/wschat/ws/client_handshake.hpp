// wschat — the client side of the opening handshake (RFC 6455 §4.1): the request a client
// sends, and the checks on the server's answer. Sans-I/O: bytes out, a parsed response in.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/http.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The 16 random bytes whose base64 is a request's Sec-WebSocket-Key (RFC 6455 §4.1).
using handshake_nonce = std::array<std::uint8_t, 16>;

/// A nonce drawn from `generator` (any UniformRandomBitGenerator, such as a seeded
/// std::mt19937): tests pass a seeded engine, or build the nonce bytes themselves, to get a
/// known key. Thread safety: that of `generator`.
template <class Generator>
handshake_nonce make_handshake_nonce(Generator& generator) {
    std::uniform_int_distribution<unsigned> byte{0, 255};
    handshake_nonce nonce{};
    for (std::uint8_t& b : nonce)
        b = static_cast<std::uint8_t>(byte(generator));
    return nonce;
}

/// A fresh nonce from a per-thread std::mt19937 seeded from std::random_device. The key only
/// has to differ between handshakes, so that caches and proxies cannot replay an old answer
/// (RFC 6455 §10.3); it is not a secret, so no cryptographic generator is needed. Safe to call
/// from any thread.
inline handshake_nonce make_handshake_nonce() {
    thread_local std::mt19937 engine = [] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(),
                           device(), device(), device(), device()};
        return std::mt19937{seed};
    }();
    return make_handshake_nonce(engine);
}

/// What a client asks for in its opening handshake: where it connects and what it offers.
/// Checked by validate_offer() before anything is sent.
struct handshake_offer {
    /// The server's name or address: "example.com", "127.0.0.1", or an IPv6 literal such as
    /// "::1" (bracketed in the Host header for you; "[::1]" is accepted too). Required.
    std::string host;
    /// The server's port; 0 (the default) means the scheme's default, 80 for ws:// and 443
    /// for wss://. The Host header names the port only when it is not the default one.
    std::uint16_t port = 0;
    /// True for wss://: it only decides the default port here (TLS is the transport's job).
    bool secure = false;
    /// The request target, `/path` or `/path?query`, visible ASCII (percent-encode the
    /// rest). Default "/".
    std::string target = "/";
    /// The Origin header; empty (the default) sends none, as non-browser clients do.
    std::string origin;
    /// Subprotocols offered in order of preference (tokens, each once); empty: none.
    std::vector<std::string> subprotocols;
    /// The Sec-WebSocket-Extensions value offered, as it goes on the wire, e.g.
    /// "permessage-deflate; client_max_window_bits"; empty (the default): none.
    std::string extensions;
    /// Further headers (Authorization, Cookie, User-Agent, ...), sent in this order after
    /// the handshake's own. Names must be tokens, values free of control characters; the
    /// headers the handshake sets itself (and Content-Length, Transfer-Encoding: a body would
    /// be read as frames) are refused.
    std::vector<http_header> headers;
};

namespace detail {

/// True for an RFC 3986 unreserved or sub-delims character: what a reg-name or an IPv4
/// address is made of (with percent-encoding checked apart).
constexpr bool is_host_char(char c) noexcept {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alnum || std::string_view{"-._~!$&'()*+,;="}.find(c) != std::string_view::npos;
}

/// True for the hex digits, colons and dots of an IPv6 literal (zone identifiers are not
/// supported: a Host header cannot carry a zone anyway).
constexpr bool is_ipv6_literal(std::string_view text) noexcept {
    if (text.find(':') == std::string_view::npos)
        return false;
    for (const char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.')
            return false;
    }
    return true;
}

/// The Host header value for `offer` (RFC 9110 §7.2), or an empty string when its host
/// cannot be written there.
inline std::string host_header(const handshake_offer& offer) {
    std::string_view host = offer.host;
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed)
        host = host.substr(1, host.size() - 2);
    std::string value;
    if (is_ipv6_literal(host)) {
        value = "[" + std::string{host} + "]";
    } else {
        if (host.empty() || bracketed)
            return {};
        for (std::size_t i = 0; i < host.size(); ++i) {
            if (host[i] == '%') { // a percent-encoded octet of a reg-name
                const auto is_hex = [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                           (c >= 'A' && c <= 'F');
                };
                if (i + 2 >= host.size() || !is_hex(host[i + 1]) || !is_hex(host[i + 2]))
                    return {};
            } else if (!is_host_char(host[i])) {
                return {};
            }
        }
        value.assign(host);
    }
    const std::uint16_t default_port = offer.secure ? 443 : 80;
    if (offer.port != 0 && offer.port != default_port)
        value += ":" + std::to_string(offer.port);
    return value;
}

/// True for `/path[?query]` in visible ASCII without a fragment (RFC 6455 §3: a WebSocket
/// URI has none).
constexpr bool is_valid_target(std::string_view target) noexcept {
    if (target.empty() || target.front() != '/')
        return false;
    for (const char c : target)
        if (c <= ' ' || c > '~' || c == '#')
            return false;
    return true;
}

/// True for a non-empty RFC 7230 token.
constexpr bool is_token(std::string_view text) noexcept {
    if (text.empty())
        return false;
    for (const char c : text)
        if (!is_token_char(c))
            return false;
    return true;
}

/// True for a header value that cannot inject a line: no control character but HTAB.
constexpr bool is_valid_header_value(std::string_view value) noexcept {
    for (const char c : value)
        if (is_control_char(c) && c != '\t')
            return false;
    return true;
}

/// True for the headers the opening handshake writes or depends on itself.
inline bool is_handshake_header(std::string_view name) noexcept {
    for (const std::string_view reserved :
         {"Host", "Upgrade", "Connection", "Origin", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
          "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Content-Length",
          "Transfer-Encoding"})
        if (iequals(name, reserved))
            return true;
    return false;
}

/// The name of one Sec-WebSocket-Extensions element: what precedes its first ';', trimmed.
constexpr std::string_view extension_name(std::string_view element) noexcept {
    return trim_ows(element.substr(0, element.find(';')));
}

/// Whether every element of an extensions list has a token for its name.
constexpr bool extension_names_are_tokens(std::string_view list) {
    return !any_list_element(
        list, [](std::string_view element) { return !is_token(extension_name(element)); });
}

} // namespace detail

/// Checks that `offer` can be sent: a host that fits a Host header (error::invalid_host), a
/// `/path[?query]` target in visible ASCII (invalid_target), subprotocols that are distinct
/// tokens (invalid_subprotocol), and an origin, an extensions list (whose element names are
/// tokens) and extra headers (token names, no control characters in values, none the
/// handshake sets itself) that cannot inject a line (invalid_header). Returns the first
/// failure or an empty error_code.
inline std::error_code validate_offer(const handshake_offer& offer) {
    if (detail::host_header(offer).empty())
        return error::invalid_host;
    if (!detail::is_valid_target(offer.target))
        return error::invalid_target;
    for (std::size_t i = 0; i < offer.subprotocols.size(); ++i) {
        if (!detail::is_token(offer.subprotocols[i]))
            return error::invalid_subprotocol;
        for (std::size_t j = 0; j < i; ++j)
            if (offer.subprotocols[j] == offer.subprotocols[i])
                return error::invalid_subprotocol;
    }
    if (!detail::is_valid_header_value(offer.origin) ||
        !detail::is_valid_header_value(offer.extensions) ||
        !detail::extension_names_are_tokens(offer.extensions))
        return error::invalid_header;
    for (const http_header& h : offer.headers)
        if (!detail::is_token(h.name) || detail::is_handshake_header(h.name) ||
            !detail::is_valid_header_value(h.value))
            return error::invalid_header;
    return {};
}

/// What the server's answer to an opening handshake came to.
struct handshake_result {
    /// Empty when the server accepted; otherwise why the client must not open (a
    /// client-handshake ws::error, or missing_upgrade / missing_connection_upgrade).
    std::error_code error;
    /// The status the server answered with (101 when accepted). With
    /// error::unexpected_status it tells a refusal (4xx: retrying the same request will not
    /// help) from a server in trouble (5xx: a retry later may succeed) or a redirect (3xx).
    int status = 0;
    /// The subprotocol the server chose, one of those offered; empty when it chose none.
    std::string subprotocol;
    /// The Sec-WebSocket-Extensions the server accepted (several headers joined by ", "), for
    /// the extension's own negotiation to read its parameters; empty when none.
    std::string extensions;

    /// True when the server accepted the handshake and the connection is open.
    bool accepted() const noexcept { return !error; }
};

/// One attempt at the client side of the opening handshake: it owns the offer and a fresh
/// Sec-WebSocket-Key, writes the request, and verifies the server's answer against both.
/// Sans-I/O: the caller sends request() and feeds what comes back to a response_parser.
/// Use one object per attempt (a reconnect needs a new key). Not thread-safe; const members
/// may be called from several threads at once.
///
/// ```
/// ws::handshake_offer offer;
/// offer.host = "example.com";
/// offer.subprotocols = {"chat"};
/// ws::client_handshake handshake{offer};
/// send(handshake.request()); // throws std::system_error when the offer is invalid
/// ws::response_parser parser;
/// // ... feed parser until done, keeping the bytes after the head (frames) ...
/// const ws::handshake_result result = handshake.verify(parser.response());
/// if (!result.accepted())
///     fail(result.error, result.status);
/// ```
class client_handshake {
public:
    /// An attempt whose key is the base64 of `nonce`; by default a fresh random one.
    explicit client_handshake(handshake_offer offer,
                              const handshake_nonce& nonce = make_handshake_nonce())
        : offer_{std::move(offer)}, key_{detail::base64_encode(nonce.data(), nonce.size())} {}

    /// What this attempt offers.
    const handshake_offer& offer() const noexcept { return offer_; }

    /// The Sec-WebSocket-Key sent: 24 base64 characters.
    const std::string& key() const noexcept { return key_; }

    /// The opening request: `GET target HTTP/1.1`, Host, `Upgrade: websocket`,
    /// `Connection: Upgrade`, Sec-WebSocket-Key, `Sec-WebSocket-Version: 13`, then Origin,
    /// Sec-WebSocket-Protocol and Sec-WebSocket-Extensions when offered, then the offer's
    /// own headers, and the blank line. Sets `ec` (see validate_offer()) and returns an
    /// empty string when the offer is invalid.
    std::string request(std::error_code& ec) const {
        ec = validate_offer(offer_);
        if (ec)
            return {};
        std::string out;
        out.reserve(256);
        const auto line = [&out](std::string_view name, std::string_view value) {
            out.append(name).append(": ").append(value).append("\r\n");
        };
        out.append("GET ").append(offer_.target).append(" HTTP/1.1\r\n");
        line("Host", detail::host_header(offer_));
        line("Upgrade", "websocket");
        line("Connection", "Upgrade");
        line("Sec-WebSocket-Key", key_);
        line("Sec-WebSocket-Version", "13");
        if (!offer_.origin.empty())
            line("Origin", offer_.origin);
        if (!offer_.subprotocols.empty()) {
            std::string list;
            for (const std::string& protocol : offer_.subprotocols)
                list.append(list.empty() ? "" : ", ").append(protocol);
            line("Sec-WebSocket-Protocol", list);
        }
        if (!offer_.extensions.empty())
            line("Sec-WebSocket-Extensions", offer_.extensions);
        for (const http_header& h : offer_.headers)
            line(h.name, h.value);
        out += "\r\n";
        return out;
    }

    /// As above; throws std::system_error when the offer is invalid.
    std::string request() const {
        std::error_code ec;
        std::string out = request(ec);
        if (ec)
            throw std::system_error{ec, "ws::client_handshake::request"};
        return out;
    }

    /// Checks the server's answer (RFC 6455 §4.1, the client's duties): status 101
    /// (error::unexpected_status otherwise, with the status in the result); an Upgrade
    /// header listing `websocket` (missing_upgrade) and a Connection header listing
    /// `upgrade` (missing_connection_upgrade), case-insensitively; exactly one
    /// Sec-WebSocket-Accept (duplicate_header), equal to accept_key(key()) (bad_accept_key);
    /// at most one Sec-WebSocket-Protocol (duplicate_header) naming exactly one offered
    /// subprotocol (unexpected_subprotocol); and Sec-WebSocket-Extensions elements whose
    /// names were offered, each at most once (unexpected_extension). A server choosing no
    /// subprotocol or no extension is accepted: the application decides whether it can do
    /// without. Returns the first failure, or the choices the server made.
    handshake_result verify(const http_response& response) const {
        handshake_result result;
        result.status = response.status;
        result.error = check(response);
        if (!result.error) {
            result.subprotocol.assign(response.header("Sec-WebSocket-Protocol").value_or(""));
            result.extensions = response.header_list("Sec-WebSocket-Extensions");
        }
        return result;
    }

private:
    /// The first thing wrong with `response`, or an empty error_code.
    std::error_code check(const http_response& response) const {
        const std::vector<http_header>& headers = response.headers;
        if (response.status != 101)
            return error::unexpected_status;
        if (!detail::any_header_has_token(headers, "Upgrade", "websocket"))
            return error::missing_upgrade;
        if (!detail::any_header_has_token(headers, "Connection", "upgrade"))
            return error::missing_connection_upgrade;

        if (detail::header_count(headers, "Sec-WebSocket-Accept") > 1)
            return error::duplicate_header;
        if (response.header("Sec-WebSocket-Accept") !=
            std::optional<std::string_view>{accept_key(key_)})
            return error::bad_accept_key;

        if (detail::header_count(headers, "Sec-WebSocket-Protocol") > 1)
            return error::duplicate_header;
        if (const auto chosen = response.header("Sec-WebSocket-Protocol")) {
            bool offered = false;
            for (const std::string& protocol : offer_.subprotocols)
                offered = offered || protocol == *chosen;
            if (!offered)
                return error::unexpected_subprotocol;
        }

        // An extension accepted twice is refused too: the client offered to run it once, and
        // permessage-deflate (RFC 7692 §7) forbids it outright.
        std::vector<std::string_view> accepted;
        const std::string extensions = response.header_list("Sec-WebSocket-Extensions");
        const bool unexpected = detail::any_list_element(extensions, [&](std::string_view element) {
            const std::string_view name = detail::extension_name(element);
            for (const std::string_view seen : accepted)
                if (detail::iequals(seen, name))
                    return true;
            accepted.push_back(name);
            return !offered_extension(name);
        });
        if (unexpected)
            return error::unexpected_extension;
        return {};
    }

    /// Whether an extension of this name (compared case-insensitively, as tokens are) was
    /// offered.
    bool offered_extension(std::string_view name) const {
        return detail::is_token(name) &&
               detail::any_list_element(offer_.extensions, [name](std::string_view element) {
                   return detail::iequals(detail::extension_name(element), name);
               });
    }

    handshake_offer offer_;
    std::string key_;
};

WSCHAT_END_NAMESPACE
