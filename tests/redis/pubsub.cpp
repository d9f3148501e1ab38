// redis_subscriber against a real redis-server: order, binary payloads, unsubscribe, the
// channel set re-subscribed after a restart, a silent server found by the health check.
#include "redis/common.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace redis_test;
using chat::detail::redis_connection;
using chat::detail::redis_subscriber;

namespace {

/// A started subscriber recording every message, and a command connection to publish with.
struct pubsub_pair {
    asio::io_context& io;
    state_log sub_log;
    std::vector<std::pair<std::string, std::string>> messages;
    std::shared_ptr<redis_subscriber> sub;
    std::shared_ptr<redis_connection> pub;

    pubsub_pair(asio::io_context& context, chat::detail::redis_options opts) : io(context) {
        sub = redis_subscriber::create(io, opts);
        sub->on_state(sub_log.handler());
        sub->on_message([this](std::string_view channel, std::string_view payload) {
            messages.emplace_back(channel, payload);
        });
        sub->start();
        pub = redis_connection::create(io, opts);
        pub->start();
        REQUIRE(run_until(io, [&] {
            return sub->state() == redis_state::connected && pub->state() == redis_state::connected;
        }));
    }
    ~pubsub_pair() {
        sub->stop();
        pub->stop();
        run_until(io, [&] {
            return sub->state() == redis_state::stopped && pub->state() == redis_state::stopped;
        });
    }

    /// Subscribes and waits for Redis' confirmation; the error the done handler got.
    std::error_code subscribe(const std::string& channel) {
        // Shared with the handler: if the wait fails, the handler may still run during the
        // clean-up, and must not write into this frame.
        auto done = std::make_shared<std::optional<std::error_code>>();
        sub->subscribe(channel, [done](std::error_code ec) { *done = ec; });
        REQUIRE(run_until(io, [&] { return done->has_value(); }));
        return **done;
    }
    /// PUBLISH, waiting for the reply: the number of subscribers Redis delivered to.
    long long publish(const std::string& channel, const std::string& payload) {
        auto o = std::make_shared<outcome>();
        pub->command({"PUBLISH", channel, payload},
                     [o](std::error_code ec, redis_reply r) { o->handler()(ec, std::move(r)); });
        REQUIRE(run_until(io, [&] { return o->done(); }));
        REQUIRE_FALSE(o->ec);
        return o->reply.integer;
    }
};

} // namespace

TEST_CASE("redis subscriber: messages arrive in publish order", "[redis][server][pubsub]") {
    test::redis_server redis;
    asio::io_context io;
    pubsub_pair p{io, options(redis.url())};
    CHECK_FALSE(p.subscribe("room:a"));
    CHECK_FALSE(p.subscribe("room:b"));

    constexpr int count = 3000;
    int replies = 0;
    long long delivered = 0;
    std::vector<std::pair<std::string, std::string>> sent;
    for (int i = 0; i < count; ++i) {
        sent.emplace_back(i % 3 ? "room:a" : "room:b", "m" + std::to_string(i));
        p.pub->command({"PUBLISH", sent.back().first, sent.back().second},
                       [&](std::error_code, redis_reply r) {
                           ++replies;
                           delivered += r.integer;
                       });
    }
    REQUIRE(run_until(
        io, [&] { return p.messages.size() == count && replies == count; }, 10s));
    CHECK(delivered == count); // one subscriber each time
    CHECK(p.messages == sent);
}

TEST_CASE("redis subscriber: binary payloads", "[redis][server][pubsub]") {
    using namespace std::string_literals;
    test::redis_server redis;
    asio::io_context io;
    pubsub_pair p{io, options(redis.url())};
    const std::string channel = "bin\0chan"s;
    CHECK_FALSE(p.subscribe(channel));
    std::string mib(1 << 20, 'x');
    mib[0] = '\0';
    mib[mib.size() / 2] = '\r';
    mib.back() = '\n';
    CHECK(p.publish(channel, "\0\r\n"s) == 1);
    CHECK(p.publish(channel, mib) == 1);
    REQUIRE(run_until(io, [&] { return p.messages.size() == 2; }));
    CHECK(p.messages[0] == std::make_pair(channel, "\0\r\n"s));
    CHECK(p.messages[1].second == mib);
}

TEST_CASE("redis subscriber: subscribe and unsubscribe", "[redis][server][pubsub]") {
    test::redis_server redis;
    asio::io_context io;
    pubsub_pair p{io, options(redis.url())};
    CHECK_FALSE(p.subscribe("a"));
    CHECK_FALSE(p.subscribe("b"));
    CHECK_FALSE(p.subscribe("a")); // already: confirmed at once
    CHECK(redis.query({"PUBSUB", "NUMSUB", "a"}).elements.at(1) == redis_reply::number(1));

    SECTION("no message of a channel is delivered once unsubscribe is called") {
        // Published before the UNSUBSCRIBE reaches Redis, so Redis still sends it: the
        // subscriber drops it, as the set no longer holds "a".
        p.pub->command({"PUBLISH", "a", "late"}, ignore());
        p.sub->unsubscribe("a");
        CHECK(p.publish("b", "still here") == 1);
        REQUIRE(run_until(io, [&] {
            return redis.query({"PUBSUB", "NUMSUB", "a"}).elements.at(1).integer == 0;
        }));
        CHECK(p.publish("a", "after") == 0);
        CHECK(p.publish("b", "end") == 1);
        REQUIRE(run_until(io, [&] { return p.messages.size() == 2; }));
        run_for(io, 50ms);
        CHECK(p.messages ==
              std::vector<std::pair<std::string, std::string>>{{"b", "still here"}, {"b", "end"}});
    }
    SECTION("unsubscribe's done handler runs once Redis confirmed") {
        auto done = std::make_shared<std::optional<std::error_code>>();
        p.sub->unsubscribe("b", [done](std::error_code ec) { *done = ec; });
        REQUIRE(run_until(io, [&] { return done->has_value(); }));
        CHECK_FALSE(**done);
        CHECK(redis.query({"PUBSUB", "NUMSUB", "b"}).elements.at(1) == redis_reply::number(0));
        SECTION("and subscribing again works") {
            CHECK_FALSE(p.subscribe("b"));
            CHECK(p.publish("b", "back") == 1);
            REQUIRE(run_until(io, [&] { return p.messages.size() == 1; }));
        }
    }
    SECTION("unsubscribing the last channel leaves a working connection") {
        p.sub->unsubscribe("a");
        auto done = std::make_shared<std::optional<std::error_code>>();
        p.sub->unsubscribe("b", [done](std::error_code ec) { *done = ec; });
        REQUIRE(run_until(io, [&] { return done->has_value(); }));
        CHECK_FALSE(p.subscribe("c"));
        CHECK(p.publish("c", "x") == 1);
        REQUIRE(run_until(io, [&] { return p.messages.size() == 1; }));
    }
}

TEST_CASE("redis subscriber: after a Redis restart the channel set is subscribed again",
          "[redis][server][pubsub]") {
    test::redis_server redis;
    asio::io_context io;
    pubsub_pair p{io, options(redis.url())};
    CHECK_FALSE(p.subscribe("x"));
    CHECK_FALSE(p.subscribe("y"));
    p.sub->unsubscribe("y");
    CHECK(p.publish("x", "before") == 1);
    REQUIRE(run_until(io, [&] { return p.messages.size() == 1; }));

    redis.kill();
    REQUIRE(run_until(io, [&] { return p.sub_log.count(redis_state::disconnected) > 0; }));
    // While down: the channel joins the set; its handler says it is not live yet.
    auto while_down = std::make_shared<std::optional<std::error_code>>();
    p.sub->subscribe("z", [while_down](std::error_code ec) { *while_down = ec; });
    REQUIRE(run_until(io, [&] { return while_down->has_value(); }));
    CHECK(**while_down == chat::redis_errc::unavailable);

    redis.restart();
    // `connected` comes only once every channel of the set is confirmed again.
    REQUIRE(run_until(io, [&] { return p.sub_log.count(redis_state::connected) == 2; }));
    CHECK(redis.query({"PUBSUB", "NUMSUB", "x", "y", "z"}).elements ==
          std::vector<redis_reply>{redis_reply::string("x"), redis_reply::number(1),
                                   redis_reply::string("y"), redis_reply::number(0),
                                   redis_reply::string("z"), redis_reply::number(1)});
    REQUIRE(run_until(io, [&] { return p.pub->state() == redis_state::connected; }));
    CHECK(p.publish("x", "after") == 1);
    CHECK(p.publish("z", "new") == 1);
    REQUIRE(run_until(io, [&] { return p.messages.size() == 3; }));
    CHECK(p.messages[1] == std::make_pair(std::string{"x"}, std::string{"after"}));
    CHECK(p.messages[2] == std::make_pair(std::string{"z"}, std::string{"new"}));
    const auto& down = p.sub_log.events.at(p.sub_log.events.size() - 3);
    CHECK(down.state == redis_state::disconnected);
    CHECK(down.error);
}

TEST_CASE("redis subscriber: a frozen server is found by the health check",
          "[redis][server][pubsub]") {
    test::redis_server redis;
    asio::io_context io;
    auto opts = options(redis.url());
    opts.health_check_interval = 100ms;
    opts.command_timeout = 300ms;
    pubsub_pair p{io, opts};
    CHECK_FALSE(p.subscribe("quiet"));
    // Idle but alive: PINGs are answered, nothing is reported.
    run_for(io, 400ms);
    CHECK(p.sub_log.count(redis_state::disconnected) == 0);

    redis.freeze();
    const auto frozen_at = std::chrono::steady_clock::now();
    REQUIRE(run_until(
        io, [&] { return p.sub_log.count(redis_state::disconnected) > 0; }, 3s));
    CHECK(std::chrono::steady_clock::now() - frozen_at < 1s);
    const auto down = std::find_if(p.sub_log.events.begin(), p.sub_log.events.end(),
                                   [](auto& e) { return e.state == redis_state::disconnected; });
    CHECK(down->error == chat::redis_errc::timeout);

    redis.thaw();
    REQUIRE(run_until(
        io, [&] { return p.sub_log.count(redis_state::connected) >= 2; }, 5s));
    // The publishing connection went through the same (its PINGs went unanswered too).
    REQUIRE(run_until(
        io, [&] { return p.pub->state() == redis_state::connected; }, 5s));
    CHECK(p.publish("quiet", "awake") == 1);
}
