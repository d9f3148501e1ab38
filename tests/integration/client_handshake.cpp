// The client side of the opening handshake against a real ws::server over TCP: the request
// from ws::client_handshake goes out on a socket, the answer is read one byte at a time into
// ws::response_parser and verified, and the connection then carries frames. Then the same
// against Python's `websockets` server, an independent implementation.
#include "support/conformance.hpp"
#include "support/echo.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/ws/client_handshake.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

namespace {

/// Sends the request of `handshake` and parses the answer read byte by byte; REQUIREs a
/// whole head. Bytes after the head stay in `client`'s buffer.
ws::http_response handshake_over(test::socket_client& client,
                                 const ws::client_handshake& handshake) {
    REQUIRE(client.send_raw(handshake.request()));
    ws::response_parser parser;
    while (parser.current() == ws::response_parser::state::incomplete) {
        const auto byte = client.read_exact(1, 5s);
        REQUIRE(byte);
        REQUIRE(parser.feed(byte->data(), 1) == 1);
    }
    INFO(parser.error().message());
    REQUIRE(parser.current() == ws::response_parser::state::done);
    return parser.response();
}

} // namespace

TEST_CASE("client_handshake: with a ws::server over TCP", "[integration][client_handshake]") {
    ws::server_options opts = test::loopback_options();
    opts.subprotocols = {"chat.v2", "chat.v1"};
    test::running_server s{opts};
    s.server.on_upgrade([](const ws::http_request& req, ws::upgrade_decision& decision) {
        if (req.path() == "/full")
            decision.reject(503, "try later");
    });
    s.server.on_open([](const auto& conn) { conn->send_text("hello " + conn->subprotocol()); });
    test::echo(s.server);
    s.start();

    ws::handshake_offer offer;
    offer.host = "127.0.0.1";
    offer.port = s.port();
    offer.target = "/room?name=ann";
    offer.origin = "http://127.0.0.1";

    SECTION("a subprotocol is negotiated and the connection carries frames") {
        offer.subprotocols = {"chat.v1", "chat.v3"};
        const ws::client_handshake handshake{offer};
        test::socket_client client{s.port()};
        const ws::http_response response = handshake_over(client, handshake);
        const ws::handshake_result result = handshake.verify(response);
        INFO(result.error.message());
        REQUIRE(result.accepted());
        CHECK(result.status == 101);
        CHECK(result.subprotocol == "chat.v1");
        const auto hello = client.read_frame(5s);
        REQUIRE(hello);
        CHECK(hello->payload == "hello chat.v1");
        REQUIRE(client.send_raw(test::encode(0x1, "ping?")));
        const auto echo = client.read_frame(5s);
        REQUIRE(echo);
        CHECK(echo->payload == "ping?");
    }
    SECTION("no subprotocol offered: none chosen") {
        const ws::client_handshake handshake{offer};
        test::socket_client client{s.port()};
        const ws::handshake_result result = handshake.verify(handshake_over(client, handshake));
        REQUIRE(result.accepted());
        CHECK(result.subprotocol.empty());
        const auto hello = client.read_frame(5s);
        REQUIRE(hello);
        CHECK(hello->payload == "hello ");
    }
    SECTION("a refusal is reported with its status") {
        offer.target = "/full";
        const ws::client_handshake handshake{offer};
        test::socket_client client{s.port()};
        const ws::handshake_result result = handshake.verify(handshake_over(client, handshake));
        CHECK(result.error == ws::error::unexpected_status);
        CHECK(result.status == 503);
        CHECK(client.read_all(5s) == "try later");
    }
}

TEST_CASE("client_handshake: with Python's websockets server",
          "[integration][client_handshake][interop]") {
    const std::string python = "/usr/bin/python3";
    if (std::system((python + " -c 'import websockets' 2>/dev/null").c_str()) != 0) {
        WARN("python3-websockets not installed (Debian: python3-websockets): skipped");
        return;
    }
    // An echo server choosing among its own subprotocols, with websockets' default
    // permessage-deflate support; it prints its port.
    const std::string script = R"(
import asyncio, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, subprotocols=["superchat", "chat"]) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
)";
    conformance::child_process server{python, {"-c", script}};
    const auto port_line = server.read_line(20s);
    REQUIRE(port_line);
    ws::handshake_offer offer;
    offer.host = "127.0.0.1";
    offer.port = static_cast<std::uint16_t>(std::stoi(*port_line));
    offer.subprotocols = {"v9", "superchat"};

    SECTION("subprotocol and permessage-deflate accepted by the server are verified") {
        offer.extensions = "permessage-deflate; client_max_window_bits";
        const ws::client_handshake handshake{offer};
        test::socket_client client{offer.port};
        const ws::handshake_result result = handshake.verify(handshake_over(client, handshake));
        INFO(result.error.message());
        REQUIRE(result.accepted());
        CHECK(result.subprotocol == "superchat");
        CHECK(result.extensions.rfind("permessage-deflate", 0) == 0);
    }
    SECTION("without extensions, the connection echoes") {
        const ws::client_handshake handshake{offer};
        test::socket_client client{offer.port};
        const ws::handshake_result result = handshake.verify(handshake_over(client, handshake));
        INFO(result.error.message());
        REQUIRE(result.accepted());
        CHECK(result.extensions.empty());
        REQUIRE(client.send_raw(test::encode(0x1, "from wschat")));
        const auto echo = client.read_frame(5s);
        REQUIRE(echo);
        CHECK(echo->payload == "from wschat");
    }
}
