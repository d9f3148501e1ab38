// Rooms over real loopback sockets: welcome, relay, presence counts, policies.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

using test::ws_client;

namespace {

/// Reads `count` text frames from `client`, failing the test on a timeout.
std::vector<std::string> read_texts(ws_client& client, std::size_t count) {
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < count; ++i) {
        auto text = client.read_text();
        REQUIRE(text);
        texts.push_back(*text);
    }
    return texts;
}

/// Joins a client and checks it gets the welcome line and then the count `online`.
std::unique_ptr<ws_client> join(std::uint16_t port, std::size_t online) {
    auto client = std::make_unique<ws_client>(port);
    CHECK(client->read_text() == "Welcome to the chat room!");
    CHECK(client->read_text() == "Online users: " + std::to_string(online));
    return client;
}

} // namespace

TEST_CASE("three clients chat through a text room", "[room]") {
    test::running_room<> fixture;
    auto& room = fixture.room;
    auto& s = fixture.s;

    auto a = join(s.port(), 1);
    auto b = join(s.port(), 2);
    CHECK(a->read_text() == "Online users: 2");
    auto c = join(s.port(), 3);
    CHECK(a->read_text() == "Online users: 3");
    CHECK(b->read_text() == "Online users: 3");
    CHECK(room.size() == 3);
    CHECK(s.server.connection_count() == 3);

    SECTION("every message reaches every member, sender included, exactly once") {
        REQUIRE(a->send_text("from a"));
        REQUIRE(b->send_text("from b: 你好"));
        REQUIRE(c->send_text("from c: 😀"));
        const std::multiset<std::string> expected{"from a", "from b: 你好", "from c: 😀"};
        for (ws_client* client : {a.get(), b.get(), c.get()}) {
            const auto texts = read_texts(*client, 3);
            CHECK(std::multiset<std::string>(texts.begin(), texts.end()) == expected);
            CHECK_FALSE(client->read_text(100ms)); // and nothing more
        }
    }

    SECTION("the count falls as members leave, cleanly or not") {
        REQUIRE(c->send_close(1000, "bye"));
        auto echo = c->read_frame();
        REQUIRE(echo);
        CHECK(echo->opcode == test::op_close);
        CHECK(echo->close_code() == 1000);
        CHECK(c->socket().wait_for_eof(2s)); // the server closes TCP after the handshake
        CHECK(a->read_text() == "Online users: 2");
        CHECK(b->read_text() == "Online users: 2");

        b->socket().reset(); // vanishes without a Close frame
        CHECK(a->read_text() == "Online users: 1");
        CHECK(test::eventually([&] { return room.size() == 1; }));
    }
}

TEST_CASE("a room keeps each sender's order", "[room]") {
    test::running_room<> fixture;
    auto a = join(fixture.port(), 1);
    auto b = join(fixture.port(), 2);
    CHECK(a->read_text() == "Online users: 2");

    constexpr int per_sender = 200;
    for (int i = 0; i < per_sender; ++i) {
        REQUIRE(a->send_text("a" + std::to_string(i)));
        REQUIRE(b->send_text("b" + std::to_string(i)));
    }
    for (ws_client* reader : {a.get(), b.get()}) {
        std::map<char, int> next{{'a', 0}, {'b', 0}};
        for (const std::string& text : read_texts(*reader, 2 * per_sender)) {
            CHECK(std::stoi(text.substr(1)) == next[text[0]]);
            ++next[text[0]];
        }
        CHECK(next['a'] == per_sender);
        CHECK(next['b'] == per_sender);
    }
}

TEST_CASE("a room on an io_context run by four threads delivers everything once, in order",
          "[room][threads]") {
    test::running_room<> fixture{{}, test::loopback_options(), 4};
    auto& room = fixture.room;
    auto& s = fixture.s;
    constexpr std::size_t members = 6;
    constexpr int per_sender = 100;
    std::vector<std::unique_ptr<ws_client>> clients;
    for (std::size_t i = 0; i < members; ++i)
        clients.push_back(std::make_unique<ws_client>(s.port()));
    REQUIRE(test::eventually([&] { return room.size() == members; }));

    // Every member talks and listens at once, each on its own thread.
    std::vector<std::thread> threads;
    std::vector<int> heard(members, 0);
    for (std::size_t i = 0; i < members; ++i) {
        threads.emplace_back([&, i] {
            ws_client& me = *clients[i];
            std::thread talker{[&] {
                for (int n = 0; n < per_sender; ++n)
                    me.send_text(std::to_string(i) + "#" + std::to_string(n));
            }};
            std::vector<int> next(members, 0);
            bool in_order = true;
            while (heard[i] < int(members) * per_sender) {
                auto text = me.read_text(5s);
                if (!text)
                    break;
                const auto colon = text->find('#');
                if (colon == std::string::npos)
                    continue; // welcome and presence lines
                const auto from = std::stoul(text->substr(0, colon));
                in_order = in_order && std::stoi(text->substr(colon + 1)) == next[from]++;
                ++heard[i];
            }
            talker.join();
            if (!in_order)
                heard[i] = -1;
        });
    }
    for (auto& t : threads)
        t.join();
    for (std::size_t i = 0; i < members; ++i)
        CHECK(heard[i] == int(members) * per_sender);
    for (auto& client : clients) // nothing twice (a late, coalesced count may still come)
        while (auto late = client->read_text(100ms))
            CHECK(late->find('#') == std::string::npos);
}

TEST_CASE("a text room refuses binary messages with 1003", "[room]") {
    test::running_room<> fixture;
    auto a = join(fixture.port(), 1);
    REQUIRE(a->send(test::op_binary, "\x01\x02"));
    auto close = a->read_frame();
    REQUIRE(close);
    CHECK(close->opcode == test::op_close);
    CHECK(close->close_code() == 1003);
}

TEST_CASE("a binary room relays binary and refuses text", "[room]") {
    test::running_room<chat::binary_policy> fixture;
    auto& room = fixture.room;
    ws_client a{fixture.port()};
    ws_client b{fixture.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));

    const std::string state{"\x00\xff\x10game-state", 13};
    REQUIRE(a.send(test::op_binary, state));
    for (ws_client* client : {&a, &b}) {
        auto f = client->read_frame(); // no welcome or presence frames come first
        REQUIRE(f);
        CHECK(f->opcode == test::op_binary);
        CHECK(f->payload == state);
    }
    REQUIRE(b.send_text("not binary"));
    auto close = b.read_frame();
    REQUIRE(close);
    CHECK(close->close_code() == 1003);
    REQUIRE(b.send_close(1003));
    CHECK(test::eventually([&] { return room.size() == 1; }));
}

namespace {
/// A text policy that counts how often it encodes: a broadcast must encode once.
struct counting_policy : chat::text_policy {
    std::shared_ptr<std::atomic<int>> encodes = std::make_shared<std::atomic<int>>(0);
    ws::shared_frame encode(message_type text) const {
        ++*encodes;
        return chat::text_policy::encode(text);
    }
};
} // namespace

TEST_CASE("a broadcast is encoded once for all members", "[room]") {
    counting_policy policy;
    auto encodes = policy.encodes;
    test::running_room<counting_policy> fixture{policy};
    std::vector<std::unique_ptr<ws_client>> members;
    for (std::size_t i = 1; i <= 5; ++i) {
        members.push_back(std::make_unique<ws_client>(fixture.port()));
        read_texts(*members.back(), 2); // welcome + count
    }
    for (std::size_t i = 0; i + 1 < members.size(); ++i)
        read_texts(*members[i], members.size() - 1 - i); // later counts
    REQUIRE(members[0]->send_text("once"));
    for (auto& member : members)
        CHECK(member->read_text() == "once");
    CHECK(encodes->load() == 1);
}

TEST_CASE("the room can be driven by the application's own handlers", "[room]") {
    // Declared before the server: its handlers refer to them until the server has stopped.
    chat::room<> room;
    test::running_server s;
    // Only clients asking for /chat join; others are echoed to directly.
    s.server.on_open([&](const auto& conn) {
        if (conn->request().path() == "/chat")
            room.join(conn);
    });
    s.server.on_message([&](const auto& conn, const ws::message& msg) {
        if (conn->request().path() == "/chat")
            room.receive(conn, msg);
        else
            conn->send_text("echo: " + std::string{msg.data});
    });
    s.server.on_close([&](const auto& conn, const ws::close_info&) { room.leave(conn); });
    s.start();

    ws_client member{s.port(), "/chat"};
    CHECK(member.read_text() == "Welcome to the chat room!");
    ws_client outsider{s.port(), "/other"};
    REQUIRE(outsider.send_text("hi"));
    CHECK(outsider.read_text() == "echo: hi");
    CHECK(room.size() == 1);
    room.broadcast(std::string_view{"from the application"});
    CHECK(member.read_text() == "Online users: 1");
    CHECK(member.read_text() == "from the application");
    CHECK_FALSE(outsider.read_text(100ms));
}
