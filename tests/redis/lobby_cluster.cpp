// chat::lobby on chat::redis_bus: two or three lobbies, each on its own server and
// io_context, sharing one real redis-server. Every member on every node gets every message
// once and in one order; a member resumes on another node with exactly what it missed;
// presence sums over the nodes, and a node that goes silent leaves every count within the
// presence TTL; while Redis is down publishing answers an error envelope, and afterwards the
// cluster recovers with the new epoch announced and nothing delivered twice.
#include "redis/common.hpp"
#include "support/memory_client.hpp"

#include <wschat/chat/lobby.hpp>
#include <wschat/chat/prometheus.hpp>
#include <wschat/chat/redis_bus.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace redis_test;
using json = nlohmann::json;
using test::memory_client;
using test::memory_server;

namespace {

using lobby_type = chat::lobby<ws::memory_transport>;

/// One node: a server over memory streams, a Redis bus and a lobby, all on one io_context.
struct node {
    node(const std::string& url, const std::string& prefix, std::chrono::milliseconds presence_ttl)
        : bus(chat::redis_bus::create(s.io, bus_options(url, prefix, presence_ttl))),
          lobby(lobby_options(), {}, bus) {
        lobby.attach(s.server);
    }
    ~node() { bus->stop(); }

    static chat::lobby_options lobby_options() {
        chat::lobby_options o;
        o.presence_interval = std::chrono::milliseconds{0}; // every change at once
        return o;
    }
    static chat::redis_bus_options bus_options(const std::string& url, const std::string& prefix,
                                               std::chrono::milliseconds presence_ttl) {
        chat::redis_bus_options o;
        o.redis = options(url);
        o.prefix = prefix;
        o.presence_ttl = presence_ttl;
        return o;
    }

    memory_server s;
    std::shared_ptr<chat::redis_bus> bus;
    lobby_type lobby;
};

/// A member's connection and every envelope it received so far.
struct peer {
    memory_client client;
    std::vector<json> got;

    void read() {
        for (const auto& f : client.read_frames())
            got.push_back(json::parse(f.payload));
    }
    std::vector<json> of_type(const std::string& type) const {
        std::vector<json> out;
        for (const json& e : got)
            if (e.at("type") == type)
                out.push_back(e);
        return out;
    }
    void say(const json& envelope) { client.send_text(envelope.dump()); }
};

/// A redis-server and nodes on it, driven on the test thread.
struct cluster {
    explicit cluster(std::size_t nodes,
                     std::chrono::milliseconds presence_ttl = std::chrono::milliseconds{15000})
        : prefix("t" + ws::random_hex(4) + ":") {
        for (std::size_t i = 0; i < nodes; ++i)
            this->nodes.push_back(std::make_unique<node>(redis.url(), prefix, presence_ttl));
        REQUIRE(until([&] {
            for (const auto& n : this->nodes)
                if (n->bus->stats().connected != 1)
                    return false;
            return true;
        }));
    }

    /// Runs every node's io_context (and reads every peer) until `done` holds.
    bool until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (const auto& n : nodes)
                test::settle(n->s.io);
            for (peer* p : peers)
                p->read();
            if (done())
                return true;
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            std::this_thread::sleep_for(1ms);
        }
    }

    /// A member connected to node `i` at `path`, once its welcome arrived.
    std::unique_ptr<peer> join(std::size_t i, const std::string& path) {
        auto p = std::make_unique<peer>(peer{memory_client::opened(nodes.at(i)->s, path), {}});
        peers.push_back(p.get());
        REQUIRE(until([&] { return !p->of_type("welcome").empty(); }));
        return p;
    }
    void drop(std::unique_ptr<peer>& p) {
        peers.erase(std::find(peers.begin(), peers.end(), p.get()));
        p.reset();
    }

    test::redis_server redis;
    std::string prefix;
    std::vector<std::unique_ptr<node>> nodes;
    std::vector<peer*> peers;
};

/// The (seq, from, text) of every message `p` got in `room`.
std::vector<std::tuple<std::uint64_t, std::string, std::string>> messages(const peer& p) {
    std::vector<std::tuple<std::uint64_t, std::string, std::string>> out;
    for (const json& m : p.of_type("message"))
        out.emplace_back(m.at("seq").get<std::uint64_t>(), m.at("from").get<std::string>(),
                         m.at("text").get<std::string>());
    return out;
}

} // namespace

TEST_CASE("redis bus: every member on every node gets every message once, in one order",
          "[redis][server][bus]") {
    cluster c{3};
    std::vector<std::unique_ptr<peer>> members;
    const char* names[] = {"a1", "a2", "b1", "c1"};
    const std::size_t on_node[] = {0, 0, 1, 2};
    for (std::size_t i = 0; i < 4; ++i) {
        members.push_back(c.join(on_node[i], std::string{"/rooms/r?name="} + names[i]));
        REQUIRE(c.until([&] { return !members.back()->of_type("joined").empty(); }));
    }
    const json joined = members[3]->of_type("joined").at(0);
    CHECK(joined.at("seq") == 0);
    CHECK(joined.at("online") == 4);

    // Every member sends 25, interleaved across the nodes, with ids.
    constexpr int per_member = 25;
    for (int k = 0; k < per_member; ++k)
        for (std::size_t i = 0; i < 4; ++i)
            members[i]->say({{"type", "message"},
                             {"room", "r"},
                             {"text", std::string{names[i]} + "#" + std::to_string(k)},
                             {"id", std::to_string(k)}});
    const std::size_t total = 4 * per_member;
    REQUIRE(c.until([&] {
        for (const auto& m : members)
            if (m->of_type("message").size() < total || m->of_type("ack").size() < per_member)
                return false;
        return true;
    }));
    c.until([] { return false; }, 200ms); // nothing more may come
    const auto order = messages(*members[0]);
    REQUIRE(order.size() == total);
    for (std::size_t i = 0; i < total; ++i)
        CHECK(std::get<0>(order[i]) == i + 1);
    for (const auto& m : members) {
        CHECK(messages(*m) == order); // same messages, same numbers, same order, once each
        CHECK(m->of_type("ack").size() == per_member);
        CHECK(m->of_type("error").empty());
    }
    // Each sender's acks carry the numbers its messages got.
    for (std::size_t i = 0; i < 4; ++i)
        for (const json& ack : members[i]->of_type("ack")) {
            const auto seq = ack.at("seq").get<std::uint64_t>();
            CHECK(std::get<1>(order.at(seq - 1)) == names[i]);
        }
    // The stream in Redis holds them, numbered as delivered.
    const auto len = c.redis.query({"XLEN", c.prefix + "{r}:stream"});
    CHECK(len.integer == static_cast<long long>(total));
    for (const auto& n : c.nodes)
        CHECK(n->bus->stats().duplicates == 0);

    // A node subscribes while it has members there, and no longer.
    const auto subscribers = [&] {
        return c.redis.query({"PUBSUB", "NUMSUB", c.prefix + "{r}:channel"}).elements.at(1).integer;
    };
    CHECK(subscribers() == 3);
    c.drop(members[3]); // c1, the only member on node C
    REQUIRE(c.until([&] { return subscribers() == 2; }));
    REQUIRE(c.until([&] { return c.nodes[0]->lobby.online("r") == 3; }));
}

TEST_CASE("redis bus: a member resumes on another node with exactly the messages it missed",
          "[redis][server][bus]") {
    cluster c{2};
    auto alice = c.join(0, "/rooms/r?name=alice");
    auto bob = c.join(1, "/rooms/r?name=bob");
    REQUIRE(c.until(
        [&] { return !alice->of_type("joined").empty() && !bob->of_type("joined").empty(); }));
    bob->say({{"type", "message"}, {"room", "r"}, {"text", "before"}});
    REQUIRE(c.until([&] { return alice->of_type("message").size() == 1; }));
    const json hello = alice->of_type("welcome").at(0);
    const json seen = alice->of_type("message").back();

    c.drop(alice); // alice's network went away; node A is still up
    REQUIRE(c.until([&] { return c.nodes[1]->lobby.online("r") == 1; }));
    for (const char* text : {"m2", "m3", "m4"})
        bob->say({{"type", "message"}, {"room", "r"}, {"text", text}});
    REQUIRE(c.until([&] { return bob->of_type("message").size() == 4; }));

    // Back through the load balancer, on node B this time.
    auto back = c.join(1, "/?name=alice");
    back->say({{"type", "resume"},
               {"token", hello.at("token")},
               {"rooms", {{{"room", "r"}, {"epoch", seen.at("epoch")}, {"seq", 1}}}}});
    REQUIRE(c.until([&] { return back->of_type("message").size() == 3; }));
    c.until([] { return false; }, 100ms);
    const auto welcome = back->of_type("welcome");
    REQUIRE(welcome.size() == 2);
    CHECK(welcome[1].at("resumed") == true);
    CHECK(welcome[1].at("name") == "alice");
    CHECK(welcome[1].at("id") == hello.at("id"));
    const auto resumed = back->of_type("resumed");
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].at("recovered") == true);
    CHECK(resumed[0].at("missed") == 3);
    CHECK(resumed[0].at("seq") == 4);
    const auto missed = messages(*back);
    REQUIRE(missed.size() == 3);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(std::get<0>(missed[i]) == i + 2);
    CHECK(c.nodes[1]->lobby.member_names("r") == std::vector<std::string>{"bob", "alice"});

    // Live again, nothing twice.
    bob->say({{"type", "message"}, {"room", "r"}, {"text", "m5"}});
    REQUIRE(c.until([&] { return back->of_type("message").size() == 4; }));
    CHECK(std::get<0>(messages(*back).back()) == 5);

    // The token was claimed once: it works nowhere again.
    auto thief = c.join(0, "/?name=mallory");
    thief->say({{"type", "resume"}, {"token", hello.at("token")}});
    REQUIRE(c.until([&] { return !thief->of_type("error").empty(); }));
    CHECK(thief->of_type("error").at(0).at("code") == "bad_token");
}

TEST_CASE("redis bus: presence sums over the nodes; a silent node leaves within the TTL",
          "[redis][server][bus]") {
    const auto ttl = 900ms;
    cluster c{3, ttl};
    std::vector<std::unique_ptr<peer>> members;
    members.push_back(c.join(0, "/rooms/r?name=a1"));
    members.push_back(c.join(0, "/rooms/r?name=a2"));
    members.push_back(c.join(1, "/rooms/r?name=b1"));
    members.push_back(c.join(2, "/rooms/r?name=c1"));
    members.push_back(c.join(2, "/rooms/r?name=c2"));
    REQUIRE(c.until([&] {
        for (const auto& n : c.nodes)
            if (n->lobby.online("r") != 5)
                return false;
        return true;
    }));
    // Every member's latest count says 5 too, and the roster lists everyone.
    REQUIRE(c.until([&] {
        for (const auto& m : members)
            if (m->of_type("presence").empty() || m->of_type("presence").back().at("online") != 5)
                return false;
        return true;
    }));
    members[2]->say({{"type", "roster"}, {"room", "r"}});
    REQUIRE(c.until([&] { return members[2]->of_type("roster").size() == 1; }));
    auto roster = members[2]->of_type("roster").at(0).at("members").get<std::vector<std::string>>();
    std::sort(roster.begin(), roster.end());
    CHECK(roster == std::vector<std::string>{"a1", "a2", "b1", "c1", "c2"});

    // A leave is a delta at once.
    c.drop(members[1]);
    REQUIRE(c.until([&] { return c.nodes[2]->lobby.online("r") == 4; }, 500ms));

    // Node C goes silent (as if killed): its members stay connected to it, but the others
    // count them out within the TTL.
    const auto silent = std::chrono::steady_clock::now();
    c.nodes[2]->bus->stop();
    REQUIRE(c.until(
        [&] { return c.nodes[0]->lobby.online("r") == 2 && c.nodes[1]->lobby.online("r") == 2; },
        3 * ttl));
    const auto gone_after = std::chrono::steady_clock::now() - silent;
    CHECK(gone_after <= ttl + 150ms);
    const json last = members[0]->of_type("presence").back();
    CHECK(last.at("online") == 2);
    CHECK(last.at("left") == json::array({"c1", "c2"}));
}

TEST_CASE("redis bus: while Redis is down publishing answers an error; then it recovers, "
          "announces the new epoch and delivers nothing twice",
          "[redis][server][bus]") {
    cluster c{2, 1500ms}; // presence refreshed every 0.5 s
    auto alice = c.join(0, "/rooms/r?name=alice");
    auto bob = c.join(1, "/rooms/r?name=bob");
    REQUIRE(c.until(
        [&] { return !alice->of_type("joined").empty() && !bob->of_type("joined").empty(); }));
    alice->say({{"type", "message"}, {"room", "r"}, {"text", "one"}, {"id", "1"}});
    REQUIRE(c.until([&] { return bob->of_type("message").size() == 1; }));
    const std::string epoch = bob->of_type("message").at(0).at("epoch");

    c.redis.kill();
    REQUIRE(c.until([&] { return c.nodes[0]->bus->stats().connected == 0; }));
    alice->say({{"type", "message"}, {"room", "r"}, {"text", "lost"}, {"id", "2"}});
    REQUIRE(c.until([&] { return !alice->of_type("error").empty(); }));
    const json refused = alice->of_type("error").at(0);
    CHECK(refused.at("code") == "bus_unavailable");
    CHECK(refused.at("id") == "2");
    CHECK(refused.at("room") == "r");
    CHECK(c.nodes[0]->bus->stats().publish_errors >= 1);
    chat::prometheus_text page;
    chat::append_bus(page, c.nodes[0]->bus->stats());
    CHECK(page.str().find("\nwschat_bus_connected 0\n") != std::string::npos);

    c.redis.restart();
    REQUIRE(c.until([&] {
        return c.nodes[0]->bus->stats().connected == 1 && c.nodes[1]->bus->stats().connected == 1;
    }));
    // Redis came back empty: each node finds a new epoch and tells its members, as a resume
    // that cannot be filled is told; they join again for the room's recent history.
    const auto told = [](const peer& p) {
        for (const json& e : p.of_type("resumed"))
            if (e.at("recovered") == false)
                return true;
        return false;
    };
    REQUIRE(c.until([&] { return told(*alice) && told(*bob); }));
    const json reset = bob->of_type("resumed").at(0);
    CHECK(reset.at("reason") == "epoch_changed");
    CHECK(reset.at("epoch") != epoch);
    CHECK(reset.at("seq") == 0);
    bob->say({{"type", "join"}, {"room", "r"}, {"history", 10}});
    REQUIRE(c.until([&] { return bob->of_type("joined").size() == 2; }));
    CHECK(bob->of_type("joined").at(1).at("epoch") == reset.at("epoch"));
    CHECK(bob->of_type("joined").at(1).at("history") == 0);

    alice->say({{"type", "message"}, {"room", "r"}, {"text", "two"}, {"id", "3"}});
    bob->say({{"type", "message"}, {"room", "r"}, {"text", "three"}, {"id", "4"}});
    REQUIRE(c.until([&] {
        return alice->of_type("message").size() == 3 && bob->of_type("message").size() == 3;
    }));
    c.until([] { return false; }, 200ms);
    CHECK(messages(*alice) == messages(*bob));
    const auto after = bob->of_type("message");
    CHECK(after.size() == 3);
    CHECK(after[1].at("epoch") == reset.at("epoch"));
    CHECK(after[1].at("seq") == 1);
    CHECK(after[2].at("seq") == 2);
    CHECK(alice->of_type("error").size() == 1);
    // Presence was written again into the new Redis.
    REQUIRE(c.until(
        [&] { return c.nodes[0]->lobby.online("r") == 2 && c.nodes[1]->lobby.online("r") == 2; }));
}

TEST_CASE("redis bus: messages a node missed while its subscription was down are fetched from "
          "the stream; a gap longer than the stream holds restarts the room",
          "[redis][server][bus]") {
    cluster c{2};
    auto alice = c.join(0, "/rooms/r?name=alice");
    auto bob = c.join(1, "/rooms/r?name=bob");
    REQUIRE(c.until(
        [&] { return !alice->of_type("joined").empty() && !bob->of_type("joined").empty(); }));
    bob->say({{"type", "message"}, {"room", "r"}, {"text", "m1"}});
    REQUIRE(c.until([&] { return alice->of_type("message").size() == 1; }));

    // Every subscriber connection is cut; node B publishes before node A has even run
    // (its io_context waits), so A's subscription certainly misses them.
    const auto cut_and_publish = [&](int count, int first) {
        CHECK(c.redis.query({"CLIENT", "KILL", "TYPE", "pubsub"}).integer == 2);
        const std::size_t acks = bob->of_type("ack").size();
        for (int i = 0; i < count; ++i)
            bob->say({{"type", "message"},
                      {"room", "r"},
                      {"text", "m" + std::to_string(first + i)},
                      {"id", std::to_string(first + i)}});
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (bob->of_type("ack").size() < acks + count &&
               std::chrono::steady_clock::now() < deadline) {
            test::settle(c.nodes[1]->s.io);
            bob->read();
            std::this_thread::sleep_for(1ms);
        }
        REQUIRE(bob->of_type("ack").size() == acks + count);
    };
    cut_and_publish(3, 2);
    REQUIRE(c.until([&] { return alice->of_type("message").size() == 4; }));
    c.until([] { return false; }, 200ms);
    CHECK(c.nodes[0]->bus->stats().gaps_filled >= 3);
    CHECK(messages(*alice) == messages(*bob));
    const auto got = messages(*alice);
    REQUIRE(got.size() == 4);
    for (std::size_t i = 0; i < 4; ++i)
        CHECK(std::get<0>(got[i]) == i + 1);

    // More than the stream holds (500 by default, fetched 500 at most): A cannot fill the gap
    // and tells its member, which joins again; B heard them all.
    const std::size_t before = alice->of_type("message").size();
    cut_and_publish(510, 5);
    REQUIRE(c.until([&] {
        for (const json& e : alice->of_type("resumed"))
            if (e.at("reason") == "too_old")
                return true;
        return false;
    }));
    const json reset = alice->of_type("resumed").at(0);
    CHECK(reset.at("recovered") == false);
    CHECK(reset.at("seq") == 514);
    CHECK(alice->of_type("message").size() == before); // none of them, rather than some
    CHECK(c.nodes[0]->bus->stats().resets == 1);
    alice->say({{"type", "join"}, {"room", "r"}, {"history", 5}});
    REQUIRE(c.until([&] { return alice->of_type("message").size() == before + 5; }));
    CHECK(std::get<0>(messages(*alice).back()) == 514);
    bob->say({{"type", "message"}, {"room", "r"}, {"text", "live"}});
    REQUIRE(c.until([&] { return std::get<0>(messages(*alice).back()) == 515; }));
    CHECK(c.nodes[0]->bus->stats().duplicates == 0);
}
