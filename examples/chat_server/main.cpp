// chat_server — the browser chat: the page and its JSON WebSocket on one port, a lobby of
// named rooms with history and resume (chat::lobby).
//
//     chat_server --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
//     chat_server --port 8080 --trusted-proxy 127.0.0.1      behind nginx (examples/nginx/)
//     chat_server --port 8443 --tls-cert cert.pem --tls-key key.pem    https:// and wss://
//     chat_server --port 8081 --redis redis://127.0.0.1:6379    one of several servers whose
//         rooms are one (behind nginx: examples/nginx/cluster.conf, tools/cluster.sh)
//
// Flags of its own, besides the common ones (--address, --port, --heartbeat-ms, …):
//   --static-dir DIR      where the page lives (default: this example's web/ folder)
//   --trusted-proxy ADDR  believe X-Real-IP / X-Forwarded-For from ADDR (repeatable)
//   --presence-ms N       coalesce presence announcements over N ms (default 50)
//   --redis URL           share the rooms with every server on this Redis (chat::redis_bus)
//   --presence-ttl-ms N   with --redis: a dead server leaves the counts within N ms
#include "../common/cli.hpp"
#include "../common/redis.hpp"
#include "static_files.hpp"

#include <wschat/chat/lobby.hpp>
#include <wschat/chat/prometheus.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef WSCHAT_CHAT_WEB_DIR
#define WSCHAT_CHAT_WEB_DIR "web"
#endif

namespace {

struct chat_flags {
    std::string static_dir = WSCHAT_CHAT_WEB_DIR;
    std::vector<std::string> trusted_proxies;
    std::chrono::milliseconds presence_interval{50};
    examples::redis_flags redis;
};

/// chat_server's own flags, stored into `flags`.
std::vector<examples::flag> own_flags(chat_flags& flags) {
    std::vector<examples::flag> own{
        {"--static-dir", "DIR", "where the page lives (default " + flags.static_dir + ")",
         [&flags](const std::string& dir) {
             flags.static_dir = dir;
             return std::string{};
         }},
        {"--trusted-proxy", "ADDR", "believe X-Real-IP / X-Forwarded-For from ADDR (repeatable)",
         [&flags](const std::string& address) {
             flags.trusted_proxies.push_back(address);
             return std::string{};
         }},
        {"--presence-ms", "N",
         "coalesce presence announcements over N ms (default " +
             std::to_string(flags.presence_interval.count()) + ")",
         examples::store_milliseconds(flags.presence_interval)},
    };
    for (examples::flag& f : examples::redis_bus_flags(flags.redis))
        own.push_back(std::move(f));
    return own;
}

} // namespace

int main(int argc, char** argv) try {
    chat_flags flags;
    examples::listen_options opts;
    const examples::program about{"the browser chat: the page and its JSON WebSocket on one port",
                                  own_flags(flags)};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;
    // A page that is not there would only show as 404s in the browser: say so now.
    if (const std::string problem = chat_server::check_static_dir(flags.static_dir);
        !problem.empty()) {
        std::cerr << argv[0] << ": --static-dir " << flags.static_dir << ": " << problem << '\n';
        return 2;
    }
    opts.server.trusted_proxies = flags.trusted_proxies;

    return examples::serve(opts, [&flags](auto& server, asio::io_context& io) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        chat::lobby_options options;
        options.presence_interval = flags.presence_interval;
        // With --redis, the rooms are shared with every server on that Redis.
        auto bus = std::make_unique<examples::cluster_bus>(io, flags.redis, options);
        auto lobby =
            std::make_unique<chat::lobby<transport>>(options, chat::json_policy{}, bus->get());
        using connection_ptr = typename chat::lobby<transport>::connection_ptr;

        // Added before attach(), so the lobby still knows the member when this runs: a
        // resumed connection leaves under the name it resumed, not its provisional one.
        server.on_close(
            [lobby = lobby.get()](const connection_ptr& conn, const ws::close_info& info) {
                const auto name = lobby->name_of(conn);
                const std::string* opened = conn->template user_data_as<std::string>();
                std::cout << "leave "
                          << (name     ? *name
                              : opened ? *opened
                                       : "?")
                          << " from " << conn->remote_address() << " (" << info.code << ')'
                          << std::endl;
            });
        lobby->attach(server);

        // The name a member asks for travels from the upgrade request to the lobby.
        server.on_upgrade([](const ws::http_request& request, ws::upgrade_decision& decision) {
            decision.user_data = chat::json_policy::requested_name(request);
        });
        // Added after attach(): the lobby has admitted the member and assigned its name.
        server.on_open([lobby = lobby.get()](const connection_ptr& conn) {
            const std::string name = lobby->name_of(conn).value_or("?");
            std::cout << "join " << name << " from " << conn->remote_address() << std::endl;
            conn->user_data() = name;
        });
        // A `resume` turns the connection into the member it was before: say so once.
        server.on_message([lobby = lobby.get()](const connection_ptr& conn, const ws::message&) {
            std::string* logged = conn->template user_data_as<std::string>();
            const auto name = lobby->name_of(conn);
            if (logged && name && *name != *logged) {
                std::cout << "resume " << *name << " from " << conn->remote_address() << std::endl;
                *logged = *name;
            }
        });
        // GET /metrics: the server's counts and every room's, for Prometheus; the rest of HTTP
        // is the page. The handlers hold the metrics' counters, on_http the object.
        auto metrics = std::make_shared<chat::server_metrics>();
        metrics->attach(server);
        server.on_http([dir = flags.static_dir, metrics, lobby = lobby.get(), bus = bus.get(),
                        &server](const ws::http_request& request, ws::http_response& response) {
            if (request.method != "GET" || request.path() != "/metrics")
                return chat_server::serve_file(dir, request, response);
            chat::prometheus_text page;
            chat::append_server(page, metrics->snapshot(server));
            for (const auto& room : lobby->rooms_stats()) {
                chat::append_room_members(page, room.name, room.members);
                chat::append_room(page, room.name, room.counts);
            }
            bus->append_metrics(page);
            response.set_header("Content-Type", chat::prometheus_text::content_type);
            response.set_header("Cache-Control", "no-store");
            response.body = page.str();
        });
        return std::make_pair(std::move(bus), std::move(lobby)); // live as long as the server
    });
} catch (const std::exception& e) {
    std::cerr << "chat_server: " << e.what() << '\n';
    return 1;
}
