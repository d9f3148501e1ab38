// The per-connection limits over memory streams, where a burst arrives in one read and a
// reader stops reading at an exact byte count: the message rate limit and the send queue
// bound, each with both of its actions.
#include "support/echo.hpp"
#include "support/memory_client.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

using test::memory_client;
using test::memory_server;

TEST_CASE("limits: a burst over the message rate closes with 1008 or is dropped, per options",
          "[unit][memory][limits]") {
    auto opts = test::memory_options();
    opts.max_messages_per_second = 1;
    opts.message_burst = 3;
    const bool close = GENERATE(true, false);
    opts.rate_limit_action =
        close ? ws::server_options::rate_action::close : ws::server_options::rate_action::drop;
    memory_server s{opts};
    test::echo(s.server);
    std::optional<ws::close_info> ended;
    s.server.on_close([&](const auto&, const ws::close_info& info) { ended = info; });
    auto client = memory_client::opened(s);

    // Five messages in one read: no time passes between them, the burst allows three.
    std::string burst;
    for (int i = 0; i < 5; ++i)
        burst += test::encode(test::op_text, "m" + std::to_string(i));
    client.send_raw(burst);
    const auto frames = client.read_frames();
    REQUIRE(frames.size() >= 3);
    for (int i = 0; i < 3; ++i)
        CHECK(frames[static_cast<std::size_t>(i)].payload == "m" + std::to_string(i));
    if (close) {
        REQUIRE(frames.size() == 4);
        CHECK(frames[3].opcode == test::op_close);
        CHECK(frames[3].close_code() == 1008);
        CHECK(s.server.limit_hits(ws::limit::message_rate) == 1);
        client.send_close(1008);
        REQUIRE(ended);
        CHECK(ended->error == ws::error::rate_limited);
    } else {
        CHECK(frames.size() == 3);
        CHECK(s.server.limit_hits(ws::limit::message_rate) == 2);
        CHECK(s.server.connection_count() == 1);
        CHECK_FALSE(client.server_ended());
    }
}

TEST_CASE("limits: a peer that stops reading hits the send queue bound: closed with 1008, or "
          "its oldest frames dropped, per options",
          "[unit][memory][limits]") {
    auto opts = test::memory_options();
    opts.max_send_queue_bytes = 4096;
    const bool close = GENERATE(true, false);
    opts.slow_reader_action = close ? ws::server_options::overflow_action::close
                                    : ws::server_options::overflow_action::drop_oldest;
    memory_server s{opts};
    std::shared_ptr<ws::server<ws::memory_transport>::connection_type> conn;
    s.server.on_open([&](const auto& c) { conn = c; });
    std::optional<ws::close_info> ended;
    s.server.on_close([&](const auto&, const ws::close_info& info) { ended = info; });
    auto client = memory_client::opened(s);
    client.stream().input_capacity(1024); // then the server's writes wait: a full socket

    // Messages of 1000 bytes (1004 on the wire), queued one turn of the event loop apart,
    // as a room's broadcasts would be.
    const int sent = 12;
    for (int i = 0; i < sent; ++i) {
        conn->send_text(std::to_string(i) + ":" + std::string(998 - std::to_string(i).size(), 'x'));
        test::settle(s.io);
    }
    CHECK(conn->queued_bytes() <= opts.max_send_queue_bytes + 1004);

    const auto frames = client.read_frames();
    REQUIRE_FALSE(frames.empty());
    int last = -1;
    for (const auto& f : frames) {
        if (f.opcode != test::op_text)
            break;
        const int n = std::stoi(f.payload);
        CHECK(n > last); // in order, perhaps with a gap where frames were dropped
        last = n;
    }
    if (close) {
        CHECK(frames.back().opcode == test::op_close);
        CHECK(frames.back().close_code() == 1008);
        CHECK(last < sent - 1); // the backlog was dropped, not sent
        CHECK(s.server.limit_hits(ws::limit::send_queue) == 1);
        client.send_close(1008);
        REQUIRE(ended);
        CHECK(ended->error == ws::error::send_queue_full);
    } else {
        CHECK(frames.back().opcode == test::op_text);
        CHECK(last == sent - 1);                                // the newest arrive
        CHECK(static_cast<int>(frames.size()) < sent);          // not all of them
        CHECK(s.server.limit_hits(ws::limit::send_queue) >= 1); // counted at each drop
        CHECK(conn->is_open());
    }
}
