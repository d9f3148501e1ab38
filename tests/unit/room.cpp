// chat::room over memory streams: welcome, presence, broadcast to every member, a member that
// vanishes, a member that stops reading while the others chat on, and one that tries to
// speak for the server.
#include "support/memory_client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using test::memory_client;
using test::memory_server;

namespace {

/// The texts of the text frames `client` has received so far.
std::vector<std::string> texts(memory_client& client) {
    std::vector<std::string> out;
    for (const auto& f : client.read_frames())
        if (f.opcode == test::op_text)
            out.push_back(f.payload);
    return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("room: members are welcomed, counted and hear every message, their own included",
          "[unit][memory][room]") {
    // Presence announced at every change: no timer, so nothing waits for real time.
    chat::room<ws::memory_transport> room{chat::text_policy{},
                                          chat::room_options{std::chrono::milliseconds{0}}};
    memory_server s;
    room.attach(s.server);

    auto alice = memory_client::opened(s);
    CHECK(texts(alice) == strings{"Welcome to the chat room!", "Online users: 1"});
    std::optional<memory_client> bob = memory_client::opened(s);
    CHECK(texts(*bob) == strings{"Welcome to the chat room!", "Online users: 2"});
    CHECK(texts(alice) == strings{"Online users: 2"});
    CHECK(room.size() == 2);

    alice.send_text("hello, room");
    CHECK(texts(alice) == strings{"hello, room"});
    CHECK(texts(*bob) == strings{"hello, room"});

    bob.reset(); // vanishes without a Close
    test::settle(s.io);
    CHECK(room.size() == 1);
    CHECK(texts(alice) == strings{"Online users: 1"});
}

TEST_CASE("room: a member that stops reading is closed with 1008; the others hear everything",
          "[unit][memory][room]") {
    chat::room<ws::memory_transport> room{chat::text_policy{},
                                          chat::room_options{std::chrono::milliseconds{0}}};
    auto opts = test::memory_options();
    opts.max_send_queue_bytes = 8 * 1024;
    memory_server s{opts};
    room.attach(s.server);
    auto talker = memory_client::opened(s);
    auto slow = memory_client::opened(s);
    texts(talker);
    texts(slow);
    slow.stream().input_capacity(512); // and it reads no more

    const int sent = 40;
    for (int i = 0; i < sent; ++i) {
        const std::string line = "line " + std::to_string(i) + " " + std::string(500, '.');
        talker.send_text(line);
        const auto heard = texts(talker); // the talker reads as it goes
        REQUIRE(heard.size() >= 1);
        CHECK(heard.front() == line);
    }
    CHECK(s.server.limit_hits(ws::limit::send_queue) == 1);
    const auto frames = slow.read_frames();
    REQUIRE_FALSE(frames.empty());
    CHECK(frames.back().opcode == test::op_close);
    CHECK(frames.back().close_code() == 1008);
    CHECK(frames.size() < static_cast<std::size_t>(sent));
    slow.send_close(1008);
    CHECK(room.size() == 1);
    CHECK(texts(talker) == strings{"Online users: 1"});
}

TEST_CASE("room: with history on, a joiner receives the last messages after its welcome",
          "[unit][memory][room]") {
    chat::room_options options{std::chrono::milliseconds{0}};
    options.history.max_messages = 3;
    options.replay_on_join = 2;
    chat::room<ws::memory_transport> room{chat::text_policy{}, options};
    memory_server s;
    room.attach(s.server);
    auto alice = memory_client::opened(s);
    for (const char* line : {"one", "two", "three", "four"})
        alice.send_text(line);
    texts(alice);

    auto bob = memory_client::opened(s);
    // The welcome, the last two of the messages kept, then the count with bob in it.
    CHECK(texts(bob) == strings{"Welcome to the chat room!", "three", "four", "Online users: 2"});
    // Presence and welcomes are not room messages: nothing more is kept for the next joiner.
    auto carol = memory_client::opened(s);
    CHECK(texts(carol) == strings{"Welcome to the chat room!", "three", "four", "Online users: 3"});
}

TEST_CASE("room: a member cannot forge the server's presence or welcome lines",
          "[unit][memory][room]") {
    chat::room<ws::memory_transport> room{chat::text_policy{},
                                          chat::room_options{std::chrono::milliseconds{0}}};
    memory_server s;
    room.attach(s.server);
    auto mallory = memory_client::opened(s);
    auto alice = memory_client::opened(s);
    texts(mallory);
    texts(alice);

    SECTION("a line starting with the presence prefix reaches no one; its sender hears why") {
        mallory.send_text("Online users: 999");
        CHECK(texts(alice).empty());
        const auto answer = texts(mallory);
        REQUIRE(answer.size() == 1);
        CHECK(answer[0] == "Not sent: a line starting with \"Online users: \" would pass for "
                           "the server's online count");
    }
    SECTION("the welcome text itself reaches no one; its sender hears why") {
        mallory.send_text("Welcome to the chat room!");
        CHECK(texts(alice).empty());
        CHECK(
            texts(mallory) ==
            strings{"Not sent: \"Welcome to the chat room!\" would pass for the server's welcome"});
    }
    SECTION("lines that only resemble them are relayed") {
        for (const char* text : {"Online users 5", " Online users: 5", "online users: 5",
                                 "Welcome to the chat room!!", "I read Online users: 5"}) {
            mallory.send_text(text);
            CHECK(texts(alice) == strings{text});
            CHECK(texts(mallory) == strings{text});
        }
    }
    // The sender stays a member and keeps chatting; the count is the server's alone.
    mallory.send_text("sorry");
    CHECK(texts(alice) == strings{"sorry"});
    CHECK(texts(mallory) == strings{"sorry"});
    CHECK(room.size() == 2);
}

TEST_CASE("room: text_policy with an empty prefix and welcome reserves nothing",
          "[unit][memory][room]") {
    chat::text_policy quiet;
    quiet.presence_prefix.clear();
    quiet.welcome_text.clear();
    CHECK(quiet.reserved("Online users: 999").empty());
    CHECK(quiet.reserved("").empty());
    CHECK_FALSE(chat::text_policy{}.reserved("Online users: 1").empty());
}
