// minimal_chat — the design's three-line snippet plus the classic chat page on the same port.
//
//     minimal_chat --port 8080      then open http://127.0.0.1:8080/ in two browser tabs
#include "../common/cli.hpp"
#include "page.hpp"

int main(int argc, char** argv) try {
    ws::server_options opts;
    if (!examples::parse_options(argc, argv, opts))
        return 2;

    asio::io_context io;
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room;   // plain text, like the classic Node `ws` chat
    room.attach(server); // every connection joins, messages are broadcast, presence is counted

    server.on_http([](const ws::http_request& request, ws::http_response& response) {
        if (request.path() != "/" && request.path() != "/index.html") {
            response = ws::make_error_response(404, "not found");
            return;
        }
        response.set_header("Content-Type", "text/html; charset=utf-8");
        response.set_header("Cache-Control", "no-cache");
        response.body = minimal_chat::page;
    });
    return examples::run(io, server);
} catch (const std::exception& e) {
    std::cerr << "minimal_chat: " << e.what() << '\n';
    return 1;
}
