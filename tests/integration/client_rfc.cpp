// ws::client against a scripted server on a raw socket: the client-side duties of RFC 6455
// (server frames unmasked, accepted; masked, refused with 1002; a wrong accept key, an
// extension or subprotocol not offered, refused), answers that are not 101, a server that
// never answers, a pong that never comes, and the backoff between attempts, all with a
// manual clock where time matters.
#include "support/client_loop.hpp"
#include "support/fake_ws_server.hpp"

#include <wschat/ws/client.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// What a script saw, read by the test after the script is done.
struct seen {
    std::mutex mutex;
    std::string request;
    std::vector<test::client_frame> frames;
    std::atomic<bool> got_request{false};
    std::atomic<bool> done{false};

    void add(const test::client_frame& f) {
        std::lock_guard<std::mutex> lock{mutex};
        frames.push_back(f);
    }
    std::vector<test::client_frame> all() {
        std::lock_guard<std::mutex> lock{mutex};
        return frames;
    }
};

ws::client_options rfc_client_options(std::uint16_t port) {
    ws::client_options opts;
    opts.url = "ws://127.0.0.1:" + std::to_string(port) + "/rfc";
    opts.reconnect.enabled = false;
    return opts;
}

} // namespace

TEST_CASE("client: unmasked server frames are accepted, its own frames are masked",
          "[integration][client][rfc]") {
    seen s;
    test::fake_ws_server server{[&](test::fake_peer& peer, int) {
        const auto head = peer.read_head();
        if (!head)
            return;
        s.request = *head;
        s.got_request = true;
        peer.write(test::fake_peer::accept_answer(*head) + test::fake_peer::frame(0x1, "hello") +
                   test::fake_peer::frame(0x1, "frag", false) +
                   test::fake_peer::frame(0x0, "men", false) +
                   test::fake_peer::frame(0x9, "are you there") + // a ping in between
                   test::fake_peer::frame(0x0, "ted") + test::fake_peer::frame(0x2, ""));
        while (const auto f = peer.read_frame()) {
            s.add(*f);
            if (f->opcode == 0x8) {
                peer.write(test::fake_peer::frame(0x8, f->payload));
                break;
            }
        }
        s.done = true;
    }};
    asio::io_context io;
    test::client_record record;
    ws::client<> client{io, rfc_client_options(server.port())};
    record.watch(client);
    client.on_message([&](const ws::message& m) {
        record.messages.push_back(m.is_text() ? std::string{m.data} : "bin:" + std::string{m.data});
        if (record.messages.size() == 3) {
            client.send_text("thanks");
            client.close(ws::close_code::going_away, "done");
        }
    });
    client.connect();
    REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
    CHECK(record.messages == std::vector<std::string>{"hello", "fragmented", "bin:"});
    CHECK(record.closes[0].code == 1001);
    CHECK_FALSE(record.closes[0].error);
    REQUIRE(test::run_until(io, [&] { return s.done.load(); }));

    // The request: RFC 6455 §4.1's headers, a fresh 16-byte key.
    CHECK(s.request.rfind("GET /rfc HTTP/1.1\r\n", 0) == 0);
    CHECK(test::fake_peer::header(s.request, "Host") ==
          "127.0.0.1:" + std::to_string(server.port()));
    CHECK(test::fake_peer::header(s.request, "Upgrade") == "websocket");
    CHECK(test::fake_peer::header(s.request, "Sec-WebSocket-Version") == "13");
    CHECK(test::fake_peer::header(s.request, "Sec-WebSocket-Key").size() == 24);
    const auto frames = s.all();
    REQUIRE(frames.size() == 3);
    for (const auto& f : frames)
        CHECK(f.masked);
    CHECK(frames[0].opcode == 0xA); // the pong, with the ping's payload
    CHECK(frames[0].payload == "are you there");
    CHECK(frames[1].opcode == 0x1);
    CHECK(frames[1].payload == "thanks");
    CHECK(frames[2].opcode == 0x8);
    CHECK(frames[2].close_code() == 1001);
    CHECK(frames[2].payload.substr(2) == "done");
}

TEST_CASE("client: what it refuses in the server's answer and frames",
          "[integration][client][rfc]") {
    enum class fault {
        masked_frame,
        bad_accept,
        extension,
        subprotocol,
        status_503,
        status_403,
        garbage
    };
    const fault which =
        GENERATE(fault::masked_frame, fault::bad_accept, fault::extension, fault::subprotocol,
                 fault::status_503, fault::status_403, fault::garbage);
    seen s;
    test::fake_ws_server server{[&](test::fake_peer& peer, int) {
        const auto head = peer.read_head();
        if (!head)
            return;
        switch (which) {
        case fault::masked_frame:
            peer.write(test::fake_peer::accept_answer(*head) +
                       test::fake_peer::frame(0x1, "masked!", true, true));
            break;
        case fault::bad_accept:
            peer.write(test::fake_peer::accept_answer(*head, {}, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
            break;
        case fault::extension:
            peer.write(test::fake_peer::accept_answer(
                *head, "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
            break;
        case fault::subprotocol:
            peer.write(test::fake_peer::accept_answer(*head, "Sec-WebSocket-Protocol: other\r\n"));
            break;
        case fault::status_503:
            peer.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            break;
        case fault::status_403:
            peer.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            break;
        case fault::garbage:
            peer.write("SSH-2.0-OpenSSH_9.2\r\n\r\n");
            break;
        }
        while (const auto f = peer.read_frame(1s))
            s.add(*f);
        s.done = true;
    }};
    asio::io_context io;
    test::client_record record;
    ws::client_options opts = rfc_client_options(server.port());
    opts.subprotocols = {"chat"};
    opts.reconnect.enabled = true;
    opts.reconnect.initial_delay = 10s; // one attempt is enough here
    ws::client<> client{io, opts};
    record.watch(client);
    client.connect();
    REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
    const ws::client_closed& closed = record.closes[0];
    CHECK(record.opens.size() == (which == fault::masked_frame ? 1u : 0u));
    CHECK(record.messages.empty());
    switch (which) {
    case fault::masked_frame: {
        CHECK(closed.code == 1002);
        CHECK(closed.error == ws::error::masked_frame);
        CHECK(closed.was_open);
        CHECK(closed.will_retry);
        REQUIRE(test::run_until(io, [&] { return s.done.load(); }));
        const auto frames = s.all();
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].opcode == 0x8);
        CHECK(frames[0].close_code() == 1002);
        break;
    }
    case fault::bad_accept:
        CHECK(closed.error == ws::error::bad_accept_key);
        break;
    case fault::extension:
        CHECK(closed.error == ws::error::unexpected_extension);
        break;
    case fault::subprotocol:
        CHECK(closed.error == ws::error::unexpected_subprotocol);
        break;
    case fault::status_503:
        CHECK(closed.error == ws::error::unexpected_status);
        CHECK(closed.http_status == 503);
        CHECK(closed.will_retry);
        break;
    case fault::status_403:
        CHECK(closed.http_status == 403);
        CHECK_FALSE(closed.will_retry);
        break;
    case fault::garbage:
        CHECK(closed.error == ws::error::bad_response);
        break;
    }
    if (which != fault::masked_frame) {
        CHECK_FALSE(closed.was_open);
        CHECK(closed.code == 1006);
    }
}

TEST_CASE("client: a server that never answers the handshake, and one that stops answering pings",
          "[integration][client][rfc]") {
    auto clock = std::make_shared<ws::manual_clock>();
    std::atomic<bool> answer_handshake{false};
    std::atomic<bool> answer_pings{false};
    seen s;
    test::fake_ws_server server{[&](test::fake_peer& peer, int) {
        const auto head = peer.read_head();
        if (!head)
            return;
        s.got_request = true;
        if (answer_handshake)
            peer.write(test::fake_peer::accept_answer(*head));
        while (const auto f = peer.read_frame(3s)) {
            s.add(*f);
            if (f->opcode == 0x9 && answer_pings)
                peer.write(test::fake_peer::frame(0xA, f->payload));
        }
        s.done = true;
    }};
    asio::io_context io;
    test::client_record record;
    ws::client_options opts = rfc_client_options(server.port());
    opts.clock = clock;
    opts.handshake_timeout = 2s;
    opts.ping_interval = 20s;
    opts.pong_timeout = 5s;
    ws::client<> client{io, opts};
    record.watch(client);

    SECTION("handshake timeout") {
        client.connect();
        REQUIRE(test::run_until(io, [&] { return s.got_request.load(); }));
        clock->advance(1900ms);
        test::run_for(io, 50ms);
        CHECK(record.closes.empty());
        clock->advance(100ms);
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        CHECK(record.closes[0].error == ws::error::handshake_timeout);
        CHECK_FALSE(record.closes[0].was_open);
    }
    SECTION("pings every ping_interval; a missing pong cuts the connection") {
        answer_handshake = true;
        answer_pings = GENERATE(false, true);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
        clock->advance(20s);
        REQUIRE(test::run_until(io, [&] { return s.all().size() == 1; }));
        CHECK(s.all()[0].opcode == 0x9);
        CHECK(s.all()[0].masked);
        test::run_for(io, 50ms); // the pong, if any, arrives
        clock->advance(5s);
        test::run_for(io, 50ms);
        if (answer_pings) {
            CHECK(client.is_open());
            CHECK(record.closes.empty());
        } else {
            REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
            CHECK(record.closes[0].error == ws::error::heartbeat_timeout);
            CHECK(record.closes[0].code == 1006);
        }
    }
}

TEST_CASE("client: backoff between attempts, reset after a stable connection",
          "[integration][client][rfc]") {
    auto clock = std::make_shared<ws::manual_clock>();
    std::atomic<bool> close_now{false};
    test::fake_ws_server server{[&](test::fake_peer& peer, int n) {
        const auto head = peer.read_head();
        if (!head)
            return;
        if (n < 4 || n == 5) {
            peer.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            peer.wait_eof(1s);
            return;
        }
        // Connection 4 opens, stays until the test says, then the server goes away.
        peer.write(test::fake_peer::accept_answer(*head));
        while (!close_now)
            std::this_thread::sleep_for(5ms);
        peer.write(test::fake_peer::frame(0x8, std::string{"\x03\xE9", 2}));
        peer.wait_eof(1s);
    }};
    asio::io_context io;
    test::client_record record;
    ws::client_options opts = rfc_client_options(server.port());
    opts.clock = clock;
    opts.reconnect.enabled = true;
    opts.reconnect.initial_delay = 100ms;
    opts.reconnect.max_delay = 300ms;
    opts.reconnect.stable_after = 10s;
    opts.random = [] { return 0.5; };
    ws::client<> client{io, opts};
    record.watch(client);
    client.connect();

    // Full jitter with a fixed draw of 0.5: half of 100, 200, 300 (capped), 300 ms.
    const std::vector<std::chrono::milliseconds> expected{50ms, 100ms, 150ms, 150ms};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        REQUIRE(test::run_until(io, [&] { return record.closes.size() == i + 1; }));
        CHECK(record.closes[i].http_status == 503);
        CHECK(record.closes[i].will_retry);
        CHECK(record.closes[i].retry_delay == expected[i]);
        // No attempt before the delay has passed on the client's clock.
        test::run_for(io, 30ms);
        CHECK(record.attempts.size() == i + 1);
        clock->advance(expected[i] - 1ms);
        test::run_for(io, 30ms);
        CHECK(record.attempts.size() == i + 1);
        clock->advance(1ms);
        REQUIRE(test::run_until(io, [&] { return record.attempts.size() == i + 2; }));
    }
    CHECK(record.attempts == std::vector<unsigned>{1, 2, 3, 4, 5});
    REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
    clock->advance(10s); // stable: the next loss starts from the first delay again
    close_now = true;
    REQUIRE(test::run_until(io, [&] { return record.closes.size() == 5; }));
    CHECK(record.closes[4].code == 1001);
    CHECK(record.closes[4].closed_by_peer);
    CHECK(record.closes[4].retry_delay == 50ms);
    clock->advance(50ms);
    REQUIRE(test::run_until(io, [&] { return record.closes.size() == 6; }));
    CHECK(record.closes[5].retry_delay == 100ms); // counting up again from the reset
    CHECK(record.attempts.back() == 1);           // an open restarts the count
}
