// permessage-deflate (RFC 7692) without sockets: the Sec-WebSocket-Extensions grammar, the
// negotiation of both sides against the offers real peers send, the compressor and the
// bounded decompressor on the RFC's own bytes and on random data, and the parser's RSV1 rules.
#include "support/client_bytes.hpp"

#include <wschat/ws/frame.hpp>
#include <wschat/ws/permessage_deflate.hpp>
#include <wschat/ws/session.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<ws::extension_element> parsed(std::string_view header) {
    auto elements = ws::parse_extensions(header);
    REQUIRE(elements);
    return *elements;
}

/// The response a server with `options` gives to `offer`, or "declined".
std::string answer(std::string_view offer, const ws::deflate_options& options = {}) {
    const auto agreement = ws::negotiate_deflate(parsed(offer), options);
    return agreement ? agreement->response : "declined";
}

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (const int v : values)
        out.push_back(static_cast<char>(v));
    return out;
}

std::string compressed(std::string_view message, ws::deflater& d) {
    std::string out;
    d.compress(message, out);
    return out;
}

std::string random_bytes(std::size_t size, std::mt19937& random) {
    std::string out(size, '\0');
    for (char& c : out)
        c = static_cast<char>(random());
    return out;
}

/// Text that compresses like chat: words from a small vocabulary.
std::string chat_text(std::size_t size, std::mt19937& random) {
    static const char* const words[] = {
        "hello ",      "world ", "the ", "room ", "is ", "open ", "{\"type\":\"message\",",
        "\"text\":\"", "ok\"} "};
    std::string out;
    while (out.size() < size)
        out += words[random() % (sizeof words / sizeof *words)];
    out.resize(size);
    return out;
}

/// What a parser hands its handler, compressed or not.
struct recorder {
    std::vector<std::pair<std::string, bool>> messages; // payload, compressed
    std::error_code error;
    void on_message(ws::opcode, std::string_view payload) { messages.emplace_back(payload, false); }
    void on_compressed_message(ws::opcode, std::string_view payload) {
        messages.emplace_back(payload, true);
    }
    void on_ping(std::string_view) {}
    void on_pong(std::string_view) {}
    void on_close(std::uint16_t, std::string_view) {}
    void on_error(std::error_code ec) { error = ec; }
};

/// A handler written before compression existed: no on_compressed_message.
struct plain_recorder {
    int messages = 0;
    std::error_code error;
    void on_message(ws::opcode, std::string_view) { ++messages; }
    void on_ping(std::string_view) {}
    void on_pong(std::string_view) {}
    void on_close(std::uint16_t, std::string_view) {}
    void on_error(std::error_code ec) { error = ec; }
};

template <class Handler>
void feed(ws::message_parser& parser, std::string bytes, Handler& handler) {
    parser.feed(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(), handler);
}

constexpr std::uint8_t rsv1 = 4; // test::encode's rsv argument is the three bits RSV1-3

/// A send queue that keeps what it is given.
struct collected : ws::frame_sink {
    std::vector<ws::shared_frame> frames;
    void push(ws::shared_frame frame) override { frames.push_back(std::move(frame)); }
};

/// The one frame `compression` queues for `frame`.
ws::shared_frame sent(ws::message_compression& compression, const ws::shared_frame& frame) {
    collected queue;
    compression.send(frame, queue);
    REQUIRE(queue.frames.size() == 1);
    return queue.frames[0];
}

/// What a session asks of its connection.
struct session_sink {
    ws::session_limits configured;
    std::vector<std::string> messages;
    std::uint16_t close_code = 0;
    const ws::session_limits& limits() const noexcept { return configured; }
    void message(ws::opcode, std::string_view payload) { messages.emplace_back(payload); }
    void send(ws::shared_frame) {}
    void send_close(ws::shared_frame, std::uint16_t code, std::string_view, std::error_code) {
        close_code = code;
    }
    void limit_hit(std::error_code) {}
    void closed() {}
};

void feed(ws::session<ws::role::server>& s, std::string bytes, session_sink& sink) {
    s.receive(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(),
              std::chrono::steady_clock::now(), sink);
}

/// A server session that negotiated permessage-deflate with a client offering `offer`.
ws::session<ws::role::server> deflating_session(session_sink& sink,
                                                std::string_view offer = "permessage-deflate") {
    ws::session<ws::role::server> s{sink.configured};
    s.use_compression(ws::permessage_deflate()->negotiate(offer, false).compression);
    REQUIRE(s.compression());
    return s;
}

} // namespace

TEST_CASE("extensions header: the RFC 6455 grammar, with whitespace, quotes and lists",
          "[unit][deflate][extensions]") {
    const auto elements =
        parsed("permessage-deflate ; client_max_window_bits; server_max_window_bits=\"10\" ,"
               " , x-webkit-deflate-frame,foo;bar=baz");
    REQUIRE(elements.size() == 3);
    CHECK(elements[0].name == "permessage-deflate");
    REQUIRE(elements[0].params.size() == 2);
    CHECK(elements[0].params[0].name == "client_max_window_bits");
    CHECK_FALSE(elements[0].params[0].value);
    CHECK(elements[0].params[1].name == "server_max_window_bits");
    CHECK(elements[0].params[1].value == std::string{"10"});
    CHECK(elements[1].name == "x-webkit-deflate-frame");
    CHECK(elements[1].params.empty());
    CHECK(elements[2].params.at(0).value == std::string{"baz"});
    CHECK(parsed("a;b=\"c\\d\"")[0].params[0].value == std::string{"cd"}); // escapes unescape

    for (const char* malformed : {"", " ", ",", "permessage-deflate;", "permessage-deflate; =1",
                                  "a b", "a;b=", "a;b=\"\"", "a;b=\"c d\"", "a;b=\"unterminated",
                                  "a;b=c d", "a;;b", "a=b", "a,b;", "\"a\"", "a;b=@"}) {
        CAPTURE(malformed);
        CHECK_FALSE(ws::parse_extensions(malformed));
    }
}

TEST_CASE("deflate negotiation: the offers of Chromium, Node ws and Python websockets",
          "[unit][deflate][negotiation]") {
    // Chromium, Node `ws` 8 and Python `websockets` 10 all offer this (captured from each); by
    // default the server gives up context takeover on both sides, so a broadcast is compressed
    // once and no inflater lives per connection.
    CHECK(answer("permessage-deflate; client_max_window_bits") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    // An offer that limits both windows (as `websockets` lets a client configure).
    CHECK(answer("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "server_max_window_bits=12; client_max_window_bits=12");
    const auto agreed = ws::negotiate_deflate(
        parsed("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"), {});
    REQUIRE(agreed);
    CHECK(agreed->params.server_max_window_bits == 12);
    CHECK(agreed->params.client_max_window_bits == 12);

    SECTION("a server that keeps its context and bounds the client's window") {
        ws::deflate_options options;
        options.server_context_takeover = true;
        options.client_context_takeover = true;
        options.server_max_window_bits = 11;
        options.client_max_window_bits = 10;
        CHECK(answer("permessage-deflate; client_max_window_bits", options) ==
              "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10");
        // A client that cannot be limited gets no client_max_window_bits (RFC 7692 §7.1.2.2).
        CHECK(answer("permessage-deflate", options) ==
              "permessage-deflate; server_max_window_bits=11");
        // What the client gives up, it gives up whatever the server prefers.
        CHECK(answer("permessage-deflate; server_no_context_takeover", options) ==
              "permessage-deflate; server_no_context_takeover; server_max_window_bits=11");
    }
}

TEST_CASE("deflate negotiation: bad offers are declined, and a later good one is taken",
          "[unit][deflate][negotiation]") {
    for (const char* offer : {
             "permessage-deflate; foo", // unknown parameter
             "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
             "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
             "permessage-deflate; server_max_window_bits",       // value required
             "permessage-deflate; server_max_window_bits=7",     // out of range
             "permessage-deflate; server_max_window_bits=16",    // out of range
             "permessage-deflate; server_max_window_bits=010",   // leading zero
             "permessage-deflate; client_max_window_bits=foo",   // not a number
             "permessage-deflate; server_no_context_takeover=1", // takes no value
             "permessage-deflate; server_max_window_bits=8",     // zlib cannot
             "x-webkit-deflate-frame",                           // another extension
         }) {
        CAPTURE(offer);
        CHECK(answer(offer) == "declined");
    }
    CHECK(answer("permessage-deflate; server_max_window_bits=8, permessage-deflate; "
                 "server_max_window_bits=9") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "server_max_window_bits=9");
    CHECK(answer("foo, permessage-deflate") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
}

TEST_CASE("deflate negotiation: the client's check of the server's response",
          "[unit][deflate][negotiation]") {
    ws::deflate_options offered;
    CHECK(ws::deflate_offer(offered) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "client_max_window_bits");
    // Our own server's answer to our own offer is accepted.
    const auto agreement = ws::negotiate_deflate(parsed(ws::deflate_offer(offered)), {});
    REQUIRE(agreement);
    const auto accepted = ws::accept_deflate_response(parsed(agreement->response)[0], offered);
    REQUIRE(accepted);
    CHECK(*accepted == agreement->params);

    for (const char* response : {
             "permessage-deflate", // dropped server_no_context_takeover
             "permessage-deflate; server_no_context_takeover; foo",
             "permessage-deflate; server_no_context_takeover; client_max_window_bits",
             "permessage-deflate; server_no_context_takeover; server_max_window_bits=20",
             "x-other; server_no_context_takeover",
         }) {
        CAPTURE(response);
        CHECK_FALSE(ws::accept_deflate_response(parsed(response)[0], offered));
    }
    offered.server_context_takeover = true;
    offered.server_max_window_bits = 10;
    CHECK_FALSE(ws::accept_deflate_response(
        parsed("permessage-deflate; server_max_window_bits=11")[0], offered));
    CHECK(ws::accept_deflate_response(parsed("permessage-deflate; server_max_window_bits=10")[0],
                                      offered));
}

TEST_CASE("deflate codec: the byte sequences of RFC 7692 §7.2.3", "[unit][deflate][codec]") {
    const std::string hello = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    ws::deflater standalone;
    CHECK(compressed("Hello", standalone) == hello);
    CHECK(compressed("Hello", standalone) == hello); // no context kept

    ws::deflater sharing{15, true};
    CHECK(compressed("Hello", sharing) == hello);
    CHECK(compressed("Hello", sharing) == bytes({0xf2, 0x00, 0x11, 0x00, 0x00})); // §7.2.3.2
    // §7.2.3.6: an empty message, also when zlib has nothing to flush.
    CHECK(compressed("", sharing) == bytes({0x00}));
    CHECK(compressed("", sharing) == bytes({0x00}));

    ws::inflater fresh;
    std::string out;
    CHECK_FALSE(fresh.decompress(hello, 1024, out));
    CHECK(out == "Hello");
    // §7.2.3.3: an uncompressed (stored) block; §7.2.3.5: a block with BFINAL set.
    CHECK_FALSE(fresh.decompress(
        bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}), 1024, out));
    CHECK(out == "Hello");
    CHECK_FALSE(
        fresh.decompress(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}), 1024, out));
    CHECK(out == "Hello");
    // §7.2.3.4: two deflate blocks in one message.
    CHECK_FALSE(fresh.decompress(
        bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}), 1024,
        out));
    CHECK(out == "Hello");

    ws::inflater keeping{true};
    CHECK_FALSE(keeping.decompress(hello, 1024, out));
    CHECK_FALSE(keeping.decompress(bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), 1024, out));
    CHECK(out == "Hello");
    // Without the context the back-reference has nothing to point at.
    CHECK(fresh.decompress(bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), 1024, out) ==
          ws::error::bad_compressed_data);
}

TEST_CASE("deflate codec: messages of 0 B to 1 MiB survive a round trip, with and without "
          "context takeover",
          "[unit][deflate][codec]") {
    std::mt19937 random{7};
    const bool takeover = GENERATE(false, true);
    ws::deflater compressor{15, takeover};
    ws::inflater decompressor{takeover};
    for (const std::size_t size : {0, 1, 2, 100, 4095, 4096, 65535, 65536, 300000, 1 << 20}) {
        for (const bool text : {true, false}) {
            CAPTURE(size, text, takeover);
            const std::string message = text ? chat_text(size, random) : random_bytes(size, random);
            const std::string wire = compressed(message, compressor);
            if (text && size >= 4096)
                CHECK(wire.size() * 3 < message.size()); // chat text shrinks
            // Deflate's worst case, which the parser allows beyond the size limit.
            CHECK(wire.size() <= message.size() + (message.size() >> 10) + 64);
            std::string out;
            REQUIRE_FALSE(decompressor.decompress(wire, message.size(), out));
            CHECK(out == message);
        }
    }
}

TEST_CASE("deflate codec: the size limit holds while inflating, and bad data is refused",
          "[unit][deflate][codec]") {
    ws::deflater compressor;
    const std::string bomb = compressed(std::string(8 << 20, '\0'), compressor);
    REQUIRE(bomb.size() < 16 * 1024); // 8 MiB of zeros in a few KiB

    ws::inflater decompressor;
    std::string out;
    CHECK(decompressor.decompress(bomb, 64 * 1024, out) == ws::error::message_too_big);
    CHECK(out.capacity() <= 2 * 64 * 1024); // stopped near the limit, not after 8 MiB
    // Exactly at the limit is fine; one byte over is not.
    const std::string exact = compressed(std::string(1000, 'x'), compressor);
    CHECK_FALSE(decompressor.decompress(exact, 1000, out));
    CHECK(out.size() == 1000);
    CHECK(decompressor.decompress(exact, 999, out) == ws::error::message_too_big);

    CHECK(decompressor.decompress(bytes({0xff, 0xff, 0xff, 0xff}), 1024, out) ==
          ws::error::bad_compressed_data);
    CHECK(ws::close_code_for(ws::error::bad_compressed_data) == ws::close_code::invalid_payload);
    // The same inflater goes on with the next message after an error.
    CHECK_FALSE(
        decompressor.decompress(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 1024, out));
    CHECK(out == "Hello");
}

TEST_CASE("parser: RSV1 marks a compressed message only where RFC 7692 allows it",
          "[unit][deflate][framing]") {
    const std::string hello = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    recorder r;
    ws::message_parser parser{ws::role::server, 1024};

    SECTION("without negotiation RSV1 is a protocol error") {
        feed(parser, test::encode(0x1, hello, true, true, rsv1), r);
        CHECK(r.error == ws::error::reserved_bits);
    }
    SECTION("negotiated: whole and fragmented compressed messages, compressed text unvalidated") {
        parser.allow_compressed(true);
        feed(parser, test::encode(0x1, hello, true, true, rsv1), r);
        feed(parser, test::encode(0x2, "raw"), r);
        feed(parser, test::encode(0x1, hello.substr(0, 3), false, true, rsv1), r);
        feed(parser, test::encode(0x0, hello.substr(3), true), r);
        CHECK_FALSE(r.error);
        REQUIRE(r.messages.size() == 3);
        CHECK(r.messages[0] == std::make_pair(hello, true)); // 0xf2 is no UTF-8 lead byte
        CHECK(r.messages[1] == std::make_pair(std::string{"raw"}, false));
        CHECK(r.messages[2] == std::make_pair(hello, true));
    }
    SECTION("negotiated: RSV1 on a continuation frame") {
        parser.allow_compressed(true);
        feed(parser, test::encode(0x1, "a", false, true, rsv1), r);
        feed(parser, test::encode(0x0, "b", true, true, rsv1), r);
        CHECK(r.error == ws::error::reserved_bits);
    }
    SECTION("negotiated: RSV1 on a control frame") {
        parser.allow_compressed(true);
        feed(parser, test::encode(0x9, "", true, true, rsv1), r);
        CHECK(r.error == ws::error::reserved_bits);
    }
    SECTION("negotiated: RSV2 and RSV3 stay reserved") {
        parser.allow_compressed(true);
        const std::uint8_t other = GENERATE(std::uint8_t{2}, std::uint8_t{1}, std::uint8_t{6});
        feed(parser, test::encode(0x1, hello, true, true, other), r);
        CHECK(r.error == ws::error::reserved_bits);
    }
    SECTION("negotiated: the compressed size is bounded by the limit plus deflate's overhead") {
        parser.allow_compressed(true);
        feed(parser, test::encode(0x2, std::string(1024 + 1 + 64, 'x'), true, true, rsv1), r);
        CHECK_FALSE(r.error);
        feed(parser, test::encode(0x2, std::string(1024 + 1 + 64 + 1, 'x'), true, true, rsv1), r);
        CHECK(r.error == ws::error::message_too_big);
    }
    SECTION("a handler that cannot take compressed messages fails the connection") {
        plain_recorder plain;
        parser.allow_compressed(true);
        feed(parser, test::encode(0x1, hello, true, true, rsv1), plain);
        CHECK(plain.messages == 0);
        CHECK(plain.error == ws::error::reserved_bits);
    }
}

TEST_CASE("permessage_deflate(): a broadcast is compressed once for every member that can "
          "share it, and each connection inflates what it receives",
          "[unit][deflate][negotiation]") {
    const auto negotiator = ws::permessage_deflate();
    CHECK_FALSE(negotiator->negotiate("", false).compression); // nothing offered: nothing agreed
    CHECK(negotiator->negotiate("permessage-deflate; a=\"b", false).error ==
          ws::error::bad_extensions);
    const auto declined = negotiator->negotiate("permessage-deflate; foo", false);
    CHECK_FALSE(declined.compression);
    CHECK_FALSE(declined.error);

    auto chromium = negotiator->negotiate("permessage-deflate; client_max_window_bits", false);
    auto python = negotiator->negotiate("permessage-deflate; client_max_window_bits", false);
    auto narrow = negotiator->negotiate("permessage-deflate; server_max_window_bits=10", false);
    REQUIRE(chromium.compression);
    REQUIRE(python.compression);
    REQUIRE(narrow.compression);
    CHECK(narrow.response == "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=10");

    std::mt19937 random{3};
    const ws::shared_frame broadcast = ws::make_frame(ws::opcode::text, chat_text(4000, random));
    const ws::shared_frame first = sent(*chromium.compression, broadcast);
    const ws::shared_frame second = sent(*python.compression, broadcast);
    const ws::shared_frame other = sent(*narrow.compression, broadcast);
    CHECK(first.data() == second.data()); // one compression, shared
    CHECK(first.data() != broadcast.data());
    CHECK(first.size() * 3 < broadcast.size());
    CHECK((first.data()[0] & 0x40) != 0); // RSV1
    CHECK(first.message_opcode() == ws::opcode::text);
    CHECK(other.data() != first.data()); // another window: compressed for itself

    for (const auto* compressed : {&first, &other}) {
        std::string out;
        REQUIRE_FALSE(python.compression->decompress(compressed->payload(), 1 << 20, out));
        CHECK(out == broadcast.payload());
    }
    // Short messages and control frames go as they are.
    const ws::shared_frame short_line = ws::make_frame(ws::opcode::text, "hi");
    CHECK(sent(*chromium.compression, short_line).data() == short_line.data());
    const ws::shared_frame ping = ws::make_frame(ws::opcode::ping, std::string(200, 'p'));
    CHECK(sent(*chromium.compression, ping).data() == ping.data());
}

TEST_CASE("permessage_deflate(): with context takeover each connection compresses on its own",
          "[unit][deflate][negotiation]") {
    ws::deflate_options options;
    options.server_context_takeover = true;
    options.client_context_takeover = true;
    options.server_max_window_bits = 10;
    options.mem_level = 4;
    options.min_size = 0;
    const auto negotiator = ws::permessage_deflate(options);
    auto a = negotiator->negotiate("permessage-deflate; client_max_window_bits", false);
    auto b = negotiator->negotiate("permessage-deflate; client_max_window_bits", false);
    REQUIRE(a.compression);
    CHECK(a.response == "permessage-deflate; server_max_window_bits=10");
    // A server that drops frames of slow readers cannot let one frame depend on another.
    CHECK(negotiator->negotiate("permessage-deflate; client_max_window_bits", true).response ==
          "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");

    const ws::shared_frame hello = ws::make_frame(ws::opcode::binary, "Hello");
    const ws::shared_frame a1 = sent(*a.compression, hello);
    const ws::shared_frame a2 = sent(*a.compression, hello);
    const ws::shared_frame b1 = sent(*b.compression, hello);
    CHECK(a1.data() != b1.data());
    CHECK(a1.payload() == b1.payload()); // the same first message on two fresh contexts
    CHECK(a2.size() < a1.size());        // the second refers back to the first
    // The receiving side keeps its context too: the client's stream decodes in order.
    ws::deflater client{15, true};
    std::string out;
    REQUIRE_FALSE(b.compression->decompress(compressed("Hello", client), 100, out));
    REQUIRE_FALSE(b.compression->decompress(compressed("Hello", client), 100, out));
    CHECK(out == "Hello");
}

TEST_CASE("session: compressed messages are inflated within the size limit and validated",
          "[unit][deflate][session]") {
    session_sink sink;
    sink.configured.max_message_size = 64 * 1024;
    ws::deflater client; // the client gave up its context (the server asked it to)

    SECTION("text and binary, whole and fragmented, among uncompressed messages") {
        auto s = deflating_session(sink);
        const std::string line = "a chat line that is long enough to be worth compressing";
        feed(s, test::encode(0x1, compressed(line, client), true, true, rsv1), sink);
        feed(s, test::encode(0x2, "plain"), sink);
        const std::string big(60000, 'q');
        const std::string wire = compressed(big, client);
        feed(s, test::encode(0x2, wire.substr(0, 10), false, true, rsv1), sink);
        feed(s, test::encode(0x0, wire.substr(10), true), sink);
        CHECK(sink.close_code == 0);
        CHECK(sink.messages == std::vector<std::string>{line, "plain", big});
    }
    SECTION("the limit applies to the inflated size: 1009") {
        auto s = deflating_session(sink);
        feed(s,
             test::encode(0x2, compressed(std::string(64 * 1024 + 1, 'q'), client), true, true,
                          rsv1),
             sink);
        CHECK(sink.messages.empty());
        CHECK(sink.close_code == 1009);
    }
    SECTION("data that does not inflate: 1007") {
        auto s = deflating_session(sink);
        feed(s, test::encode(0x1, bytes({0xff, 0xff, 0xff}), true, true, rsv1), sink);
        CHECK(sink.close_code == 1007);
    }
    SECTION("compressed text that is not UTF-8: 1007") {
        auto s = deflating_session(sink);
        feed(s, test::encode(0x1, compressed("caf\xc3", client), true, true, rsv1), sink);
        CHECK(sink.messages.empty());
        CHECK(sink.close_code == 1007);
    }
    SECTION("without the extension RSV1 stays a protocol error: 1002") {
        ws::session<ws::role::server> s{sink.configured};
        feed(s, test::encode(0x1, compressed("hello", client), true, true, rsv1), sink);
        CHECK(sink.close_code == 1002);
    }
}
