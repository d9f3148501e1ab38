// Handlers and rooms attached and detached while the io_context runs, from any thread.
// Meant to be run under ThreadSanitizer too (CI's TSan step runs this file).
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// Records every message the server hears, through a handler of its own.
struct message_log {
    explicit message_log(ws::server<>& server) {
        server.on_message([this](const auto&, const ws::message& msg) {
            std::lock_guard<std::mutex> lock{mutex};
            texts.emplace_back(msg.data);
        });
    }
    bool heard(const std::string& text) {
        return test::eventually([&] {
            std::lock_guard<std::mutex> lock{mutex};
            return std::find(texts.begin(), texts.end(), text) != texts.end();
        });
    }
    std::mutex mutex;
    std::vector<std::string> texts;
};

} // namespace

TEST_CASE("a room attached to a running server hears the connections opened after it, "
          "and detached it lets its members go",
          "[attach]") {
    test::running_server s;
    message_log log{s.server};
    s.start();
    chat::room<> room;

    test::ws_client before{s.port()}; // opened while no room is attached
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 1; }));

    room.attach(s.server);
    room.attach(s.server); // a second attach of the same server changes nothing
    test::ws_client member{s.port()};
    CHECK(member.read_text() == "Welcome to the chat room!");
    CHECK(member.read_text() == "Online users: 1");
    CHECK(room.size() == 1);

    // Not a member: the room must not relay what it says.
    REQUIRE(before.send_text("from outside"));
    REQUIRE(log.heard("from outside"));
    REQUIRE(member.send_text("from inside"));
    CHECK(member.read_text() == "from inside");

    room.detach(s.server);
    CHECK(room.size() == 0);
    REQUIRE(member.send_text("after detach"));
    REQUIRE(log.heard("after detach"));
    test::ws_client later{s.port()};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 3; }));
    CHECK(room.size() == 0);

    // Attached again, it starts from the connections that open now.
    room.attach(s.server);
    test::ws_client again{s.port()};
    CHECK(again.read_text() == "Welcome to the chat room!");
    CHECK(again.read_text() == "Online users: 1");
    // The member that stayed through the detach heard nothing of it.
    REQUIRE(member.send_text("probe"));
    REQUIRE(log.heard("probe"));
    REQUIRE(again.send_text("last"));
    CHECK(again.read_text() == "last");
    CHECK(room.size() == 1);
}

TEST_CASE("a handler group removed from inside a handler is not called again", "[attach]") {
    test::running_server s;
    std::atomic<int> calls{0};
    std::atomic<ws::handler_id> id{0};
    id = s.server.add_handlers({{},
                                [&](const auto& conn, const ws::message&) {
                                    ++calls;
                                    s.server.remove_handlers(id);
                                    conn->send_text("removed");
                                },
                                {}});
    s.server.on_message([](const auto& conn, const ws::message& msg) {
        conn->send_text("echo " + std::string{msg.data});
    });
    s.start();
    test::ws_client client{s.port()};
    REQUIRE(client.send_text("one"));
    CHECK(client.read_text() == "removed");
    CHECK(client.read_text() == "echo one");
    REQUIRE(client.send_text("two"));
    CHECK(client.read_text() == "echo two");
    CHECK(calls == 1);
    CHECK_FALSE(s.server.remove_handlers(id)); // gone already
}

TEST_CASE("handlers and rooms come and go on other threads while four io threads serve "
          "clients, and every client hears all of its echoes in order",
          "[attach][threads]") {
    test::running_server s{test::loopback_options(), 4};
    s.server.on_message([](const auto& conn, const ws::message& msg) {
        conn->send_text("echo:" + std::string{msg.data});
    });
    s.start();
    chat::room<> room;
    std::atomic<bool> done{false};
    std::atomic<int> extra_calls{0};

    std::thread rooms{[&] {
        while (!done) {
            room.attach(s.server);
            std::this_thread::yield();
            room.detach(s.server);
        }
    }};
    std::thread handlers{[&] {
        for (int round = 0; !done; ++round) {
            const ws::handler_id id =
                s.server.add_handlers({[&](const auto&) { ++extra_calls; },
                                       [&](const auto&, const ws::message&) { ++extra_calls; },
                                       {}});
            s.server.on_http([round](const ws::http_request&, ws::http_response& res) {
                res.body = "round " + std::to_string(round);
            });
            std::this_thread::yield();
            s.server.remove_handlers(id);
        }
    }};

    constexpr int clients = 8;
    constexpr int messages = 40;
    std::vector<std::thread> talkers;
    std::atomic<int> complete{0};
    for (int c = 0; c < clients; ++c)
        talkers.emplace_back([&, c] {
            test::ws_client client{s.port()};
            int next = 0;
            for (int m = 0; m < messages; ++m)
                client.send_text("c" + std::to_string(c) + "#" + std::to_string(m));
            while (next < messages) {
                const auto text = client.read_text(10s);
                if (!text)
                    return;
                if (*text == "echo:c" + std::to_string(c) + "#" + std::to_string(next))
                    ++next;
                else if (text->rfind("echo:c" + std::to_string(c) + "#", 0) == 0)
                    return; // one of ours, out of order
            }
            ++complete;
        });
    for (auto& t : talkers)
        t.join();
    done = true;
    rooms.join();
    handlers.join();

    CHECK(complete == clients);
    room.detach(s.server);
    CHECK(room.size() == 0);
    CHECK(s.stop());
}
