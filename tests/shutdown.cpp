// Graceful stop over real sockets: 1001 to every peer, completion, nothing left running.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <vector>

using namespace std::chrono_literals;

using test::ws_client;

TEST_CASE("stop() closes every peer with 1001 and completes", "[shutdown]") {
    // Declared before the server: its handlers refer to them until the server has stopped.
    std::atomic<int> closes_seen{0};
    test::running_server s;
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        if (info.code == 1001 && info.error == ws::error::server_stopping)
            ++closes_seen;
    });
    s.start();
    std::vector<std::unique_ptr<ws_client>> clients;
    for (int i = 0; i < 3; ++i)
        clients.push_back(std::make_unique<ws_client>(s.port()));
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 3; }));

    std::promise<void> stopped;
    s.server.stop([&] { stopped.set_value(); });
    for (auto& client : clients) {
        auto close = client->read_frame();
        REQUIRE(close);
        CHECK(close->opcode == test::op_close);
        CHECK(close->close_code() == 1001);
        REQUIRE(client->send_close(1001));
        CHECK(client->socket().wait_for_eof(2s));
    }
    CHECK(stopped.get_future().wait_for(2s) == std::future_status::ready);
    CHECK(closes_seen == 3);
    CHECK(s.server.connection_count() == 0);
    CHECK(s.stop()); // the io_context ran out of work by itself
}

TEST_CASE("stop() does not wait for a peer that ignores the Close", "[shutdown]") {
    auto opts = test::loopback_options();
    opts.close_timeout = 200ms;
    test::running_server s{opts};
    s.start();
    ws_client deaf{s.port()};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 1; }));
    const auto start = std::chrono::steady_clock::now();
    CHECK(s.stop(3s));
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(deaf.socket().wait_for_eof(1s));
}

TEST_CASE("stop() with no peers completes at once and refuses new ones", "[shutdown]") {
    test::running_server s;
    s.start();
    const auto port = s.port();
    CHECK(s.stop(2s));
    CHECK_THROWS(test::ws_client{port});
}

TEST_CASE("stop() drops connections still in their handshake", "[shutdown]") {
    test::running_server s;
    s.start();
    test::socket_client half{s.port()};
    REQUIRE(half.send_raw("GET / HTTP/1.1\r\nHost: x\r\n")); // never finishes
    CHECK(s.stop(2s));
    CHECK(half.wait_for_eof(1s));
}

TEST_CASE("destroying a running server ends its connections without calling handlers",
          "[shutdown]") {
    asio::io_context io;
    std::atomic<int> closes{0};
    auto server = std::make_unique<ws::server<>>(io, test::loopback_options());
    server->on_close([&](const auto&, const auto&) { ++closes; });
    std::thread runner{[&] { io.run(); }};
    ws_client client{server->local_endpoint().port()};
    REQUIRE(test::eventually([&] { return server->connection_count() == 1; }));
    asio::post(io, [&] { server.reset(); });
    CHECK(client.socket().wait_for_eof(2s));
    runner.join(); // nothing is left for the io_context to do
    CHECK(closes == 0);
}

TEST_CASE("stop() with a drain deadline cuts off peers still there at the deadline", "[shutdown]") {
    auto opts = test::loopback_options();
    opts.close_timeout = 10s; // the deadline, not the close timeout, must end this
    test::running_server s{opts};
    s.start();
    ws_client deaf{s.port()};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 1; }));
    std::promise<void> stopped;
    const auto start = std::chrono::steady_clock::now();
    s.server.stop(200ms, [&] { stopped.set_value(); });
    CHECK(stopped.get_future().wait_for(3s) == std::future_status::ready);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(deaf.socket().wait_for_eof(1s));
    CHECK(s.stop(3s)); // and nothing is left running
}

TEST_CASE("stop() flushes what was queued before the 1001", "[shutdown]") {
    chat::room<> room;
    test::running_server s;
    room.attach(s.server);
    s.start();
    ws_client member{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 1; }));
    for (int i = 0; i < 100; ++i)
        room.broadcast(std::string_view{"pending " + std::to_string(i)});
    s.server.stop();
    int pending_seen = 0;
    for (;;) {
        auto f = member.read_frame();
        REQUIRE(f);
        if (f->opcode == test::op_close) {
            CHECK(f->close_code() == 1001);
            break;
        }
        if (f->payload.rfind("pending ", 0) == 0)
            CHECK(f->payload == "pending " + std::to_string(pending_seen++));
    }
    CHECK(pending_seen == 100);
}
