// minimal_chat — the design's three-line snippet plus the classic chat page on the same port.
//
//     minimal_chat --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
//     minimal_chat --port 8443 --tls-cert cert.pem --tls-key key.pem   then https://localhost:8443/
//     minimal_chat --unix /tmp/chat.sock                               behind a local nginx
#include "../common/cli.hpp"
#include "page.hpp"

#include <memory>
#include <type_traits>

int main(int argc, char** argv) try {
    examples::listen_options opts;
    const examples::program about{
        "the three-line chat room and the classic chat page, served on one port", {}};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;
    return examples::serve(opts, [](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        auto room = std::make_unique<chat::room<transport>>(); // plain text, like Node `ws` chat
        room->attach(server); // every connection joins, messages are broadcast, presence counted

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
