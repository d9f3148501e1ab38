// chat::lobby_client against chat::lobby on a real server: chatting, a connection cut while
// the other member talks (resumed: every missed message once, in order, then the live ones),
// messages said while away (delivered once), and a server restarted (not resumed: told so,
// rooms joined afresh). The reconnecting client runs on a manual clock, so the test decides
// when it comes back.
#include "support/client_loop.hpp"
#include "support/running_server.hpp"

#include <wschat/chat/lobby.hpp>
#include <wschat/chat/lobby_client.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A lobby on a server on its own thread, which can cut the connections opened with
/// `?who=NAME`.
struct lobby_server {
    explicit lobby_server(std::uint16_t port = 0) : s{options(port)} {
        lobby.attach(s.server);
        s.server.on_open([this](const auto& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            opened.push_back(conn);
        });
        s.start();
    }
    static ws::server_options options(std::uint16_t port) {
        ws::server_options opts = test::loopback_options();
        opts.port = port;
        return opts;
    }
    /// Closes (1001) every open connection of `who`, as a network cut followed by the
    /// server noticing would.
    void cut(const std::string& who) {
        std::lock_guard<std::mutex> lock{mutex};
        for (const auto& conn : opened)
            if (conn->is_open() && conn->request().query_param("who") == who)
                conn->close(ws::close_code::going_away, "cut");
    }
    chat::lobby<> lobby;
    test::running_server s;
    std::mutex mutex;
    std::vector<ws::server<>::connection_ptr> opened;
};

/// A lobby client and what it heard.
struct member {
    member(asio::io_context& io, std::uint16_t port, const std::string& who,
           std::shared_ptr<ws::manual_clock> clock = nullptr) {
        chat::lobby_client_options opts;
        opts.connection.url =
            "ws://127.0.0.1:" + std::to_string(port) + "/?who=" + who + "&name=" + who;
        opts.connection.clock = std::move(clock);
        opts.connection.random = [] { return 0.0; }; // come back as soon as the clock allows
        opts.rooms = {"general"};
        client = std::make_unique<chat::lobby_client<>>(io, opts);
        client->on_message = [this](const chat::lobby_message& m) {
            messages.push_back(m.from + ":" + m.text);
        };
        client->on_joined = [this](const std::string& room) { joined.push_back(room); };
        client->on_resumed = [this](const std::string& room, std::size_t missed) {
            resumed.push_back(room + ":" + std::to_string(missed));
        };
        client->on_not_resumed = [this](const std::string& room, const std::string& reason) {
            not_resumed.push_back(room + ":" + reason);
        };
        client->on_ack = [this](const std::string&, const std::string&, std::uint64_t) { ++acks; };
        client->connection().on_open([this](const ws::client_open&) { ++opens; });
        client->connect();
    }
    std::unique_ptr<chat::lobby_client<>> client;
    std::vector<std::string> messages, joined, resumed, not_resumed;
    int acks = 0;
    int opens = 0;
};

} // namespace

TEST_CASE("lobby_client: resume after a cut, and after a server restart",
          "[integration][client][lobby]") {
    auto server = std::make_unique<lobby_server>();
    const std::uint16_t port = server->s.port();
    asio::io_context io;
    auto clock = std::make_shared<ws::manual_clock>();
    member ann{io, port, "ann"};
    member bob{io, port, "bob", clock};
    REQUIRE(test::run_until(io, [&] { return ann.joined.size() == 1 && bob.joined.size() == 1; }));

    ann.client->say("general", "hello");
    REQUIRE(test::run_until(io, [&] { return bob.messages.size() == 1 && ann.acks == 1; }));
    CHECK(bob.messages[0] == "ann:hello");

    SECTION("a cut connection is resumed: what was missed arrives once, in order") {
        server->cut("bob");
        REQUIRE(test::run_until(io, [&] { return !bob.client->connection().is_open(); }));
        for (int i = 1; i <= 3; ++i)
            ann.client->say("general", "while away " + std::to_string(i));
        REQUIRE(test::run_until(io, [&] { return ann.acks == 4; }));
        CHECK(bob.client->say("general", "said while away"));
        CHECK(bob.client->unacknowledged() == 1);
        clock->advance(1s); // bob comes back
        REQUIRE(test::run_until(io, [&] { return bob.resumed.size() == 1 && bob.acks == 1; }));
        CHECK(bob.resumed[0] == "general:3");
        CHECK(bob.not_resumed.empty());
        ann.client->say("general", "live again");
        REQUIRE(test::run_until(io, [&] { return bob.messages.size() == 6; }));
        test::run_for(io, 100ms); // nothing twice
        CHECK(bob.messages == std::vector<std::string>{"ann:hello", "ann:while away 1",
                                                       "ann:while away 2", "ann:while away 3",
                                                       "bob:said while away", "ann:live again"});
        CHECK(bob.client->name() == "bob"); // the same member, not "bob (2)"
        CHECK(bob.client->unacknowledged() == 0);
        // Ann saw bob's message once, and no leave or join of his.
        REQUIRE(test::run_until(io, [&] { return ann.messages.size() == 6; }));
        CHECK(std::count(ann.messages.begin(), ann.messages.end(), "bob:said while away") == 1);
    }
    SECTION("a restarted server does not know the member: not resumed, rooms joined afresh") {
        server->s.server.stop(); // its members get 1001, then the lobby is gone with it
        REQUIRE(test::run_until(io, [&] {
            return !bob.client->connection().is_open() && !ann.client->connection().is_open();
        }));
        server.reset();
        server = std::make_unique<lobby_server>(port);
        clock->advance(1s);
        REQUIRE(test::run_until(
            io, [&] { return bob.not_resumed.size() == 1 && bob.joined.size() == 2; }));
        CHECK(bob.not_resumed[0] == "general:bad_token");
        CHECK(bob.opens == 2);
        // Ann reconnects on the real clock by herself; once both are back they talk again.
        REQUIRE(test::run_until(
            io, [&] { return ann.joined.size() == 2 || ann.not_resumed.size() == 1; }, 15s));
        REQUIRE(test::run_until(io, [&] { return ann.joined.size() == 2; }));
        ann.client->say("general", "after the restart");
        REQUIRE(test::run_until(io, [&] { return bob.messages.size() == 2; }));
        CHECK(bob.messages[1] == "ann:after the restart");
    }
}
