// Tests for RFC 6455 framing: header encoding, masking, and the incremental message parser.
#include <wschat/ws/frame.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using ws::opcode;

/// One callback made by the parser.
struct event {
    enum class kind { message, ping, pong, close, error };
    kind what = kind::error;
    opcode op = opcode::continuation; // message only
    std::string payload;              // message, ping, pong payload; close reason
    std::uint16_t code = 0;           // close only
    std::error_code ec;               // error only

    friend bool operator==(const event& a, const event& b) {
        return a.what == b.what && a.op == b.op && a.payload == b.payload && a.code == b.code &&
               a.ec == b.ec;
    }
};

std::ostream& operator<<(std::ostream& os, const event& e) {
    static const char* const names[] = {"message", "ping", "pong", "close", "error"};
    os << names[static_cast<int>(e.what)] << "(op " << static_cast<int>(e.op) << ", "
       << e.payload.size() << " bytes, code " << e.code;
    if (e.ec)
        os << ", " << e.ec.message();
    return os << ")";
}

/// A parser handler that records every callback, and where message payloads pointed.
struct recorder {
    std::vector<event> events;
    std::vector<const char*> message_data;

    void on_message(opcode op, std::string_view payload) {
        events.push_back({event::kind::message, op, std::string{payload}, 0, {}});
        message_data.push_back(payload.data());
    }
    void on_ping(std::string_view payload) {
        events.push_back({event::kind::ping, opcode::continuation, std::string{payload}, 0, {}});
    }
    void on_pong(std::string_view payload) {
        events.push_back({event::kind::pong, opcode::continuation, std::string{payload}, 0, {}});
    }
    void on_close(std::uint16_t code, std::string_view reason) {
        events.push_back({event::kind::close, opcode::continuation, std::string{reason}, code, {}});
    }
    void on_error(std::error_code ec) {
        events.push_back({event::kind::error, opcode::continuation, {}, 0, ec});
    }
};

event message(opcode op, std::string payload) {
    return {event::kind::message, op, std::move(payload), 0, {}};
}
event ping(std::string payload) {
    return {event::kind::ping, opcode::continuation, std::move(payload), 0, {}};
}
event pong(std::string payload) {
    return {event::kind::pong, opcode::continuation, std::move(payload), 0, {}};
}
event close(std::uint16_t code, std::string reason) {
    return {event::kind::close, opcode::continuation, std::move(reason), code, {}};
}
event failure(ws::error e) {
    return {event::kind::error, opcode::continuation, {}, 0, make_error_code(e)};
}

std::uint8_t* bytes_of(std::string& s) {
    return reinterpret_cast<std::uint8_t*>(s.data());
}

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values)
        out += static_cast<char>(v);
    return out;
}

/// Feeds a copy of `stream` in pieces ending at each of `cuts` (then the rest), as a
/// socket might deliver it, and returns the events.
std::vector<event> parse_in_pieces(std::string stream, const std::vector<std::size_t>& cuts,
                                   ws::role r = ws::role::server,
                                   std::uint64_t max = 16 * 1024 * 1024) {
    ws::message_parser parser{r, max};
    recorder rec;
    std::size_t start = 0;
    for (std::size_t cut : cuts) {
        parser.feed(bytes_of(stream) + start, cut - start, rec);
        start = cut;
    }
    parser.feed(bytes_of(stream) + start, stream.size() - start, rec);
    return rec.events;
}

std::vector<event> parse(std::string stream, ws::role r = ws::role::server,
                         std::uint64_t max = 16 * 1024 * 1024) {
    return parse_in_pieces(std::move(stream), {}, r, max);
}

const ws::mask_key rfc_key{0x37, 0xfa, 0x21, 0x3d};
const ws::mask_key key{0xA5, 0x3C, 0x0F, 0x81};

std::string binary_pattern(std::size_t size) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        payload[i] = static_cast<char>((i * 131 + 7) & 0xFF);
    return payload;
}

} // namespace

TEST_CASE("opcode classification", "[framing]") {
    CHECK(ws::is_control(opcode::close));
    CHECK(ws::is_control(opcode::ping));
    CHECK(ws::is_control(opcode::pong));
    CHECK_FALSE(ws::is_control(opcode::continuation));
    CHECK_FALSE(ws::is_control(opcode::text));
    CHECK_FALSE(ws::is_control(opcode::binary));
}

TEST_CASE("RFC 6455 section 5.7 example frames", "[framing]") {
    const std::string hello_unmasked = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    const std::string hello_masked =
        bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    const std::string hel = bytes({0x01, 0x03, 0x48, 0x65, 0x6c});
    const std::string lo = bytes({0x80, 0x02, 0x6c, 0x6f});
    const std::string ping_unmasked = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    const std::string pong_masked =
        bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});

    SECTION("single-frame unmasked text") {
        CHECK(ws::encode_frame(opcode::text, "Hello") == hello_unmasked);
        CHECK(parse(hello_unmasked, ws::role::client) ==
              std::vector<event>{message(opcode::text, "Hello")});
    }
    SECTION("single-frame masked text") {
        CHECK(ws::encode_masked_frame(opcode::text, "Hello", rfc_key) == hello_masked);
        CHECK(parse(hello_masked) == std::vector<event>{message(opcode::text, "Hello")});
    }
    SECTION("fragmented unmasked text") {
        CHECK(ws::encode_frame(opcode::text, "Hel", false) == hel);
        CHECK(ws::encode_frame(opcode::continuation, "lo") == lo);
        CHECK(parse(hel + lo, ws::role::client) ==
              std::vector<event>{message(opcode::text, "Hello")});
    }
    SECTION("unmasked ping and masked pong") {
        CHECK(ws::encode_frame(opcode::ping, "Hello") == ping_unmasked);
        CHECK(ws::encode_masked_frame(opcode::pong, "Hello", rfc_key) == pong_masked);
        CHECK(parse(ping_unmasked, ws::role::client) == std::vector<event>{ping("Hello")});
        CHECK(parse(pong_masked) == std::vector<event>{pong("Hello")});
    }
    SECTION("256 bytes of binary in one unmasked frame") {
        const std::string payload = binary_pattern(256);
        const std::string frame = ws::encode_frame(opcode::binary, payload);
        CHECK(frame.substr(0, 4) == bytes({0x82, 0x7E, 0x01, 0x00}));
        CHECK(frame.substr(4) == payload);
        CHECK(parse(frame, ws::role::client) ==
              std::vector<event>{message(opcode::binary, payload)});
    }
    SECTION("64 KiB of binary in one unmasked frame") {
        const std::string payload = binary_pattern(65536);
        const std::string frame = ws::encode_frame(opcode::binary, payload);
        CHECK(frame.substr(0, 10) ==
              bytes({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
        CHECK(frame.substr(10) == payload);
        CHECK(parse(frame, ws::role::client) ==
              std::vector<event>{message(opcode::binary, payload)});
    }
}

TEST_CASE("encode_frame_header", "[framing]") {
    std::array<std::uint8_t, ws::max_frame_header_size> header{};
    SECTION("FIN and opcode in the first byte") {
        CHECK(ws::encode_frame_header(header.data(), opcode::binary, 0, false) == 2);
        CHECK(header[0] == 0x02);
        CHECK(header[1] == 0x00);
        CHECK(ws::encode_frame_header(header.data(), opcode::close, 0) == 2);
        CHECK(header[0] == 0x88);
    }
    SECTION("a key sets MASK and follows the length") {
        CHECK(ws::encode_frame_header(header.data(), opcode::text, 70000, true, &key) == 14);
        CHECK(header[1] == 0xFF);
        CHECK(std::vector<std::uint8_t>(header.begin() + 2, header.begin() + 10) ==
              std::vector<std::uint8_t>{0, 0, 0, 0, 0, 0x01, 0x11, 0x70});
        CHECK(std::equal(key.begin(), key.end(), header.begin() + 10));
    }
}

TEST_CASE("every payload length boundary round-trips", "[framing]") {
    const std::size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, std::size_t{1} << 20};
    for (std::size_t length : lengths) {
        INFO("payload length " << length);
        const std::string payload = binary_pattern(length);
        const std::size_t length_field = length < 126 ? 0 : length <= 0xFFFF ? 2 : 8;
        const int length_code = length < 126       ? static_cast<int>(length)
                                : length <= 0xFFFF ? 126
                                                   : 127;

        const std::string masked = ws::encode_masked_frame(opcode::binary, payload, key);
        REQUIRE(masked.size() == 2 + length_field + 4 + length);
        CHECK((static_cast<unsigned char>(masked[1]) & 0x7F) == length_code);
        CHECK((static_cast<unsigned char>(masked[1]) & 0x80) == 0x80);
        CHECK(parse(masked) == std::vector<event>{message(opcode::binary, payload)});

        const std::string unmasked = ws::encode_frame(opcode::binary, payload);
        REQUIRE(unmasked.size() == 2 + length_field + length);
        CHECK(parse(unmasked, ws::role::client) ==
              std::vector<event>{message(opcode::binary, payload)});

        const std::string text(length, 't');
        CHECK(parse(ws::encode_masked_frame(opcode::text, text, key)) ==
              std::vector<event>{message(opcode::text, text)});
    }
}

TEST_CASE("apply_mask equals a byte-by-byte XOR", "[framing]") {
    SECTION("every key offset 0..7 and size 0..40") {
        for (std::size_t offset = 0; offset < 8; ++offset) {
            for (std::size_t size = 0; size <= 40; ++size) {
                std::string data = binary_pattern(size);
                std::string expected = data;
                for (std::size_t i = 0; i < size; ++i)
                    expected[i] = static_cast<char>(expected[i] ^ key[(offset + i) % 4]);
                ws::apply_mask(bytes_of(data), size, key, offset);
                INFO("offset " << offset << " size " << size);
                CHECK(data == expected);
            }
        }
    }
    SECTION("masking piece by piece with running offsets equals masking at once") {
        const std::string original = binary_pattern(100);
        std::string whole = original;
        ws::apply_mask(bytes_of(whole), whole.size(), key);
        for (std::size_t cut = 0; cut <= original.size(); ++cut) {
            std::string pieces = original;
            ws::apply_mask(bytes_of(pieces), cut, key, 0);
            ws::apply_mask(bytes_of(pieces) + cut, pieces.size() - cut, key, cut);
            INFO("cut at " << cut);
            CHECK(pieces == whole);
        }
    }
    SECTION("masking twice restores the data") {
        std::string data = binary_pattern(77);
        ws::apply_mask(bytes_of(data), data.size(), key, 3);
        ws::apply_mask(bytes_of(data), data.size(), key, 3);
        CHECK(data == binary_pattern(77));
    }
}

TEST_CASE("a stream split anywhere parses the same", "[framing]") {
    // A fragmented text message with code points split across fragments and a ping in the
    // middle, a 16-bit-length binary message, an empty text message, a pong and a close.
    const std::string euro = "\xE2\x82\xAC";
    std::string stream;
    stream += ws::encode_masked_frame(opcode::text, "price: 5" + euro.substr(0, 1), key, false);
    stream += ws::encode_masked_frame(opcode::ping, "are you there?", key);
    stream += ws::encode_masked_frame(opcode::continuation, euro.substr(1) + " or 6", key, false);
    stream += ws::encode_masked_frame(opcode::continuation, "\xCE\xBA\xE1\xBD\xB9", key);
    stream += ws::encode_masked_frame(opcode::binary, binary_pattern(300), key);
    stream += ws::encode_masked_frame(opcode::text, "", key);
    stream += ws::encode_masked_frame(opcode::pong, "", key);
    stream += ws::encode_masked_frame(opcode::close, ws::close_payload(1000, "bye"), key);

    const std::vector<event> expected = {
        ping("are you there?"),
        message(opcode::text, "price: 5" + euro + " or 6\xCE\xBA\xE1\xBD\xB9"),
        message(opcode::binary, binary_pattern(300)),
        message(opcode::text, ""),
        pong(""),
        close(1000, "bye"),
    };

    SECTION("whole") {
        CHECK(parse(stream) == expected);
    }
    SECTION("split at every byte position") {
        for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
            INFO("cut at " << cut);
            CHECK(parse_in_pieces(stream, {cut}) == expected);
        }
    }
    SECTION("byte by byte") {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < stream.size(); ++i)
            cuts.push_back(i);
        CHECK(parse_in_pieces(stream, cuts) == expected);
    }
    SECTION("random piece sizes") {
        std::mt19937 random{99};
        std::uniform_int_distribution<std::size_t> step{1, 40};
        for (int round = 0; round < 200; ++round) {
            std::vector<std::size_t> cuts;
            for (std::size_t at = step(random); at < stream.size(); at += step(random))
                cuts.push_back(at);
            CHECK(parse_in_pieces(stream, cuts) == expected);
        }
    }
    SECTION("the same stream, unmasked, read by a client") {
        std::string unmasked;
        unmasked += ws::encode_frame(opcode::text, "price: 5" + euro.substr(0, 1), false);
        unmasked += ws::encode_frame(opcode::ping, "are you there?");
        unmasked += ws::encode_frame(opcode::continuation, euro.substr(1) + " or 6", false);
        unmasked += ws::encode_frame(opcode::continuation, "\xCE\xBA\xE1\xBD\xB9");
        unmasked += ws::encode_frame(opcode::binary, binary_pattern(300));
        unmasked += ws::encode_frame(opcode::text, "");
        unmasked += ws::encode_frame(opcode::pong, "");
        unmasked += ws::encode_frame(opcode::close, ws::close_payload(1000, "bye"));
        for (std::size_t cut = 0; cut <= unmasked.size(); ++cut) {
            INFO("cut at " << cut);
            CHECK(parse_in_pieces(unmasked, {cut}, ws::role::client) == expected);
        }
    }
}

TEST_CASE("a control frame split across feeds survives a memory release between them",
          "[framing]") {
    // The connection releases the parser's buffers after every read; a ping whose payload
    // arrives in three reads must still come out whole.
    std::string ping_frame = ws::encode_masked_frame(opcode::ping, "split ping payload", key);
    ws::message_parser parser;
    recorder rec;
    const std::size_t cuts[] = {9, 15, ping_frame.size()};
    std::size_t at = 0;
    for (const std::size_t cut : cuts) {
        CHECK(parser.feed(bytes_of(ping_frame) + at, cut - at, rec) == cut - at);
        parser.release_memory();
        at = cut;
    }
    CHECK(rec.events == std::vector<event>{ping("split ping payload")});
}

TEST_CASE("control frames between fragments are delivered at once", "[framing]") {
    std::string first = ws::encode_masked_frame(opcode::binary, "ab", key, false);
    std::string between = ws::encode_masked_frame(opcode::ping, "p", key);
    std::string last = ws::encode_masked_frame(opcode::continuation, "cd", key);

    ws::message_parser parser;
    recorder rec;
    CHECK(parser.feed(bytes_of(first), first.size(), rec) == first.size());
    CHECK(rec.events.empty());
    CHECK(parser.buffered_bytes() == 2);
    CHECK(parser.feed(bytes_of(between), between.size(), rec) == between.size());
    CHECK(rec.events == std::vector<event>{ping("p")});
    CHECK(parser.feed(bytes_of(last), last.size(), rec) == last.size());
    CHECK(rec.events == std::vector<event>{ping("p"), message(opcode::binary, "abcd")});
    CHECK(parser.buffered_bytes() == 0);
}

TEST_CASE("delivery is zero-copy for whole unfragmented frames", "[framing]") {
    std::string two = ws::encode_masked_frame(opcode::text, "first", key) +
                      ws::encode_masked_frame(opcode::binary, binary_pattern(1000), key);
    ws::message_parser parser;
    recorder rec;

    SECTION("both payloads are views into the caller's buffer, unmasked in place") {
        CHECK(parser.feed(bytes_of(two), two.size(), rec) == two.size());
        REQUIRE(rec.message_data.size() == 2);
        CHECK(rec.message_data[0] == two.data() + 6);
        CHECK(rec.message_data[1] == two.data() + 11 + 8);
        CHECK(two.substr(6, 5) == "first");
        CHECK(parser.buffered_bytes() == 0);
    }
    SECTION("a frame split across feeds is buffered, then its capacity can be released") {
        const std::size_t cut = 11 + 500;
        CHECK(parser.feed(bytes_of(two), cut, rec) == cut);
        CHECK(parser.buffered_bytes() == 500 - 8);
        parser.release_memory(); // must keep the partial message
        CHECK(parser.buffered_bytes() == 500 - 8);
        CHECK(parser.feed(bytes_of(two) + cut, two.size() - cut, rec) == two.size() - cut);
        REQUIRE(rec.events.size() == 2);
        CHECK(rec.events[1] == message(opcode::binary, binary_pattern(1000)));
        CHECK((rec.message_data[1] < two.data() || rec.message_data[1] >= two.data() + two.size()));
        CHECK(parser.buffered_bytes() == 0);
        parser.release_memory();
        CHECK(parser.buffered_bytes() == 0);
    }
}

TEST_CASE("every protocol error is reported with its error and close code", "[framing]") {
    struct error_case {
        const char* name;
        std::string stream;
        ws::role role;
        ws::error expected;
        ws::close_code close;
    };
    const auto masked_header = [](int first, int second) {
        return bytes({first, second | 0x80, key[0], key[1], key[2], key[3]});
    };
    using ws::error;
    const auto protocol = ws::close_code::protocol_error;
    const std::string open_text = ws::encode_masked_frame(opcode::text, "a", key, false);
    const std::vector<error_case> cases = {
        {"RSV1", masked_header(0xC1, 0), ws::role::server, error::reserved_bits, protocol},
        {"RSV2", masked_header(0xA1, 0), ws::role::server, error::reserved_bits, protocol},
        {"RSV3", masked_header(0x91, 0), ws::role::server, error::reserved_bits, protocol},
        {"opcode 3", masked_header(0x83, 0), ws::role::server, error::unknown_opcode, protocol},
        {"opcode 7", masked_header(0x87, 0), ws::role::server, error::unknown_opcode, protocol},
        {"opcode B", masked_header(0x8B, 0), ws::role::server, error::unknown_opcode, protocol},
        {"opcode F", masked_header(0x8F, 0), ws::role::server, error::unknown_opcode, protocol},
        {"unmasked to server", bytes({0x81, 0x00}), ws::role::server, error::unmasked_frame,
         protocol},
        {"masked to client", masked_header(0x81, 0), ws::role::client, error::masked_frame,
         protocol},
        {"ping of 126 bytes", masked_header(0x89, 126) + bytes({0, 126}), ws::role::server,
         error::control_too_long, protocol},
        {"close of 127-form length", masked_header(0x88, 127), ws::role::server,
         error::control_too_long, protocol},
        {"ping without FIN", masked_header(0x09, 0), ws::role::server, error::fragmented_control,
         protocol},
        {"continuation first", masked_header(0x80, 0), ws::role::server,
         error::unexpected_continuation, protocol},
        {"text inside a fragmented message", open_text + masked_header(0x81, 0), ws::role::server,
         error::expected_continuation, protocol},
        {"binary inside a fragmented message", open_text + masked_header(0x82, 0), ws::role::server,
         error::expected_continuation, protocol},
        {"16-bit length below 126", bytes({0x82, 0xFE, 0x00, 0x7D}) + masked_header(0, 0).substr(2),
         ws::role::server, error::non_minimal_length, protocol},
        {"64-bit length below 65536",
         bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}) + masked_header(0, 0).substr(2),
         ws::role::server, error::non_minimal_length, protocol},
        {"64-bit length with its top bit",
         bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}) + masked_header(0, 0).substr(2),
         ws::role::server, error::length_msb_set, protocol},
        {"invalid UTF-8 text", ws::encode_masked_frame(opcode::text, "\xC0\x80", key),
         ws::role::server, error::invalid_utf8, ws::close_code::invalid_payload},
        {"close with a 1-byte payload", ws::encode_masked_frame(opcode::close, "\x03", key),
         ws::role::server, error::bad_close_payload, protocol},
        {"close code 1005 on the wire",
         ws::encode_masked_frame(opcode::close, bytes({0x03, 0xED}), key), ws::role::server,
         error::bad_close_code, protocol},
        {"close reason not UTF-8",
         ws::encode_masked_frame(opcode::close, bytes({0x03, 0xE8, 0xFF}), key), ws::role::server,
         error::invalid_close_reason, ws::close_code::invalid_payload},
        {"message over the limit",
         ws::encode_masked_frame(opcode::binary, std::string(2000, 'x'), key), ws::role::server,
         error::message_too_big, ws::close_code::message_too_big},
    };
    for (const error_case& c : cases) {
        INFO(c.name);
        // The parser unmasks in place, so every parse gets its own copy of `original`.
        const std::string original = c.stream + ws::encode_masked_frame(opcode::ping, "after", key);
        std::string stream = original;
        ws::message_parser parser{c.role, 1000};
        recorder rec;
        const std::size_t consumed = parser.feed(bytes_of(stream), stream.size(), rec);
        CHECK(rec.events == std::vector<event>{failure(c.expected)});
        CHECK(ws::close_code_for(make_error_code(c.expected)) == c.close);
        CHECK(parser.done());
        CHECK(consumed <= c.stream.size());
        CHECK(parser.feed(bytes_of(stream) + consumed, stream.size() - consumed, rec) == 0);
        CHECK(rec.events.size() == 1);

        // Fed byte by byte, the error is the same and nothing follows it.
        std::vector<std::size_t> every_byte;
        for (std::size_t i = 1; i < original.size(); ++i)
            every_byte.push_back(i);
        CHECK(parse_in_pieces(original, every_byte, c.role, 1000) ==
              std::vector<event>{failure(c.expected)});
    }
}

TEST_CASE("rules that need only the first two bytes fail before the rest arrives", "[framing]") {
    std::string start = bytes({0xC1, 0x80});
    ws::message_parser parser;
    recorder rec;
    CHECK(parser.feed(bytes_of(start), 2, rec) == 2);
    CHECK(rec.events == std::vector<event>{failure(ws::error::reserved_bits)});
}

TEST_CASE("message_too_big is raised at the header, before any payload", "[framing]") {
    ws::message_parser parser{ws::role::server, 1024 * 1024};
    recorder rec;
    SECTION("a single frame declaring 64 MiB") {
        std::array<std::uint8_t, ws::max_frame_header_size> header{};
        const std::size_t size =
            ws::encode_frame_header(header.data(), opcode::binary, 64 * 1024 * 1024, true, &key);
        CHECK(parser.feed(header.data(), size, rec) == size);
        CHECK(rec.events == std::vector<event>{failure(ws::error::message_too_big)});
        CHECK(parser.buffered_bytes() == 0);
    }
    SECTION("a continuation that would take the message past the limit") {
        std::string first =
            ws::encode_masked_frame(opcode::binary, std::string(600 * 1024, 'a'), key, false);
        CHECK(parser.feed(bytes_of(first), first.size(), rec) == first.size());
        CHECK(parser.buffered_bytes() == 600 * 1024);
        std::array<std::uint8_t, ws::max_frame_header_size> header{};
        const std::size_t size =
            ws::encode_frame_header(header.data(), opcode::continuation, 500 * 1024, true, &key);
        CHECK(parser.feed(header.data(), size, rec) == size);
        CHECK(rec.events == std::vector<event>{failure(ws::error::message_too_big)});
    }
    SECTION("exactly the limit is accepted") {
        std::string frame =
            ws::encode_masked_frame(opcode::binary, std::string(1024 * 1024, 'a'), key);
        CHECK(parser.feed(bytes_of(frame), frame.size(), rec) == frame.size());
        REQUIRE(rec.events.size() == 1);
        CHECK(rec.events[0].payload.size() == 1024 * 1024);
    }
    SECTION("the limit can be changed") {
        parser.set_max_message_size(10);
        CHECK(parser.max_message_size() == 10);
        CHECK(parse(ws::encode_masked_frame(opcode::text, "0123456789", key), ws::role::server,
                    10) == std::vector<event>{message(opcode::text, "0123456789")});
        CHECK(parse(ws::encode_masked_frame(opcode::text, "0123456789!", key), ws::role::server,
                    10) == std::vector<event>{failure(ws::error::message_too_big)});
    }
}

TEST_CASE("text is validated as UTF-8 incrementally", "[framing][utf8]") {
    SECTION("invalid bytes fail inside a partially received frame") {
        std::string frame =
            ws::encode_masked_frame(opcode::text, "abcd\xC0" + std::string(995, 'x'), key);
        ws::message_parser parser;
        recorder rec;
        parser.feed(bytes_of(frame), 8 + 10, rec); // 8-byte header, 10 payload bytes
        CHECK(rec.events == std::vector<event>{failure(ws::error::invalid_utf8)});
    }
    SECTION("a code point split across fragments is valid") {
        std::string stream = ws::encode_masked_frame(opcode::text, "\xE2\x82", key, false) +
                             ws::encode_masked_frame(opcode::continuation, "\xAC", key);
        CHECK(parse(stream) == std::vector<event>{message(opcode::text, "\xE2\x82\xAC")});
    }
    SECTION("an impossible continuation fails at the next fragment, before the message ends") {
        std::string stream = ws::encode_masked_frame(opcode::text, "\xF4", key, false) +
                             ws::encode_masked_frame(opcode::continuation, "\x90", key, false);
        CHECK(parse(stream) == std::vector<event>{failure(ws::error::invalid_utf8)});
    }
    SECTION("a message that ends inside a code point fails") {
        CHECK(parse(ws::encode_masked_frame(opcode::text, "ok\xE2\x82", key)) ==
              std::vector<event>{failure(ws::error::invalid_utf8)});
        std::string stream = ws::encode_masked_frame(opcode::text, "ok", key, false) +
                             ws::encode_masked_frame(opcode::continuation, "\xF0\x9F", key);
        CHECK(parse(stream) == std::vector<event>{failure(ws::error::invalid_utf8)});
    }
    SECTION("binary messages are not validated") {
        CHECK(parse(ws::encode_masked_frame(opcode::binary, "\xC0\x80", key)) ==
              std::vector<event>{message(opcode::binary, "\xC0\x80")});
    }
    SECTION("a bad byte anywhere in a long message is found, whatever the cut") {
        const std::string ascii(200, 'y');
        for (std::size_t at = 0; at < ascii.size(); at += 7) {
            std::string text = ascii;
            text[at] = '\xFF';
            for (std::size_t cut : {std::size_t{0}, std::size_t{9}, std::size_t{61}}) {
                INFO("bad byte at " << at << ", cut at " << cut);
                CHECK(parse_in_pieces(ws::encode_masked_frame(opcode::text, text, key), {cut}) ==
                      std::vector<event>{failure(ws::error::invalid_utf8)});
            }
        }
    }
    SECTION("a valid multibyte character anywhere in a long message is accepted") {
        const std::string ascii(100, 'y');
        for (std::size_t at = 0; at <= ascii.size(); ++at) {
            std::string text = ascii;
            text.insert(at, "\xF0\x9F\x98\x80");
            INFO("emoji at " << at);
            CHECK(parse_in_pieces(ws::encode_masked_frame(opcode::text, text, key), {at}) ==
                  std::vector<event>{message(opcode::text, text)});
        }
    }
}

TEST_CASE("close frames end the stream", "[framing]") {
    SECTION("an empty close reports 1005") {
        CHECK(parse(ws::encode_masked_frame(opcode::close, "", key)) ==
              std::vector<event>{close(1005, "")});
    }
    SECTION("code and reason") {
        CHECK(parse(ws::encode_masked_frame(opcode::close, ws::close_payload(4001, "kicked"),
                                            key)) == std::vector<event>{close(4001, "kicked")});
    }
    SECTION("bytes after the close frame are not consumed") {
        const std::string close_frame = ws::encode_masked_frame(opcode::close, "", key);
        std::string stream = close_frame + ws::encode_masked_frame(opcode::ping, "", key);
        ws::message_parser parser;
        recorder rec;
        CHECK(parser.feed(bytes_of(stream), stream.size(), rec) == close_frame.size());
        CHECK(parser.done());
        CHECK(parser.feed(bytes_of(stream) + close_frame.size(), stream.size() - close_frame.size(),
                          rec) == 0);
        CHECK(rec.events == std::vector<event>{close(1005, "")});
    }
}

TEST_CASE("close_payload encodes the code and a bounded reason", "[framing]") {
    SECTION("code big-endian, then the reason") {
        CHECK(ws::close_payload(1001, "bye") == bytes({0x03, 0xE9, 'b', 'y', 'e'}));
    }
    SECTION("no_status gives an empty payload") {
        CHECK(
            ws::close_payload(static_cast<std::uint16_t>(ws::close_code::no_status), "x").empty());
    }
    SECTION("a long reason is cut at a code point boundary") {
        std::string reason;
        for (int i = 0; i < 100; ++i)
            reason += "\xC3\xA9"; // é, 2 bytes each: 123 would split one
        const std::string payload = ws::close_payload(1000, reason);
        CHECK(payload.size() == 2 + 122);
        CHECK(ws::is_valid_utf8(payload.substr(2)));
        CHECK(reason.compare(0, 122, payload, 2) == 0);
        CHECK(ws::close_payload(1000, std::string(200, 'r')).size() == ws::max_control_payload);
    }
    SECTION("its output parses back") {
        CHECK(parse(ws::encode_frame(opcode::close, ws::close_payload(3000, "app")),
                    ws::role::client) == std::vector<event>{close(3000, "app")});
    }
}
