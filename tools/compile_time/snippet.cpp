// The README's first example, verbatim: what tools/compile-time.sh times and sizes.
#include <wschat/wschat.hpp>

int main() {
    asio::io_context io;
    ws::server_options opts;
    opts.port = 8080;
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room;          // plain text, as the classic Node `ws` chat
    room.attach(server);        // every connection joins, every message is broadcast, presence is counted
    io.run();
}
