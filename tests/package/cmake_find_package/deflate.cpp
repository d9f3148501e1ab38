// The snippet with permessage-deflate on: <wschat/ws/permessage_deflate.hpp> and wschat::deflate.
#include <wschat/ws/permessage_deflate.hpp>
#include <wschat/wschat.hpp>

int main() {
    asio::io_context io;
    ws::server_options opts;
    opts.port = 0;
    opts.compression = ws::permessage_deflate();
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room;
    room.attach(server);
    io.poll(); // builds and starts; a consumer test does not serve
}
