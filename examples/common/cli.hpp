// wschat examples — the command line, the transport it selects, and the run loop every example
// shares.
//
// An example describes its server once, for any transport:
//
//     examples::listen_options opts;
//     if (const auto exit_status = examples::parse_options(argc, argv, opts, {"what it is", {}}))
//         return *exit_status;                          // --help: 0; a bad flag: 2
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

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
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

/// A flag of the command line: its name, what value it takes, one line of help, and what
/// to do with the value.
struct flag {
    std::string name;  ///< "--static-dir"
    std::string value; ///< what it takes, for the usage: "DIR"
    std::string help;  ///< what it does, one line
    /// Takes the value; returns what is wrong with it, or an empty string.
    std::function<std::string(const std::string& value)> take;
};

/// What an example tells parse_options about itself: one line saying what it is, for
/// --help, and the flags it takes besides the common ones.
struct program {
    std::string about;
    std::vector<flag> own_flags;
};

/// `value` as a number from 0 to `max`: digits only, no sign, nothing after them.
inline std::optional<unsigned long long> to_number(const std::string& value,
                                                   unsigned long long max) {
    if (value.empty() || value.size() > 20 ||
        value.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    try {
        const unsigned long long n = std::stoull(value);
        return n <= max ? std::optional<unsigned long long>{n} : std::nullopt;
    } catch (const std::out_of_range&) {
        return std::nullopt;
    }
}

/// A flag's `take` that stores a number from 0 to `max` into `into`.
template <class Number>
std::function<std::string(const std::string&)> store_number(Number& into, unsigned long long max) {
    return [&into, max](const std::string& value) -> std::string {
        const auto n = to_number(value, max);
        if (!n)
            return "expected a whole number from 0 to " + std::to_string(max) + ", got '" + value +
                   "'";
        into = static_cast<Number>(*n);
        return {};
    };
}

/// A flag's `take` that stores milliseconds (at most a day) into `into`.
inline std::function<std::string(const std::string&)>
store_milliseconds(std::chrono::milliseconds& into) {
    return [&into](const std::string& value) {
        std::chrono::milliseconds::rep ms = 0;
        std::string problem = store_number(ms, 24 * 60 * 60 * 1000)(value);
        if (problem.empty())
            into = std::chrono::milliseconds{ms};
        return problem;
    };
}

/// The flags every example takes, storing into `opts`. Their help shows the defaults `opts`
/// holds when this is called, so an example's own defaults (echo_server's larger messages)
/// are the ones listed.
inline std::vector<flag> common_flags(listen_options& opts) {
    ws::server_options& server = opts.server;
    const auto text = [](std::string& into) {
        return [&into](const std::string& value) {
            into = value;
            return std::string{};
        };
    };
    return {
        {"--address", "A",
         "listen address (default " + server.address + "; 0.0.0.0 for all interfaces)",
         text(server.address)},
        {"--port", "P",
         "TCP port (default " + std::to_string(server.port) + "; 0 picks a free one)",
         store_number(server.port, 65535)},
        {"--tls-cert", "FILE",
         "serve wss:// (and the page over https://) with this PEM certificate chain...",
         text(opts.tls_cert)},
        {"--tls-key", "FILE", "...and this PEM private key (both or neither; SIGHUP reloads them)",
         text(opts.tls_key)},
        {"--unix", "PATH", "listen on this Unix domain socket instead of TCP (e.g. behind nginx)",
         text(opts.unix_socket)},
        {"--heartbeat-ms", "N",
         "ping every N ms, close a peer silent for 2 N ms (default " +
             std::to_string(server.heartbeat_interval.count()) + "; 0 disables)",
         [&server](const std::string& value) {
             std::string problem = store_milliseconds(server.heartbeat_interval)(value);
             if (problem.empty())
                 server.heartbeat_timeout = 2 * server.heartbeat_interval;
             return problem;
         }},
        {"--max-message-size", "N",
         "largest accepted message in bytes (default " + std::to_string(server.max_message_size) +
             ")",
         store_number(server.max_message_size, std::numeric_limits<std::uint32_t>::max())},
        {"--max-connections", "N",
         "connections served at once (default " + std::to_string(server.max_connections) + ")",
         store_number(server.max_connections, std::numeric_limits<std::uint32_t>::max())},
        {"--max-connections-per-address", "N",
         "connections from one address (default " +
             std::to_string(server.max_connections_per_address) + ")",
         store_number(server.max_connections_per_address,
                      std::numeric_limits<std::uint32_t>::max())},
        {"--max-messages-per-second", "R",
         "messages a connection may send per second, 0 for no limit (default " +
             std::to_string(static_cast<unsigned long long>(server.max_messages_per_second)) + ")",
         [&server](const std::string& value) -> std::string {
             char* end = nullptr;
             const double rate = std::strtod(value.c_str(), &end);
             if (value.empty() || *end != '\0' || !(rate >= 0) || rate > 1e9)
                 return "expected a rate from 0 to 1e9, got '" + value + "'";
             server.max_messages_per_second = rate;
             return {};
         }},
        {"--threads", "N",
         "run the io_context on N threads (default " + std::to_string(opts.threads) + ")",
         [&opts](const std::string& value) {
             std::string problem = store_number(opts.threads, 1024)(value);
             if (problem.empty() && opts.threads == 0)
                 problem = "needs at least 1";
             return problem;
         }},
        {"--deflate", "MODE",
         "permessage-deflate: off (default), shared (a broadcast compressed once) or "
         "per-connection (context takeover)",
         [&server](const std::string& value) -> std::string {
             if (use_deflate(value, server))
                 return {};
             if (value == "shared" || value == "per-connection")
                 return "this build has no permessage-deflate (install zlib1g-dev and rebuild)";
             return "takes off, shared or per-connection, got '" + value + "'";
         }},
    };
}

/// Writes the usage: what the program is, then every flag it takes, the common ones first.
inline void print_usage(std::ostream& out, std::string_view argv0, const program& about,
                        const std::vector<flag>& common) {
    out << "usage: " << argv0 << " [FLAG VALUE]...\n";
    if (!about.about.empty())
        out << about.about << '\n';
    std::size_t width = std::string_view{"-h, --help"}.size();
    for (const std::vector<flag>* flags : {&common, &about.own_flags})
        for (const flag& f : *flags)
            width = std::max(width, f.name.size() + 1 + f.value.size());
    const auto line = [&out, width](const std::string& left, const std::string& help) {
        out << "  " << left << std::string(width + 2 - left.size(), ' ') << help << '\n';
    };
    const auto list = [&](const char* heading, const std::vector<flag>& flags) {
        out << '\n' << heading << '\n';
        for (const flag& f : flags)
            line(f.name + ' ' + f.value, f.help);
    };
    if (!common.empty())
        list("common flags:", common);
    if (!about.own_flags.empty())
        list(common.empty() ? "flags:" : "flags of its own:", about.own_flags);
    out << '\n';
    line("-h, --help", "print this help and exit");
}

namespace detail {

/// Writes `problem` and the usage to stderr; returns the exit status for a bad command line.
inline int refuse(const char* argv0, const std::string& problem, const program& about,
                  const std::vector<flag>& common) {
    std::cerr << argv0 << ": " << problem << "\n\n";
    print_usage(std::cerr, argv0, about, common);
    return 2;
}

/// Reads the flags of `common` and `about` from the command line (see parse_options).
inline std::optional<int> parse_flags(int argc, char** argv, const program& about,
                                      const std::vector<flag>& common) {
    const auto bad = [&](const std::string& problem) {
        return refuse(argv[0], problem, about, common);
    };
    const auto find = [&](std::string_view name) -> const flag* {
        for (const std::vector<flag>* flags : {&common, &about.own_flags})
            for (const flag& f : *flags)
                if (f.name == name)
                    return &f;
        return nullptr;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string name = argv[i];
        if (name == "--help" || name == "-h") {
            print_usage(std::cout, argv[0], about, common);
            return 0;
        }
        const flag* f = find(name);
        if (!f)
            return bad("unknown flag '" + name + "'");
        if (i + 1 >= argc)
            return bad(name + " needs a value: " + name + ' ' + f->value);
        const std::string problem = f->take(argv[++i]);
        if (!problem.empty())
            return bad(name + ": " + problem);
    }
    return std::nullopt;
}

} // namespace detail

/// Reads the command line into `opts` (the common flags) and through `about`'s own flags.
/// Returns the status the program should exit with now: 0 after printing the usage for
/// `--help` or `-h` (to stdout), 2 after a missing, unknown or bad flag (the problem and the
/// usage to stderr); nothing when it should go on and serve. Flags are read in order, and
/// the first problem ends the reading.
inline std::optional<int> parse_options(int argc, char** argv, listen_options& opts,
                                        const program& about = {}) {
    const std::vector<flag> common = common_flags(opts);
    if (const auto exit_status = detail::parse_flags(argc, argv, about, common))
        return exit_status;
    const auto bad = [&](const std::string& problem) {
        return detail::refuse(argv[0], problem, about, common);
    };
    if (opts.tls_cert.empty() != opts.tls_key.empty())
        return bad("--tls-cert and --tls-key go together");
    if (!opts.tls_cert.empty() && !opts.unix_socket.empty())
        return bad("--unix serves plain WebSocket: terminate TLS in the proxy in front");
#if !defined(WSCHAT_EXAMPLES_TLS)
    if (!opts.tls_cert.empty())
        return bad("this build has no TLS support (install libssl-dev and rebuild)");
#endif
    return std::nullopt;
}

/// Reads the command line of a program that connects rather than serves (a bot, a device
/// simulator): only `about`'s flags, with the same usage, --help and exit statuses as
/// parse_options.
inline std::optional<int> parse_client_options(int argc, char** argv, const program& about) {
    return detail::parse_flags(argc, argv, about, {});
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
