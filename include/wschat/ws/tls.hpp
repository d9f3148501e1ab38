// wschat — `asio_tls`: the server over TLS (wss://). Needs OpenSSL; not in the umbrella header.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/associated_executor.hpp>
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A server-side TLS context as `asio_tls` uses it: TLS 1.2 and 1.3 only, with the
/// certificate chain and private key from PEM files. Reports a missing or unreadable file, a
/// malformed PEM, or a key that does not belong to the certificate in `ec`.
inline std::shared_ptr<asio::ssl::context>
tls_context_from_files(const std::string& cert_chain_file, const std::string& key_file,
                       std::error_code& ec);
/// The same from PEM text in memory (a secret store, an environment variable): the
/// certificate chain, leaf first, and the private key, both PEM.
inline std::shared_ptr<asio::ssl::context> tls_context_from_memory(std::string_view cert_chain_pem,
                                                                   std::string_view key_pem,
                                                                   std::error_code& ec);

namespace detail {

/// A context with the protocol floor set and nothing loaded yet.
inline std::shared_ptr<asio::ssl::context> base_tls_context(std::error_code& ec) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    // TLS 1.0 and 1.1 are deprecated (RFC 8996): the handshake of a client that offers
    // nothing newer fails.
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
        ec = std::error_code{static_cast<int>(ERR_get_error()), asio::error::get_ssl_category()};
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use,
                     ec);
    return ctx;
}

/// Refuses a key that is not the certificate's (OpenSSL would only notice at the first
/// handshake, where every client would fail).
inline void check_key_matches(asio::ssl::context& ctx, std::error_code& ec) {
    ERR_clear_error();
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
        ec = std::error_code{static_cast<int>(ERR_get_error()), asio::error::get_ssl_category()};
}

/// What every copy of one `asio_tls` shares: the current context, swapped by reloads.
struct tls_state {
    mutable std::mutex mutex;
    std::shared_ptr<asio::ssl::context> context;

    std::shared_ptr<asio::ssl::context> current() const {
        std::lock_guard<std::mutex> lock{mutex};
        return context;
    }
};

inline void throw_if(std::error_code ec, const char* what) {
    if (ec)
        throw std::system_error{ec, what};
}

} // namespace detail

inline std::shared_ptr<asio::ssl::context>
tls_context_from_files(const std::string& cert_chain_file, const std::string& key_file,
                       std::error_code& ec) {
    ec.clear();
    auto ctx = detail::base_tls_context(ec);
    if (!ec)
        ctx->use_certificate_chain_file(cert_chain_file, ec);
    if (!ec)
        ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (!ec)
        detail::check_key_matches(*ctx, ec);
    return ec ? nullptr : ctx;
}

inline std::shared_ptr<asio::ssl::context> tls_context_from_memory(std::string_view cert_chain_pem,
                                                                   std::string_view key_pem,
                                                                   std::error_code& ec) {
    ec.clear();
    auto ctx = detail::base_tls_context(ec);
    if (!ec)
        ctx->use_certificate_chain(asio::buffer(cert_chain_pem.data(), cert_chain_pem.size()), ec);
    if (!ec)
        ctx->use_private_key(asio::buffer(key_pem.data(), key_pem.size()), asio::ssl::context::pem,
                             ec);
    if (!ec)
        detail::check_key_matches(*ctx, ec);
    return ec ? nullptr : ctx;
}

/// TLS over TCP (`wss://`): a Transport for `ws::server` (see the concept in
/// `ws/transport.hpp`).
///
/// ```cpp
/// #include <wschat/wschat.hpp>
/// #include <wschat/ws/tls.hpp>   // links OpenSSL (CMake: wschat::tls)
///
/// auto tls = ws::asio_tls::from_files("cert.pem", "key.pem");   // throws when unusable
/// ws::server<ws::asio_tls> server{io, opts, tls};
/// ...
/// tls.reload_files("cert.pem", "key.pem"); // renewed certificate, no restart
/// ```
///
/// Copies share one context: the `asio_tls` the application keeps reloads the certificate
/// of the server that holds a copy. A reload applies to connections accepted afterwards;
/// those already open keep the context they started with. Reloads may be called from any
/// thread. Only TLS 1.2 and 1.3 are accepted (unless the application passes its own
/// context). The TLS handshake is bounded by `server_options::handshake_timeout`, and a
/// client that fails it (plain HTTP, garbage, an old protocol) is closed without affecting
/// anyone else.
///
/// Thread safety: the const member functions (reloads included) may be called from any
/// thread at once, on one `asio_tls` or on its copies; the shared context is guarded by a
/// mutex.
class asio_tls {
public:
    /// A TLS stream over a TCP socket: what each connection reads and writes.
    using stream_type = asio::ssl::stream<io_socket<asio::ip::tcp>>;
    /// A TCP acceptor, as `asio_tcp` has.
    using acceptor_type = io_acceptor<asio::ip::tcp>;

    /// Uses `context` as it is: for settings of the application's own (ciphers, ALPN,
    /// client certificates, another protocol floor).
    explicit asio_tls(std::shared_ptr<asio::ssl::context> context)
        : state_(std::make_shared<detail::tls_state>()) {
        reload(std::move(context));
    }

    /// Certificate chain and key from PEM files; throws `std::system_error` when they cannot
    /// be used.
    static asio_tls from_files(const std::string& cert_chain_file, const std::string& key_file) {
        std::error_code ec;
        auto ctx = tls_context_from_files(cert_chain_file, key_file, ec);
        detail::throw_if(ec, "ws::asio_tls: cannot load the certificate or key");
        return asio_tls{std::move(ctx)};
    }
    /// Certificate chain and key from PEM text; throws `std::system_error` when unusable.
    static asio_tls from_memory(std::string_view cert_chain_pem, std::string_view key_pem) {
        std::error_code ec;
        auto ctx = tls_context_from_memory(cert_chain_pem, key_pem, ec);
        detail::throw_if(ec, "ws::asio_tls: cannot load the certificate or key");
        return asio_tls{std::move(ctx)};
    }

    /// New connections use `context` from now on (a null one is ignored).
    void reload(std::shared_ptr<asio::ssl::context> context) const {
        if (!context)
            return;
        std::lock_guard<std::mutex> lock{state_->mutex};
        state_->context = std::move(context);
    }
    /// Reloads from PEM files; on failure `ec` says why and the current certificate stays.
    void reload_files(const std::string& cert_chain_file, const std::string& key_file,
                      std::error_code& ec) const {
        reload(tls_context_from_files(cert_chain_file, key_file, ec));
    }
    /// Reloads from PEM files; throws `std::system_error` (keeping the current certificate).
    void reload_files(const std::string& cert_chain_file, const std::string& key_file) const {
        std::error_code ec;
        reload_files(cert_chain_file, key_file, ec);
        detail::throw_if(ec, "ws::asio_tls: cannot reload the certificate or key");
    }
    /// Reloads from PEM text; on failure `ec` says why and the current certificate stays.
    void reload_memory(std::string_view cert_chain_pem, std::string_view key_pem,
                       std::error_code& ec) const {
        reload(tls_context_from_memory(cert_chain_pem, key_pem, ec));
    }

    /// The context new connections get.
    std::shared_ptr<asio::ssl::context> context() const { return state_->current(); }

    // --- the Transport concept ---------------------------------------------------------------

    /// Listens on `where` as `asio_tcp::listen` does (SO_REUSEADDR); the TLS handshake
    /// happens per connection, in async_handshake.
    acceptor_type listen(asio::io_context& io, const listen_address& where,
                         std::error_code& ec) const {
        return asio_tcp{}.listen(io, where, ec);
    }

    /// Accepts a TCP connection and wraps it in a TLS stream with the current context.
    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        const auto executor = asio::get_associated_executor(handler, acceptor.get_executor());
        acceptor.async_accept(asio::bind_executor(
            executor, [state = state_, h = std::forward<Handler>(handler)](
                          std::error_code ec, io_socket<asio::ip::tcp> socket) mutable {
                h(ec, stream_type{std::move(socket), *state->current()});
            }));
    }

    /// Turns Nagle's algorithm off (small chat frames leave at once) and runs the server side
    /// of the TLS handshake; `handler(std::error_code)` is called when it ends. The connection
    /// bounds it by `server_options::handshake_timeout`.
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        std::error_code ignored;
        stream.next_layer().set_option(asio::ip::tcp::no_delay{true}, ignored);
        stream.async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(handler));
    }

    /// Stops listening, as `asio_tcp::close_acceptor` does.
    void close_acceptor(acceptor_type& acceptor) const noexcept {
        asio_tcp{}.close_acceptor(acceptor);
    }

    /// Ends our direction with a TCP FIN, without a TLS `close_notify`: OpenSSL discards the
    /// application data that arrives after it has sent one, which would lose the peer's
    /// answering Close frame. Nothing is lost in exchange: the WebSocket closing handshake,
    /// inside TLS, already tells both sides that all data has arrived.
    void shutdown_send(stream_type& stream) const {
        std::error_code ignored;
        stream.next_layer().shutdown(asio::socket_base::shutdown_send, ignored);
    }

    /// Closes the TCP socket at once (no TLS `close_notify`), cancelling pending operations;
    /// errors are ignored.
    void close(stream_type& stream) const noexcept {
        std::error_code ignored;
        stream.next_layer().close(ignored);
    }

    /// The peer's IP address as text ("192.0.2.7", "2001:db8::1"); empty when the socket
    /// has no peer any more.
    std::string remote_address(const stream_type& stream) const {
        std::error_code ec;
        const auto endpoint = stream.next_layer().remote_endpoint(ec);
        return ec ? std::string{} : endpoint.address().to_string();
    }

private:
    std::shared_ptr<detail::tls_state> state_;
};

WSCHAT_END_NAMESPACE

#include <wschat/ws/detail/extern_templates_tls.hpp>
