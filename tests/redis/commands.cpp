// redis_connection against a real redis-server: commands, pipelining order, binary payloads,
// error replies, Lua by EVALSHA with the NOSCRIPT fallback, Unix socket, AUTH and SELECT.
#include "redis/common.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace redis_test;
using chat::detail::redis_connection;
using chat::detail::redis_script;

namespace {

/// A started connection to `url` that has reported `connected`.
struct connected_client {
    asio::io_context& io;
    state_log log;
    std::shared_ptr<redis_connection> conn;

    connected_client(asio::io_context& context, const std::string& url,
                     chat::detail::redis_options opts = {})
        : io(context) {
        if (opts.endpoint.host.empty() && opts.endpoint.path.empty())
            opts = options(url);
        conn = redis_connection::create(io, opts);
        conn->on_state(log.handler());
        conn->start();
        REQUIRE(run_until(io, [&] { return conn->state() == redis_state::connected; }));
    }
    // Stopped and run down while the test's outcomes, declared before it, still exist.
    ~connected_client() {
        conn->stop();
        run_until(
            io, [&] { return log.last_is(redis_state::stopped); }, 2s);
    }
};

} // namespace

TEST_CASE("redis connection: commands and their replies", "[redis][server]") {
    test::redis_server redis;
    outcome set, get, missing, incr, list;
    asio::io_context io;
    connected_client c{io, redis.url()};

    c.conn->command({"SET", "greeting", "hello"}, set.handler());
    c.conn->command({"GET", "greeting"}, get.handler());
    c.conn->command({"GET", "nothing-here"}, missing.handler());
    c.conn->command(std::vector<std::string>{"INCRBY", "n", "41"}, incr.handler());
    c.conn->command({"RPUSH", "l", "a", "b"}, ignore());
    REQUIRE(run_until(io, [&] { return incr.done(); }));
    c.conn->command({"LRANGE", "l", "0", "-1"}, list.handler());
    REQUIRE(run_until(io, [&] { return list.done(); }));

    CHECK(set.calls == 1);
    CHECK_FALSE(set.ec);
    CHECK(set.reply == redis_reply::status("OK"));
    CHECK(get.reply == redis_reply::string("hello"));
    CHECK(missing.reply.is_nil());
    CHECK(incr.reply == redis_reply::number(41));
    REQUIRE(list.reply.is_array());
    CHECK(list.reply.elements ==
          std::vector<redis_reply>{redis_reply::string("a"), redis_reply::string("b")});
    CHECK(c.log.count(redis_state::connected) == 1);
    CHECK(c.log.count(redis_state::disconnected) == 0);
}

TEST_CASE("redis connection: pipelined commands are answered in order", "[redis][server]") {
    test::redis_server redis;
    std::vector<long long> seen;
    int errors = 0;
    asio::io_context io;
    connected_client c{io, redis.url()};

    // All issued before the first reply can arrive: they share writes, and Redis runs them
    // in the order sent, so INCR returns 1, 2, 3, ... to handlers called in issue order.
    constexpr int count = 5000;
    for (int i = 0; i < count; ++i)
        c.conn->command({"INCR", "counter"}, [&](std::error_code ec, redis_reply r) {
            errors += ec ? 1 : 0;
            seen.push_back(r.integer);
        });
    REQUIRE(run_until(
        io, [&] { return seen.size() == count; }, 10s));
    CHECK(errors == 0);
    bool in_order = true;
    for (int i = 0; i < count; ++i)
        in_order = in_order && seen[static_cast<std::size_t>(i)] == i + 1;
    CHECK(in_order);
    CHECK(c.conn->pending() == 0);
}

TEST_CASE("redis connection: binary-safe values (NUL bytes, 1 MiB)", "[redis][server]") {
    using namespace std::string_literals;
    test::redis_server redis;
    outcome small, big, length;
    asio::io_context io;
    connected_client c{io, redis.url()};

    const std::string nul = "\0a\r\n\0"s;
    std::string mib(1 << 20, '\0');
    for (std::size_t i = 0; i < mib.size(); ++i)
        mib[i] = static_cast<char>((i * 131) % 256);
    c.conn->command({"SET", "nul", nul}, ignore());
    c.conn->command({"GET", "nul"}, small.handler());
    c.conn->command({"SET", std::string{"k\0ey"s}, mib}, ignore());
    c.conn->command({"STRLEN", std::string{"k\0ey"s}}, length.handler());
    c.conn->command({"GET", std::string{"k\0ey"s}}, big.handler());
    REQUIRE(run_until(
        io, [&] { return big.done(); }, 10s));
    CHECK(small.reply == redis_reply::string(nul));
    CHECK(length.reply == redis_reply::number(1 << 20));
    REQUIRE(big.reply.is_string());
    CHECK(big.reply.str == mib);
}

TEST_CASE("redis connection: an error reply fails that command only", "[redis][server]") {
    test::redis_server redis;
    outcome wrong_type, unknown, after;
    asio::io_context io;
    connected_client c{io, redis.url()};

    c.conn->command({"SET", "s", "x"}, ignore());
    c.conn->command({"LPUSH", "s", "y"}, wrong_type.handler());
    c.conn->command({"NO-SUCH-COMMAND"}, unknown.handler());
    c.conn->command({"GET", "s"}, after.handler());
    REQUIRE(run_until(io, [&] { return after.done(); }));
    CHECK(wrong_type.ec == chat::redis_errc::reply_error);
    CHECK(wrong_type.reply.is_error_code("WRONGTYPE"));
    CHECK(unknown.ec == chat::redis_errc::reply_error);
    CHECK(unknown.reply.is_error_code("ERR"));
    CHECK_FALSE(after.ec);
    CHECK(after.reply == redis_reply::string("x"));
    CHECK(c.log.count(redis_state::disconnected) == 0);

    SECTION("commands that would break reply matching are refused before sending") {
        outcome sub, empty;
        c.conn->command({"subscribe", "x"}, sub.handler());
        c.conn->command(std::vector<std::string>{}, empty.handler());
        CHECK_FALSE(sub.done()); // never inside the call
        REQUIRE(run_until(io, [&] { return sub.done() && empty.done(); }));
        CHECK(sub.ec == chat::redis_errc::invalid_command);
        CHECK(empty.ec == chat::redis_errc::invalid_command);
    }
}

TEST_CASE("redis connection: Lua scripts by EVALSHA, EVAL once on NOSCRIPT", "[redis][server]") {
    test::redis_server redis;
    asio::io_context io;
    connected_client c{io, redis.url()};
    const redis_script script{"redis.call('SET', KEYS[1], ARGV[1]) "
                              "return redis.call('INCR', KEYS[2])"};
    CHECK(script.sha1().size() == 40);

    // A fresh server has no script cached: the first call falls back to EVAL.
    outcome first;
    c.conn->run_script(script, {"k", "n"}, {"v1"}, first.handler());
    REQUIRE(run_until(io, [&] { return first.done(); }));
    CHECK(first.calls == 1);
    CHECK_FALSE(first.ec);
    CHECK(first.reply == redis_reply::number(1));
    // One EVALSHA refused, then one EVAL: Redis counts each.
    const std::string stats = redis.query({"INFO", "commandstats"}).str;
    CHECK(stats.find("cmdstat_evalsha:calls=1,") != std::string::npos);
    CHECK(stats.find("failed_calls=1") != std::string::npos);
    CHECK(stats.find("cmdstat_eval:calls=1,") != std::string::npos);
    // The SHA-1 computed here is the one Redis gives the script.
    const auto exists = redis.query({"SCRIPT", "EXISTS", script.sha1()});
    REQUIRE(exists.is_array());
    CHECK(exists.elements.at(0) == redis_reply::number(1));

    outcome second;
    c.conn->run_script(script, {"k", "n"}, {"v2"}, second.handler());
    REQUIRE(run_until(io, [&] { return second.done(); }));
    CHECK(second.reply == redis_reply::number(2));

    SECTION("after SCRIPT FLUSH the call still runs, exactly once") {
        CHECK(redis.query({"SCRIPT", "FLUSH"}) == redis_reply::status("OK"));
        outcome third;
        c.conn->run_script(script, {"k", "n"}, {"v3"}, third.handler());
        REQUIRE(run_until(io, [&] { return third.done(); }));
        CHECK(third.calls == 1);
        CHECK(third.reply == redis_reply::number(3));
        CHECK(redis.query({"GET", "k"}) == redis_reply::string("v3"));
    }
    SECTION("a script error is the caller's, with Redis' message") {
        outcome bad;
        c.conn->run_script(redis_script{"return redis.call('NOPE')"}, {}, {}, bad.handler());
        REQUIRE(run_until(io, [&] { return bad.done(); }));
        CHECK(bad.calls == 1);
        CHECK(bad.ec == chat::redis_errc::reply_error);
        CHECK(bad.reply.is_error());
    }
    SECTION("after a Redis restart scripts are loaded again before queued calls") {
        redis.restart();
        REQUIRE(run_until(io, [&] { return c.log.count(redis_state::connected) == 2; }));
        CHECK(redis.query({"SCRIPT", "EXISTS", script.sha1()}).elements.at(0) ==
              redis_reply::number(1));
        std::vector<long long> order;
        for (int i = 0; i < 50; ++i)
            c.conn->run_script(script, {"k", "n"}, {"v"},
                               [&](std::error_code, redis_reply r) { order.push_back(r.integer); });
        REQUIRE(run_until(io, [&] { return order.size() == 50; }));
        for (std::size_t i = 0; i < order.size(); ++i)
            CHECK(order[i] == static_cast<long long>(i + 1));
    }
}

TEST_CASE("redis connection: over a Unix socket", "[redis][server]") {
    test::redis_server_options o;
    o.unix_socket = true;
    test::redis_server redis{o};
    outcome set, get;
    asio::io_context io;
    connected_client c{io, redis.unix_url() + "?db=4"};
    c.conn->command({"SET", "where", "unix"}, set.handler());
    c.conn->command({"GET", "where"}, get.handler());
    REQUIRE(run_until(io, [&] { return get.done(); }));
    CHECK(get.reply == redis_reply::string("unix"));
    // SELECT 4 was sent from the URL: the key is in database 4, not 0.
    CHECK(redis.query({"EXISTS", "where"}) == redis_reply::number(0));
}

TEST_CASE("redis connection: SELECT from the URL", "[redis][server]") {
    test::redis_server redis;
    outcome set;
    asio::io_context io;
    connected_client c{io, redis.url(5)};
    c.conn->command({"SET", "in5", "yes"}, set.handler());
    REQUIRE(run_until(io, [&] { return set.done(); }));
    CHECK(redis.query({"EXISTS", "in5"}) == redis_reply::number(0));
    CHECK(redis.query({"DBSIZE"}) == redis_reply::number(0));
}

TEST_CASE("redis connection: AUTH with a password", "[redis][server]") {
    test::redis_server_options o;
    o.password = "pa ss:w@rd";
    test::redis_server redis{o};
    asio::io_context io;

    SECTION("the right password") {
        outcome ping;
        auto opts = options("redis://127.0.0.1:" + std::to_string(redis.port()));
        opts.endpoint.password = o.password;
        connected_client c{io, "", opts};
        c.conn->command({"PING"}, ping.handler());
        REQUIRE(run_until(io, [&] { return ping.done(); }));
        CHECK(ping.reply == redis_reply::status("PONG"));
    }
    SECTION("a percent-encoded password in the URL") {
        connected_client c{io,
                           "redis://:pa%20ss%3Aw%40rd@127.0.0.1:" + std::to_string(redis.port())};
        CHECK(c.log.count(redis_state::disconnected) == 0);
    }
    SECTION("a wrong password: handshake_failed with Redis' words, commands never sent") {
        state_log log;
        outcome queued;
        auto conn = redis_connection::create(
            io, options("redis://:wrong@127.0.0.1:" + std::to_string(redis.port())));
        conn->on_state(log.handler());
        conn->start();
        conn->command({"SET", "x", "1"}, queued.handler());
        REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) > 0; }));
        REQUIRE(run_until(io, [&] { return queued.done(); }));
        const auto& down = log.events.at(1);
        CHECK(down.error == chat::redis_errc::handshake_failed);
        CHECK(down.detail.find("WRONGPASS") != std::string::npos);
        CHECK(queued.ec == chat::redis_errc::unavailable);
        conn->stop();
        REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    }
    SECTION("no password: the PING is refused (NOAUTH)") {
        state_log log;
        auto conn = redis_connection::create(
            io, options("redis://127.0.0.1:" + std::to_string(redis.port())));
        conn->on_state(log.handler());
        conn->start();
        REQUIRE(run_until(io, [&] { return log.count(redis_state::disconnected) > 0; }));
        CHECK(log.events.at(1).detail.find("NOAUTH") != std::string::npos);
        conn->stop();
        REQUIRE(run_until(io, [&] { return log.last_is(redis_state::stopped); }));
    }
    CHECK(redis.query({"EXISTS", "x"}) == redis_reply::number(0));
}
