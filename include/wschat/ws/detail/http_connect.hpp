// wschat — an HTTP CONNECT tunnel through a proxy (RFC 9110 §9.3.6), sans-I/O: the proxy's
// address from a URL, the request, and the check of its answer.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_error.hpp>
#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/http.hpp>
#include <wschat/ws/url.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// An HTTP proxy: where it listens and the credentials it wants, if any.
struct proxy_address {
    std::string host;
    std::uint16_t port = 8080;
    /// The Proxy-Authorization value ("Basic ..."), empty without credentials.
    std::string authorization;
};

/// Parses `http://[user:password@]host[:port][/]`; `client_error::invalid_proxy` otherwise.
/// The user and password are taken as written (percent-decoding is not supported).
inline std::optional<proxy_address> parse_proxy(std::string_view text, std::error_code& ec) {
    ec = client_error::invalid_proxy;
    if (!starts_with_scheme(text, "http://"))
        return std::nullopt;
    std::string_view rest = text.substr(7);
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    for (const char c : rest)
        if (c <= ' ' || c > '~' || c == '/' || c == '?' || c == '#')
            return std::nullopt;
    proxy_address proxy;
    const std::size_t at = rest.rfind('@');
    if (at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        if (userinfo.find(':') == std::string_view::npos)
            return std::nullopt;
        proxy.authorization = "Basic " + base64_encode(userinfo.data(), userinfo.size());
        rest = rest.substr(at + 1);
    }
    if (!parse_authority(rest, proxy.host, proxy.port))
        return std::nullopt;
    ec.clear();
    return proxy;
}

/// The CONNECT request asking `proxy` for a tunnel to `host`:`port`.
inline std::string connect_request(const proxy_address& proxy, const std::string& host,
                                   std::uint16_t port) {
    const bool ipv6 = host.find(':') != std::string::npos;
    const std::string authority =
        (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(static_cast<unsigned>(port));
    std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!proxy.authorization.empty())
        out += "Proxy-Authorization: " + proxy.authorization + "\r\n";
    return out + "\r\n";
}

/// The proxy's answer: any 2xx opens the tunnel (client_error::proxy_refused otherwise).
inline std::error_code check_connect_response(const http_response& response) {
    if (response.status < 200 || response.status > 299)
        return client_error::proxy_refused;
    return {};
}

} // namespace detail

WSCHAT_END_NAMESPACE
