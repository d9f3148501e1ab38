// First of two translation units that include the generated single header with ONLY
// single_include/ on the include path. They are linked into one program (single_header_b.cpp
// holds main): a non-inline definition in the header would fail that link, and a function-local
// static duplicated per TU would show up as two different error categories.
#include <wschat/wschat.hpp>

#include <system_error>

// The design's snippet (DESIGN.md) with port 0 and io.poll() instead of io.run().
void single_header_a_snippet() {
    asio::io_context io;
    ws::server_options opts;
    opts.port = 0;
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room;
    room.attach(server);
    io.poll();
}

const std::error_category* single_header_a_category() {
    return &ws::make_error_code(ws::error::invalid_utf8).category();
}
