// chat::lobby on chat::redis_bus under concurrency: two servers over TCP, each run by two
// threads with its own lobby and bus, one redis-server; once every member has joined, the
// members on both send at once while the application reads figures on a thread of its own.
// Every member hears every message once, in the one order. Meant for ThreadSanitizer too.
#include "redis/common.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/chat/lobby.hpp>
#include <wschat/chat/redis_bus.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("redis bus: two two-thread servers, members on both sending at once",
          "[redis][server][bus][threads]") {
    constexpr int nodes = 2;
    constexpr int members = 6; // three on each node
    constexpr int per_member = 30;
    constexpr std::size_t total = members * per_member;
    test::redis_server redis;
    chat::redis_bus_options bus_options;
    bus_options.redis = redis_test::options(redis.url());
    std::array<std::unique_ptr<test::running_server>, nodes> servers;
    std::array<std::shared_ptr<chat::redis_bus>, nodes> buses;
    std::array<std::unique_ptr<chat::lobby<>>, nodes> lobbies;
    for (int i = 0; i < nodes; ++i) {
        servers[i] = std::make_unique<test::running_server>(test::loopback_options(), 2);
        buses[i] = chat::redis_bus::create(servers[i]->io, bus_options);
        lobbies[i] =
            std::make_unique<chat::lobby<>>(chat::lobby_options{}, chat::json_policy{}, buses[i]);
        lobbies[i]->attach(servers[i]->server);
        servers[i]->start();
    }
    REQUIRE(test::eventually(
        [&] { return buses[0]->stats().connected == 1 && buses[1]->stats().connected == 1; }));

    using heard = std::vector<std::pair<std::uint64_t, std::string>>;
    std::array<heard, members> got;
    std::array<std::size_t, members> acks{};
    std::array<std::string, members> problems;
    std::atomic<int> running{members};
    std::atomic<int> joined{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < members; ++i) {
        threads.emplace_back([&, i] {
            const auto me = static_cast<std::size_t>(i);
            try {
                test::ws_client client{servers[me % nodes]->port(),
                                       "/rooms/r?name=m" + std::to_string(i)};
                // Everyone in before anyone speaks: a message before a member's `joined` is
                // history to it, not something it must hear.
                for (;;) {
                    const auto text = client.read_text(10s);
                    if (!text)
                        throw std::runtime_error{"no joined within 10 s"};
                    if (json::parse(*text).at("type") == "joined")
                        break;
                }
                ++joined;
                while (joined < members)
                    std::this_thread::sleep_for(1ms);
                for (int n = 0; n < per_member; ++n)
                    client.send_text(json{
                        {"type", "message"},
                        {"room", "r"},
                        {"text", "m" + std::to_string(i) + "#" + std::to_string(n)},
                        {"id", std::to_string(
                                   n)}}.dump());
                while ((got[me].size() < total || acks[me] < per_member) && problems[me].empty()) {
                    const auto text = client.read_text(10s);
                    if (!text) {
                        problems[me] = "nothing within 10 s";
                        break;
                    }
                    const json e = json::parse(*text);
                    if (e.at("type") == "message")
                        got[me].emplace_back(e.at("seq").get<std::uint64_t>(),
                                             e.at("text").get<std::string>());
                    else if (e.at("type") == "ack")
                        ++acks[me];
                    else if (e.at("type") == "error")
                        problems[me] = *text;
                }
                client.send_close(1000);
            } catch (const std::exception& e) {
                problems[me] = e.what();
            }
            --running;
        });
    }
    std::thread application{[&] {
        while (running > 0) {
            for (const auto& lobby : lobbies) {
                CHECK(lobby->online("r") <= members);
                (void)lobby->rooms_stats();
            }
            std::this_thread::sleep_for(500us);
        }
    }};
    for (auto& t : threads)
        t.join();
    application.join();

    for (std::size_t i = 0; i < members; ++i) {
        INFO("member " << i);
        CHECK(problems[i] == "");
        CHECK(acks[i] == per_member);
        REQUIRE(got[i].size() == total);
        for (std::size_t k = 0; k < total; ++k)
            CHECK(got[i][k].first == k + 1);
        CHECK(got[i] == got[0]);
    }
    for (auto& bus : buses) {
        CHECK(bus->stats().duplicates == 0);
        bus->stop();
    }
}
