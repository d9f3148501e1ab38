// wschat — the Transport concept (how a server accepts and talks over a stream) and `asio_tcp`.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/options.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// # The Transport concept
///
/// `ws::server<Transport>` is generic over how bytes travel. A Transport is a class the
/// server owns one instance of; it provides:
///
/// | member | meaning |
/// |---|---|
/// | `stream_type` | an Asio AsyncReadStream + AsyncWriteStream a connection talks over |
/// | `acceptor_type` | what listens for new streams |
/// | `acceptor_type listen(asio::io_context&, const server_options&, std::error_code&)` | opens,
/// binds and listens | | `void async_accept(acceptor_type&, H)` | accepts one stream:
/// `H(std::error_code, stream_type)` | | `void close_acceptor(acceptor_type&)` | stops listening
/// (and removes what `listen` created) | | `void async_handshake(stream_type&, H)` |
/// transport-level handshake before HTTP (TLS); `H(std::error_code)` | | `void
/// shutdown_send(stream_type&)` | ends our direction after the last write (TCP FIN) | | `void
/// close(stream_type&)` | closes at once, cancelling pending operations; never throws | |
/// `std::string remote_address(const stream_type&)` | the peer's address, for logs and limits |
///
/// `is_transport_v<T>` checks the type members; `ws::server` asserts it with a message that
/// names what is missing. `asio_tcp` below is the reference implementation.
struct asio_tcp {
    using stream_type = asio::ip::tcp::socket;
    using acceptor_type = asio::ip::tcp::acceptor;

    /// Listens on `opts.address`:`opts.port` with SO_REUSEADDR, so a restarted server can
    /// bind while old connections sit in TIME_WAIT.
    acceptor_type listen(asio::io_context& io, const server_options& opts,
                         std::error_code& ec) const {
        acceptor_type acceptor{io};
        const auto address = asio::ip::make_address(opts.address, ec);
        if (ec)
            return acceptor;
        const asio::ip::tcp::endpoint endpoint{address, opts.port};
        acceptor.open(endpoint.protocol(), ec);
        if (!ec)
            acceptor.set_option(asio::socket_base::reuse_address{true}, ec);
        if (!ec)
            acceptor.bind(endpoint, ec);
        if (!ec)
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        return acceptor;
    }

    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        acceptor.async_accept(std::forward<Handler>(handler));
    }

    /// Plain TCP has nothing to negotiate below HTTP; completes at once, with
    /// Nagle's algorithm off so small chat frames leave immediately.
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        std::error_code ec;
        stream.set_option(asio::ip::tcp::no_delay{true}, ec);
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler), ec]() mutable { h(ec); });
    }

    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::error_code ignored;
        acceptor.close(ignored);
    }

    void shutdown_send(stream_type& stream) const {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
    }

    void close(stream_type& stream) const noexcept {
        std::error_code ignored;
        stream.close(ignored);
    }

    std::string remote_address(const stream_type& stream) const {
        std::error_code ec;
        const auto endpoint = stream.remote_endpoint(ec);
        return ec ? std::string{} : endpoint.address().to_string();
    }
};

namespace detail {
template <class T, class = void>
struct has_stream_type : std::false_type {};
template <class T>
struct has_stream_type<T, std::void_t<typename T::stream_type>> : std::true_type {};

template <class T, class = void>
struct has_acceptor_type : std::false_type {};
template <class T>
struct has_acceptor_type<T, std::void_t<typename T::acceptor_type>> : std::true_type {};

template <class T, class = void>
struct has_listen : std::false_type {};
template <class T>
struct has_listen<T, std::void_t<decltype(std::declval<const T&>().listen(
                         std::declval<asio::io_context&>(), std::declval<const server_options&>(),
                         std::declval<std::error_code&>()))>> : std::true_type {};

template <class T, class = void>
struct has_stream_operations : std::false_type {};
template <class T>
struct has_stream_operations<
    T,
    std::void_t<decltype(std::declval<const T&>().shutdown_send(
                    std::declval<typename T::stream_type&>())),
                decltype(std::declval<const T&>().close(std::declval<typename T::stream_type&>())),
                decltype(std::declval<const T&>().close_acceptor(
                    std::declval<typename T::acceptor_type&>())),
                decltype(std::string{std::declval<const T&>().remote_address(
                    std::declval<const typename T::stream_type&>())})>> : std::true_type {};
} // namespace detail

/// Checks a Transport type at compile time, one readable message per missing piece.
template <class T>
constexpr bool check_transport() {
    static_assert(detail::has_stream_type<T>::value,
                  "wschat Transport: missing `using stream_type = ...` (an Asio stream)");
    static_assert(detail::has_acceptor_type<T>::value,
                  "wschat Transport: missing `using acceptor_type = ...`");
    if constexpr (detail::has_stream_type<T>::value && detail::has_acceptor_type<T>::value) {
        static_assert(detail::has_listen<T>::value,
                      "wschat Transport: missing `acceptor_type listen(asio::io_context&, const "
                      "ws::server_options&, std::error_code&) const`");
        static_assert(detail::has_stream_operations<T>::value,
                      "wschat Transport: missing one of `shutdown_send(stream_type&) const`, "
                      "`close(stream_type&) const`, `close_acceptor(acceptor_type&) const`, "
                      "`remote_address(const stream_type&) const`");
    }
    return true;
}

WSCHAT_END_NAMESPACE
