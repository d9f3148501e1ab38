// wschat examples — the command line and run loop every example shares.
#pragma once

#include <wschat/wschat.hpp>

#include <asio/signal_set.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace examples {

/// Reads the flags every example takes into `opts`; prints usage and returns false on a
/// bad or unknown flag.
///
///   --address A            listen address (default 127.0.0.1; 0.0.0.0 for all interfaces)
///   --port P               TCP port (default 8080; 0 picks a free one)
///   --heartbeat-ms N       ping interval in milliseconds (0 disables)
///   --max-message-size N   largest accepted message in bytes
inline bool parse_options(int argc, char** argv, ws::server_options& opts) {
    const auto usage = [&] {
        std::cerr << "usage: " << argv[0]
                  << " [--address A] [--port P] [--heartbeat-ms N] [--max-message-size N]\n";
        return false;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            return usage();
        const std::string value = argv[++i];
        try {
            if (flag == "--address") {
                opts.address = value;
            } else if (flag == "--port") {
                const unsigned long port = std::stoul(value);
                if (port > 65535)
                    return usage();
                opts.port = static_cast<std::uint16_t>(port);
            } else if (flag == "--heartbeat-ms") {
                opts.heartbeat_interval = std::chrono::milliseconds{std::stoul(value)};
                opts.heartbeat_timeout = 2 * opts.heartbeat_interval;
            } else if (flag == "--max-message-size") {
                opts.max_message_size = std::stoul(value);
            } else {
                return usage();
            }
        } catch (const std::exception&) {
            return usage();
        }
    }
    return true;
}

/// Announces the address (the one line scripts wait for), then runs until SIGINT or SIGTERM
/// and stops the server gracefully: peers get 1001 before the program exits.
template <class Server>
int run(asio::io_context& io, Server& server) {
    asio::signal_set signals{io, SIGINT, SIGTERM};
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec)
            server.stop([&] { signals.cancel(); });
    });
    const std::string& host = server.options().address;
    const bool ipv6 = host.find(':') != std::string::npos;
    std::cout << "listening on ws://" << (ipv6 ? "[" + host + "]" : host) << ':'
              << server.local_endpoint().port() << '/' << std::endl;
    io.run();
    return EXIT_SUCCESS;
}

} // namespace examples
