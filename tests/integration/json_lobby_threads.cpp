// chat::lobby under concurrency: a server run by four threads, members of three rooms sending
// numbered messages with ids at once, while the application publishes, reads figures and
// kicks from a thread of its own. Meant for ThreadSanitizer too (the tsan preset).
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/chat/lobby.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_CASE("lobby on a four-thread server: members of three rooms chat with ids while the "
          "application publishes, reads figures and kicks",
          "[lobby][threads]") {
    constexpr int members = 9;
    constexpr int rooms = 3;
    constexpr int per_member = 40;
    chat::lobby<> lobby;
    test::running_server s{test::loopback_options(), 4};
    lobby.attach(s.server);
    s.start();
    const std::uint16_t port = s.port();

    std::array<std::vector<std::uint64_t>, members> acked;
    std::array<std::string, members> problems;
    std::atomic<int> running{members};
    std::vector<std::thread> threads;
    for (int i = 0; i < members; ++i) {
        threads.emplace_back([&, i] {
            const auto me = static_cast<std::size_t>(i);
            try {
                test::ws_client client{port, "/rooms/r" + std::to_string(i % rooms) + "?name=m" +
                                                 std::to_string(i)};
                for (int n = 0; n < per_member; ++n)
                    client.send(test::op_text,
                                json{{"type", "message"},
                                     {"text", "m" + std::to_string(i) + "#" + std::to_string(n)},
                                     {"id", std::to_string(n)}}
                                    .dump());
                while (acked[me].size() < per_member && problems[me].empty()) {
                    const auto text = client.read_text(10s);
                    if (!text) {
                        problems[me] = "no ack within 10 s";
                        break;
                    }
                    const json envelope = json::parse(*text);
                    if (envelope.at("type") == "ack")
                        acked[me].push_back(envelope.at("seq").get<std::uint64_t>());
                    else if (envelope.at("type") == "error")
                        problems[me] = *text;
                }
                client.send_close(1000);
            } catch (const std::exception& e) {
                problems[me] = e.what();
            }
            --running;
        });
    }
    int published = 0;
    std::thread application{[&] {
        while (running > 0) {
            if (lobby.publish("r0", "bot", "tick"))
                ++published;
            for (const auto& room : lobby.rooms_stats())
                CHECK(room.members <= members);
            lobby.kick("r2", "nobody");
            (void)lobby.member_names("r1");
            std::this_thread::sleep_for(200us);
        }
    }};
    for (auto& t : threads)
        t.join();
    application.join();

    for (std::size_t i = 0; i < members; ++i) {
        INFO("member " << i);
        CHECK(problems[i].empty());
        CHECK(acked[i].size() == per_member);
        CHECK(std::is_sorted(acked[i].begin(), acked[i].end()));
        CHECK(std::adjacent_find(acked[i].begin(), acked[i].end()) == acked[i].end());
    }
    // Every message numbered once in its room: no number lost or given twice.
    CHECK(lobby.position("r0")->sequence ==
          std::uint64_t{members / rooms * per_member} + static_cast<std::uint64_t>(published));
    CHECK(lobby.position("r1")->sequence == std::uint64_t{members / rooms * per_member});
    CHECK(lobby.position("r2")->sequence == std::uint64_t{members / rooms * per_member});
    CHECK(lobby.totals().messages_in == std::uint64_t{members * per_member});
    CHECK(test::eventually([&] { return s.server.connection_count() == 0; }));
}
