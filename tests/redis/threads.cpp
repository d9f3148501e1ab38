// The Redis connection used from several threads while the io_context runs on two others: each
// caller's commands keep their order, every handler runs once, on the strand.
#include "redis/common.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

using namespace redis_test;
using chat::detail::redis_connection;
using chat::detail::redis_subscriber;

TEST_CASE("redis connection: commands from several threads", "[redis][server][threads]") {
    test::redis_server redis;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    auto conn = redis_connection::create(io, options(redis.url()));
    auto sub = redis_subscriber::create(io, options(redis.url()));
    std::atomic<int> messages{0};
    sub->on_message([&](std::string_view, std::string_view) { ++messages; });
    conn->start();
    sub->start();
    std::vector<std::thread> runners;
    for (int i = 0; i < 2; ++i)
        runners.emplace_back([&] { io.run(); });

    constexpr int callers = 4;
    constexpr int per_caller = 500;
    std::atomic<int> done{0};
    std::atomic<int> out_of_order{0};
    std::atomic<int> off_strand{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < callers; ++t)
        threads.emplace_back([&, t] {
            const std::string key = "counter:" + std::to_string(t);
            sub->subscribe(key);
            // Touched only on the connection's strand, one handler at a time.
            auto last = std::make_shared<long long>(0);
            for (int i = 0; i < per_caller; ++i)
                conn->command({"INCR", key}, [&, last](std::error_code ec, redis_reply r) {
                    if (!conn->get_executor().running_in_this_thread())
                        ++off_strand;
                    if (ec || r.integer != *last + 1)
                        ++out_of_order;
                    *last = r.integer;
                    ++done;
                });
        });
    for (auto& t : threads)
        t.join();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (done < callers * per_caller && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    CHECK(done == callers * per_caller);
    CHECK(out_of_order == 0);
    CHECK(off_strand == 0);
    for (int t = 0; t < callers; ++t)
        CHECK(redis.query({"GET", "counter:" + std::to_string(t)}) ==
              redis_reply::string(std::to_string(per_caller)));
    // The subscriptions made from those threads are live too.
    while (redis.query({"PUBSUB", "NUMSUB", "counter:3"}).elements.at(1).integer == 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    for (int t = 0; t < callers; ++t)
        CHECK(redis.query({"PUBLISH", "counter:" + std::to_string(t), "x"}) ==
              redis_reply::number(1));
    while (messages < callers && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    CHECK(messages == callers);

    conn->stop();
    sub->stop();
    work.reset();
    for (auto& r : runners)
        r.join();
    CHECK(conn->state() == redis_state::stopped);
    CHECK(sub->state() == redis_state::stopped);
}
