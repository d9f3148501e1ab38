// The sans-I/O protocol session, byte by byte: no sockets, no server, time passed in.
#include <wschat/ws/session.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace {

/// Records what a session asks for.
struct sink {
    ws::session_limits configured;
    std::vector<std::string> messages;
    std::vector<std::string> sent; // whole frames as bytes
    std::string close_frame;
    std::uint16_t close_code = 0;
    std::error_code close_why;
    std::vector<std::error_code> limits_hit;
    bool handshake_done = false;

    const ws::session_limits& limits() const noexcept { return configured; }
    void message(ws::opcode, std::string_view payload) { messages.emplace_back(payload); }
    void send(ws::shared_frame frame) { sent.emplace_back(frame.bytes()); }
    void send_close(ws::shared_frame frame, std::uint16_t code, std::string_view,
                    std::error_code why) {
        close_frame = std::string{frame.bytes()};
        close_code = code;
        close_why = why;
    }
    void limit_hit(std::error_code ec) { limits_hit.push_back(ec); }
    void closed() { handshake_done = true; }
};

const ws::mask_key key{0x11, 0x22, 0x33, 0x44};
const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours{1};

template <ws::role Role>
void feed(ws::session<Role>& s, std::string bytes, sink& out,
          std::chrono::steady_clock::time_point at = t0) {
    s.receive(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(), at, out);
}

} // namespace

TEST_CASE("a server session answers pings, delivers messages and echoes the peer's Close",
          "[session]") {
    sink out;
    ws::session<ws::role::server> s{out.configured};
    feed(s, ws::encode_masked_frame(ws::opcode::ping, "hi", key), out);
    REQUIRE(out.sent.size() == 1);
    CHECK(out.sent[0] == ws::encode_frame(ws::opcode::pong, "hi"));
    feed(s, ws::encode_masked_frame(ws::opcode::text, "hello", key), out);
    CHECK(out.messages == std::vector<std::string>{"hello"});

    feed(s, ws::encode_masked_frame(ws::opcode::close, ws::close_payload(4000, "bye"), key), out);
    CHECK(s.close_received());
    CHECK(s.close_sent());
    CHECK(out.close_code == 4000);
    CHECK(out.close_frame == ws::encode_frame(ws::opcode::close, ws::close_payload(4000, "")));
    CHECK_FALSE(out.handshake_done); // the peer closed first: nothing to wait for but our write
}

TEST_CASE("a server session fails unmasked frames with 1002 and ignores what follows",
          "[session]") {
    sink out;
    ws::session<ws::role::server> s{out.configured};
    feed(s, ws::encode_frame(ws::opcode::text, "plain"), out);
    CHECK(out.messages.empty());
    CHECK(out.close_code == 1002);
    REQUIRE(out.limits_hit.size() == 1);
    CHECK(out.close_why == out.limits_hit[0]);
    feed(s, ws::encode_masked_frame(ws::opcode::text, "late", key), out);
    CHECK(out.messages.empty());
}

TEST_CASE("our Close, answered by the peer, completes the handshake", "[session]") {
    sink out;
    ws::session<ws::role::server> s{out.configured};
    s.close(1001, "going away", {}, out);
    CHECK(out.close_frame ==
          ws::encode_frame(ws::opcode::close, ws::close_payload(1001, "going away")));
    feed(s, ws::encode_masked_frame(ws::opcode::text, "after our close", key), out);
    CHECK(out.messages.empty()); // discarded (RFC 6455 section 1.4)
    feed(s, ws::encode_masked_frame(ws::opcode::close, ws::close_payload(1001, ""), key), out);
    CHECK(out.handshake_done);
}

TEST_CASE("the rate limit admits a burst, then closes or drops by the limits", "[session]") {
    sink out;
    out.configured.max_messages_per_second = 10;
    out.configured.message_burst = 3;
    SECTION("close") {
        ws::session<ws::role::server> s{out.configured};
        for (int i = 0; i < 4; ++i)
            feed(s, ws::encode_masked_frame(ws::opcode::text, std::to_string(i), key), out);
        CHECK(out.messages == std::vector<std::string>{"0", "1", "2"});
        CHECK(out.close_code == 1008);
    }
    SECTION("drop, and time refills the bucket") {
        out.configured.drop_over_rate = true;
        ws::session<ws::role::server> s{out.configured};
        for (int i = 0; i < 4; ++i)
            feed(s, ws::encode_masked_frame(ws::opcode::text, std::to_string(i), key), out);
        CHECK(out.messages.size() == 3);
        CHECK(out.limits_hit.size() == 1);
        CHECK_FALSE(s.close_sent());
        feed(s, ws::encode_masked_frame(ws::opcode::text, "later", key), out,
             t0 + std::chrono::milliseconds{100});
        CHECK(out.messages.back() == "later");
    }
}

TEST_CASE("a client session reads unmasked frames, refuses masked ones and masks its own",
          "[session]") {
    sink out;
    ws::session<ws::role::client> s{out.configured};
    feed(s, ws::encode_frame(ws::opcode::text, "from server"), out);
    CHECK(out.messages == std::vector<std::string>{"from server"});
    feed(s, ws::encode_frame(ws::opcode::ping, "p"), out);
    REQUIRE(out.sent.size() == 1);
    CHECK((static_cast<unsigned char>(out.sent[0][1]) & 0x80) != 0); // masked pong

    sink strict;
    ws::session<ws::role::client> other{strict.configured};
    feed(other, ws::encode_masked_frame(ws::opcode::text, "masked", key), strict);
    CHECK(strict.messages.empty());
    CHECK(strict.close_code == 1002);
    CHECK((static_cast<unsigned char>(strict.close_frame[1]) & 0x80) != 0);
}
