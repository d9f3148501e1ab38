// chat::json_policy over real loopback sockets: names, envelopes, errors that keep the
// connection, pings, presence with names.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/chat/json_policy.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

using json = nlohmann::json;
using test::ws_client;

namespace {

using json_room = chat::room<ws::asio_tcp, chat::json_policy>;

/// The next envelope, parsed; a null json on timeout.
json next(ws_client& client, std::chrono::milliseconds timeout = 5s) {
    const auto text = client.read_text(timeout);
    return text ? json::parse(*text) : json{};
}

/// The next envelope of `type`, skipping others (join/leave/presence interleave freely).
json next_of(ws_client& client, std::string_view type) {
    for (json e = next(client); !e.is_null(); e = next(client))
        if (e["type"] == type)
            return e;
    return {};
}

/// A room on a running server, presence coalesced over `interval`.
struct fixture {
    explicit fixture(std::chrono::milliseconds interval = 20ms) {
        room = std::make_unique<json_room>(s.io.get_executor(), chat::json_policy{},
                                           chat::room_options{interval});
        room->attach(s.server);
        s.start();
    }
    std::uint16_t port() const { return s.port(); }

    test::running_server s;
    std::unique_ptr<json_room> room; // after the server: goes first, before its io_context
};

} // namespace

TEST_CASE("json_policy names members from the query or a cookie and resolves duplicates",
          "[json]") {
    fixture f;
    ws_client a{f.port(), "/?name=alice"};
    CHECK(next_of(a, "welcome")["name"] == "alice");
    ws_client a2{f.port(), "/?name=alice"};
    CHECK(next_of(a2, "welcome")["name"] == "alice (2)");
    ws_client b{f.port(), "/", "Cookie: theme=dark; name=%E5%BC%A0%E4%B8%89\r\n"};
    CHECK(next_of(b, "welcome")["name"] == "张三");
    ws_client nobody{f.port(), "/?name=%20%01%20"};
    CHECK(next_of(nobody, "welcome")["name"] == "guest");
    ws_client longer{f.port(), "/?name=" + std::string(100, 'x')};
    CHECK(next_of(longer, "welcome")["name"] == std::string(32, 'x'));

    // Everyone ends up with the same roster.
    json roster;
    for (int i = 0; i < 10 && roster["online"] != 5; ++i)
        roster = next_of(a, "presence");
    CHECK(roster["online"] == 5);
    CHECK(roster["members"] ==
          json::array({"alice", "alice (2)", "guest", std::string(32, 'x'), "张三"}));
}

TEST_CASE("json_policy relays messages as numbered envelopes with name and time", "[json]") {
    fixture f;
    ws_client a{f.port(), "/?name=alice"};
    ws_client b{f.port(), "/?name=bob"};
    REQUIRE(test::eventually([&] { return f.room->size() == 2; }));

    const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    REQUIRE(a.send_text(R"({"type":"message","text":"hi 😀 <b>x</b>"})"));
    REQUIRE(b.send_text(R"({"type":"message","text":"你好"})"));
    for (ws_client* client : {&a, &b}) {
        const json first = next_of(*client, "message");
        const json second = next_of(*client, "message");
        CHECK(first["from"] == "alice");
        CHECK(first["text"] == "hi 😀 <b>x</b>");
        CHECK(second["from"] == "bob");
        CHECK(second["text"] == "你好");
        CHECK(first["id"] == 1);
        CHECK(second["id"] == 2);
        CHECK(first["time"].get<std::int64_t>() >= before);
        CHECK(first["time"].get<std::int64_t>() < before + 10'000);
    }
}

TEST_CASE("json_policy answers bad envelopes with an error and keeps the connection", "[json]") {
    fixture f;
    ws_client a{f.port(), "/?name=alice"};
    REQUIRE(next_of(a, "presence")["online"] == 1);

    const auto error_for = [&](std::string_view sent, std::uint8_t opcode = test::op_text) {
        REQUIRE(a.send(opcode, sent));
        const json reply = next(a);
        CHECK(reply["type"] == "error");
        CHECK(reply["message"].is_string());
        return reply["code"];
    };
    CHECK(error_for("{not json") == "bad_json");
    CHECK(error_for("[1,2]") == "bad_json");
    CHECK(error_for(R"({"text":"no type"})") == "bad_json");
    CHECK(error_for(R"({"type":"message","text":42})") == "bad_json");
    CHECK(error_for(R"({"type":"shout","text":"hi"})") == "unknown_type");
    CHECK(error_for(R"({"type":"message","text":"  "})") == "empty_text");
    CHECK(error_for(json{{"type", "message"}, {"text", std::string(2001, 'a')}}.dump()) ==
          "text_too_long");
    CHECK(error_for(json{{"type", "message"}, {"text", std::string(2001, 'a')}}.dump(),
                    test::op_binary) == "not_text");

    // 2000 code points of CJK (6000 bytes) are within the limit; the connection still works.
    std::string cjk;
    for (int i = 0; i < 2000; ++i)
        cjk += "字";
    REQUIRE(a.send_text(json{{"type", "message"}, {"text", cjk}}.dump()));
    const json echoed = next(a);
    CHECK(echoed["type"] == "message");
    CHECK(echoed["text"] == cjk);

    REQUIRE(a.send_text(R"({"type":"ping"})"));
    const json pong = next(a);
    CHECK(pong["type"] == "pong");
    CHECK(pong["time"].is_number_integer());
}

TEST_CASE("json_policy announces joins, leaves and the roster", "[json]") {
    fixture f;
    ws_client a{f.port(), "/?name=alice"};
    CHECK(next(a)["type"] == "welcome");
    const json alone = next(a);
    CHECK(alone["type"] == "join");
    CHECK(alone["names"] == json::array({"alice"}));
    CHECK(next(a)["members"] == json::array({"alice"}));

    auto b = std::make_unique<ws_client>(f.port(), "/?name=bob");
    const json welcome = next(*b);
    CHECK(welcome["type"] == "welcome");
    CHECK(welcome["online"] == 2);
    CHECK(next_of(a, "join")["names"] == json::array({"bob"}));
    const json both = next(a);
    CHECK(both["type"] == "presence");
    CHECK(both["online"] == 2);
    CHECK(both["members"] == json::array({"alice", "bob"}));

    b->socket().reset();
    CHECK(next_of(a, "leave")["names"] == json::array({"bob"}));
    const json after = next(a);
    CHECK(after["online"] == 1);
    CHECK(after["members"] == json::array({"alice"}));
}

TEST_CASE("json_policy cleans names and reads them from the request", "[json]") {
    const chat::json_policy policy;
    CHECK(policy.clean_name("  bob\t\n ") == "bob");
    CHECK(policy.clean_name("") == "guest");
    CHECK(policy.clean_name(std::string(40, 'z')) == std::string(32, 'z'));
    std::string emoji;
    for (int i = 0; i < 40; ++i)
        emoji += "😀";
    CHECK(chat::detail::code_points(policy.clean_name(emoji)) == 32);

    ws::http_request req;
    req.target = "/chat?x=1&name=a%20b+c";
    CHECK(chat::json_policy::requested_name(req) == "a b c");
    req.target = "/chat?name=%ZZ";
    CHECK(chat::json_policy::requested_name(req).empty());
    req.target = "/chat?name=%C3%28"; // not UTF-8
    CHECK(chat::json_policy::requested_name(req).empty());
    req.target = "/chat";
    req.headers.push_back({"Cookie", "a=1; name=carol"});
    CHECK(chat::json_policy::requested_name(req) == "carol");
}
