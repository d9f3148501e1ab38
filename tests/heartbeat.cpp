// Heartbeat over real sockets: pings at the interval, pongs for pings, silent peers dropped.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

using test::ws_client;

namespace {
ws::server_options fast_heartbeat() {
    auto opts = test::loopback_options();
    opts.heartbeat_interval = 100ms;
    opts.heartbeat_timeout = 300ms;
    return opts;
}
} // namespace

TEST_CASE("the server pings every connection at the heartbeat interval", "[heartbeat]") {
    test::running_server s{fast_heartbeat()};
    s.start();
    ws_client client{s.port()};
    client.auto_pong = false;
    const auto start = std::chrono::steady_clock::now();
    auto ping = client.read_frame(1s);
    REQUIRE(ping);
    CHECK(ping->opcode == test::op_ping);
    CHECK(std::chrono::steady_clock::now() - start < 500ms);
}

TEST_CASE("a peer that answers pings stays connected", "[heartbeat]") {
    test::running_server s{fast_heartbeat()};
    s.start();
    ws_client client{s.port()};
    // Reading (and so answering every ping) for four timeouts' worth of time.
    const auto until = std::chrono::steady_clock::now() + 1200ms;
    while (std::chrono::steady_clock::now() < until)
        CHECK_FALSE(client.read_frame(50ms)); // pings are answered and skipped
    CHECK(s.server.connection_count() == 1);
    REQUIRE(client.send_text("still here"));
    CHECK_FALSE(client.socket().eof());
}

TEST_CASE("a peer that stops answering is dropped and leaves its room", "[heartbeat]") {
    // Declared before the server: its handlers refer to them until the server has stopped.
    chat::room<> room;
    ws::close_info dropped;
    std::atomic<bool> closed{false};
    test::running_server s{fast_heartbeat()};
    room.attach(s.server);
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        dropped = info;
        closed = true;
    });
    s.start();

    ws_client silent{s.port()};
    silent.auto_pong = false;
    ws_client alive{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));

    // `alive` keeps reading (answering pings); `silent` never sends a byte.
    std::optional<std::string> count;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < deadline && count != "Online users: 1")
        count = alive.read_text(100ms).value_or(count.value_or(""));
    CHECK(count == "Online users: 1");
    REQUIRE(test::eventually([&] { return closed.load(); }));
    CHECK(dropped.error == ws::error::heartbeat_timeout);
    CHECK(dropped.code == 1006);
    CHECK(room.size() == 1);
    CHECK(silent.socket().wait_for_eof(1s));
}

TEST_CASE("pings from the peer are answered with the same payload", "[heartbeat]") {
    test::running_server s;
    s.start();
    ws_client client{s.port()};
    client.auto_pong = false;
    REQUIRE(client.send(test::op_ping, "are you there?"));
    auto pong = client.read_frame();
    REQUIRE(pong);
    CHECK(pong->opcode == test::op_pong);
    CHECK(pong->payload == "are you there?");
}
