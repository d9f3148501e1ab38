// Close handshake and protocol failures over real sockets, as a peer sees them on the wire.
#include "support/echo.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>

using namespace std::chrono_literals;

using test::ws_client;

namespace {

/// An echo server that records how each connection ended.
struct echo_server {
    explicit echo_server(ws::server_options opts = test::loopback_options()) : s(opts) {
        test::echo(s.server);
        s.server.on_close([this](const auto&, const ws::close_info& info) {
            std::lock_guard<std::mutex> lock{mutex};
            last = info;
            ++closes;
        });
        s.start();
    }
    ws::close_info last_close() {
        REQUIRE(test::eventually([this] { return closes.load() > 0; }));
        std::lock_guard<std::mutex> lock{mutex};
        return last;
    }
    // The server is the last member: it stops (running the handlers one last time) before
    // the state its handlers record into is destroyed.
    std::mutex mutex;
    ws::close_info last;
    std::atomic<int> closes{0};
    test::running_server s;
};

/// Reads the server's Close frame, answers it as a browser would, and checks the server
/// then closes TCP.
std::uint16_t closed_with(ws_client& client) {
    for (;;) {
        auto f = client.read_frame();
        REQUIRE(f);
        if (f->opcode == test::op_close) {
            client.send(test::op_close, f->payload.substr(0, 2));
            CHECK(client.socket().wait_for_eof(2s));
            client.socket().close();
            return f->close_code();
        }
    }
}

} // namespace

TEST_CASE("a client's Close is echoed and the server closes TCP", "[close]") {
    echo_server e;
    ws_client client{e.s.port()};
    REQUIRE(client.send_close(1000, "bye"));
    CHECK(closed_with(client) == 1000);
    const auto info = e.last_close();
    CHECK(info.code == 1000);
    CHECK(info.reason == "bye");
    CHECK_FALSE(info.error);
}

TEST_CASE("a Close without a code is answered with an empty Close", "[close]") {
    echo_server e;
    ws_client client{e.s.port()};
    REQUIRE(client.send(test::op_close, ""));
    auto f = client.read_frame();
    REQUIRE(f);
    CHECK(f->opcode == test::op_close);
    CHECK(f->payload.empty());
    CHECK(e.last_close().code == 1005);
}

TEST_CASE("the server's own close() runs the handshake", "[close]") {
    // Declared before the server: its handlers refer to them until the server has stopped.
    std::atomic<int> code{0};
    test::running_server s;
    s.server.on_open(
        [](const auto& conn) { conn->close(static_cast<ws::close_code>(4000), "done"); });
    s.server.on_close([&](const auto&, const ws::close_info& info) { code = info.code; });
    s.start();
    ws_client client{s.port()};
    auto f = client.read_frame();
    REQUIRE(f);
    CHECK(f->close_code() == 4000);
    CHECK(f->payload.substr(2) == "done");
    REQUIRE(client.send_close(4000));
    CHECK(client.socket().wait_for_eof(2s));
    CHECK(test::eventually([&] { return code == 4000; }));
}

TEST_CASE("protocol violations fail the connection with the right code", "[close]") {
    auto opts = test::loopback_options();
    opts.max_message_size = 1024;
    echo_server e{opts};
    ws_client client{e.s.port()};
    auto& socket = client.socket();

    SECTION("an unmasked client frame: 1002") {
        socket.send_raw(test::encode(test::op_text, "plain", true, false));
        CHECK(closed_with(client) == 1002);
        CHECK(e.last_close().error == ws::error::unmasked_frame);
    }
    SECTION("reserved bits: 1002") {
        socket.send_raw(test::encode(test::op_text, "x", true, true, 0x4));
        CHECK(closed_with(client) == 1002);
    }
    SECTION("an unknown opcode: 1002") {
        socket.send_raw(test::encode(0x3, "x"));
        CHECK(closed_with(client) == 1002);
    }
    SECTION("a continuation with no message: 1002") {
        socket.send_raw(test::encode(test::op_continuation, "x"));
        CHECK(closed_with(client) == 1002);
    }
    SECTION("a fragmented ping: 1002") {
        socket.send_raw(test::encode(test::op_ping, "x", false));
        CHECK(closed_with(client) == 1002);
    }
    SECTION("a ping over 125 bytes: 1002") {
        socket.send_raw(test::encode(test::op_ping, std::string(126, 'p')));
        CHECK(closed_with(client) == 1002);
    }
    SECTION("invalid UTF-8 in text: 1007") {
        socket.send_raw(test::encode(test::op_text, "ok\xC0\xAF"));
        CHECK(closed_with(client) == 1007);
    }
    SECTION("a message over max_message_size: 1009") {
        socket.send_raw(test::encode(test::op_binary, std::string(1025, 'x')));
        CHECK(closed_with(client) == 1009);
    }
    SECTION("a frame header declaring 64 MiB: 1009 before any payload") {
        const std::string header = test::encode(test::op_binary, std::string(70'000, 'x'))
                                       .substr(0, 14); // 127-form length, 70000
        std::string huge = header;
        huge[2] = huge[3] = huge[4] = huge[5] = huge[6] = 0;
        huge[7] = 4, huge[8] = 0, huge[9] = 0; // 0x04000000 = 64 MiB
        socket.send_raw(huge);
        CHECK(closed_with(client) == 1009);
    }
    SECTION("fragments that together pass the limit: 1009") {
        socket.send_raw(test::encode(test::op_text, std::string(600, 'a'), false));
        socket.send_raw(test::encode(test::op_continuation, std::string(600, 'a'), true));
        CHECK(closed_with(client) == 1009);
    }
    SECTION("a close code not allowed on the wire: 1002") {
        client.send_close(1005);
        CHECK(closed_with(client) == 1002);
    }
    SECTION("a one-byte close payload: 1002") {
        client.send(test::op_close, "x");
        CHECK(closed_with(client) == 1002);
    }
    SECTION("a close reason that is not UTF-8: 1007") {
        client.send_close(1000, "\xFF");
        CHECK(closed_with(client) == 1007);
    }
}

TEST_CASE("fragments are reassembled with pings answered in between", "[close]") {
    echo_server e;
    ws_client client{e.s.port()};
    client.auto_pong = false;
    REQUIRE(client.send(test::op_text, "frag", false));
    REQUIRE(client.send(test::op_ping, "mid"));
    REQUIRE(client.send(test::op_continuation, "men", false));
    REQUIRE(client.send(test::op_continuation, "ted 片", true));
    auto pong = client.read_frame();
    REQUIRE(pong);
    CHECK(pong->opcode == test::op_pong);
    CHECK(pong->payload == "mid");
    CHECK(client.read_text() == "fragmented 片");
}

TEST_CASE("data after a Close is ignored", "[close]") {
    echo_server e;
    ws_client client{e.s.port()};
    std::string burst = test::encode(test::op_close, test::close_payload(1000)) +
                        test::encode(test::op_text, "too late");
    REQUIRE(client.socket().send_raw(burst));
    auto f = client.read_frame();
    REQUIRE(f);
    CHECK(f->opcode == test::op_close); // not an echo of "too late"
    CHECK(client.socket().wait_for_eof(2s));
}

TEST_CASE("a reset in the middle of a frame harms no one else", "[close]") {
    echo_server e;
    ws_client bystander{e.s.port()};
    {
        ws_client rude{e.s.port()};
        const auto frame = test::encode(test::op_text, std::string(5000, 'r'));
        rude.socket().send_raw(std::string_view{frame}.substr(0, 1000));
        rude.socket().reset();
    }
    CHECK(e.last_close().code == 1006);
    REQUIRE(bystander.send_text("fine"));
    CHECK(bystander.read_text() == "fine");
}
