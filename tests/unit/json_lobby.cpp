// chat::lobby over memory streams: rooms by URL path and by envelope, limits answered with
// error envelopes, numbered messages with acknowledgements and duplicate ids dropped, history
// on join, resume after a reconnect (exactly the missed messages, or why not), kick and ban,
// typing and direct messages.
#include "support/memory_client.hpp"

#include <wschat/chat/lobby.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using test::memory_client;
using test::memory_server;
using json = nlohmann::json;

namespace {

using lobby_type = chat::lobby<ws::memory_transport>;

/// Options with presence announced at every change, so that nothing waits for a timer.
chat::lobby_options prompt_options() {
    chat::lobby_options options;
    options.presence_interval = std::chrono::milliseconds{0};
    return options;
}

/// The envelopes `client` has received so far.
std::vector<json> envelopes(memory_client& client) {
    std::vector<json> out;
    for (const auto& f : client.read_frames()) {
        REQUIRE(f.opcode == test::op_text);
        out.push_back(json::parse(f.payload));
    }
    return out;
}

/// The envelopes of one type among `all`.
std::vector<json> of_type(const std::vector<json>& all, const std::string& type) {
    std::vector<json> out;
    for (const json& e : all)
        if (e.at("type") == type)
            out.push_back(e);
    return out;
}

/// A client of `s` that has read its welcome (returned in `welcome`).
memory_client member(memory_server& s, const std::string& path, json* welcome = nullptr) {
    auto client = memory_client::opened(s, path);
    const auto first = envelopes(client);
    REQUIRE_FALSE(first.empty());
    CHECK(first.front().at("type") == "welcome");
    if (welcome)
        *welcome = first.front();
    return client;
}

void say(memory_client& client, const json& envelope) {
    client.send_text(envelope.dump());
}

} // namespace

TEST_CASE("lobby: a URL path joins its room; joiners get the roster, the others a delta",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);

    json hello;
    auto alice = memory_client::opened(s, "/rooms/general?name=alice");
    auto first = envelopes(alice);
    REQUIRE(first.size() >= 2);
    hello = first[0];
    CHECK(hello.at("type") == "welcome");
    CHECK(hello.at("name") == "alice");
    CHECK(hello.at("token").get<std::string>().size() == 32);
    CHECK(hello.at("id") != hello.at("token"));
    const json joined = first[1];
    CHECK(joined.at("type") == "joined");
    CHECK(joined.at("room") == "general");
    CHECK(joined.at("seq") == 0);
    CHECK(joined.at("epoch").get<std::string>().size() == 16);
    CHECK(joined.at("members") == json::array({"alice"}));

    auto bob = memory_client::opened(s, "/rooms/general?name=bob");
    const auto bobs = envelopes(bob);
    CHECK(of_type(bobs, "joined").at(0).at("members") == json::array({"alice", "bob"}));
    const auto deltas = of_type(envelopes(alice), "presence");
    REQUIRE(deltas.size() == 1);
    CHECK(deltas[0].at("joined") == json::array({"bob"}));
    CHECK(deltas[0].at("online") == 2);
    CHECK_FALSE(deltas[0].contains("members")); // never the whole roster to everyone
    CHECK(lobby.member_count("general") == 2);
    CHECK(lobby.room_count() == 1);
}

TEST_CASE("lobby: messages are numbered per room, acknowledged, and a retried id is not "
          "delivered twice",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    auto alice = member(s, "/rooms/a?name=alice");
    auto bob = member(s, "/rooms/a?name=bob");
    envelopes(alice);

    say(alice, {{"type", "message"}, {"room", "a"}, {"text", "one"}, {"id", "c1"}});
    auto got = envelopes(alice);
    const auto acks = of_type(got, "ack");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].at("id") == "c1");
    CHECK(acks[0].at("seq") == 1);
    CHECK(acks[0].at("duplicate") == false);
    const auto heard = of_type(envelopes(bob), "message");
    REQUIRE(heard.size() == 1);
    CHECK(heard[0].at("text") == "one");
    CHECK(heard[0].at("from") == "alice");
    CHECK(heard[0].at("seq") == 1);
    CHECK(heard[0].at("epoch") == lobby.position("a")->epoch);

    // The retry of a message whose ack was lost: acknowledged again, not delivered again.
    say(alice, {{"type", "message"}, {"room", "a"}, {"text", "one"}, {"id", "c1"}});
    got = envelopes(alice);
    REQUIRE(of_type(got, "ack").size() == 1);
    CHECK(of_type(got, "ack")[0].at("duplicate") == true);
    CHECK(of_type(got, "ack")[0].at("seq") == 1);
    CHECK(of_type(envelopes(bob), "message").empty());

    // Without "room", the only room the sender is in.
    say(bob, {{"type", "message"}, {"text", "two"}});
    CHECK(of_type(envelopes(alice), "message").at(0).at("seq") == 2);
    CHECK(lobby.position("a")->sequence == 2);
}

TEST_CASE("lobby: join and leave by envelope, with history on join", "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    auto alice = member(s, "/rooms/news?name=alice");
    for (int i = 1; i <= 5; ++i)
        say(alice, {{"type", "message"}, {"text", "item " + std::to_string(i)}});
    envelopes(alice);

    auto carol = member(s, "/?name=carol");
    say(carol, {{"type", "join"}, {"room", "news"}, {"history", 3}});
    auto got = envelopes(carol);
    REQUIRE(got.size() == 5);
    CHECK(got[0].at("type") == "joined");
    CHECK(got[0].at("seq") == 5);
    CHECK(got[0].at("history") == 3);
    CHECK(got[1].at("text") == "item 3"); // the stored frames, oldest first
    CHECK(got[3].at("text") == "item 5");
    CHECK(got[3].at("seq") == 5);
    CHECK(got[4].at("type") == "presence"); // then the delta everyone gets

    say(carol, {{"type", "leave"}, {"room", "news"}});
    CHECK(of_type(envelopes(carol), "left").size() == 1);
    CHECK(of_type(envelopes(alice), "presence").back().at("left") == json::array({"carol"}));
    say(carol, {{"type", "message"}, {"room", "news"}, {"text", "still here?"}});
    CHECK(of_type(envelopes(carol), "error").at(0).at("code") == "not_member");
    CHECK(of_type(envelopes(alice), "message").empty());
}

TEST_CASE("lobby: every limit and bad envelope gets its error, and the sender stays",
          "[unit][memory][lobby]") {
    auto options = prompt_options();
    options.max_rooms = 2;
    options.max_members_per_room = 2;
    options.max_rooms_per_member = 2;
    options.max_history_request = 10;
    lobby_type lobby{options};
    memory_server s;
    lobby.attach(s.server);
    auto alice = member(s, "/?name=alice");
    const auto error_of = [&](const json& envelope) {
        say(alice, envelope);
        const auto errors = of_type(envelopes(alice), "error");
        return errors.empty() ? std::string{} : errors[0].at("code").get<std::string>();
    };
    CHECK(error_of({{"type", "join"}, {"room", "no spaces"}}) == "bad_room_name");
    CHECK(error_of({{"type", "join"}, {"room", std::string(65, 'x')}}) == "bad_room_name");
    CHECK(error_of({{"type", "join"}, {"room", "r1"}, {"history", 11}}) == "history_too_large");
    CHECK(error_of({{"type", "join"}, {"room", "r1"}}).empty());
    CHECK(error_of({{"type", "join"}, {"room", "r2"}}).empty());
    CHECK(error_of({{"type", "join"}, {"room", "r3"}}) == "too_many_joined");
    CHECK(error_of({{"type", "message"}, {"text", "which room?"}}) == "no_room");
    CHECK(error_of({{"type", "message"}, {"room", "r1"}, {"text", " "}}) == "empty_text");
    CHECK(error_of({{"type", "message"}, {"room", "r1"}, {"text", "x"}, {"id", ""}}) == "bad_id");
    CHECK(error_of({{"type", "resume"}, {"token", "forged"}}) == "bad_token");
    CHECK(error_of({{"type", "dance"}}) == "unknown_type");
    alice.send_text("not json");
    CHECK(of_type(envelopes(alice), "error").at(0).at("code") == "bad_json");

    auto bob = member(s, "/?name=bob");
    say(bob, {{"type", "join"}, {"room", "r3"}});
    CHECK(of_type(envelopes(bob), "error").at(0).at("code") == "too_many_rooms");
    say(bob, {{"type", "join"}, {"room", "r1"}});
    CHECK(of_type(envelopes(bob), "joined").size() == 1);
    auto carol = member(s, "/rooms/r1?name=carol");
    (void)carol;
    CHECK(lobby.member_count("r1") == 2); // alice and bob; carol was refused
    CHECK(lobby.member_count("r3") == 0);
}

TEST_CASE("lobby: a member that reconnects resumes with exactly the messages it missed",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    json hello;
    std::optional<memory_client> alice{member(s, "/rooms/r?name=alice", &hello)};
    auto bob = member(s, "/rooms/r?name=bob");
    say(bob, {{"type", "message"}, {"text", "before"}});
    const json seen = of_type(envelopes(*alice), "message").back();
    CHECK(seen.at("seq") == 1);

    alice.reset(); // the network went away
    test::settle(s.io);
    for (const char* text : {"m2", "m3", "m4"})
        say(bob, {{"type", "message"}, {"text", text}});
    envelopes(bob);

    // Back on a new connection: the provisional name cannot be "alice", which is reserved.
    json again;
    auto back = member(s, "/?name=alice", &again);
    CHECK(again.at("name") == "alice (2)");
    say(back, {{"type", "resume"},
               {"token", hello.at("token")},
               {"rooms", {{{"room", "r"}, {"epoch", seen.at("epoch")}, {"seq", 1}}}}});
    const auto got = envelopes(back);
    REQUIRE(got.size() == 5);
    CHECK(got[0].at("type") == "welcome");
    CHECK(got[0].at("resumed") == true);
    CHECK(got[0].at("name") == "alice");
    CHECK(got[0].at("id") == hello.at("id"));
    CHECK(got[0].at("token") != hello.at("token")); // a new secret for the next resume
    CHECK(got[1].at("type") == "resumed");
    CHECK(got[1].at("recovered") == true);
    CHECK(got[1].at("missed") == 3);
    CHECK(got[1].at("seq") == 4);
    for (int i = 0; i < 3; ++i)
        CHECK(got[2 + i].at("seq") == 2 + i);
    CHECK(lobby.member_names("r") == std::vector<std::string>{"bob", "alice"});

    // Live again, nothing twice.
    say(bob, {{"type", "message"}, {"text", "m5"}});
    const auto live = of_type(envelopes(back), "message");
    REQUIRE(live.size() == 1);
    CHECK(live[0].at("seq") == 5);

    // The old token no longer works.
    auto thief = member(s, "/?name=mallory");
    say(thief, {{"type", "resume"}, {"token", hello.at("token")}});
    CHECK(of_type(envelopes(thief), "error").at(0).at("code") == "bad_token");
}

TEST_CASE("lobby: resuming while the old connection is still open replaces it silently",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    json hello;
    auto old_phone = member(s, "/rooms/r?name=carol", &hello);
    auto bob = member(s, "/rooms/r?name=bob");
    envelopes(old_phone);

    auto new_phone = member(s, "/?name=carol");
    say(new_phone, {{"type", "resume"},
                    {"token", hello.at("token")},
                    {"rooms", {{{"room", "r"}, {"epoch", "0000000000000000"}, {"seq", 0}}}}});
    const auto got = envelopes(new_phone);
    CHECK(got.at(0).at("name") == "carol");
    CHECK(got.at(1).at("recovered") == false);
    CHECK(got.at(1).at("reason") == "epoch_changed");
    CHECK(got.at(1).at("epoch") == lobby.position("r")->epoch);

    const auto frames = old_phone.read_frames();
    REQUIRE_FALSE(frames.empty());
    CHECK(frames.back().opcode == test::op_close);
    CHECK(frames.back().close_code() == 4001);
    // Bob saw neither a leave nor a join: carol never left.
    CHECK(of_type(envelopes(bob), "presence").empty());
    CHECK(lobby.member_count("r") == 2);
}

TEST_CASE("lobby: kick and ban through the C++ API; typing and direct messages",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    auto alice = member(s, "/rooms/r?name=alice");
    auto bob = member(s, "/rooms/r?name=bob");
    envelopes(alice);

    say(alice, {{"type", "typing"}, {"room", "r"}});
    CHECK(of_type(envelopes(bob), "typing").at(0).at("from") == "alice");
    CHECK(envelopes(alice).empty()); // not to the typist, not stored
    CHECK(lobby.position("r")->sequence == 0);

    say(alice, {{"type", "direct"}, {"to", "bob"}, {"text", "psst"}});
    CHECK(of_type(envelopes(bob), "direct").at(0).at("text") == "psst");
    CHECK(of_type(envelopes(alice), "direct").size() == 1);
    say(alice, {{"type", "direct"}, {"to", "nobody"}, {"text", "hello?"}});
    CHECK(of_type(envelopes(alice), "error").at(0).at("code") == "no_such_member");

    CHECK(lobby.kick("r", "bob", "be nice"));
    CHECK(of_type(envelopes(bob), "kicked").at(0).at("reason") == "be nice");
    CHECK(lobby.member_count("r") == 1);
    lobby.ban("r", "bob", std::chrono::seconds{60});
    say(bob, {{"type", "join"}, {"room", "r"}});
    CHECK(of_type(envelopes(bob), "error").at(0).at("code") == "banned");
    CHECK_FALSE(lobby.kick("r", "bob"));
}

TEST_CASE("lobby: rooms and the lobby count joins, messages, deliveries, refusals and resumes",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    memory_server s;
    lobby.attach(s.server);
    json hello;
    std::optional<memory_client> alice{member(s, "/rooms/a?name=alice", &hello)};
    auto bob = member(s, "/rooms/a?name=bob");
    say(*alice, {{"type", "message"}, {"text", "12345"}});                // delivered to 2
    say(*alice, {{"type", "message"}, {"text", std::string(2001, 'x')}}); // too long
    say(bob, {{"type", "message"}, {"room", "b"}, {"text", "hi"}});       // not a member of b
    say(bob, {{"type", "nonsense"}});                                     // no room named
    envelopes(*alice);
    envelopes(bob);

    alice.reset();
    test::settle(s.io);
    auto back = member(s, "/?name=alice");
    say(back, {{"type", "resume"},
               {"token", hello.at("token")},
               {"rooms", {{{"room", "a"}, {"epoch", lobby.position("a")->epoch}, {"seq", 0}}}}});

    const auto rooms = lobby.rooms_stats();
    REQUIRE(rooms.size() == 1);
    const auto& a = rooms[0];
    CHECK(a.name == "a");
    CHECK(a.members == 2);
    CHECK(a.history_messages == 1);
    CHECK(a.counts.joins == 3); // alice, bob, alice again on resume
    CHECK(a.counts.leaves == 1);
    CHECK(a.counts.messages_in == 2);
    CHECK(a.counts.bytes_in == 5 + 2001);
    CHECK(a.counts.refused[static_cast<std::size_t>(chat::refusal_reason::too_long)] == 1);
    CHECK(a.counts.resumes[static_cast<std::size_t>(chat::recovery_outcome::recovered)] == 1);
    const chat::room_stats all = lobby.totals();
    CHECK(all.refused[static_cast<std::size_t>(chat::refusal_reason::not_member)] == 1);
    CHECK(all.refused[static_cast<std::size_t>(chat::refusal_reason::bad_message)] == 1);
    CHECK(all.messages_out >= a.counts.messages_out);
    CHECK(a.counts.messages_out >= 2 + 1); // the broadcast to two, the replay to one
}

TEST_CASE("lobby: on_join and on_leave hear every membership change, outside the lock",
          "[unit][memory][lobby]") {
    lobby_type lobby{prompt_options()};
    std::vector<std::string> told;
    // Calling back into the lobby from a handler must not deadlock.
    lobby.on_join([&](const std::string& room, const std::string& name) {
        told.push_back("+" + room + ":" + name + "/" + std::to_string(lobby.member_count(room)));
    });
    lobby.on_leave([&](const std::string& room, const std::string& name) {
        told.push_back("-" + room + ":" + name);
    });
    memory_server s;
    lobby.attach(s.server);
    json hello;
    std::optional<memory_client> alice{member(s, "/rooms/a?name=alice", &hello)};
    say(*alice, {{"type", "join"}, {"room", "b"}});
    auto bob = member(s, "/rooms/a?name=bob");
    lobby.kick("b", "alice");
    alice.reset();
    test::settle(s.io);
    auto back = member(s, "/?name=alice");
    say(back, {{"type", "resume"}, {"token", hello.at("token")}});
    CHECK(told == std::vector<std::string>{"+a:alice/1", "+b:alice/1", "+a:bob/2", "-b:alice",
                                           "-a:alice", "+a:alice/2"});
}

TEST_CASE("lobby: a member that comes and goes within one presence window is not announced, "
          "and ?resume=1 keeps a room path from joining a provisional member",
          "[unit][memory][lobby]") {
    auto options = prompt_options();
    options.presence_interval = std::chrono::hours{1}; // one window for the whole test
    lobby_type lobby{options};
    memory_server s;
    lobby.attach(s.server);
    json hello;
    auto old_phone = member(s, "/rooms/r?name=carol", &hello); // opens the window at once
    auto bob = member(s, "/rooms/r?name=bob");
    envelopes(old_phone);
    {
        auto passer_by = member(s, "/rooms/r?name=dave");
    } // gone within the window: its join and leave cancel out
    test::settle(s.io);

    auto new_phone = member(s, "/rooms/r?name=carol&resume=1");
    CHECK(lobby.member_count("r") == 2); // no provisional "carol (2)"
    say(new_phone, {{"type", "resume"}, {"token", hello.at("token")}});
    CHECK(envelopes(new_phone).at(0).at("name") == "carol");
    CHECK(lobby.member_count("r") == 2);
    CHECK(lobby.member_names("r") == std::vector<std::string>{"carol", "bob"});
    // Bob has heard nothing since his own joined: the pending delta holds only bob himself.
    for (const json& e : of_type(envelopes(bob), "presence")) {
        CHECK(e.at("left").empty());
        CHECK(e.at("joined") == json::array({"bob"}));
    }
}
