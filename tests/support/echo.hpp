// Test support — the echo fixture: a server that sends every message back to its sender.
#pragma once

#include <wschat/wschat.hpp>

namespace test {

/// Makes `server` echo every message to its sender as it came: text as text, binary as
/// binary, one frame per message. Added beside the server's other handlers, so a test may
/// also record what it saw.
template <class Transport>
void echo(ws::server<Transport>& server) {
    server.on_message([](const auto& conn, const ws::message& msg) {
        conn->send(ws::make_frame(msg.type, msg.data));
    });
}

} // namespace test
