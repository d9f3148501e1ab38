// Who may connect and how much they may do, over real sockets: per-address and total
// connection limits, Origin allow-list, message rate, trusted proxies, user data, counters.
#include "support/echo.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test::socket_client;
using test::ws_client;

namespace {

std::string status_of(std::uint16_t port, const std::string& request) {
    socket_client client{port};
    client.send_raw(request);
    const std::string response = client.read_all(2s);
    return response.substr(0, response.find("\r\n"));
}

} // namespace

TEST_CASE("connections past the per-address limit get 503 before the upgrade", "[limits]") {
    auto opts = test::loopback_options();
    opts.max_connections_per_address = 2;
    test::running_server s{opts};
    s.start();
    ws_client first{s.port()};
    socket_client half_open{s.port()}; // sockets in their handshake count too
    half_open.send_raw("GET / HTTP/1.1\r\n");
    CHECK(status_of(s.port(), test::upgrade_request()) == "HTTP/1.1 503 Service Unavailable");
    CHECK(s.server.limit_hits(ws::limit::connections) == 1);

    half_open.close(); // a slot frees up when a connection ends
    REQUIRE(test::eventually([&] {
        return status_of(s.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n") ==
               "HTTP/1.1 426 Upgrade Required";
    }));
}

TEST_CASE("a trusted proxy is exempt from the per-address limit and names the client", "[limits]") {
    auto opts = test::loopback_options();
    opts.max_connections_per_address = 1;
    opts.trusted_proxies = {"127.0.0.1"};
    std::mutex mutex;
    std::vector<std::string> addresses;
    test::running_server s{opts};
    s.server.on_open([&](const auto& conn) {
        std::lock_guard<std::mutex> lock{mutex};
        addresses.emplace_back(conn->remote_address());
    });
    s.start();

    ws_client forwarded{s.port(), "/", "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n"};
    ws_client real_ip{s.port(), "/", "X-Real-IP: 2001:db8::7\r\nX-Forwarded-For: 10.0.0.1\r\n"};
    ws_client junk{s.port(), "/", "X-Real-IP: <script>\r\n"};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 3; }));
    std::lock_guard<std::mutex> lock{mutex};
    CHECK(addresses == std::vector<std::string>{"203.0.113.9", "2001:db8::7", "127.0.0.1"});
}

TEST_CASE("forwarding headers from an untrusted peer are ignored", "[limits]") {
    std::string seen;
    std::atomic<bool> opened{false};
    test::running_server s;
    s.server.on_open([&](const auto& conn) {
        seen = conn->remote_address();
        opened = true;
    });
    s.start();
    ws_client client{s.port(), "/", "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"};
    REQUIRE(test::eventually([&] { return opened.load(); }));
    CHECK(seen == "127.0.0.1");
}

TEST_CASE("upgrades from a foreign Origin get 403", "[limits]") {
    auto opts = test::loopback_options();
    opts.allowed_origins = {"https://chat.example"};
    test::running_server s{opts};
    s.start();
    CHECK(status_of(s.port(), test::upgrade_request("/", "Origin: https://evil.example\r\n")) ==
          "HTTP/1.1 403 Forbidden");
    CHECK(s.server.limit_hits(ws::limit::origin) == 1);
    CHECK_NOTHROW(ws_client{s.port(), "/", "Origin: https://chat.example\r\n"});
    CHECK_NOTHROW(ws_client{s.port()}); // no Origin: not a browser
}

TEST_CASE("a sender over the message rate is closed with 1008", "[limits]") {
    auto opts = test::loopback_options();
    opts.max_messages_per_second = 10;
    opts.message_burst = 5;
    ws::close_info closed_with;
    std::atomic<bool> closed{false};
    test::running_server s{opts};
    test::echo(s.server);
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        closed_with = info;
        closed = true;
    });
    s.start();
    ws_client client{s.port()};
    for (int i = 0; i < 6; ++i)
        REQUIRE(client.send_text("m" + std::to_string(i)));
    for (int i = 0; i < 5; ++i)
        CHECK(client.read_text() == "m" + std::to_string(i)); // the burst goes through
    auto close = client.read_frame();
    REQUIRE(close);
    CHECK(close->close_code() == 1008);
    client.send_close(1008);
    REQUIRE(test::eventually([&] { return closed.load(); }));
    CHECK(closed_with.error == ws::error::rate_limited);
    CHECK(s.server.limit_hits(ws::limit::message_rate) == 1);
}

TEST_CASE("with the drop action, messages over the rate are dropped and the sender stays",
          "[limits]") {
    auto opts = test::loopback_options();
    opts.max_messages_per_second = 10;
    opts.message_burst = 5;
    opts.rate_limit_action = ws::server_options::rate_action::drop;
    test::running_server s{opts};
    test::echo(s.server);
    s.start();
    ws_client client{s.port()};
    for (int i = 0; i < 10; ++i)
        REQUIRE(client.send_text("m" + std::to_string(i)));
    for (int i = 0; i < 5; ++i)
        CHECK(client.read_text() == "m" + std::to_string(i));
    CHECK_FALSE(client.read_text(200ms)); // the other five were dropped
    CHECK(s.server.limit_hits(ws::limit::message_rate) == 5);
    std::this_thread::sleep_for(200ms); // the bucket refills at 10 per second
    REQUIRE(client.send_text("later"));
    CHECK(client.read_text() == "later");
}

TEST_CASE("on_upgrade attaches user data that the handlers read", "[limits]") {
    test::running_server s;
    s.server.on_upgrade([](const ws::http_request& request, ws::upgrade_decision& decision) {
        decision.user_data = std::string{request.query()}; // e.g. "name=alice"
    });
    s.server.on_open([](const auto& conn) {
        const std::string* name = conn->template user_data_as<std::string>();
        conn->send_text(name ? "hello " + *name : "no name");
    });
    s.start();
    ws_client client{s.port(), "/?name=alice"};
    CHECK(client.read_text() == "hello name=alice");
}

TEST_CASE("a slow reader under drop_oldest keeps its connection", "[limits]") {
    auto opts = test::loopback_options();
    opts.max_send_queue_bytes = 64 * 1024;
    opts.slow_reader_action = ws::server_options::overflow_action::drop_oldest;
    chat::room<> room;
    test::running_server s{opts};
    room.attach(s.server);
    s.start();
    ws_client sender{s.port()};
    ws_client slow{s.port(), "/", {}, 4096};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));
    // More than the kernel's socket buffers hold, so the server's own queue must overflow.
    constexpr int messages = 600;
    const std::string line(16 * 1024, 'x');
    std::thread drain{[&] { // the sender hears itself and keeps up
        for (int heard = 0; heard < messages && sender.read_text(5s);)
            heard += 1;
    }};
    for (int i = 0; i < messages; ++i)
        sender.send_text(line);
    drain.join();
    CHECK(test::eventually([&] { return s.server.limit_hits(ws::limit::send_queue) > 0; }));
    CHECK(room.size() == 2);   // nobody was closed
    CHECK(slow.read_text(2s)); // and the slow reader still gets frames, whole
}

TEST_CASE("limits hit during the handshake are counted", "[limits]") {
    auto opts = test::loopback_options();
    opts.handshake_timeout = 100ms;
    opts.max_message_size = 16;
    test::running_server s{opts};
    s.start();
    CHECK(status_of(s.port(), "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n") ==
          "HTTP/1.1 431 Request Header Fields Too Large");
    socket_client silent{s.port()};
    CHECK(silent.wait_for_eof(2s));
    ws_client big{s.port()};
    big.send_text(std::string(17, 'b'));
    auto close = big.read_frame();
    REQUIRE(close);
    CHECK(close->close_code() == 1009);
    CHECK(test::eventually([&] {
        return s.server.limit_hits(ws::limit::header_size) == 1 &&
               s.server.limit_hits(ws::limit::handshake_time) == 1 &&
               s.server.limit_hits(ws::limit::message_size) == 1;
    }));
}

TEST_CASE("clients behind a trusted proxy are limited by the address it forwards", "[limits]") {
    auto opts = test::loopback_options();
    opts.max_connections_per_address = 2;
    opts.trusted_proxies = {"127.0.0.1"};
    test::running_server s{opts};
    s.start();
    const std::string from_one = "X-Forwarded-For: 203.0.113.1\r\n";
    ws_client first{s.port(), "/", from_one};
    ws_client second{s.port(), "/", from_one};
    CHECK(status_of(s.port(), test::upgrade_request("/", from_one)) ==
          "HTTP/1.1 503 Service Unavailable");
    CHECK(s.server.limit_hits(ws::limit::connections) == 1);
    // Another client behind the same proxy has slots of its own, and so does the proxy.
    CHECK_NOTHROW(ws_client{s.port(), "/", "X-Forwarded-For: 203.0.113.2\r\n"});
    ws_client proxy_a{s.port()};
    ws_client proxy_b{s.port()};
    CHECK_NOTHROW(ws_client{s.port()});

    second.socket().close(); // the forwarded client's slot frees when it leaves
    CHECK(test::eventually([&] {
        try {
            ws_client again{s.port(), "/", from_one};
            return true;
        } catch (const std::runtime_error&) {
            return false;
        }
    }));
}

TEST_CASE("on_upgrade sees the client address and may refuse it", "[limits]") {
    auto opts = test::loopback_options();
    opts.trusted_proxies = {"127.0.0.1"};
    std::mutex mutex;
    std::vector<std::string> seen;
    test::running_server s{opts};
    s.server.on_upgrade([&](const ws::http_request&, ws::upgrade_decision& decision) {
        {
            std::lock_guard<std::mutex> lock{mutex};
            seen.push_back(decision.remote_address);
        }
        if (decision.remote_address == "198.51.100.66")
            decision.reject(403, "address banned");
    });
    s.start();
    CHECK(status_of(s.port(), test::upgrade_request("/", "X-Real-IP: 198.51.100.66\r\n")) ==
          "HTTP/1.1 403 Forbidden");
    CHECK_NOTHROW(ws_client{s.port(), "/", "X-Real-IP: 198.51.100.67\r\n"});
    CHECK_NOTHROW(ws_client{s.port()});
    std::lock_guard<std::mutex> lock{mutex};
    CHECK(seen == std::vector<std::string>{"198.51.100.66", "198.51.100.67", "127.0.0.1"});
}

TEST_CASE("a peer that answers pings but sends no message is closed after idle_timeout",
          "[limits]") {
    auto clock = std::make_shared<ws::manual_clock>();
    auto opts = test::loopback_options();
    opts.clock = clock;
    opts.heartbeat_interval = 10s;
    opts.heartbeat_timeout = 60s;
    opts.idle_timeout = 30s;
    ws::close_info closed_with;
    std::atomic<int> closed{0};
    test::running_server s{opts};
    test::echo(s.server);
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        closed_with = info;
        ++closed;
    });
    s.start();
    ws_client idle{s.port()};
    idle.auto_pong = false;
    ws_client talker{s.port()};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 2; }));
    std::optional<test::frame> close;
    int seconds = 0;
    while (!close && seconds < 60) {
        clock->advance(10s);
        seconds += 10;
        const std::string tick = "tick " + std::to_string(seconds);
        REQUIRE(talker.send_text(tick)); // the talker stays busy
        CHECK(talker.read_text() == tick);
        auto next = idle.read_frame();
        REQUIRE(next);
        if (next->opcode == test::op_ping)
            REQUIRE(idle.send(test::op_pong, next->payload));
        else if (next->opcode == test::op_close)
            close = next;
    }
    REQUIRE(close);
    CHECK(seconds == 30);
    CHECK(close->close_code() == 1001);
    CHECK(close->payload.substr(2) == "idle timeout");
    idle.send_close(1001);
    REQUIRE(test::eventually([&] { return closed == 1; }));
    CHECK(closed_with.error == ws::error::idle_timeout);
    CHECK(s.server.limit_hits(ws::limit::idle) == 1);
    CHECK(s.server.limit_hits(ws::limit::heartbeat) == 0);
    REQUIRE(talker.send_text("still here")); // the one who talks was never touched
    CHECK(talker.read_text() == "still here");
}
