// chat_server — the browser chat: the page and its JSON WebSocket on one port.
//
//     chat_server --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
//     chat_server --port 8080 --trusted-proxy 127.0.0.1      behind nginx (examples/nginx/)
//     chat_server --port 8443 --tls-cert cert.pem --tls-key key.pem    https:// and wss://
//
// Flags of its own, besides the common ones (--address, --port, --heartbeat-ms, …):
//   --static-dir DIR      where the page lives (default: this example's web/ folder)
//   --trusted-proxy ADDR  believe X-Real-IP / X-Forwarded-For from ADDR (repeatable)
//   --presence-ms N       coalesce presence announcements over N ms (default 50)
#include "../common/cli.hpp"
#include "static_files.hpp"

#include <wschat/chat/json_policy.hpp>
#include <wschat/chat/prometheus.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#ifndef WSCHAT_CHAT_WEB_DIR
#define WSCHAT_CHAT_WEB_DIR "web"
#endif

namespace {

struct chat_flags {
    std::string static_dir = WSCHAT_CHAT_WEB_DIR;
    std::vector<std::string> trusted_proxies;
    std::chrono::milliseconds presence_interval{50};
};

/// Takes this example's own flags out of argv; the rest goes to examples::parse_options.
bool take_chat_flags(int& argc, char** argv, chat_flags& flags) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        const bool ours =
            flag == "--static-dir" || flag == "--trusted-proxy" || flag == "--presence-ms";
        if (!ours) {
            argv[kept++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << argv[0] << ": " << flag << " needs a value\n";
            return false;
        }
        const std::string value = argv[++i];
        if (flag == "--static-dir")
            flags.static_dir = value;
        else if (flag == "--trusted-proxy")
            flags.trusted_proxies.push_back(value);
        else
            try {
                flags.presence_interval = std::chrono::milliseconds{std::stoul(value)};
            } catch (const std::exception&) {
                std::cerr << argv[0] << ": --presence-ms needs a number\n";
                return false;
            }
    }
    argc = kept;
    return true;
}

} // namespace

int main(int argc, char** argv) try {
    chat_flags flags;
    examples::listen_options opts;
    if (!take_chat_flags(argc, argv, flags) || !examples::parse_options(argc, argv, opts))
        return 2;
    opts.server.trusted_proxies = flags.trusted_proxies;

    return examples::serve(opts, [&flags](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        using json_room = chat::room<transport, chat::json_policy>;
        auto room = std::make_unique<json_room>(chat::json_policy{},
                                                chat::room_options{flags.presence_interval});
        room->attach(server);

        // The name a member asks for travels from the upgrade request to the room's policy.
        server.on_upgrade([](const ws::http_request& request, ws::upgrade_decision& decision) {
            decision.user_data = chat::json_policy::requested_name(request);
        });
        // Added after attach(): the room has admitted the member and assigned its name.
        server.on_open([room = room.get()](const auto& conn) {
            const auto member = room->member(conn);
            const std::string name = member ? member->name : "?";
            std::cout << "join " << name << " from " << conn->remote_address() << std::endl;
            conn->user_data() = name; // for the leave line: the room forgets it first
        });
        server.on_close([](const auto& conn, const ws::close_info& info) {
            const std::string* name = conn->template user_data_as<std::string>();
            std::cout << "leave " << (name ? *name : "?") << " from " << conn->remote_address()
                      << " (" << info.code << ')' << std::endl;
        });
        // GET /metrics: the server's counts and the room's size, for Prometheus; the rest of
        // HTTP is the page. The handlers hold the metrics' counters, on_http the object.
        auto metrics = std::make_shared<chat::server_metrics>();
        metrics->attach(server);
        server.on_http([dir = flags.static_dir, metrics, room = room.get(),
                        &server](const ws::http_request& request, ws::http_response& response) {
            if (request.method != "GET" || request.path() != "/metrics")
                return chat_server::serve_file(dir, request, response);
            chat::prometheus_text page;
            chat::append_server(page, metrics->snapshot(server));
            chat::append_room_members(page, "main", room->size());
            response.set_header("Content-Type", chat::prometheus_text::content_type);
            response.set_header("Cache-Control", "no-store");
            response.body = page.str();
        });
        return room; // lives as long as the server
    });
} catch (const std::exception& e) {
    std::cerr << "chat_server: " << e.what() << '\n';
    return 1;
}
