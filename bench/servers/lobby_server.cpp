// The benchmark's lobby server: chat::lobby on ws::server with the lobby's own defaults
// (rooms created on first join, history of 500 messages per room, presence coalesced), so
// that `bench/run.py --workloads rooms` measures what a deployment of the lobby would do.
// It takes the examples' flags; the benchmark lifts the connection limits and the message
// rate limit, as it does for minimal_chat. With --redis URL it is one node of a cluster whose
// rooms span every lobby_server on that Redis (the cross-node workload).
//
//     lobby_server --port 0 --max-connections 100000 --max-messages-per-second 0
//         prints `listening on ws://127.0.0.1:PORT/`; ws://127.0.0.1:PORT/rooms/NAME?name=alice
//         then joins room NAME
#include "../../examples/common/cli.hpp"
#include "../../examples/common/redis.hpp"

#include <wschat/chat/lobby.hpp>

#include <exception>
#include <iostream>
#include <memory>
#include <type_traits>
#include <utility>

int main(int argc, char** argv) try {
    examples::listen_options opts;
    examples::redis_flags redis;
    if (const auto exit_status = examples::parse_options(
            argc, argv, opts,
            {"chat::lobby (rooms by URL path, history, resume)", examples::redis_bus_flags(redis)}))
        return *exit_status;
    return examples::serve(opts, [&redis](auto& server, asio::io_context& io) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        const chat::lobby_options options;
        auto bus = std::make_unique<examples::cluster_bus>(io, redis, options);
        auto lobby =
            std::make_unique<chat::lobby<transport>>(options, chat::json_policy{}, bus->get());
        lobby->attach(server);
        return std::make_pair(std::move(bus), std::move(lobby)); // live as long as the server
    });
} catch (const std::exception& e) {
    std::cerr << "lobby_server: " << e.what() << '\n';
    return 1;
}
