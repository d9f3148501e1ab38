// wschat — how a client reaches a server over each transport: the socket it connects, the
// stream it talks over, and the transport's own handshake (none for TCP, TLS for asio_tls).
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_options.hpp>
#include <wschat/ws/transport.hpp>
#include <wschat/ws/url.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The client side of `Transport`. A specialisation provides:
///
/// - `socket_type`: what is connected (TCP or Unix), `stream_type`: what is talked over;
/// - `scheme`: the URL scheme it serves;
/// - `context`: made once per client from its options (a TLS context), with
///   `context(const client_options&, std::error_code&)` and `bool insecure() const`;
/// - `static stream_type wrap(socket_type&&, context&)`;
/// - `static void async_handshake(stream_type&, context&, const std::string& host, H)`:
///   the transport's handshake, `H(std::error_code)`;
/// - `static void shutdown_send(stream_type&)` and `static void close(stream_type&)`;
/// - `static bool permanent(std::error_code)`: an error that retrying will not cure (a
///   certificate that does not verify).
///
/// Shipped for asio_tcp and asio_local (here) and asio_tls (<wschat/ws/client_tls.hpp>).
template <class Transport>
struct client_transport {
    static constexpr bool supported = false;
};

/// What the plain-socket transports share: the stream is the socket itself.
template <class Protocol>
struct plain_client_transport {
    static constexpr bool supported = true;
    using socket_type = io_socket<Protocol>;
    using stream_type = socket_type;

    struct context {
        context(const client_options&, std::error_code& ec) { ec.clear(); }
        bool insecure() const noexcept { return false; }
    };

    static stream_type wrap(socket_type&& socket, context&) { return std::move(socket); }

    /// Whether `ec` will not go away by trying again: never for a plain socket.
    static bool permanent(std::error_code) noexcept { return false; }

    template <class Handler>
    static void async_handshake(stream_type& stream, context&, const std::string&,
                                Handler&& handler) {
        std::error_code ec;
        if constexpr (std::is_same_v<Protocol, asio::ip::tcp>)
            stream.set_option(asio::ip::tcp::no_delay{true}, ec); // small frames leave at once
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    static void shutdown_send(stream_type& stream) {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
    }
    static void close(stream_type& stream) noexcept {
        std::error_code ignored;
        stream.close(ignored);
    }
};

template <>
struct client_transport<asio_tcp> : plain_client_transport<asio::ip::tcp> {
    static constexpr ws_url::scheme_kind scheme = ws_url::scheme_kind::ws;
};

#if defined(ASIO_HAS_LOCAL_SOCKETS)
template <>
struct client_transport<asio_local> : plain_client_transport<asio::local::stream_protocol> {
    static constexpr ws_url::scheme_kind scheme = ws_url::scheme_kind::ws_unix;
};
#endif

} // namespace detail

WSCHAT_END_NAMESPACE
