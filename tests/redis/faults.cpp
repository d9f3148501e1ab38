// redis_connection when things go wrong: Redis killed and restarted, a server that never
// answers, one that sends garbage, too many commands, stop(). Each handler runs exactly once.
#include "redis/common.hpp"

#include <catch2/catch.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

using namespace redis_test;
using chat::detail::redis_connection;

namespace {

/// A TCP server on 127.0.0.1 that accepts and then misbehaves: says nothing, answers the
/// connection's PING and then nothing, or sends `garbage`.
class fake_server {
public:
    enum class mode { silent, pong_then_silent, garbage, pong_then_garbage };

    fake_server(asio::io_context& io, mode m, std::string garbage = {})
        : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), mode_(m),
          garbage_(std::move(garbage)) {
        accept();
    }

    std::string url() const {
        return "redis://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    int accepted() const { return accepted_; }

private:
    struct peer {
        explicit peer(asio::ip::tcp::socket s) : socket(std::move(s)) {}
        asio::ip::tcp::socket socket;
        std::array<char, 4096> buffer{};
        int reads = 0;
    };

    void accept() {
        acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
            if (ec)
                return;
            ++accepted_;
            auto p = std::make_shared<peer>(std::move(s));
            if (mode_ == mode::garbage)
                asio::async_write(p->socket, asio::buffer(garbage_),
                                  [p](std::error_code, std::size_t) {});
            read(p);
            accept();
        });
    }

    // Keeps reading (so the client's writes never block) and answers the first read only.
    void read(std::shared_ptr<peer> p) {
        p->socket.async_read_some(
            asio::buffer(p->buffer), [this, p](std::error_code ec, std::size_t) {
                if (ec)
                    return;
                if (p->reads++ == 0 &&
                    (mode_ == mode::pong_then_silent || mode_ == mode::pong_then_garbage)) {
                    static const std::string pong = "+PONG\r\n";
                    asio::write(p->socket, asio::buffer(pong), ec);
                } else if (p->reads == 2 && mode_ == mode::pong_then_garbage) {
                    asio::write(p->socket, asio::buffer(garbage_), ec);
                }
                read(p);
            });
    }

    asio::ip::tcp::acceptor acceptor_;
    mode mode_;
    std::string garbage_;
    int accepted_ = 0;
};

} // namespace

TEST_CASE("redis connection: Redis killed with commands pending", "[redis][server][faults]") {
    test::redis_server redis;
    state_log log;
    std::vector<outcome> pending(100);
    outcome blocked, while_down, after;
    asio::io_context io;
    auto conn = redis_connection::create(io, options(redis.url()));
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));

    // BLPOP on an empty list with no timeout never answers: it and everything pipelined
    // behind it wait for certain when Redis dies.
    conn->command({"BLPOP", "never", "0"}, blocked.handler());
    for (auto& o : pending)
        conn->command({"INCR", "n"}, o.handler());
    run_for(io, 50ms);
    REQUIRE(conn->pending() == 101);
    redis.kill();
    REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) == 1; }));

    SECTION("every pending handler gets connection_lost, exactly once") {
        run_for(io, 100ms);
        CHECK(blocked.calls == 1);
        CHECK(blocked.ec == chat::redis_errc::connection_lost);
        int once = 0;
        for (const auto& o : pending)
            once += o.calls == 1 && o.ec == chat::redis_errc::connection_lost;
        CHECK(once == 100);
        CHECK(conn->pending() == 0);
        const auto& down = log.events.at(2);
        CHECK(down.state == redis_state::disconnected);
        CHECK(down.error);
        CHECK_FALSE(down.detail.empty());
    }
    SECTION("commands fail at once while Redis is down, nothing is buffered") {
        // Between attempts a command fails at once; during an attempt (a refused connect
        // here) it waits in the bounded queue for that attempt's end: either way promptly.
        int unavailable = 0;
        for (int i = 0; i < 1000; ++i)
            conn->command({"SET", "k", std::string(1000, 'x')},
                          [&](std::error_code ec, redis_reply) {
                              unavailable += ec == chat::redis_errc::unavailable;
                              ++while_down.calls;
                          });
        // Handlers run later on the strand, never inside the call that issued them.
        CHECK(while_down.calls == 0);
        const auto issued = std::chrono::steady_clock::now();
        REQUIRE(run_until(
            io, [&] { return while_down.calls == 1000; }, 2s));
        CHECK(std::chrono::steady_clock::now() - issued < 500ms);
        CHECK(unavailable == 1000);
        CHECK(conn->pending() == 0);
        // Retries go on meanwhile, with growing (jittered) delays under the cap.
        run_for(io, 600ms);
        CHECK(log.count(redis_state::connecting) >= 3);
        for (const auto& e : log.events)
            if (e.state == redis_state::disconnected)
                CHECK(e.retry_in <= 200ms);
    }
    SECTION("after a restart, commands work again") {
        redis.restart();
        REQUIRE(run_until(io, [&] { return log.count(redis_state::connected) == 2; }));
        conn->command({"INCR", "n"}, after.handler());
        REQUIRE(run_until(io, [&] { return after.done(); }));
        CHECK_FALSE(after.ec);
        CHECK(after.reply == redis_reply::number(1)); // a fresh server
    }
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    CHECK(blocked.calls == 1);
}

TEST_CASE("redis connection: a server that accepts but never answers", "[redis][faults]") {
    state_log log;
    outcome queued;
    asio::io_context io;
    fake_server fake{io, fake_server::mode::silent};
    auto opts = options(fake.url());
    opts.connect_timeout = 200ms;
    auto conn = redis_connection::create(io, opts);
    conn->on_state(log.handler());
    conn->start();
    conn->command({"GET", "k"}, queued.handler());
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) == 1; }));
    CHECK(std::chrono::steady_clock::now() - started >= 190ms);
    CHECK(log.events.at(1).error == chat::redis_errc::timeout);
    // Queued while connecting, never sent: unavailable, once.
    REQUIRE(run_until(io, [&] { return queued.done(); }));
    CHECK(queued.ec == chat::redis_errc::unavailable);
    // And it keeps trying.
    REQUIRE(run_until(io, [&] { return fake.accepted() >= 2; }));
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    CHECK(queued.calls == 1);
}

TEST_CASE("redis connection: a command without a reply times out", "[redis][faults]") {
    state_log log;
    outcome first, second;
    asio::io_context io;
    fake_server fake{io, fake_server::mode::pong_then_silent};
    auto opts = options(fake.url());
    opts.command_timeout = 200ms;
    auto conn = redis_connection::create(io, opts);
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
    const auto sent = std::chrono::steady_clock::now();
    conn->command({"GET", "a"}, first.handler());
    conn->command({"GET", "b"}, second.handler());
    REQUIRE(run_until(
        io, [&] { return first.done() && second.done(); }, 2s));
    const auto waited = std::chrono::steady_clock::now() - sent;
    CHECK(waited >= 190ms);
    CHECK(waited < 1s);
    CHECK(first.ec == chat::redis_errc::timeout);
    CHECK(second.ec == chat::redis_errc::timeout);
    CHECK(log.count(redis_state::disconnected) == 1);
    CHECK(log.events.at(2).error == chat::redis_errc::timeout);
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    CHECK(first.calls == 1);
    CHECK(second.calls == 1);
}

TEST_CASE("redis connection: a frozen Redis times commands out, then recovers",
          "[redis][server][faults]") {
    test::redis_server redis;
    state_log log;
    outcome frozen, thawed;
    asio::io_context io;
    auto opts = options(redis.url());
    opts.command_timeout = 200ms;
    auto conn = redis_connection::create(io, opts);
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
    redis.freeze();
    conn->command({"SET", "k", "v"}, frozen.handler());
    REQUIRE(run_until(io, [&] { return frozen.done(); }));
    CHECK(frozen.ec == chat::redis_errc::timeout);
    redis.thaw();
    REQUIRE(run_until(
        io, [&] { return log.count(redis_state::connected) == 2; }, 5s));
    conn->command({"GET", "k"}, thawed.handler());
    REQUIRE(run_until(io, [&] { return thawed.done(); }));
    CHECK_FALSE(thawed.ec);
    // The timed-out SET did run once Redis woke up: `timeout` means "outcome unknown".
    CHECK(thawed.reply == redis_reply::string("v"));
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
}

TEST_CASE("redis connection: a RESP server that is not Redis fails the handshake",
          "[redis][faults]") {
    using namespace std::string_literals;
    state_log log;
    asio::io_context io;
    const std::string answer = GENERATE("+HELLO\r\n"s, "$4\r\nPONG\r\n"s, ":1\r\n"s, "$-1\r\n"s);
    fake_server fake{io, fake_server::mode::garbage, answer};
    auto conn = redis_connection::create(io, options(fake.url()));
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) == 1; }));
    CHECK(log.events.at(1).error == chat::redis_errc::handshake_failed);
    CHECK(log.events.at(1).detail == "unexpected answer to the connection's PING");
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
}

TEST_CASE("redis connection: garbage from the server is a protocol error, not a crash",
          "[redis][faults]") {
    using namespace std::string_literals;
    state_log log;
    asio::io_context io;
    const std::string garbage =
        GENERATE("HTTP/1.1 400 Bad Request\r\n\r\n"s, "\0\xff\xfe garbage\r\n"s, "*-5\r\n:x\r\n"s,
                 "*99999999999999\r\n"s);
    INFO("garbage: " << garbage);

    SECTION("instead of the handshake") {
        fake_server fake{io, fake_server::mode::garbage, garbage};
        auto conn = redis_connection::create(io, options(fake.url()));
        conn->on_state(log.handler());
        conn->start();
        REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) == 1; }));
        CHECK(log.events.at(1).error == chat::redis_errc::protocol);
        CHECK(log.events.at(1).detail.find("not RESP") != std::string::npos);
        conn->stop();
        REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    }
    SECTION("as the reply to a command") {
        outcome o;
        fake_server fake{io, fake_server::mode::pong_then_garbage, garbage};
        auto conn = redis_connection::create(io, options(fake.url()));
        conn->on_state(log.handler());
        conn->start();
        REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
        conn->command({"GET", "k"}, o.handler());
        REQUIRE(run_until(io, [&] { return o.done(); }));
        CHECK(o.ec == chat::redis_errc::protocol);
        CHECK(log.events.at(2).error == chat::redis_errc::protocol);
        conn->stop();
        REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
        CHECK(o.calls == 1);
    }
}

TEST_CASE("redis connection: memory stays bounded while commands pile up",
          "[redis][server][faults]") {
    test::redis_server redis;
    state_log log;
    outcome blocked, over_count, over_bytes;
    std::vector<outcome> within(9);
    asio::io_context io;
    auto opts = options(redis.url());
    opts.max_pending = 10;
    opts.max_pending_bytes = 1 << 20;
    auto conn = redis_connection::create(io, opts);
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
    conn->command({"BLPOP", "never", "0"}, blocked.handler());
    for (auto& o : within)
        conn->command({"PING"}, o.handler());
    conn->command({"PING"}, over_count.handler());
    REQUIRE(run_until(io, [&] { return over_count.done(); }));
    CHECK(over_count.ec == chat::redis_errc::queue_full);
    CHECK(conn->pending() == 10);
    // Unblock: the pipeline drains and there is room again, also by bytes.
    CHECK(redis.query({"RPUSH", "never", "x"}) == redis_reply::number(1));
    REQUIRE(run_until(io, [&] { return within.back().done(); }));
    CHECK(blocked.reply.is_array());
    conn->command({"SET", "big", std::string(2 << 20, 'x')}, over_bytes.handler());
    REQUIRE(run_until(io, [&] { return over_bytes.done(); }));
    CHECK(over_bytes.ec == chat::redis_errc::queue_full);
    CHECK(redis.query({"EXISTS", "big"}) == redis_reply::number(0));
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
}

TEST_CASE("redis connection: stop() fails what is pending once and releases the handlers",
          "[redis][server][faults]") {
    test::redis_server redis;
    state_log log;
    outcome blocked, later;
    asio::io_context io;
    auto conn = redis_connection::create(io, options(redis.url()));
    conn->on_state(log.handler());
    conn->start();
    REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
    conn->command({"BLPOP", "never", "0"}, blocked.handler());
    run_for(io, 20ms);
    conn->stop();
    REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    CHECK(blocked.calls == 1);
    CHECK(blocked.ec == chat::redis_errc::stopped);
    conn->command({"PING"}, later.handler());
    REQUIRE(run_until(io, [&] { return later.done(); }));
    CHECK(later.ec == chat::redis_errc::stopped);
    conn->start(); // final: no new connection
    run_for(io, 50ms);
    CHECK(conn->state() == redis_state::stopped);
    // Nothing but this test holds the connection once its operations are done.
    run_for(io, 50ms);
    CHECK(conn.use_count() == 1);
    // And Redis saw the connection close.
    REQUIRE(run_until(io, [&] {
        return redis.query({"CLIENT", "LIST"}).str.find("cmd=blpop") == std::string::npos;
    }));
}
