// The close handshake over memory streams, both ways: the code echoed, who closes the stream
// and when, what on_close reports, and a peer that vanishes without a Close.
#include "support/echo.hpp"
#include "support/memory_client.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

using test::memory_client;
using test::memory_server;

namespace {

/// A server that echoes and records how its connection ended.
struct recording_server : memory_server {
    recording_server() {
        test::echo(server);
        server.on_open([this](const auto& conn) { opened = conn; });
        server.on_close([this](const auto&, const ws::close_info& info) { ended = info; });
    }
    std::shared_ptr<ws::server<ws::memory_transport>::connection_type> opened;
    std::optional<ws::close_info> ended;
};

} // namespace

TEST_CASE("close: the client's Close is echoed with its code, then the server closes the stream",
          "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    const std::uint16_t code = GENERATE(1000, 1001, 3000, 4999);
    client.send_close(code, "bye");
    const auto answer = client.read_frame();
    REQUIRE(answer);
    CHECK(answer->opcode == test::op_close);
    CHECK(answer->close_code() == code);
    CHECK(client.server_ended()); // the server closes first, once both Closes are exchanged
    CHECK_FALSE(s.opened->is_open());
    REQUIRE(s.ended);
    CHECK(s.ended->code == code);
    CHECK(s.ended->reason == "bye");
    CHECK_FALSE(s.ended->error);
    CHECK(s.server.connection_count() == 0);
}

TEST_CASE("close: a Close with no code is answered with none", "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    client.send(test::op_close, "");
    const auto answer = client.read_frame();
    REQUIRE(answer);
    CHECK(answer->opcode == test::op_close);
    CHECK(answer->payload.empty());
    CHECK(client.server_ended());
    REQUIRE(s.ended);
    CHECK(s.ended->code == 1005);
}

TEST_CASE("close: data after the client's Close is not delivered", "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    client.send_raw(test::encode(test::op_close, test::close_payload(1000)) +
                    test::encode(test::op_text, "too late"));
    const auto frames = client.read_frames();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].opcode == test::op_close);
}

TEST_CASE("close: the server's Close is sent after what was queued; it shuts down sending, "
          "and closes the stream once the client answers",
          "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    s.opened->send_text("last message");
    s.opened->close(ws::close_code::going_away, "leaving");
    const auto frames = client.read_frames();
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].payload == "last message");
    CHECK(frames[1].opcode == test::op_close);
    CHECK(frames[1].close_code() == 1001);
    CHECK(frames[1].close_reason() == "leaving");
    CHECK(client.server_ended());        // TCP's FIN: our side may still send its Close
    CHECK_FALSE(s.ended);                // the handshake is not complete
    client.send_text("crossing");        // sent before the client saw the Close: discarded
    CHECK(client.read_frames().empty()); // not echoed
    client.send_close(1001);
    REQUIRE(s.ended);
    CHECK(s.ended->code == 1001);
    CHECK(s.ended->reason == "leaving");
    CHECK(s.server.connection_count() == 0);
    // The server's end is closed: what the client writes now is refused.
    std::error_code ec;
    client.stream().write_some(asio::buffer(std::string_view{"x"}), ec);
    CHECK(ec == asio::error::connection_reset);
}

TEST_CASE("close: a client that vanishes without a Close ends as 1006", "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    client.stream().close();
    test::settle(s.io);
    REQUIRE(s.ended);
    CHECK(s.ended->code == 1006);
    CHECK(s.ended->error == asio::error::eof);
    CHECK(s.server.connection_count() == 0);
}

TEST_CASE("close: a server write cut off by the client's close ends the connection with its "
          "error",
          "[unit][memory][close]") {
    recording_server s;
    auto client = memory_client::opened(s);
    client.stream().input_capacity(1); // the server's write takes one byte, then waits
    s.opened->send_text("more than one byte");
    test::settle(s.io);
    client.stream().close();
    test::settle(s.io);
    REQUIRE(s.ended);
    CHECK(s.ended->code == 1006);
    CHECK(s.ended->error == asio::error::connection_reset);
}
