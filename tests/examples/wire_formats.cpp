// The wire formats of examples/game_server (protocol.hpp) and examples/iot_gateway
// (telemetry.hpp), byte by byte as their comments document them, and every refusal.
#include "../../examples/game_server/protocol.hpp"
#include "../../examples/iot_gateway/telemetry.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values)
        out.push_back(static_cast<char>(v));
    return out;
}

} // namespace

TEST_CASE("game input: the documented 16 bytes, and every refusal", "[examples][game]") {
    game::input in;
    in.last_tick = 0x01020304;
    in.seq = 7;
    in.dx = -8;
    in.dy = 3;
    in.buttons = 0x81;
    const std::string wire = game::encode_input(in);
    CHECK(wire == bytes({0x01, 1, 0, 0, 0x04, 0x03, 0x02, 0x01, 7, 0, 0, 0, 0xf8, 3, 0x81, 0}));

    std::string why;
    const auto back = game::decode_input(wire, why);
    REQUIRE(back);
    CHECK(back->last_tick == 0x01020304);
    CHECK(back->seq == 7);
    CHECK(back->dx == -8);
    CHECK(back->dy == 3);
    CHECK(back->buttons == 0x81);

    SECTION("too short for a header") {
        CHECK_FALSE(game::decode_input(wire.substr(0, 5), why));
        CHECK(why == "message of 5 bytes: shorter than the 8-byte header");
    }
    SECTION("a header but not a whole input") {
        CHECK_FALSE(game::decode_input(wire.substr(0, 12), why));
        CHECK(why == "input of 12 bytes, expected 16");
    }
    SECTION("another version") {
        std::string other = wire;
        other[1] = 2;
        CHECK_FALSE(game::decode_input(other, why));
        CHECK(why == "protocol version 2, expected 1");
    }
    SECTION("a server's message type") {
        std::string other = wire;
        other[0] = static_cast<char>(0x82);
        CHECK_FALSE(game::decode_input(other, why));
        CHECK(why == "message type 130: a client sends only inputs (type 1)");
    }
    SECTION("a step beyond max_step") {
        game::input far = in;
        far.dx = 9;
        CHECK_FALSE(game::decode_input(game::encode_input(far), why));
        CHECK(why == "input step (9, 3) beyond +-8");
    }
    SECTION("non-zero reserved bytes") {
        std::string other = wire;
        other[15] = 1;
        CHECK_FALSE(game::decode_input(other, why));
        CHECK(why == "input with non-zero reserved bytes");
    }
}

TEST_CASE("game welcome and snapshot round-trip with the documented sizes", "[examples][game]") {
    std::string why;
    const std::string welcome = game::encode_welcome({41, 3, 30, 16});
    CHECK(welcome == bytes({0x81, 1, 0, 0, 41, 0, 0, 0, 3, 0, 0, 0, 30, 0, 16, 0}));
    const auto w = game::decode_welcome(welcome, why);
    REQUIRE(w);
    CHECK((w->tick == 41 && w->player == 3 && w->tick_hz == 30 && w->max_players == 16));

    game::snapshot s;
    s.tick = 42;
    s.players = {{1, 5, -3, 7}, {2, 0, game::world_edge, -game::world_edge}};
    const std::string wire = game::encode_snapshot(s);
    REQUIRE(wire.size() == game::header_size + 2 * game::player_size);
    CHECK(wire.substr(0, 8) == bytes({0x82, 1, 2, 0, 42, 0, 0, 0}));
    CHECK(wire.substr(8, 16) ==
          bytes({1, 0, 0, 0, 5, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 7, 0, 0, 0}));
    const auto back = game::decode_snapshot(wire, why);
    REQUIRE(back);
    CHECK(back->tick == 42);
    REQUIRE(back->players.size() == 2);
    CHECK((back->players[1].x == game::world_edge && back->players[1].y == -game::world_edge));
    CHECK_FALSE(game::decode_snapshot(wire.substr(0, wire.size() - 1), why));
}

TEST_CASE("game movement stops at the world's edge", "[examples][game]") {
    game::player_state p;
    p.x = game::world_edge - 2;
    p.y = -game::world_edge + 1;
    game::move(p, 8, -8);
    CHECK(p.x == game::world_edge);
    CHECK(p.y == -game::world_edge);
    game::move(p, -8, 3);
    CHECK(p.x == game::world_edge - 8);
    CHECK(p.y == -game::world_edge + 3);
}

TEST_CASE("telemetry reading: the documented 24 bytes, and every refusal", "[examples][iot]") {
    telemetry::reading r;
    r.seq = 0x0a0b0c0d;
    r.centi_celsius = -1234;
    r.centi_percent = 4550;
    r.millivolts = 3700;
    r.time_ms = 0x0102030405060708;
    const std::string wire = telemetry::encode(r);
    CHECK(wire == bytes({1,    1,    0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 0x2e, 0xfb, 0xc6, 0x11,
                         0x74, 0x0e, 0, 0, 8,    7,    6,    5,    4,    3,    2,    1}));
    std::string why;
    const auto back = telemetry::decode(wire, why);
    REQUIRE(back);
    CHECK((back->seq == r.seq && back->centi_celsius == -1234 && back->centi_percent == 4550 &&
           back->millivolts == 3700 && back->time_ms == r.time_ms));

    const auto refused = [&](std::string other) {
        CHECK_FALSE(telemetry::decode(other, why));
        return why;
    };
    CHECK(refused(wire.substr(0, 23)) == "reading of 23 bytes, expected 24");
    CHECK(refused(wire + "x") == "reading of 25 bytes, expected 24");
    std::string other = wire;
    other[0] = static_cast<char>(0x81);
    CHECK(refused(other) == "message type 129: a device sends readings (type 1)");
    other = wire;
    other[1] = 0;
    CHECK(refused(other) == "protocol version 0, expected 1");
    other = wire;
    other[14] = 1;
    CHECK(refused(other) == "reading with non-zero reserved bytes");
    telemetry::reading hot = r;
    hot.centi_celsius = 12501;
    CHECK(refused(telemetry::encode(hot)) == "temperature 12501 outside -4000..12500");
    telemetry::reading wet = r;
    wet.centi_percent = 10001;
    CHECK(refused(telemetry::encode(wet)) == "humidity 10001 outside 0..10000");
    telemetry::reading full = r;
    full.millivolts = 10001;
    CHECK(refused(telemetry::encode(full)) == "battery 10001 mV outside 0..10000");
}

TEST_CASE("telemetry to dashboards: a reading with the id, a status", "[examples][iot]") {
    telemetry::reading r;
    r.seq = 5;
    const std::string device = telemetry::encode(r);
    const std::string frame = telemetry::dashboard_reading("dev-7", device, 0x1122);
    REQUIRE(frame.size() == 32 + 5);
    CHECK(frame.substr(0, 4) == bytes({0x81, 1, 5, 1}));
    CHECK(frame.substr(4, 20) == device.substr(4, 20));
    CHECK(frame.substr(24, 8) == bytes({0x22, 0x11, 0, 0, 0, 0, 0, 0}));
    CHECK(frame.substr(32) == "dev-7");
    CHECK(telemetry::dashboard_status("dev-7", false) == bytes({0x82, 1, 5, 0}) + "dev-7");

    CHECK(telemetry::valid_id("dev-0001"));
    CHECK(telemetry::valid_id(std::string(64, 'a')));
    CHECK_FALSE(telemetry::valid_id(std::string(65, 'a')));
    CHECK_FALSE(telemetry::valid_id(""));
    CHECK_FALSE(telemetry::valid_id("a b"));
    CHECK_FALSE(telemetry::valid_id("\"><script>"));
}
