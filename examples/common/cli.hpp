// wschat examples — the command line, the transport it selects, and the run loop every example
// shares.
//
// An example describes its server once, for any transport:
//
//     examples::listen_options opts;
//     if (!examples::parse_options(argc, argv, opts))
//         return 2;
//     return examples::serve(opts, [](auto& server) {   // ws::server<T> for the chosen T
//         server.on_message(...);
//     });
#pragma once

#include <wschat/wschat.hpp>

// wss:// is available when the build links OpenSSL into the examples (it defines this macro).
#if defined(WSCHAT_EXAMPLES_TLS)
#include <wschat/ws/tls.hpp>
#endif
// permessage-deflate is available when the build links zlib into the examples (likewise).
#if defined(WSCHAT_EXAMPLES_DEFLATE)
#include <wschat/ws/permessage_deflate.hpp>
#endif

#include <asio/signal_set.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace examples {

/// What the command line says: the server's options and the transport to serve on.
struct listen_options {
    ws::server_options server;
    std::string tls_cert;    ///< --tls-cert: PEM certificate chain; with tls_key: wss://
    std::string tls_key;     ///< --tls-key: PEM private key
    std::string unix_socket; ///< --unix: a Unix domain socket path instead of TCP
    unsigned threads = 1;    ///< --threads: how many threads run the io_context
};

/// Sets `server.compression` for the --deflate flag's `mode`; false for an unknown mode, or
/// a mode other than "off" in a build without zlib.
inline bool use_deflate(std::string_view mode, ws::server_options& server) {
    if (mode == "off") {
        server.compression = nullptr;
        return true;
    }
#if defined(WSCHAT_EXAMPLES_DEFLATE)
    ws::deflate_options deflate;
    if (mode == "per-connection") {
        // Context takeover on both sides, with windows small enough that the zlib streams
        // of a connection stay near 20 KiB instead of 300.
        deflate.server_context_takeover = true;
        deflate.client_context_takeover = true;
        deflate.server_max_window_bits = 11;
        deflate.client_max_window_bits = 11;
        deflate.mem_level = 4;
    } else if (mode != "shared") {
        return false;
    }
    server.compression = ws::permessage_deflate(deflate);
    return true;
#else
    return false;
#endif
}

/// Reads the flags every example takes into `opts`; prints usage and returns false on a
/// bad or unknown flag.
///
///   --address A            listen address (default 127.0.0.1; 0.0.0.0 for all interfaces)
///   --port P               TCP port (default 8080; 0 picks a free one)
///   --tls-cert FILE        serve wss:// (and https://) with this PEM certificate chain...
///   --tls-key FILE         ...and this PEM private key (both or neither; SIGHUP reloads them)
///   --unix PATH            listen on a Unix domain socket instead (e.g. behind nginx)
///   --heartbeat-ms N       ping interval in milliseconds (0 disables)
///   --max-message-size N   largest accepted message in bytes
///   --max-connections N, --max-connections-per-address N, --max-messages-per-second R
///                          the server's limits (R = 0: unlimited), e.g. for load tests
///   --threads N            run the io_context on N threads (default 1)
///   --deflate MODE         permessage-deflate: off (default), shared (a broadcast compressed
///                          once, no context kept) or per-connection (context takeover)
inline bool parse_options(int argc, char** argv, listen_options& opts) {
    const auto usage = [&](std::string_view problem = {}) {
        if (!problem.empty())
            std::cerr << argv[0] << ": " << problem << '\n';
        std::cerr << "usage: " << argv[0]
                  << " [--address A] [--port P] [--tls-cert FILE --tls-key FILE] [--unix PATH]"
                     " [--heartbeat-ms N] [--max-message-size N] [--max-connections N]"
                     " [--max-connections-per-address N] [--max-messages-per-second R]"
                     " [--threads N] [--deflate off|shared|per-connection]\n";
        return false;
    };
    ws::server_options& server = opts.server;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            return usage();
        const std::string value = argv[++i];
        try {
            if (flag == "--address") {
                server.address = value;
            } else if (flag == "--port") {
                const unsigned long port = std::stoul(value);
                if (port > 65535)
                    return usage();
                server.port = static_cast<std::uint16_t>(port);
            } else if (flag == "--tls-cert") {
                opts.tls_cert = value;
            } else if (flag == "--tls-key") {
                opts.tls_key = value;
            } else if (flag == "--unix") {
                opts.unix_socket = value;
            } else if (flag == "--heartbeat-ms") {
                server.heartbeat_interval = std::chrono::milliseconds{std::stoul(value)};
                server.heartbeat_timeout = 2 * server.heartbeat_interval;
            } else if (flag == "--max-message-size") {
                server.max_message_size = std::stoul(value);
            } else if (flag == "--max-connections") {
                server.max_connections = std::stoul(value);
            } else if (flag == "--max-connections-per-address") {
                server.max_connections_per_address = std::stoul(value);
            } else if (flag == "--max-messages-per-second") {
                server.max_messages_per_second = std::stod(value);
            } else if (flag == "--deflate") {
                if (!use_deflate(value, server))
                    return usage(value == "off" || value == "shared" || value == "per-connection"
                                     ? "this build has no permessage-deflate (install zlib1g-dev "
                                       "and rebuild)"
                                     : "--deflate takes off, shared or per-connection");
            } else if (flag == "--threads") {
                opts.threads = static_cast<unsigned>(std::stoul(value));
                if (opts.threads == 0)
                    return usage("--threads needs at least 1");
            } else {
                return usage();
            }
        } catch (const std::exception&) {
            return usage();
        }
    }
    if (opts.tls_cert.empty() != opts.tls_key.empty())
        return usage("--tls-cert and --tls-key go together");
    if (!opts.tls_cert.empty() && !opts.unix_socket.empty())
        return usage("--unix serves plain WebSocket: terminate TLS in the proxy in front");
#if !defined(WSCHAT_EXAMPLES_TLS)
    if (!opts.tls_cert.empty())
        return usage("this build has no TLS support (install libssl-dev and rebuild)");
#endif
    return true;
}

namespace detail {

/// The one line scripts wait for: where to connect.
inline void announce(ws::server<ws::asio_tcp>& server) {
    const std::string& host = server.options().address;
    const bool ipv6 = host.find(':') != std::string::npos;
    std::cout << "listening on ws://" << (ipv6 ? "[" + host + "]" : host) << ':'
              << server.local_endpoint().port() << '/' << std::endl;
}
#if defined(ASIO_HAS_LOCAL_SOCKETS)
inline void announce(ws::server<ws::asio_local>& server) {
    std::cout << "listening on unix:" << server.local_endpoint().path() << std::endl;
}
#endif
#if defined(WSCHAT_EXAMPLES_TLS)
inline void announce(ws::server<ws::asio_tls>& server) {
    const std::string& host = server.options().address;
    const bool ipv6 = host.find(':') != std::string::npos;
    std::cout << "listening on wss://" << (ipv6 ? "[" + host + "]" : host) << ':'
              << server.local_endpoint().port() << '/' << std::endl;
}
#endif

/// Announces the server, then runs the io_context on `threads` threads until SIGINT or
/// SIGTERM and stops the server gracefully (peers get 1001 before the program exits).
/// `on_hangup`, if given, runs on SIGHUP.
template <class Server>
int run(asio::io_context& io, Server& server, unsigned threads = 1,
        std::function<void()> on_hangup = {}) {
    asio::signal_set signals{io, SIGINT, SIGTERM};
    if (on_hangup)
        signals.add(SIGHUP);
    std::function<void(std::error_code, int)> wait = [&](std::error_code ec, int signal) {
        if (ec)
            return;
        if (signal == SIGHUP) {
            on_hangup();
            return signals.async_wait(wait);
        }
        server.stop([&] { signals.cancel(); });
    };
    signals.async_wait(wait);
    announce(server);
    std::vector<std::thread> helpers;
    for (unsigned i = 1; i < threads; ++i)
        helpers.emplace_back([&io] { io.run(); });
    io.run();
    for (std::thread& helper : helpers)
        helper.join();
    return EXIT_SUCCESS;
}

/// Makes the server on `transport`, lets `setup` install its handlers and runs it. Whatever
/// `setup` returns (a room, say) lives until the server is gone.
template <class Transport, class Setup>
int serve_on(const listen_options& opts, Transport transport, Setup& setup,
             std::function<void()> on_hangup = {}) {
    asio::io_context io;
    auto server = std::make_unique<ws::server<Transport>>(io, opts.server, std::move(transport));
    const auto call_setup = [&] {
        if constexpr (std::is_invocable_v<Setup&, ws::server<Transport>&, asio::io_context&>)
            return setup(*server, io);
        else
            return setup(*server);
    };
    if constexpr (std::is_void_v<decltype(call_setup())>) {
        call_setup();
        return run(io, *server, opts.threads, std::move(on_hangup));
    } else {
        auto kept = call_setup();
        const int status = run(io, *server, opts.threads, std::move(on_hangup));
        server.reset(); // before `kept`: the handlers may refer to it
        return status;
    }
}

} // namespace detail

/// Serves on the transport the flags chose — TCP, TLS or a Unix socket — with the handlers
/// `setup` installs. `setup` is called with a `ws::server<T>&` for that transport, and the
/// `asio::io_context&` too if it takes one (write it as a generic lambda);
/// `ws::server<T>::transport_type` names T, e.g. for a `chat::room<T>`. Returns the program's
/// exit status; throws when the server cannot start.
template <class Setup>
int serve(const listen_options& opts, Setup&& setup) {
#if defined(WSCHAT_EXAMPLES_TLS)
    if (!opts.tls_cert.empty()) {
        const auto tls = ws::asio_tls::from_files(opts.tls_cert, opts.tls_key);
        // A renewed certificate is picked up without a restart: `kill -HUP <pid>`.
        return detail::serve_on(opts, tls, setup, [tls, opts] {
            std::error_code ec;
            tls.reload_files(opts.tls_cert, opts.tls_key, ec);
            if (ec)
                std::cerr << "certificate not reloaded: " << ec.message() << '\n';
            else
                std::cerr << "certificate reloaded" << std::endl;
        });
    }
#endif
#if defined(ASIO_HAS_LOCAL_SOCKETS)
    if (!opts.unix_socket.empty())
        return detail::serve_on(opts, ws::asio_local{opts.unix_socket}, setup);
#endif
    return detail::serve_on(opts, ws::asio_tcp{}, setup);
}

} // namespace examples
