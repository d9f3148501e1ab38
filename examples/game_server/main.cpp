// game_server — an authoritative game loop: matches as rooms, binary inputs in, a snapshot of
// every player out on each tick of a fixed-rate timer on the server's io_context.
//
//     game_server --port 9000 --tick-hz 30    then point examples/game_bot at
//                                             ws://127.0.0.1:9000/match/a
//
// A player connects to /match/NAME (NAME: 1-32 of A-Z a-z 0-9 _ -) and receives a welcome
// (its player id and the current tick), then a snapshot per tick listing every player of the
// match: position and the seq of its last input applied. It sends one input per tick: a
// numbered step (dx, dy). The wire format is in protocol.hpp.
//
// Flags of its own, besides the common ones (--address, --port, --unix, --threads, ...):
//   --tick-hz N       ticks (snapshots) per second, 20 to 60 (default 30)
//   --max-players N   players per match (default 16); a further one is closed with 1013
//   --max-matches N   matches at once (default 64); an upgrade to another is refused with 503
#include "../common/cli.hpp"
#include "match.hpp"

#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

/// The match a request's path names ("/match/NAME"), or nothing.
std::optional<std::string> match_name(std::string_view path) {
    constexpr std::string_view prefix = "/match/";
    if (path.substr(0, prefix.size()) != prefix)
        return std::nullopt;
    const std::string_view name = path.substr(prefix.size());
    if (name.empty() || name.size() > 32 ||
        name.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            std::string_view::npos)
        return std::nullopt;
    return std::string{name};
}

} // namespace

int main(int argc, char** argv) try {
    examples::listen_options opts;
    // An input is 16 bytes: no player needs the server to buffer a megabyte for it.
    opts.server.max_message_size = 1024;
    game::match_options match_options;
    std::size_t max_matches = 64;
    const examples::program about{
        "an authoritative fixed-tick game server: matches at /match/NAME, binary inputs and "
        "snapshots",
        {{"--tick-hz", "N",
          "ticks (snapshots) per second, 20 to 60 (default " +
              std::to_string(match_options.tick_hz) + ")",
          [&match_options](const std::string& value) {
              std::string problem = examples::store_number(match_options.tick_hz, 60)(value);
              if (problem.empty() && match_options.tick_hz < 20)
                  problem = "expected 20 to 60, got " + value;
              return problem;
          }},
         {"--max-players", "N",
          "players per match (default " + std::to_string(match_options.max_players) + ")",
          [&match_options](const std::string& value) {
              std::string problem = examples::store_number(match_options.max_players, 4096)(value);
              if (problem.empty() && match_options.max_players == 0)
                  problem = "needs at least 1";
              return problem;
          }},
         {"--max-matches", "N", "matches at once (default " + std::to_string(max_matches) + ")",
          [&max_matches](const std::string& value) {
              std::string problem = examples::store_number(max_matches, 1000000)(value);
              if (problem.empty() && max_matches == 0)
                  problem = "needs at least 1";
              return problem;
          }}}};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;
    // Inputs arrive once per tick per player; the server's rate limit must not refuse them.
    if (opts.server.max_messages_per_second > 0 &&
        opts.server.max_messages_per_second < 2.0 * match_options.tick_hz) {
        opts.server.max_messages_per_second = 2.0 * match_options.tick_hz;
        std::cerr << "game_server: --max-messages-per-second raised to "
                  << opts.server.max_messages_per_second << " (twice --tick-hz)" << std::endl;
    }

    return examples::serve(opts, [&](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        using connection_ptr = typename game::lobby<transport>::connection_ptr;
        auto matches = std::make_unique<game::lobby<transport>>(server.get_executor(),
                                                                match_options, max_matches);
        server.on_upgrade([lobby = matches.get()](const ws::http_request& request,
                                                  ws::upgrade_decision& decision) {
            const auto name = match_name(request.path());
            if (!name)
                return decision.reject(404,
                                       "connect to /match/NAME (NAME: 1-32 of A-Z a-z 0-9 _ -)");
            if (!lobby->has_room_for(*name))
                return decision.reject(503, "too many matches");
            decision.user_data = *name;
        });
        server.on_open([lobby = matches.get()](const connection_ptr& conn) {
            if (const std::string* name = conn->template user_data_as<std::string>())
                lobby->join(std::string{*name}, conn);
        });
        server.on_message(
            [lobby = matches.get()](const connection_ptr& conn, const ws::message& msg) {
                lobby->receive(conn, msg);
            });
        server.on_close([lobby = matches.get()](const connection_ptr& conn, const ws::close_info&) {
            lobby->leave(conn);
        });
        server.on_http([](const ws::http_request&, ws::http_response& response) {
            response = ws::make_error_response(
                404, "game_server speaks WebSocket at /match/NAME (see examples/game_server)");
        });
        return matches;
    });
} catch (const std::exception& e) {
    std::cerr << "game_server: " << e.what() << '\n';
    return 1;
}
