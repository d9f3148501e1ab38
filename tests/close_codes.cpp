// Tests for close codes: which may appear on the wire, and how the parser treats them.
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>

namespace {

/// Records the close or error a single close frame produces.
struct close_recorder {
    int closes = 0;
    std::uint16_t code = 0;
    std::string reason;
    std::error_code ec;

    void on_message(ws::opcode, std::string_view) {}
    void on_ping(std::string_view) {}
    void on_pong(std::string_view) {}
    void on_close(std::uint16_t c, std::string_view r) {
        ++closes;
        code = c;
        reason = r;
    }
    void on_error(std::error_code e) { ec = e; }
};

const ws::mask_key key{0x01, 0x02, 0x03, 0x04};

/// Parses one masked close frame whose payload is `payload`.
close_recorder parse_close(const std::string& payload) {
    std::string frame = ws::encode_masked_frame(ws::opcode::close, payload, key);
    ws::message_parser parser;
    close_recorder rec;
    parser.feed(reinterpret_cast<std::uint8_t*>(frame.data()), frame.size(), rec);
    CHECK(parser.done());
    return rec;
}

std::string code_bytes(unsigned code) {
    return {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

} // namespace

TEST_CASE("is_valid_wire_close_code follows RFC 6455 section 7.4 and the IANA registry",
          "[close]") {
    // RFC 6455 §7.4.1 defines 1000-1003 and 1007-1011 for use in frames; the IANA registry
    // added 1012-1014. 1004 is reserved; 1005, 1006 and 1015 must never be sent.
    // §7.4.2: 0-999 unused, 1000-2999 reserved for the protocol, 3000-4999 for libraries
    // and applications, 5000+ undefined.
    const std::set<unsigned> registered = {1000, 1001, 1002, 1003, 1007, 1008,
                                           1009, 1010, 1011, 1012, 1013, 1014};
    for (unsigned code = 0; code < 6000; ++code) {
        const bool application = code >= 3000 && code <= 4999;
        const bool expected = application || registered.count(code) == 1;
        INFO("code " << code);
        REQUIRE(ws::is_valid_wire_close_code(static_cast<std::uint16_t>(code)) == expected);
    }
}

TEST_CASE("close frames with valid codes are delivered", "[close]") {
    for (unsigned code : {1000u, 1001u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1011u, 1012u,
                          1013u, 1014u, 3000u, 3999u, 4000u, 4999u}) {
        INFO("code " << code);
        const close_recorder rec = parse_close(code_bytes(code) + "reason");
        CHECK(rec.closes == 1);
        CHECK(rec.code == code);
        CHECK(rec.reason == "reason");
        CHECK_FALSE(rec.ec);
    }
}

TEST_CASE("close frames the parser rejects", "[close]") {
    SECTION("codes that may not be on the wire") {
        for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u, 65535u}) {
            INFO("code " << code);
            const close_recorder rec = parse_close(code_bytes(code));
            CHECK(rec.closes == 0);
            CHECK(rec.ec == ws::error::bad_close_code);
            CHECK(ws::close_code_for(rec.ec) == ws::close_code::protocol_error);
        }
    }
    SECTION("a one-byte payload") {
        const close_recorder rec = parse_close("\x03");
        CHECK(rec.closes == 0);
        CHECK(rec.ec == ws::error::bad_close_payload);
        CHECK(ws::close_code_for(rec.ec) == ws::close_code::protocol_error);
    }
    SECTION("a reason that is not UTF-8") {
        for (const char* reason : {"\xFF", "ok\xC0\x80", "\xED\xA0\x80", "cut \xE2\x82"}) {
            INFO("reason " << reason);
            const close_recorder rec = parse_close(code_bytes(1000) + reason);
            CHECK(rec.closes == 0);
            CHECK(rec.ec == ws::error::invalid_close_reason);
            CHECK(ws::close_code_for(rec.ec) == ws::close_code::invalid_payload);
        }
    }
    SECTION("an empty payload is not an error: it means no status") {
        const close_recorder rec = parse_close("");
        CHECK(rec.closes == 1);
        CHECK(rec.code == static_cast<std::uint16_t>(ws::close_code::no_status));
    }
}

TEST_CASE("close codes have names", "[close]") {
    CHECK(ws::close_code_name(1000) == "normal closure");
    CHECK(ws::close_code_name(1009) == "message too big");
    CHECK(ws::close_code_name(4321) == "application defined");
    CHECK(ws::close_code_name(2500) == "unknown");
}
