// minimal_chat — the design's three-line snippet plus the classic chat page on the same port.
//
//     minimal_chat --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
//     minimal_chat --port 8443 --tls-cert cert.pem --tls-key key.pem   then https://localhost:8443/
//     minimal_chat --unix /tmp/chat.sock                               behind a local nginx
//     minimal_chat --history 50      a newcomer (or a reloaded page) sees the last 50 messages
//
// Besides the flags every example takes (examples/common/cli.hpp):
//
//     --history N       keep the last N messages and send them to whoever joins (default 0)
//     --presence-ms N   coalesce presence announcements over N ms (default 50; 0: each at once)
//     --room off        serve the page and accept WebSocket connections without a room: the
//                       same server, options and event loop with no welcome, relay or
//                       presence; the baseline a room's cost is measured against (bench/'s
//                       W5 storm)
#include "../common/cli.hpp"
#include "page.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

int main(int argc, char** argv) try {
    examples::listen_options opts;
    chat::room_options room_options;
    bool with_room = true;
    const examples::program about{
        "the three-line chat room and the classic chat page, served on one port",
        {{"--history", "N",
          "keep the last N messages and send them to whoever joins (default 0: none)",
          [&room_options](const std::string& value) {
              std::size_t n = 0;
              std::string problem = examples::store_number(n, 100000)(value);
              room_options.history.max_messages = n;
              room_options.replay_on_join = n;
              return problem;
          }},
         {"--presence-ms", "N",
          "coalesce presence announcements over N ms (default " +
              std::to_string(room_options.presence_interval.count()) + "; 0: each at once)",
          examples::store_milliseconds(room_options.presence_interval)},
         {"--room", "on|off",
          "off: no room, the same server without welcome, relay or presence (default on)",
          [&with_room](const std::string& value) {
              if (value != "on" && value != "off")
                  return "expected on or off, got '" + value + "'";
              with_room = value == "on";
              return std::string{};
          }}}};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;
    return examples::serve(opts, [&room_options, with_room](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        // Plain text, like the Node `ws` chat.
        auto room = std::make_unique<chat::room<transport>>(chat::text_policy{}, room_options);
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
