// The server's framing over memory streams: masked messages echoed, fragments reassembled,
// a frame split at every byte, pings answered, and each violation failing the connection
// with its close code.
#include "support/echo.hpp"
#include "support/memory_client.hpp"

#include <catch2/catch.hpp>

#include <string>

using test::memory_client;
using test::memory_server;

namespace {

/// After a violation: the server's last frame is a Close with `code`, and the server has
/// ended its direction (it waits for the client's Close).
void check_failed_with(memory_client& client, std::uint16_t code) {
    const auto frames = client.read_frames();
    REQUIRE_FALSE(frames.empty());
    const test::frame& last = frames.back();
    REQUIRE(last.opcode == test::op_close);
    CHECK(last.close_code() == code);
    for (std::size_t i = 0; i + 1 < frames.size(); ++i)
        CHECK(frames[i].opcode != test::op_close);
    CHECK(client.server_ended()); // our direction is shut down, awaiting the client's Close
}

} // namespace

TEST_CASE("framing: masked text and binary messages are echoed at every length boundary",
          "[unit][memory][framing]") {
    memory_server s;
    test::echo(s.server);
    auto client = memory_client::opened(s);
    const std::uint8_t opcode = GENERATE(test::op_text, test::op_binary);
    for (const std::size_t size : {0, 1, 125, 126, 127, 0xFFFF, 0x10000}) {
        CAPTURE(size);
        std::string payload(size, 'a');
        if (opcode == test::op_binary && size > 0)
            payload[0] = '\xff'; // not UTF-8: fine in a binary message
        client.send(opcode, payload);
        const auto echo = client.read_frame();
        REQUIRE(echo);
        CHECK(echo->opcode == opcode);
        CHECK(echo->fin);
        CHECK(echo->payload == payload);
    }
}

TEST_CASE("framing: a fragmented message is delivered whole, with a ping answered between its "
          "fragments",
          "[unit][memory][framing]") {
    memory_server s;
    std::vector<std::string> received;
    s.server.on_message(
        [&](const auto&, const ws::message& msg) { received.emplace_back(msg.data); });
    auto client = memory_client::opened(s);
    client.send(test::op_text, "frag", false);
    client.send(test::op_ping, "are you there");
    const auto pong = client.read_frame();
    REQUIRE(pong);
    CHECK(pong->opcode == test::op_pong);
    CHECK(pong->payload == "are you there");
    client.send(test::op_continuation, "men", false);
    CHECK(received.empty());
    client.send(test::op_continuation, "ted");
    REQUIRE(received.size() == 1);
    CHECK(received[0] == "fragmented");
}

TEST_CASE("framing: a frame split at every byte position is delivered once, when whole",
          "[unit][memory][framing]") {
    memory_server s;
    test::echo(s.server);
    auto client = memory_client::opened(s);
    const std::string payload(200, 'p'); // a 16-bit length: header, length, mask, payload
    const std::string wire = test::encode(test::op_text, payload);
    for (std::size_t split = 1; split < wire.size(); ++split) {
        CAPTURE(split);
        client.send_raw(wire.substr(0, split));
        REQUIRE_FALSE(client.read_frame());
        client.send_raw(wire.substr(split));
        const auto echo = client.read_frame();
        REQUIRE(echo);
        CHECK(echo->payload == payload);
    }
}

TEST_CASE("framing: ping is answered with a pong carrying its payload", "[unit][memory][framing]") {
    memory_server s;
    auto client = memory_client::opened(s);
    const std::string payload = GENERATE(std::string{}, std::string{"p"}, std::string(125, 'x'));
    client.send(test::op_ping, payload);
    const auto pong = client.read_frame();
    REQUIRE(pong);
    CHECK(pong->opcode == test::op_pong);
    CHECK(pong->payload == payload);
}

TEST_CASE("framing: violations fail the connection with their close code",
          "[unit][memory][framing]") {
    auto opts = test::memory_options();
    opts.max_message_size = 1000;
    memory_server s{opts};
    test::echo(s.server);
    ws::close_info ended;
    s.server.on_close([&](const auto&, const ws::close_info& info) { ended = info; });
    auto client = memory_client::opened(s);
    SECTION("an unmasked client frame: 1002") {
        client.send_raw(test::encode(test::op_text, "in the clear", true, false));
        check_failed_with(client, 1002);
    }
    SECTION("RSV bits with no extension: 1002") {
        client.send_raw(test::encode(test::op_text, "x", true, true, 4));
        check_failed_with(client, 1002);
    }
    SECTION("a reserved opcode: 1002") {
        client.send(0x3, "x");
        check_failed_with(client, 1002);
    }
    SECTION("a continuation with no message: 1002") {
        client.send(test::op_continuation, "x");
        check_failed_with(client, 1002);
    }
    SECTION("invalid UTF-8 in a text message: 1007") {
        client.send(test::op_text, "\xc3\x28");
        check_failed_with(client, 1007);
    }
    SECTION("invalid UTF-8 split across fragments: 1007 at the fragment that shows it") {
        client.send(test::op_text, "ok \xe2\x82", false); // valid so far: a sequence begun
        CHECK(client.read_raw().empty());
        client.send(test::op_continuation, "\x28"); // cannot continue it
        check_failed_with(client, 1007);
    }
    SECTION("a message over max_message_size: 1009, from its header") {
        client.send_raw(test::encode(test::op_binary, std::string(1001, 'b')).substr(0, 8));
        check_failed_with(client, 1009);
        CHECK(s.server.limit_hits(ws::limit::message_size) == 1);
    }
    SECTION("a fragmented message growing over max_message_size: 1009") {
        client.send(test::op_binary, std::string(600, 'b'), false);
        client.send(test::op_continuation, std::string(600, 'b'));
        check_failed_with(client, 1009);
    }
    // A failed connection reads no more frames: the server has shut down its direction and
    // waits for the client to close the stream, then reports the violation.
    client.stream().close();
    test::settle(s.io);
    CHECK(s.server.connection_count() == 0);
    CHECK(ended.error);
}

TEST_CASE("framing: a message exactly max_message_size long is echoed", "[unit][memory][framing]") {
    auto opts = test::memory_options();
    opts.max_message_size = 1000;
    memory_server s{opts};
    test::echo(s.server);
    auto client = memory_client::opened(s);
    client.send(test::op_binary, std::string(1000, 'b'));
    const auto echo = client.read_frame();
    REQUIRE(echo);
    CHECK(echo->payload.size() == 1000);
}
