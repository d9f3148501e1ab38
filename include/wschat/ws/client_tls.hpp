// wschat — the client side of `asio_tls` (wss://): SNI, certificate and host-name
// verification against the system store or a pinned CA file. Needs OpenSSL.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client.hpp>
#include <wschat/ws/client_options.hpp>
#include <wschat/ws/detail/client_transport.hpp>
#include <wschat/ws/tls.hpp>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The TLS context of a client: TLS 1.2 and 1.3 only, trusting `options.ca_file` when set
/// and the system store otherwise, verifying the server's certificate unless
/// `insecure_skip_verification`. Reports an unreadable CA file in `ec`. The host name is
/// checked per connection (see `ws::client<ws::asio_tls>`).
inline std::shared_ptr<asio::ssl::context> client_tls_context(const client_tls_options& options,
                                                              std::error_code& ec) {
    ec.clear();
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
        ec = std::error_code{static_cast<int>(ERR_get_error()), asio::error::get_ssl_category()};
        return nullptr;
    }
    if (!options.ca_file.empty())
        ctx->load_verify_file(options.ca_file, ec);
    else
        ctx->set_default_verify_paths(ec);
    if (ec)
        return nullptr;
    ctx->set_verify_mode(
        options.insecure_skip_verification ? asio::ssl::verify_none : asio::ssl::verify_peer, ec);
    return ec ? nullptr : ctx;
}

namespace detail {

/// `ws::client<ws::asio_tls>`: TCP, then the TLS handshake with SNI and verification.
template <>
struct client_transport<asio_tls> {
    static constexpr bool supported = true;
    static constexpr ws_url::scheme_kind scheme = ws_url::scheme_kind::wss;
    using socket_type = io_socket<asio::ip::tcp>;
    using stream_type = asio_tls::stream_type;

    /// One per client: the SSL context and what every handshake checks.
    struct context {
        context(const client_options& options, std::error_code& ec)
            : ssl(client_tls_context(options.tls, ec)), server_name(options.tls.server_name),
              skip_verification(options.tls.insecure_skip_verification) {}
        bool insecure() const noexcept { return skip_verification; }

        std::shared_ptr<asio::ssl::context> ssl;
        std::string server_name;
        bool skip_verification;
    };

    static stream_type wrap(socket_type&& socket, context& ctx) {
        return stream_type{std::move(socket), *ctx.ssl};
    }

    /// The client side of the TLS handshake. The name checked is `server_name` or the URL's
    /// host: an IP address is matched against the certificate's IP SANs and sent without SNI
    /// (RFC 6066 §3 forbids literals there); a DNS name is sent as SNI and matched against
    /// its DNS SANs (wildcards as RFC 6125 allows, no partial ones).
    template <class Handler>
    static void async_handshake(stream_type& stream, context& ctx, const std::string& host,
                                Handler&& handler) {
        std::error_code ec;
        stream.next_layer().set_option(asio::ip::tcp::no_delay{true}, ec);
        const std::string& name = ctx.server_name.empty() ? host : ctx.server_name;
        SSL* ssl = stream.native_handle();
        std::error_code not_address;
        asio::ip::make_address(name, not_address);
        if (!not_address) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, name.c_str());
            SSL_set1_host(ssl, name.c_str());
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        stream.async_handshake(asio::ssl::stream_base::client, std::forward<Handler>(handler));
    }

    /// A FIN without close_notify (see asio_tls::shutdown_send for why).
    static void shutdown_send(stream_type& stream) {
        std::error_code ignored;
        stream.next_layer().shutdown(asio::socket_base::shutdown_send, ignored);
    }
    static void close(stream_type& stream) noexcept {
        std::error_code ignored;
        stream.next_layer().close(ignored);
    }

    /// A certificate that does not verify will not verify on the next attempt either.
    static bool permanent(std::error_code ec) noexcept {
        return ec.category() == asio::error::get_ssl_category() &&
               ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                   SSL_R_CERTIFICATE_VERIFY_FAILED;
    }
};

} // namespace detail

WSCHAT_END_NAMESPACE
