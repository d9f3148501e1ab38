// permessage-deflate end to end through a real ws::server over memory streams, in the manner
// of the Autobahn suite's sections 12 (data sets x message sizes) and 13 (parameter offers):
// the client compresses with zlib directly (tests/support/raw_deflate.hpp) under what the
// server answered, sends whole and fragmented messages, and inflates the echoes. Also the
// failures RFC 7692 and the size limit call for, and the handshake's answers to bad offers.
#include "support/echo.hpp"
#include "support/memory_client.hpp"
#include "support/raw_deflate.hpp"

#include <wschat/ws/extensions.hpp>
#include <wschat/ws/permessage_deflate.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <string>
#include <vector>

using test::memory_client;
using test::memory_server;

namespace {

/// The server's options in each of the examples' modes, compressing every message.
ws::server_options deflate_server(bool context_takeover) {
    ws::server_options opts = test::memory_options();
    ws::deflate_options deflate;
    deflate.min_size = 0;
    if (context_takeover) {
        deflate.server_context_takeover = true;
        deflate.client_context_takeover = true;
        deflate.server_max_window_bits = 11;
    }
    opts.compression = ws::permessage_deflate(deflate);
    return opts;
}

/// The value of `name` in a response head, or nothing.
std::optional<std::string> header(const std::string& head, const std::string& name) {
    const std::string key = "\r\n" + name + ": ";
    const std::size_t at = head.find(key);
    if (at == std::string::npos)
        return std::nullopt;
    const std::size_t start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
}

/// A client's side of one negotiated connection: its compressor and decompressor set up from
/// the server's answer, as RFC 7692 §7.1 says each parameter binds.
struct deflating_client {
    memory_client client;
    test::raw_deflate out;
    test::raw_deflate in;

    static deflating_client connect(memory_server& server, const std::string& offer) {
        memory_client client{server};
        client.send_raw(test::upgrade_request("/", "Sec-WebSocket-Extensions: " + offer + "\r\n"));
        const std::optional<std::string> head = client.read_head();
        REQUIRE(head);
        REQUIRE(head->rfind("HTTP/1.1 101", 0) == 0);
        const auto answer = header(*head, "Sec-WebSocket-Extensions");
        REQUIRE(answer);
        const auto elements = ws::parse_extensions(*answer);
        REQUIRE(elements);
        REQUIRE(elements->size() == 1);
        bool client_keeps = true, server_keeps = true;
        int client_bits = 15;
        for (const ws::extension_param& p : (*elements)[0].params) {
            if (p.name == "client_no_context_takeover")
                client_keeps = false;
            else if (p.name == "server_no_context_takeover")
                server_keeps = false;
            else if (p.name == "client_max_window_bits")
                client_bits = std::stoi(p.value.value());
        }
        client.allow_compressed();
        using direction = test::raw_deflate::direction;
        return {std::move(client),
                {direction::compress, client_bits, client_keeps},
                {direction::decompress, 15, server_keeps}};
    }

    /// Sends `message` compressed, in `fragments` frames (RSV1 on the first only).
    void send(std::uint8_t opcode, const std::string& message, std::size_t fragments = 1) {
        const std::string payload = out.compress(message);
        const std::size_t piece = payload.size() / fragments + 1;
        std::string wire;
        for (std::size_t i = 0, at = 0; i < fragments; ++i, at += piece) {
            const bool last = i + 1 == fragments;
            wire += test::encode(i == 0 ? opcode : test::op_continuation,
                                 at < payload.size()
                                     ? payload.substr(at, last ? std::string::npos : piece)
                                     : std::string{},
                                 last, true, i == 0 ? 4 : 0);
        }
        client.send_raw(wire);
    }

    /// The next message the server sent, inflated when it came compressed.
    test::frame receive() {
        std::optional<test::frame> f = client.read_frame();
        REQUIRE(f);
        REQUIRE(f->fin);
        if (f->rsv1)
            f->payload = in.decompress(f->payload);
        return *f;
    }
};

/// The data sets, like Autobahn 12.1-12.5: JSON, German text in UTF-8, HTML, random bytes
/// (incompressible), zeros. Each cut to `size` (text at a character boundary).
std::string data_set(int which, std::size_t size, std::mt19937& random) {
    static const char* const json = "{\"type\":\"message\",\"from\":\"alice\",\"seq\":12345,"
                                    "\"text\":\"hello there, how is the game going?\"},";
    static const char* const german = "Habe nun, ach! Philosophie, Juristerei und Medizin, "
                                      "und leider auch Theologie durchaus studiert, mit heißem "
                                      "Bemühn. Da steh ich nun, ich armer Tor! ";
    static const char* const html = "<tr><td class=\"name\">wschat</td><td>header-only</td>"
                                    "<td><a href=\"/docs\">docs</a></td></tr>\n";
    std::string out;
    if (which == 3) {
        out.resize(size);
        for (char& c : out)
            c = static_cast<char>(random());
        return out;
    }
    if (which == 4)
        return std::string(size, '\0');
    const char* const unit = which == 0 ? json : which == 1 ? german : html;
    while (out.size() < size)
        out += unit;
    std::size_t cut = size;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
        --cut; // not inside a UTF-8 sequence
    out.resize(cut);
    return out;
}

} // namespace

TEST_CASE("permessage-deflate conformance: data sets x sizes x fragmentation x offers, echoed",
          "[unit][deflate][conformance]") {
    const bool takeover = GENERATE(false, true);
    const std::string offer = GENERATE(
        std::string{"permessage-deflate"},                             // Autobahn 13.1
        std::string{"permessage-deflate; client_no_context_takeover"}, // 13.2
        std::string{"permessage-deflate; client_max_window_bits"},     // Chromium, ws, websockets
        std::string{"permessage-deflate; client_max_window_bits=9"},   // 13.3
        std::string{"permessage-deflate; server_max_window_bits=9"},   // 13.5-like
        std::string{"permessage-deflate; client_no_context_takeover; client_max_window_bits=9; "
                    "server_no_context_takeover; server_max_window_bits=9"}, // 13.5
        std::string{"permessage-deflate; server_max_window_bits=8, "
                    "permessage-deflate; client_max_window_bits=15"}); // 13.7: the first declined
    CAPTURE(takeover, offer);
    memory_server server{deflate_server(takeover)};
    test::echo(server.server);
    deflating_client c = deflating_client::connect(server, offer);

    std::mt19937 random{42};
    for (int set = 0; set < 5; ++set) {
        for (const std::size_t size :
             {16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}) {
            for (const std::size_t fragments : {1, 3}) {
                CAPTURE(set, size, fragments);
                const std::string message = data_set(set, size, random);
                const std::uint8_t opcode = set == 3 || set == 4 ? test::op_binary : test::op_text;
                c.send(opcode, message, fragments);
                const test::frame echo = c.receive();
                CHECK(echo.rsv1); // min_size 0: everything goes compressed
                CHECK(echo.opcode == opcode);
                REQUIRE(echo.payload == message);
            }
        }
    }
    c.client.send_close(1000);
    CHECK(c.client.read_frames().back().close_code() == 1000);
}

TEST_CASE("permessage-deflate conformance: an uncompressed message, control frames and short "
          "messages on a compressed connection",
          "[unit][deflate][conformance]") {
    ws::server_options opts = test::memory_options();
    opts.compression = ws::permessage_deflate(); // min_size 128
    memory_server server{opts};
    test::echo(server.server);
    deflating_client c = deflating_client::connect(server, "permessage-deflate");

    c.client.send(test::op_text, "sent plain"); // RSV1 is per message: plain is fine
    test::frame echo = c.receive();
    CHECK_FALSE(echo.rsv1); // under min_size: sent plain
    CHECK(echo.payload == "sent plain");
    c.client.send(test::op_ping, "are you there");
    echo = c.receive();
    CHECK(echo.opcode == test::op_pong);
    CHECK_FALSE(echo.rsv1);
    const std::string long_line(300, 'x');
    c.send(test::op_text, long_line);
    echo = c.receive();
    CHECK(echo.rsv1);
    CHECK(echo.payload == long_line);
}

TEST_CASE("permessage-deflate conformance: violations close with the RFC's codes",
          "[unit][deflate][conformance]") {
    ws::server_options opts = test::memory_options();
    opts.compression = ws::permessage_deflate();
    opts.max_message_size = 64 * 1024;
    memory_server server{opts};
    test::echo(server.server);
    deflating_client c = deflating_client::connect(server, "permessage-deflate");
    std::uint16_t expected = 0;

    SECTION("RSV1 on a continuation frame: 1002") {
        c.client.send_raw(test::encode(test::op_text, c.out.compress("abc"), false, true, 4) +
                          test::encode(test::op_continuation, "", true, true, 4));
        expected = 1002;
    }
    SECTION("RSV1 on a ping: 1002") {
        c.client.send_raw(test::encode(test::op_ping, "", true, true, 4));
        expected = 1002;
    }
    SECTION("RSV2: 1002") {
        c.client.send_raw(test::encode(test::op_text, "abc", true, true, 2));
        expected = 1002;
    }
    SECTION("data that does not inflate: 1007") {
        c.client.send_raw(test::encode(test::op_binary, "\xff\xff\xff\xff", true, true, 4));
        expected = 1007;
    }
    SECTION("compressed text that is not UTF-8: 1007") {
        c.send(test::op_text, "caf\xc3");
        expected = 1007;
    }
    SECTION("a bomb: 200 bytes that inflate past the 64 KiB limit: 1009, no echo") {
        const std::string bomb = c.out.compress(std::string(1 << 20, 'a'));
        REQUIRE(bomb.size() < 2048);
        c.client.send_raw(test::encode(test::op_binary, bomb, true, true, 4));
        expected = 1009;
    }
    const std::vector<test::frame> frames = c.client.read_frames();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].opcode == test::op_close);
    CHECK(frames[0].close_code() == expected);
}

TEST_CASE("permessage-deflate conformance: the handshake's answers to offers",
          "[unit][deflate][conformance][handshake]") {
    ws::server_options opts = test::memory_options();
    opts.compression = ws::permessage_deflate();
    memory_server server{opts};
    test::echo(server.server);
    const auto answer = [&](const std::string& extensions) {
        memory_client client{server};
        client.send_raw(test::upgrade_request("/", extensions));
        return client.read_head().value_or("");
    };
    // Declined offers: the connection opens without the extension.
    for (const char* declined :
         {"permessage-deflate; foo", "permessage-deflate; server_max_window_bits=8",
          "permessage-deflate; server_no_context_takeover; "
          "server_no_context_takeover",
          "x-webkit-deflate-frame"}) {
        CAPTURE(declined);
        const std::string head =
            answer(std::string{"Sec-WebSocket-Extensions: "} + declined + "\r\n");
        CHECK(head.rfind("HTTP/1.1 101", 0) == 0);
        CHECK_FALSE(header(head, "Sec-WebSocket-Extensions"));
    }
    // A malformed header fails the handshake (RFC 6455 §9.1): 400.
    CHECK(answer("Sec-WebSocket-Extensions: permessage-deflate; a=\"b\r\n")
              .rfind("HTTP/1.1 400", 0) == 0);
    // Offers in two header lines are one list: the first acceptable one is taken.
    const std::string two = answer("Sec-WebSocket-Extensions: permessage-deflate; bar\r\n"
                                   "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    CHECK(
        header(two, "Sec-WebSocket-Extensions") ==
        std::string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"});
    // A server without compression ignores the offer.
    memory_server plain;
    memory_client client{plain};
    client.send_raw(test::upgrade_request("/", "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
    const std::string head = client.read_head().value_or("");
    CHECK(head.rfind("HTTP/1.1 101", 0) == 0);
    CHECK_FALSE(header(head, "Sec-WebSocket-Extensions"));
}
