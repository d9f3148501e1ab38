// wschat — the Transport concept (how a server accepts and talks over a stream) and `asio_tcp`.
#pragma once

#include <wschat/detail/config.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(ASIO_HAS_LOCAL_SOCKETS)
#include <cerrno>

#include <sys/stat.h>
#include <unistd.h>
#endif

WSCHAT_BEGIN_NAMESPACE(ws)

// clang-format off
/// # The Transport concept
///
/// `ws::server<Transport>` is generic over how bytes travel. A Transport is a copyable
/// class; the server keeps one copy and calls it from its strands (so its members are
/// `const` and any state it shares, like a TLS context, is thread-safe). It provides:
///
/// | member | meaning |
/// |---|---|
/// | `stream_type` | an Asio AsyncReadStream + AsyncWriteStream (with `get_executor()`), moved into the connection |
/// | `acceptor_type` | what listens: constructible from the `asio::io_context`, move-assignable (from `listen`), with `endpoint_type` and `local_endpoint(std::error_code&) const` (`server::local_endpoint()`) |
/// | `acceptor_type listen(asio::io_context&, const listen_address&, std::error_code&) const` | opens, binds, listens (where the server's options say, if the transport listens on an address at all) |
/// | `void async_accept(acceptor_type&, H) const` | accepts one stream: `H(std::error_code, stream_type)`, run on H's executor |
/// | `void async_handshake(stream_type&, H) const` | the transport's own handshake before HTTP (TLS): `H(std::error_code)`; the connection bounds it by `handshake_timeout` |
/// | `void shutdown_send(stream_type&) const` | after the last write: ends our direction (TCP FIN, TLS close_notify) and lets the read loop see the peer's end; bounded by `close_timeout` |
/// | `void close(stream_type&) const noexcept` | closes at once, cancelling pending operations |
/// | `void close_acceptor(acceptor_type&) const noexcept` | stops listening and removes what `listen` created (a socket file) |
/// | `std::string remote_address(const stream_type&) const` | the peer's address, for logs, per-address limits and `trusted_proxies` |
///
/// `check_transport<T>()` verifies each row at compile time and `ws::server` asserts it,
/// with a message naming the missing member. Shipped transports: `asio_tcp` and
/// `asio_local` (below), `asio_tls` (`<wschat/ws/tls.hpp>`, needs OpenSSL).
// clang-format on

/// Sockets bound to the io_context's own executor type rather than the type-erased
/// `asio::any_io_executor`: every connection's strand, timer and pending operation is then
/// smaller (about 250 bytes less per idle connection) and dispatch needs no indirection.
template <class Protocol>
using io_socket = asio::basic_stream_socket<Protocol, asio::io_context::executor_type>;
/// An acceptor bound to the io_context's own executor type, for the same reason.
template <class Protocol>
using io_acceptor = asio::basic_socket_acceptor<Protocol, asio::io_context::executor_type>;

/// Where a server listens, from its options (`server_options::address` and `port`): all a
/// transport learns of them.
struct listen_address {
    /// An IP literal ("127.0.0.1", "::", "0.0.0.0").
    std::string address;
    /// 0 asks the OS for a free port.
    std::uint16_t port = 0;
};

namespace detail {
/// What the plain-socket transports (TCP, Unix domain) do alike: accepting, ending our
/// direction, closing, and the open-bind-listen sequence.
template <class Protocol>
struct socket_transport {
    using stream_type = io_socket<Protocol>;
    using acceptor_type = io_acceptor<Protocol>;

    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        acceptor.async_accept(std::forward<Handler>(handler));
    }

    void shutdown_send(stream_type& stream) const {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
    }

    void close(stream_type& stream) const noexcept {
        std::error_code ignored;
        stream.close(ignored);
    }

protected:
    /// Opens `acceptor`, binds it to `endpoint` (with SO_REUSEADDR when `reuse_address`) and
    /// listens; stops at the first error.
    static void bind_and_listen(acceptor_type& acceptor,
                                const typename Protocol::endpoint& endpoint, bool reuse_address,
                                std::error_code& ec) {
        acceptor.open(endpoint.protocol(), ec);
        if (!ec && reuse_address)
            acceptor.set_option(asio::socket_base::reuse_address{true}, ec);
        if (!ec)
            acceptor.bind(endpoint, ec);
        if (!ec)
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
};
} // namespace detail

/// Plain TCP (`ws://`): the default transport.
struct asio_tcp : detail::socket_transport<asio::ip::tcp> {

    /// Listens on `opts.address`:`opts.port` with SO_REUSEADDR, so a restarted server can
    /// bind while old connections sit in TIME_WAIT.
    acceptor_type listen(asio::io_context& io, const listen_address& where,
                         std::error_code& ec) const {
        acceptor_type acceptor{io};
        const auto address = asio::ip::make_address(where.address, ec);
        if (ec)
            return acceptor;
        bind_and_listen(acceptor, {address, where.port}, true, ec);
        return acceptor;
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

    /// Stops listening.
    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::error_code ignored;
        acceptor.close(ignored);
    }

    /// The peer's IP address as text, or empty when the socket no longer has one.
    std::string remote_address(const stream_type& stream) const {
        std::error_code ec;
        const auto endpoint = stream.remote_endpoint(ec);
        return ec ? std::string{} : endpoint.address().to_string();
    }
};

#if defined(ASIO_HAS_LOCAL_SOCKETS)
/// Unix domain sockets: the server listens on a socket file instead of a TCP port, the
/// usual set-up for a gateway behind a reverse proxy on the same host (nginx's
/// `proxy_pass http://unix:/run/chat.sock;`). No port is exposed, and who may connect is
/// decided by the file's permissions.
///
/// ```cpp
/// ws::server<ws::asio_local> server{io, opts, ws::asio_local{"/run/chat/chat.sock"}};
/// ```
///
/// `server_options::address` and `port` are not used. A stale socket file left by a crashed
/// process is replaced; a path where another server still accepts connections is refused
/// with `address_in_use`, and a path that is not a socket is never removed. The file is
/// removed when the server stops listening.
///
/// Every peer's `remote_address()` is `"unix"`: per-address limits count all local peers as
/// one address, so behind a local proxy list `"unix"` in `trusted_proxies`, which both
/// exempts the proxy from that limit and makes the client address it forwards believed.
struct asio_local : detail::socket_transport<asio::local::stream_protocol> {

    asio_local() = default;
    /// A transport that listens on the socket file at `socket_path`.
    explicit asio_local(std::string socket_path) : path(std::move(socket_path)) {}

    /// The path of the socket file (at most about 100 bytes: `sockaddr_un` is small).
    std::string path;

    /// Listens on `path`, replacing a stale socket file; the address is not used.
    acceptor_type listen(asio::io_context& io, const listen_address&, std::error_code& ec) const {
        acceptor_type acceptor{io};
        remove_stale_socket(io, ec);
        if (!ec)
            bind_and_listen(acceptor, asio::local::stream_protocol::endpoint{path}, false, ec);
        return acceptor;
    }

    /// Nothing to negotiate below HTTP: completes at once.
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    /// Stops listening and removes the socket file, but only while it is still the one this
    /// acceptor bound (the path the acceptor reports), never a file someone put there since.
    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::error_code ec;
        const bool bound = acceptor.is_open() && acceptor.local_endpoint(ec).path() == path && !ec;
        acceptor.close(ec);
        if (bound)
            ::unlink(path.c_str());
    }

    /// Always "unix": a Unix socket's peer has no address of its own.
    std::string remote_address(const stream_type&) const { return "unix"; }

private:
    /// A socket file nobody accepts on (left by a process that died) would make bind fail
    /// with "address in use": remove it. One with a live listener is left alone.
    void remove_stale_socket(asio::io_context& io, std::error_code& ec) const {
        struct ::stat file {};
        if (::stat(path.c_str(), &file) != 0 || !S_ISSOCK(file.st_mode))
            return; // absent, or not a socket: bind reports what is wrong, if anything
        stream_type probe{io};
        std::error_code refused;
        probe.connect(asio::local::stream_protocol::endpoint{path}, refused);
        if (!refused) {
            ec = asio::error::address_in_use;
            return;
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            ec.assign(errno, std::system_category());
    }
};
#endif

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
                         std::declval<asio::io_context&>(), std::declval<const listen_address&>(),
                         std::declval<std::error_code&>()))>> : std::true_type {};

template <class T>
constexpr bool acceptor_constructible() {
    using acceptor = typename T::acceptor_type;
    return std::is_constructible_v<acceptor, asio::io_context&> &&
           std::is_move_assignable_v<acceptor>;
}

template <class T, class = void>
struct has_local_endpoint : std::false_type {};
template <class T>
struct has_local_endpoint<
    T, std::void_t<typename T::acceptor_type::endpoint_type,
                   decltype(std::declval<const typename T::acceptor_type&>().local_endpoint(
                       std::declval<std::error_code&>()))>> : std::true_type {};

// Completion handlers of the signatures the server passes, to probe the async members.
template <class T>
struct probe_accept_handler {
    void operator()(std::error_code, typename T::stream_type) const {}
};
struct probe_handshake_handler {
    void operator()(std::error_code) const {}
};

template <class T, class = void>
struct has_async_accept : std::false_type {};
template <class T>
struct has_async_accept<
    T, std::void_t<decltype(std::declval<const T&>().async_accept(
           std::declval<typename T::acceptor_type&>(), std::declval<probe_accept_handler<T>>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_async_handshake : std::false_type {};
template <class T>
struct has_async_handshake<
    T, std::void_t<decltype(std::declval<const T&>().async_handshake(
           std::declval<typename T::stream_type&>(), std::declval<probe_handshake_handler>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_shutdown_send : std::false_type {};
template <class T>
struct has_shutdown_send<T, std::void_t<decltype(std::declval<const T&>().shutdown_send(
                                std::declval<typename T::stream_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_close : std::false_type {};
template <class T>
struct has_close<T, std::void_t<decltype(std::declval<const T&>().close(
                        std::declval<typename T::stream_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_close_acceptor : std::false_type {};
template <class T>
struct has_close_acceptor<T, std::void_t<decltype(std::declval<const T&>().close_acceptor(
                                 std::declval<typename T::acceptor_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_remote_address : std::false_type {};
template <class T>
struct has_remote_address<
    T, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const T&>().remote_address(
                                                  std::declval<const typename T::stream_type&>())),
                                              std::string>>> : std::true_type {};
} // namespace detail

/// Checks a Transport type at compile time: one `static_assert` per row of the concept table,
/// each naming the missing member (so a mistake reads as one line, not a template backtrace).
/// Returns true, so that it can itself be used in a `static_assert`.
template <class T>
constexpr bool check_transport() {
    static_assert(std::is_copy_constructible_v<T>,
                  "wschat Transport: must be copy-constructible (the server keeps a copy)");
    static_assert(detail::has_stream_type<T>::value,
                  "wschat Transport: missing `using stream_type = ...` (an Asio stream)");
    static_assert(detail::has_acceptor_type<T>::value,
                  "wschat Transport: missing `using acceptor_type = ...`");
    if constexpr (detail::has_stream_type<T>::value && detail::has_acceptor_type<T>::value) {
        static_assert(detail::acceptor_constructible<T>(),
                      "wschat Transport: acceptor_type must be constructible from an "
                      "asio::io_context& and move-assignable");
        static_assert(detail::has_local_endpoint<T>::value,
                      "wschat Transport: acceptor_type needs `endpoint_type` and "
                      "`local_endpoint(std::error_code&) const`");
        static_assert(detail::has_listen<T>::value,
                      "wschat Transport: missing `acceptor_type listen(asio::io_context&, const "
                      "ws::listen_address&, std::error_code&) const`");
        static_assert(detail::has_async_accept<T>::value,
                      "wschat Transport: missing `template <class H> void "
                      "async_accept(acceptor_type&, H&&) const` calling H(std::error_code, "
                      "stream_type)");
        static_assert(detail::has_async_handshake<T>::value,
                      "wschat Transport: missing `template <class H> void "
                      "async_handshake(stream_type&, H&&) const` calling H(std::error_code)");
        static_assert(detail::has_shutdown_send<T>::value,
                      "wschat Transport: missing `void shutdown_send(stream_type&) const`");
        static_assert(detail::has_close<T>::value,
                      "wschat Transport: missing `void close(stream_type&) const noexcept`");
        static_assert(detail::has_close_acceptor<T>::value,
                      "wschat Transport: missing `void close_acceptor(acceptor_type&) const "
                      "noexcept`");
        static_assert(detail::has_remote_address<T>::value,
                      "wschat Transport: missing `std::string remote_address(const "
                      "stream_type&) const`");
    }
    return true;
}

WSCHAT_END_NAMESPACE
