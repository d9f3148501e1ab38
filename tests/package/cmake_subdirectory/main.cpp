// The snippet of DESIGN.md, built by tools/test_packages.sh: it must compile as it is.
#include <wschat/wschat.hpp>

int main() {
    asio::io_context io;
    ws::server_options opts;
    opts.port = 8080;
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room; // default message policy: plain text
    room.attach(server);
    io.run();
}
