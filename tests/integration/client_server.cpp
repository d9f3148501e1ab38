// ws::client against wschat's own server over real sockets: messages of every size both
// ways, the close handshake with a code and a reason, the limits, the offline queue, what
// makes it reconnect and what stops it, and a server killed and restarted.
#include "support/client_loop.hpp"
#include "support/conformance.hpp"
#include "support/echo.hpp"
#include "support/running_server.hpp"

#include <wschat/ws/client.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

ws::client_options options_for(std::uint16_t port, const std::string& path = "/") {
    ws::client_options opts;
    opts.url = "ws://127.0.0.1:" + std::to_string(port) + path;
    return opts;
}

/// What the server saw of its clients' closes.
struct server_closes {
    std::mutex mutex;
    std::vector<ws::close_info> seen;
    void add(const ws::close_info& info) {
        std::lock_guard<std::mutex> lock{mutex};
        seen.push_back(info);
    }
    std::size_t size() {
        std::lock_guard<std::mutex> lock{mutex};
        return seen.size();
    }
};

} // namespace

TEST_CASE("client: messages of every size both ways with wschat's server",
          "[integration][client]") {
    ws::server_options sopts = test::loopback_options();
    sopts.subprotocols = {"chat.v1"};
    sopts.max_message_size = 2 * 1024 * 1024;
    server_closes closes; // outlives the server, whose handler records into it
    test::running_server s{sopts};
    test::echo(s.server);
    s.start();

    asio::io_context io;
    ws::client_options opts = options_for(s.port(), "/echo?x=1");
    opts.subprotocols = {"chat.v2", "chat.v1"};
    opts.max_message_size = 2 * 1024 * 1024;
    ws::client<> client{io, opts};
    test::client_record record;
    record.watch(client);
    client.connect();
    REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
    REQUIRE(record.opens.size() == 1);
    CHECK(record.opens[0].subprotocol == "chat.v1");
    CHECK_FALSE(record.opens[0].reconnected);
    CHECK(record.attempts == std::vector<unsigned>{1});

    const std::vector<std::size_t> sizes{0, 1, 125, 126, 65535, 65536, 1024 * 1024};
    std::vector<std::string> expected;
    for (const std::size_t size : sizes) {
        std::string text(size, 'a');
        for (std::size_t i = 0; i < size; ++i)
            text[i] = static_cast<char>('a' + i % 26);
        REQUIRE(client.send_text(text) == ws::send_status::sent);
        expected.push_back(text);
        std::string bytes(size, '\0');
        for (std::size_t i = 0; i < size; ++i)
            bytes[i] = static_cast<char>(i * 7);
        REQUIRE(client.send_binary(bytes) == ws::send_status::sent);
        expected.push_back("bin:" + bytes);
    }
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == expected.size(); }));
    CHECK(record.messages == expected);

    SECTION("a close with a code and a reason reaches the server, and the client stops") {
        s.server.on_close([&](const auto&, const ws::close_info& info) { closes.add(info); });
        client.close(static_cast<std::uint16_t>(4000), "bye now");
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        const ws::client_closed& closed = record.closes.back();
        CHECK(closed.code == 4000);
        CHECK(closed.reason == "bye now");
        CHECK_FALSE(closed.error);
        CHECK_FALSE(closed.will_retry);
        CHECK(closed.was_open);
        CHECK(closed.stop_reason == "closed by the application");
        CHECK(client.current_state() == ws::client<>::state::stopped);
        REQUIRE(test::eventually([&] { return closes.size() == 1; }));
        CHECK(closes.seen[0].code == 4000);
        CHECK(closes.seen[0].reason == "bye now");
        CHECK(client.send_text("late") == ws::send_status::closed);
        // A stopped client starts again with connect().
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
        CHECK(record.opens.size() == 2);
        CHECK(record.attempts == std::vector<unsigned>{1, 1});
        CHECK(client.send_text("again") == ws::send_status::sent);
        REQUIRE(test::run_until(io, [&] { return record.messages.back() == "again"; }));
    }
}

TEST_CASE("client: what it refuses and what it limits", "[integration][client]") {
    test::running_server s;
    test::echo(s.server);
    s.server.on_open([](const auto& conn) {
        if (conn->request().path() == "/big")
            conn->send_text(std::string(2048, 'x'));
    });
    s.start();
    asio::io_context io;
    test::client_record record;

    SECTION("a message over max_message_size closes with 1009 and reconnects") {
        ws::client_options opts = options_for(s.port(), "/big");
        opts.max_message_size = 1024;
        opts.reconnect.initial_delay = 50ms;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        CHECK(record.closes[0].code == 1009);
        CHECK(record.closes[0].error == ws::error::message_too_big);
        CHECK(record.closes[0].will_retry);
        CHECK(record.messages.empty());
    }
    SECTION("sends over max_sends_per_second are refused, not sent") {
        ws::client_options opts = options_for(s.port());
        opts.max_sends_per_second = 1;
        opts.send_burst = 3;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
        CHECK(client.send_text("1") == ws::send_status::sent);
        CHECK(client.send_text("2") == ws::send_status::sent);
        CHECK(client.send_text("3") == ws::send_status::sent);
        CHECK(client.send_text("4") == ws::send_status::rate_limited);
        REQUIRE(test::run_until(io, [&] { return record.messages.size() == 3; }));
        test::run_for(io, 50ms);
        CHECK(record.messages == std::vector<std::string>{"1", "2", "3"});
    }
    SECTION("the send queue is bounded") {
        ws::client_options opts = options_for(s.port());
        opts.max_send_queue_bytes = 64 * 1024;
        opts.max_sends_per_second = 0;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
        // Nothing is written until the io_context runs again: the bound is reached at once.
        const std::string chunk(16 * 1024, 'q');
        std::vector<ws::send_status> statuses;
        for (int i = 0; i < 5; ++i)
            statuses.push_back(client.send_binary(chunk));
        CHECK(statuses[0] == ws::send_status::sent);
        CHECK(statuses[2] == ws::send_status::sent);
        CHECK(statuses[4] == ws::send_status::queue_full);
        CHECK(client.queued_bytes() <= opts.max_send_queue_bytes);
    }
    SECTION("a URL for another transport, or no URL, is refused by connect") {
        ws::client_options opts;
        opts.url = "wss://127.0.0.1:1/";
        ws::client<> tls_url{io, opts};
        std::error_code ec;
        tls_url.connect(ec);
        CHECK(ec == ws::client_error::transport_mismatch);
        ws::client<> no_url{io};
        CHECK_THROWS_AS(no_url.connect(), std::system_error);
        opts.url = "ws://127.0.0.1:1/";
        opts.proxy = "socks5://127.0.0.1:1080";
        ws::client<> bad_proxy{io, opts};
        bad_proxy.connect(ec);
        CHECK(ec == ws::client_error::invalid_proxy);
    }
}

TEST_CASE("client: refusals at the handshake, and close codes, decide whether it retries",
          "[integration][client]") {
    test::running_server s;
    s.server.on_upgrade([](const ws::http_request& req, ws::upgrade_decision& decision) {
        if (req.path() == "/forbidden")
            decision.reject(403, "no");
        if (req.path() == "/busy")
            decision.reject(503, "later");
    });
    s.server.on_open([](const auto& conn) {
        if (conn->request().path() == "/policy")
            conn->close(ws::close_code::policy_violation, "banned");
        if (conn->request().path() == "/app")
            conn->close(static_cast<ws::close_code>(4001), "replaced");
        if (conn->request().path() == "/restart")
            conn->close(ws::close_code::service_restart, "upgrading");
    });
    s.start();
    asio::io_context io;
    test::client_record record;
    ws::client_options opts = options_for(s.port());
    opts.reconnect.initial_delay = 20ms;
    opts.reconnect.max_delay = 40ms;

    SECTION("403: no retry, with the status") {
        opts.url = options_for(s.port(), "/forbidden").url;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        test::run_for(io, 100ms);
        REQUIRE(record.closes.size() == 1);
        CHECK(record.closes[0].http_status == 403);
        CHECK(record.closes[0].error == ws::error::unexpected_status);
        CHECK_FALSE(record.closes[0].will_retry);
        CHECK(record.closes[0].stop_reason == "HTTP 403 at the handshake");
        CHECK(record.attempts.size() == 1);
    }
    SECTION("503: retried, until max_attempts") {
        opts.url = options_for(s.port(), "/busy").url;
        opts.reconnect.max_attempts = 3;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return record.closes.size() == 3; }));
        test::run_for(io, 100ms);
        REQUIRE(record.closes.size() == 3);
        CHECK(record.closes[0].http_status == 503);
        CHECK(record.closes[0].will_retry);
        CHECK(record.closes[1].will_retry);
        CHECK_FALSE(record.closes[2].will_retry);
        CHECK(record.closes[2].stop_reason == "gave up after 3 attempts");
        CHECK(record.attempts == std::vector<unsigned>{1, 2, 3});
        REQUIRE(record.errors.size() == 1);
        CHECK(record.errors[0] == ws::client_error::given_up);
    }
    SECTION("close() while waiting to retry stops at once") {
        opts.url = options_for(s.port(), "/busy").url;
        opts.reconnect.initial_delay = 10s;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        CHECK(client.current_state() == ws::client_state::waiting);
        CHECK(client.send_text("kept") == ws::send_status::queued_offline);
        client.close(ws::close_code::normal, "never mind");
        CHECK(record.closes.size() == 1); // reported from the io_context, not inside close()
        REQUIRE(test::run_until(io, [&] { return record.closes.size() == 2; }));
        CHECK_FALSE(record.closes[1].will_retry);
        CHECK(record.closes[1].stop_reason == "closed by the application");
        CHECK(client.current_state() == ws::client_state::stopped);
        CHECK(client.offline_count() == 0);
    }
    SECTION("1008 from the server: no retry") {
        opts.url = options_for(s.port(), "/policy").url;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        test::run_for(io, 100ms);
        REQUIRE(record.closes.size() == 1);
        CHECK(record.closes[0].code == 1008);
        CHECK(record.closes[0].reason == "banned");
        CHECK(record.closes[0].closed_by_peer);
        CHECK_FALSE(record.closes[0].will_retry);
        CHECK(record.closes[0].stop_reason == "close code 1008 means do not retry");
    }
    SECTION("an application code is retried unless listed") {
        opts.url = options_for(s.port(), "/app").url;
        const bool listed = GENERATE(false, true);
        if (listed)
            opts.reconnect.no_retry_close_codes.push_back(4001);
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        CHECK(record.closes[0].code == 4001);
        CHECK(record.closes[0].will_retry == !listed);
    }
    SECTION("1012 (service restart): retried, reopens, reconnected is set") {
        opts.url = options_for(s.port(), "/restart").url;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return record.opens.size() >= 2; }));
        CHECK_FALSE(record.opens[0].reconnected);
        CHECK(record.opens[1].reconnected);
        CHECK(record.closes[0].will_retry);
        CHECK(record.closes[0].retry_delay <= 20ms);
        client.close();
    }
}

TEST_CASE("client: the offline queue", "[integration][client]") {
    test::running_server s;
    test::echo(s.server);
    s.start();
    asio::io_context io;
    test::client_record record;
    ws::client_options opts = options_for(s.port());
    opts.max_offline_messages = 3;
    ws::client<> client{io, opts};
    record.watch(client);

    CHECK(client.send_text("before connect") == ws::send_status::closed);
    client.connect();
    // connect() only posted the first attempt: these wait offline, and leave in order once
    // open, after what before_open sends.
    CHECK(client.send_text("one") == ws::send_status::queued_offline);
    CHECK(client.send_binary("two") == ws::send_status::queued_offline);
    CHECK(client.send_text("three") == ws::send_status::queued_offline);
    CHECK(client.send_text("four") == ws::send_status::dropped);
    REQUIRE(record.errors.size() == 1);
    CHECK(record.errors[0] == ws::client_error::offline_queue_full);
    CHECK(client.offline_count() == 3);
    client.before_open([&](const ws::client_open&) {
        CHECK(client.send_text("first: resume") == ws::send_status::sent);
    });
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 4; }));
    CHECK(record.messages == std::vector<std::string>{"first: resume", "one", "bin:two", "three"});
    CHECK(client.offline_count() == 0);
}

TEST_CASE("client: a server killed and restarted on the same port", "[integration][client]") {
    auto first = std::make_unique<test::running_server>();
    test::echo(first->server);
    first->start();
    const std::uint16_t port = first->port();

    asio::io_context io;
    test::client_record record;
    ws::client_options opts = options_for(port);
    opts.reconnect.initial_delay = 50ms;
    opts.reconnect.max_delay = 200ms;
    ws::client<> client{io, opts};
    record.watch(client);
    client.connect();
    REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
    REQUIRE(client.send_text("before") == ws::send_status::sent);
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 1; }));

    first->server.stop(); // its peers get 1001, then the port is closed
    REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
    first.reset();
    CHECK(record.closes[0].code == 1001);
    CHECK(record.closes[0].will_retry);
    // While it is down, attempts fail (refused) and are retried; messages wait offline.
    REQUIRE(test::run_until(io, [&] { return record.closes.size() >= 3; }));
    CHECK_FALSE(record.closes[2].was_open);
    CHECK(record.closes[2].will_retry);
    CHECK(client.send_text("while down 1") == ws::send_status::queued_offline);
    CHECK(client.send_text("while down 2") == ws::send_status::queued_offline);

    ws::server_options sopts = test::loopback_options();
    sopts.port = port;
    test::running_server second{sopts};
    test::echo(second.server);
    second.start();
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 3; }));
    CHECK(record.messages == std::vector<std::string>{"before", "while down 1", "while down 2"});
    REQUIRE(record.opens.size() == 2);
    CHECK(record.opens[1].reconnected);
    CHECK(record.attempts.back() >= 2);
    client.close();
    REQUIRE(test::run_until(
        io, [&] { return !client.is_open() && record.closes.back().code == 1000; }));
}

#if defined(ASIO_HAS_LOCAL_SOCKETS)
TEST_CASE("client: over a Unix socket", "[integration][client]") {
    const std::string path = "/tmp/wschat-client-test-" + std::to_string(::getpid()) + ".sock";
    ws::server_options sopts = test::loopback_options();
    test::basic_running_server<ws::asio_local> s{sopts, 1, ws::asio_local{path}};
    s.server.on_open(
        [](const auto& conn) { conn->send_text("at " + std::string{conn->request().target}); });
    test::echo(s.server);
    s.start();

    asio::io_context io;
    test::client_record record;
    ws::client_options opts;
    const bool explicit_path = GENERATE(false, true);
    if (explicit_path) {
        opts.url = "ws+unix:///ignored.sock:/gateway?id=7";
        opts.unix_socket_path = path;
    } else {
        opts.url = "ws+unix://" + path + ":/gateway?id=7";
    }
    ws::client<ws::asio_local> client{io, opts};
    record.watch(client);
    client.connect();
    REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
    client.send_text("over unix");
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 2; }));
    CHECK(record.messages == std::vector<std::string>{"at /gateway?id=7", "over unix"});
}
#endif

TEST_CASE("client: the server process killed (SIGKILL) and started again",
          "[integration][client]") {
    const char* echo_server = std::getenv("WSCHAT_ECHO_SERVER");
    if (echo_server == nullptr || *echo_server == '\0') {
        WARN("WSCHAT_ECHO_SERVER is not set (run through ctest): skipped");
        return;
    }
    const auto start = [&](const std::string& port) {
        auto process = std::make_unique<conformance::child_process>(
            echo_server, std::vector<std::string>{"--address", "127.0.0.1", "--port", port});
        const auto line = process->read_line(10s);
        REQUIRE(line);
        REQUIRE(line->rfind("listening on ws://127.0.0.1:", 0) == 0);
        return std::make_pair(std::move(process), line->substr(28, line->size() - 29));
    };
    auto [server, port] = start("0");

    asio::io_context io;
    test::client_record record;
    ws::client_options opts;
    opts.url = "ws://127.0.0.1:" + port + "/";
    opts.reconnect.initial_delay = 50ms;
    opts.reconnect.max_delay = 200ms;
    ws::client<> client{io, opts};
    record.watch(client);
    client.connect();
    REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
    client.send_text("one");
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 1; }));

    server.reset(); // SIGKILL: no Close frame, the kernel resets or closes the socket
    REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
    CHECK(record.closes[0].code == 1006);
    CHECK(record.closes[0].will_retry);
    CHECK(client.send_text("two") == ws::send_status::queued_offline);
    server = start(port).first;
    REQUIRE(test::run_until(io, [&] { return record.messages.size() == 2; }));
    CHECK(record.messages == std::vector<std::string>{"one", "two"});
    CHECK(record.opens.size() == 2);
}
