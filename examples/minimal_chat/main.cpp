// minimal_chat — the design's three-line snippet plus the classic chat page on the same port.
//
//     minimal_chat --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
//     minimal_chat --port 8443 --tls-cert cert.pem --tls-key key.pem   then https://localhost:8443/
//     minimal_chat --unix /tmp/chat.sock                               behind a local nginx
//
// Besides the flags every example takes (examples/common/cli.hpp):
//
//     --presence-ms N   coalesce presence announcements over N ms (default 50; 0: each at once)
//     --room off        serve the page and accept WebSocket connections without a room: the
//                       same server, options and event loop with no welcome, relay or
//                       presence; the baseline a room's cost is measured against (bench/'s
//                       W5 storm)
#include "../common/cli.hpp"
#include "page.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

int main(int argc, char** argv) try {
    // This example's own flags are taken out; the rest go to the common parser.
    chat::room_options room_opts;
    bool with_room = true;
    std::vector<char*> common{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const bool own =
            std::strcmp(argv[i], "--room") == 0 || std::strcmp(argv[i], "--presence-ms") == 0;
        if (!own) {
            common.push_back(argv[i]);
            continue;
        }
        if (i + 1 >= argc ||
            (std::strcmp(argv[i], "--room") == 0 && std::strcmp(argv[i + 1], "on") != 0 &&
             std::strcmp(argv[i + 1], "off") != 0)) {
            std::cerr << argv[0] << ": --room takes on or off, --presence-ms a number\n";
            return 2;
        }
        if (std::strcmp(argv[i], "--room") == 0)
            with_room = std::strcmp(argv[i + 1], "on") == 0;
        else
            room_opts.presence_interval = std::chrono::milliseconds{std::stoul(argv[i + 1])};
        ++i;
    }
    examples::listen_options opts;
    if (!examples::parse_options(static_cast<int>(common.size()), common.data(), opts))
        return 2;
    return examples::serve(opts, [&](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        // Plain text, like Node `ws` chat.
        auto room = std::make_unique<chat::room<transport>>(chat::text_policy{}, room_opts);
        // Every connection joins, messages are broadcast, presence counted.
        if (with_room)
            room->attach(server);

        server.on_http([](const ws::http_request& request, ws::http_response& response) {
            if (request.path() != "/" && request.path() != "/index.html") {
                response = ws::make_error_response(404, "not found");
                return;
            }
            response.set_header("Content-Type", "text/html; charset=utf-8");
            response.set_header("Cache-Control", "no-cache");
            response.body = minimal_chat::page;
        });
        return room; // lives as long as the server
    });
} catch (const std::exception& e) {
    std::cerr << "minimal_chat: " << e.what() << '\n';
    return 1;
}
