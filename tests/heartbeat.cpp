// Heartbeat over real sockets, on a manual clock: pings when the interval has passed, pongs
// for pings, silent peers dropped. Time moves when the test says, so nothing waits for it.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <memory>

using namespace std::chrono_literals;

using test::ws_client;

namespace {
struct heartbeat_clock {
    heartbeat_clock() {
        opts.heartbeat_interval = 10s;
        opts.heartbeat_timeout = 30s;
        opts.clock = clock;
    }
    std::shared_ptr<ws::manual_clock> clock = std::make_shared<ws::manual_clock>();
    ws::server_options opts = test::loopback_options();
};

/// Reads the next frame, which must be a ping, and answers it.
void answer_ping(ws_client& client) {
    const auto ping = client.read_frame();
    REQUIRE(ping);
    REQUIRE(ping->opcode == test::op_ping);
    REQUIRE(client.send(test::op_pong, ping->payload));
}
} // namespace

TEST_CASE("the server pings every connection once the heartbeat interval has passed",
          "[heartbeat]") {
    heartbeat_clock time;
    test::running_server s{time.opts};
    s.start();
    ws_client first{s.port()};
    ws_client second{s.port()};
    first.auto_pong = second.auto_pong = false;
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 2; }));

    time.clock->advance(9s); // not yet due: the next frame is the answer to our own ping
    REQUIRE(first.send(test::op_ping, "before"));
    const auto pong = first.read_frame();
    REQUIRE(pong);
    CHECK(pong->opcode == test::op_pong);
    CHECK(pong->payload == "before");

    time.clock->advance(1s);
    for (ws_client* client : {&first, &second}) {
        const auto ping = client->read_frame();
        REQUIRE(ping);
        CHECK(ping->opcode == test::op_ping);
    }
}

TEST_CASE("a peer that answers pings stays connected", "[heartbeat]") {
    heartbeat_clock time;
    test::running_server s{time.opts};
    s.server.on_message(
        [](const auto& conn, const ws::message& msg) { conn->send_text(std::string{msg.data}); });
    s.start();
    ws_client client{s.port()};
    client.auto_pong = false;
    for (int round = 0; round < 6; ++round) { // twice the heartbeat timeout
        time.clock->advance(10s);
        answer_ping(client);
    }
    CHECK(s.server.connection_count() == 1);
    REQUIRE(client.send_text("still here"));
    CHECK(client.read_text() == "still here");
}

TEST_CASE("a peer that stops answering is dropped and leaves its room", "[heartbeat]") {
    heartbeat_clock time;
    // Declared before the server: its handlers refer to them until the server has stopped.
    chat::room<> room;
    ws::close_info dropped;
    std::atomic<bool> closed{false};
    test::running_server s{time.opts};
    room.attach(s.server);
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        dropped = info;
        closed = true;
    });
    s.start();

    ws_client silent{s.port()};
    silent.auto_pong = false;
    ws_client alive{s.port()};
    alive.auto_pong = false;
    REQUIRE(test::eventually([&] { return room.size() == 2; }));

    // `alive` answers every ping; `silent` never sends a byte.
    for (int round = 0; round < 3 && !closed; ++round) {
        time.clock->advance(10s);
        for (;;) { // skip the presence announcements that came meanwhile
            const auto frame = alive.read_frame();
            REQUIRE(frame);
            if (frame->opcode == test::op_ping) {
                REQUIRE(alive.send(test::op_pong, frame->payload));
                break;
            }
        }
    }
    time.clock->advance(10s); // 40 s without a word from `silent`
    REQUIRE(test::eventually([&] { return closed.load(); }));
    CHECK(dropped.error == ws::error::heartbeat_timeout);
    CHECK(dropped.code == 1006);
    CHECK(room.size() == 1);
    CHECK(silent.socket().wait_for_eof(5s));
    alive.auto_pong = true; // from here only the count matters
    std::optional<std::string> count;
    while (count != "Online users: 1")
        REQUIRE((count = alive.read_text()));
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
