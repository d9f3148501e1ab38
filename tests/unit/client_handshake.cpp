// The client side of the opening handshake, sans I/O: the request bytes, the offer's checks,
// the response parser (whole, split, byte by byte, bounded), every refusal of the server's
// answer; then the whole exchange with a real ws::server over memory streams.
#include "support/echo.hpp"
#include "support/memory_client.hpp"

#include <wschat/ws/client_handshake.hpp>
#include <wschat/ws/detail/base64.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <system_error>

namespace {

/// The nonce of RFC 6455 §4.1's example, "the sample nonce", whose base64 is its key.
ws::handshake_nonce sample_nonce() {
    ws::handshake_nonce nonce{};
    std::memcpy(nonce.data(), "the sample nonce", nonce.size());
    return nonce;
}

constexpr const char* sample_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* sample_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// An offer to example.com with the RFC's sample nonce.
ws::client_handshake sample_handshake(ws::handshake_offer offer = {}) {
    if (offer.host.empty())
        offer.host = "example.com";
    return ws::client_handshake{std::move(offer), sample_nonce()};
}

/// The error of sending `offer`, from both overloads of request().
std::error_code offer_error(ws::handshake_offer offer) {
    const ws::client_handshake handshake{std::move(offer)};
    std::error_code ec;
    const std::string bytes = handshake.request(ec);
    CHECK(ec == ws::validate_offer(handshake.offer()));
    if (ec) {
        CHECK(bytes.empty());
        CHECK_THROWS_AS(handshake.request(), std::system_error);
    }
    return ec;
}

/// The Host header `offer` would send.
std::string host_of(const ws::handshake_offer& offer) {
    const std::string request = ws::client_handshake{offer}.request();
    const std::size_t at = request.find("\r\nHost: ") + 8;
    return request.substr(at, request.find("\r\n", at) - at);
}

/// A 101 answer to the sample key, with `extra` header lines (each ending in CRLF) added.
std::string answer_101(const std::string& extra = {}) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           std::string{sample_accept} + "\r\n" + extra + "\r\n";
}

/// Parses `text` in one feed; REQUIREs that it is a whole head and nothing more.
ws::http_response parse_ok(const std::string& text) {
    ws::response_parser parser;
    REQUIRE(parser.feed(text.data(), text.size()) == text.size());
    INFO(parser.error().message());
    REQUIRE(parser.current() == ws::response_parser::state::done);
    return parser.response();
}

/// The error of parsing `text` in one feed (empty when it parses).
std::error_code parse_error(const std::string& text, std::size_t max = 8192) {
    ws::response_parser parser{max};
    parser.feed(text.data(), text.size());
    return parser.error();
}

/// What `handshake` makes of the response `text`.
ws::handshake_result verify(const ws::client_handshake& handshake, const std::string& text) {
    return handshake.verify(parse_ok(text));
}

/// The error `handshake` finds in the response `text`.
std::error_code refusal(const ws::client_handshake& handshake, const std::string& text) {
    const ws::handshake_result result = verify(handshake, text);
    CHECK(result.accepted() == !result.error);
    if (result.error) {
        CHECK(result.subprotocol.empty());
        CHECK(result.extensions.empty());
    }
    return result.error;
}

} // namespace

TEST_CASE("client_handshake: the RFC 6455 sample key and its accept value",
          "[unit][client_handshake]") {
    const ws::client_handshake handshake = sample_handshake();
    CHECK(handshake.key() == sample_key);
    CHECK(ws::accept_key(handshake.key()) == sample_accept);
    const ws::handshake_result result = verify(handshake, answer_101());
    CHECK(result.accepted());
    CHECK(result.status == 101);
    CHECK(result.subprotocol.empty());
    CHECK(result.extensions.empty());
}

TEST_CASE("client_handshake: the request, byte for byte", "[unit][client_handshake]") {
    ws::handshake_offer offer;
    offer.host = "example.com";
    offer.port = 8080;
    offer.target = "/chat?room=1&name=Bob%20Li";
    offer.origin = "http://example.com:8080";
    offer.subprotocols = {"chat", "superchat"};
    offer.extensions = "permessage-deflate; client_max_window_bits";
    offer.headers = {{"Authorization", "Bearer abc"}, {"User-Agent", "wschat-test\t1"}};
    const std::string request = sample_handshake(offer).request();
    CHECK(request == "GET /chat?room=1&name=Bob%20Li HTTP/1.1\r\n"
                     "Host: example.com:8080\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Origin: http://example.com:8080\r\n"
                     "Sec-WebSocket-Protocol: chat, superchat\r\n"
                     "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                     "Authorization: Bearer abc\r\n"
                     "User-Agent: wschat-test\t1\r\n"
                     "\r\n");

    SECTION("the server side of the library reads it as a valid upgrade") {
        ws::request_parser parser;
        REQUIRE(parser.feed(request.data(), request.size()) == request.size());
        REQUIRE(parser.current() == ws::request_parser::state::done);
        const ws::http_request& req = parser.request();
        CHECK_FALSE(ws::validate_upgrade(req));
        CHECK(req.path() == "/chat");
        CHECK(req.query_param("name") == std::optional<std::string>{"Bob Li"});
        CHECK(ws::requested_subprotocols(req) ==
              std::vector<std::string_view>{"chat", "superchat"});
        CHECK(ws::make_upgrade_response(req).header("Sec-WebSocket-Accept") ==
              std::optional<std::string_view>{sample_accept});
    }
    SECTION("a minimal offer sends the handshake headers only") {
        CHECK(sample_handshake().request() == "GET / HTTP/1.1\r\n"
                                              "Host: example.com\r\n"
                                              "Upgrade: websocket\r\n"
                                              "Connection: Upgrade\r\n"
                                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                              "Sec-WebSocket-Version: 13\r\n"
                                              "\r\n");
    }
}

TEST_CASE("client_handshake: the Host header", "[unit][client_handshake]") {
    ws::handshake_offer offer;
    offer.host = "example.com";
    CHECK(host_of(offer) == "example.com");
    offer.port = 80;
    CHECK(host_of(offer) == "example.com");
    offer.port = 443;
    CHECK(host_of(offer) == "example.com:443");
    offer.secure = true;
    CHECK(host_of(offer) == "example.com");
    offer.port = 80;
    CHECK(host_of(offer) == "example.com:80");
    offer.port = 0;
    CHECK(host_of(offer) == "example.com");

    offer.secure = false;
    offer.host = "127.0.0.1";
    offer.port = 9001;
    CHECK(host_of(offer) == "127.0.0.1:9001");
    offer.host = "::1";
    CHECK(host_of(offer) == "[::1]:9001");
    offer.host = "[2001:db8::1]";
    CHECK(host_of(offer) == "[2001:db8::1]:9001");
    offer.port = 0;
    CHECK(host_of(offer) == "[2001:db8::1]");
    offer.host = "::ffff:192.0.2.1";
    CHECK(host_of(offer) == "[::ffff:192.0.2.1]");
    offer.host = "xn--bcher-kva.example";
    CHECK(host_of(offer) == "xn--bcher-kva.example");
    offer.host = "my%20host";
    CHECK(host_of(offer) == "my%20host");
}

TEST_CASE("client_handshake: an offer that cannot be sent is refused before anything is written",
          "[unit][client_handshake]") {
    ws::handshake_offer offer;
    offer.host = "example.com";
    CHECK_FALSE(offer_error(offer));

    SECTION("host") {
        for (const char* host :
             {"", "exa mple.com", "example.com/x", "example.com\r\nX-Evil: 1", "a@b", "[::1",
              "::1]", "[example.com]", "fe80::1%eth0", "[]", "%zz", "host%2", "caf\xc3\xa9"}) {
            INFO(host);
            offer.host = host;
            CHECK(offer_error(offer) == ws::error::invalid_host);
        }
    }
    SECTION("target") {
        for (const char* target : {"", "chat", "/a b", "/a#frag", "/a\r\nX-Evil: 1", "/\x7f",
                                   "/caf\xc3\xa9", "http://example.com/"}) {
            INFO(target);
            offer.target = target;
            CHECK(offer_error(offer) == ws::error::invalid_target);
        }
    }
    SECTION("subprotocols") {
        for (const std::vector<std::string>& protocols : std::vector<std::vector<std::string>>{
                 {""}, {"a b"}, {"chat,superchat"}, {"chat", "chat"}, {"x\r\ny"}, {"a/b"}}) {
            offer.subprotocols = protocols;
            CHECK(offer_error(offer) == ws::error::invalid_subprotocol);
        }
        offer.subprotocols = {"chat", "Chat",
                              "v1.chat"}; // distinct: subprotocols are case-sensitive
        CHECK_FALSE(offer_error(offer));
    }
    SECTION("origin and extensions") {
        offer.origin = "http://a\r\nX-Evil: 1";
        CHECK(offer_error(offer) == ws::error::invalid_header);
        offer.origin = "http://a";
        offer.extensions = "permessage-deflate\nX-Evil: 1";
        CHECK(offer_error(offer) == ws::error::invalid_header);
        offer.extensions = "per message; x";
        CHECK(offer_error(offer) == ws::error::invalid_header);
        offer.extensions = "; x=1";
        CHECK(offer_error(offer) == ws::error::invalid_header);
        offer.extensions = "a; p=1, b";
        CHECK_FALSE(offer_error(offer));
    }
    SECTION("extra headers") {
        for (const ws::http_header& header : std::vector<ws::http_header>{
                 {"", "x"},
                 {"X Evil", "x"},
                 {"X-Evil:", "x"},
                 {"X-Evil\r\n", "x"},
                 {"X-Ok", "a\r\nX-Evil: 1"},
                 {"X-Ok", "a\nb"},
                 {"X-Ok", std::string{"a\0b", 3}},
                 {"host", "elsewhere"},
                 {"UPGRADE", "h2c"},
                 {"Connection", "close"},
                 {"Origin", "http://b"},
                 {"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="},
                 {"Sec-WebSocket-Version", "8"},
                 {"Sec-WebSocket-Protocol", "x"},
                 {"Sec-WebSocket-Extensions", "x"},
                 {"Content-Length", "5"},
                 {"Transfer-Encoding", "chunked"},
             }) {
            INFO(header.name << ": " << header.value);
            offer.headers = {{"X-First", "fine"}, header};
            CHECK(offer_error(offer) == ws::error::invalid_header);
        }
    }
}

TEST_CASE("client_handshake: keys", "[unit][client_handshake]") {
    ws::handshake_offer offer;
    offer.host = "example.com";
    SECTION("the default key is fresh each time and encodes 16 bytes") {
        const ws::client_handshake a{offer};
        const ws::client_handshake b{offer};
        CHECK(a.key() != b.key());
        CHECK(a.key().size() == 24);
        CHECK(ws::detail::base64_decoded_size(a.key()) == std::optional<std::size_t>{16});
        CHECK(a.request().find("\r\nSec-WebSocket-Key: " + a.key() + "\r\n") != std::string::npos);
    }
    SECTION("a seeded generator gives a reproducible key") {
        std::mt19937 first{42};
        std::mt19937 second{42};
        const ws::handshake_nonce nonce = ws::make_handshake_nonce(first);
        CHECK(nonce == ws::make_handshake_nonce(second));
        CHECK(nonce != ws::make_handshake_nonce(first));
        CHECK(ws::client_handshake{offer, nonce}.key() ==
              ws::detail::base64_encode(nonce.data(), nonce.size()));
    }
}

TEST_CASE("response_parser: a server's answer", "[unit][client_handshake]") {
    const std::string head = answer_101("Sec-WebSocket-Protocol: chat\r\nX-Empty:\r\n");
    const ws::http_response response = parse_ok(head);
    CHECK(response.status == 101);
    CHECK(response.reason == "Switching Protocols");
    REQUIRE(response.headers.size() == 5);
    CHECK(response.headers[0].name == "Upgrade");
    CHECK(response.headers[0].value == "websocket");
    CHECK(response.headers[4].name == "X-Empty");
    CHECK(response.headers[4].value.empty());
    CHECK(response.header("sec-websocket-accept") ==
          std::optional<std::string_view>{sample_accept});
    CHECK(response.body.empty());

    const auto same = [&response](const ws::http_response& other) {
        if (other.status != response.status || other.reason != response.reason ||
            other.headers.size() != response.headers.size())
            return false;
        for (std::size_t i = 0; i < other.headers.size(); ++i)
            if (other.headers[i].name != response.headers[i].name ||
                other.headers[i].value != response.headers[i].value)
                return false;
        return true;
    };
    SECTION("split at every byte position") {
        for (std::size_t cut = 0; cut <= head.size(); ++cut) {
            INFO("cut at " << cut);
            ws::response_parser parser;
            std::size_t consumed = parser.feed(head.data(), cut);
            CHECK(consumed == cut);
            consumed += parser.feed(head.data() + cut, head.size() - cut);
            CHECK(consumed == head.size());
            REQUIRE(parser.current() == ws::response_parser::state::done);
            CHECK(same(parser.response()));
        }
    }
    SECTION("byte by byte, with frames behind the head left to the caller") {
        const std::string frame = "\x81\x05hello";
        const std::string text = head + frame;
        ws::response_parser parser;
        std::size_t at = 0;
        while (parser.current() == ws::response_parser::state::incomplete && at < text.size()) {
            CHECK(parser.feed(&text[at], 1) == 1);
            ++at;
        }
        CHECK(parser.current() == ws::response_parser::state::done);
        CHECK(at == head.size());
        CHECK(same(parser.response()));
        CHECK(parser.feed(text.data() + at, text.size() - at) == 0);
    }
    SECTION("bare LF line endings, a missing or empty reason, other versions and statuses") {
        const ws::http_response lf = parse_ok("HTTP/1.1 101 Switching Protocols\nUpgrade: "
                                              "websocket\nConnection: upgrade\n\n");
        CHECK(lf.headers.size() == 2);
        CHECK(lf.header("connection") == std::optional<std::string_view>{"upgrade"});
        CHECK(parse_ok("HTTP/1.1 101\r\n\r\n").reason.empty());
        CHECK(parse_ok("HTTP/1.1 101 \r\n\r\n").reason.empty());
        const ws::http_response refused =
            parse_ok("HTTP/1.0 403 Go\taway, now\r\nContent-Length: 4\r\n\r\n");
        CHECK(refused.status == 403);
        CHECK(refused.reason == "Go\taway, now");
        CHECK(parse_ok("HTTP/1.1 599 x\r\n\r\n").status == 599);
        CHECK(parse_ok("HTTP/1.1 100 Continue\r\n\r\n").status == 100);
    }
    SECTION("reset parses the final answer after an interim one") {
        const std::string interim = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
        const std::string text = interim + head;
        ws::response_parser parser;
        CHECK(parser.feed(text.data(), text.size()) == interim.size());
        CHECK(parser.response().status == 103);
        parser.reset();
        CHECK(parser.current() == ws::response_parser::state::incomplete);
        CHECK(parser.response().headers.empty());
        CHECK(parser.feed(text.data() + interim.size(), head.size()) == head.size());
        CHECK(same(parser.response()));
    }
}

TEST_CASE("response_parser: malformed and oversized heads", "[unit][client_handshake]") {
    SECTION("status lines") {
        for (const char* line :
             {"HTTP/2 101 Switching Protocols", "HTTP/2.0 101 Switching Protocols",
              "HTTP/0.9 101 x", "HTTP/1.1 1010 x", "HTTP/1.1 10 x", "HTTP/1.1 099 x",
              "HTTP/1.1 600 x", "HTTP/1.1 10a x", "HTTP/1.1 +01 x", "HTTP/1.1  101 x",
              "HTTP/1.1 101x", "HTTP/1.1\t101 x", "http/1.1 101 x", "ICY 200 OK", "",
              "HTTP/1.1 101 bad\x01reason", "HTTP/1.1 101 bad\x7freason", "\x16\x03\x01"}) {
            INFO(line);
            CHECK(parse_error(std::string{line} + "\r\n\r\n") == ws::error::bad_response);
        }
    }
    SECTION("header lines") {
        for (const char* line : {"No colon here", ": empty name", "Bad Name: x", "Bad\x01: x",
                                 " folded: x", "\tfolded", "X: a\x01z", "X: a\rz", "X: a\x7fz"}) {
            INFO(line);
            CHECK(parse_error("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n" + std::string{line} +
                              "\r\n\r\n") == ws::error::bad_response);
        }
    }
    SECTION("a head of exactly the limit is accepted, one byte more is not") {
        const std::string head = answer_101();
        CHECK_FALSE(parse_error(head, head.size()));
        CHECK(parse_error(head, head.size() - 1) == ws::error::header_too_large);
    }
    SECTION("a 100k-byte single line, whole or in pieces, never buffers past the limit") {
        const std::string line = "HTTP/1.1 101 " + std::string(100000, 'a');
        CHECK(parse_error(line) == ws::error::header_too_large);
        ws::response_parser parser;
        std::size_t consumed = 0;
        for (std::size_t at = 0; at < line.size(); at += 1000)
            consumed +=
                parser.feed(line.data() + at, std::min<std::size_t>(1000, line.size() - at));
        CHECK(parser.current() == ws::response_parser::state::failed);
        CHECK(parser.error() == ws::error::header_too_large);
        CHECK(consumed <= 8192);
    }
    SECTION("more than max_header_count headers") {
        std::string headers;
        for (std::size_t i = 0; i < ws::response_parser::max_header_count; ++i)
            headers += "X-" + std::to_string(i) + ": v\r\n";
        CHECK_FALSE(parse_error("HTTP/1.1 101 OK\r\n" + headers + "\r\n"));
        CHECK(parse_error("HTTP/1.1 101 OK\r\n" + headers + "X-Last: v\r\n\r\n") ==
              ws::error::header_too_large);
    }
    SECTION("a failed parser consumes nothing more") {
        ws::response_parser parser;
        const std::string bad = "SSH-2.0-OpenSSH_9.2\r\n";
        CHECK(parser.feed(bad.data(), bad.size()) == bad.size());
        CHECK(parser.current() == ws::response_parser::state::failed);
        CHECK(parser.error() == ws::error::bad_response);
        const std::string good = answer_101();
        CHECK(parser.feed(good.data(), good.size()) == 0);
    }
    SECTION("error codes have their own messages") {
        CHECK(ws::make_error_code(ws::error::bad_response).message() == "malformed HTTP response");
        for (const ws::error e :
             {ws::error::unexpected_status, ws::error::bad_accept_key, ws::error::duplicate_header,
              ws::error::unexpected_subprotocol, ws::error::unexpected_extension,
              ws::error::invalid_host, ws::error::invalid_target, ws::error::invalid_header,
              ws::error::invalid_subprotocol})
            CHECK(ws::make_error_code(e).message() != "unknown wschat error");
    }
}

TEST_CASE("client_handshake: every refusal of the server's answer", "[unit][client_handshake]") {
    const std::string accept = "Sec-WebSocket-Accept: " + std::string{sample_accept} + "\r\n";
    const std::string upgrade = "Upgrade: websocket\r\n";
    const std::string connection = "Connection: Upgrade\r\n";
    ws::handshake_offer offer;
    offer.subprotocols = {"chat", "superchat"};
    offer.extensions = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame";
    const ws::client_handshake handshake = sample_handshake(offer);
    const ws::client_handshake plain = sample_handshake();

    SECTION("a status other than 101 is reported with the status") {
        for (int status : {200, 301, 400, 401, 403, 404, 426, 429, 500, 502, 503}) {
            const ws::handshake_result result =
                verify(handshake, "HTTP/1.1 " + std::to_string(status) + " No\r\n" + upgrade +
                                      connection + accept + "\r\n");
            CHECK(result.error == ws::error::unexpected_status);
            CHECK(result.status == status);
            CHECK_FALSE(result.accepted());
        }
    }
    SECTION("Upgrade") {
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\n" + connection + accept + "\r\n") ==
              ws::error::missing_upgrade);
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\nUpgrade: h2c\r\n" + connection + accept +
                                 "\r\n") == ws::error::missing_upgrade);
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\nUpgrade: websockets\r\n" + connection + accept +
                                 "\r\n") == ws::error::missing_upgrade);
        CHECK_FALSE(refusal(plain, "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\n" + connection +
                                       accept + "\r\n"));
        CHECK_FALSE(refusal(plain, "HTTP/1.1 101 OK\r\nUpgrade: foo, websocket\r\n" + connection +
                                       accept + "\r\n"));
    }
    SECTION("Connection") {
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\n" + upgrade + accept + "\r\n") ==
              ws::error::missing_connection_upgrade);
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\n" + upgrade + "Connection: keep-alive\r\n" +
                                 accept + "\r\n") == ws::error::missing_connection_upgrade);
        CHECK(refusal(plain, "HTTP/1.1 101 OK\r\n" + upgrade + "Connection: upgraded\r\n" + accept +
                                 "\r\n") == ws::error::missing_connection_upgrade);
        CHECK_FALSE(refusal(plain, "HTTP/1.1 101 OK\r\n" + upgrade +
                                       "Connection: keep-alive, UPGRADE\r\n" + accept + "\r\n"));
        CHECK_FALSE(refusal(plain, "HTTP/1.1 101 OK\r\n" + upgrade +
                                       "Connection: keep-alive\r\nConnection: upgrade\r\n" +
                                       accept + "\r\n"));
    }
    SECTION("Sec-WebSocket-Accept") {
        const std::string head = "HTTP/1.1 101 OK\r\n" + upgrade + connection;
        CHECK(refusal(plain, head + "\r\n") == ws::error::bad_accept_key);
        CHECK(refusal(plain, head + "Sec-WebSocket-Accept:\r\n\r\n") == ws::error::bad_accept_key);
        CHECK(refusal(plain, head + "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n") ==
              ws::error::bad_accept_key);
        // The accept value of another key: a cached or replayed answer.
        CHECK(refusal(plain,
                      head + "Sec-WebSocket-Accept: " + ws::accept_key("AQIDBAUGBwgJCgsMDQ4PEA==") +
                          "\r\n\r\n") == ws::error::bad_accept_key);
        CHECK(refusal(plain, head + "Sec-WebSocket-Accept: " + sample_key + "\r\n\r\n") ==
              ws::error::bad_accept_key);
        CHECK(refusal(plain, head + accept + accept + "\r\n") == ws::error::duplicate_header);
        CHECK(refusal(plain, head + accept + "Sec-WebSocket-Accept: x\r\n\r\n") ==
              ws::error::duplicate_header);
        CHECK_FALSE(
            refusal(plain, head + "Sec-WebSocket-Accept:  \t" + sample_accept + " \r\n\r\n"));
    }
    SECTION("Sec-WebSocket-Protocol") {
        CHECK(refusal(plain, answer_101("Sec-WebSocket-Protocol: chat\r\n")) ==
              ws::error::unexpected_subprotocol);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Protocol: other\r\n")) ==
              ws::error::unexpected_subprotocol);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Protocol: Chat\r\n")) ==
              ws::error::unexpected_subprotocol);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Protocol: chat, superchat\r\n")) ==
              ws::error::unexpected_subprotocol);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Protocol:\r\n")) ==
              ws::error::unexpected_subprotocol);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Protocol: chat\r\n"
                                            "Sec-WebSocket-Protocol: chat\r\n")) ==
              ws::error::duplicate_header);
        const ws::handshake_result chosen =
            verify(handshake, answer_101("sec-websocket-protocol: superchat\r\n"));
        CHECK(chosen.accepted());
        CHECK(chosen.subprotocol == "superchat");
        const ws::handshake_result none = verify(handshake, answer_101());
        CHECK(none.accepted());
        CHECK(none.subprotocol.empty());
    }
    SECTION("Sec-WebSocket-Extensions") {
        CHECK(refusal(plain, answer_101("Sec-WebSocket-Extensions: permessage-deflate\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Extensions: x-other\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Extensions: permessage\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Extensions: permessage-deflate, "
                                            "permessage-deflate\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                            "Sec-WebSocket-Extensions: x-other\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake, answer_101("Sec-WebSocket-Extensions: ; x=1\r\n")) ==
              ws::error::unexpected_extension);
        CHECK(refusal(handshake,
                      answer_101("Sec-WebSocket-Extensions: client_max_window_bits\r\n")) ==
              ws::error::unexpected_extension);
        const ws::handshake_result accepted = verify(
            handshake,
            answer_101(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
                "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"));
        CHECK(accepted.accepted());
        CHECK(accepted.extensions ==
              "permessage-deflate; server_no_context_takeover, x-webkit-deflate-frame");
        const ws::handshake_result empty_list =
            verify(handshake, answer_101("Sec-WebSocket-Extensions: , \r\n"));
        CHECK(empty_list.accepted());
    }
    SECTION("the first failure is reported") {
        CHECK(refusal(handshake, "HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: nope\r\n\r\n") ==
              ws::error::missing_upgrade);
        CHECK(refusal(handshake, "HTTP/1.1 101 OK\r\n" + upgrade + connection +
                                     "Sec-WebSocket-Protocol: nope\r\n\r\n") ==
              ws::error::bad_accept_key);
    }
}

TEST_CASE("client_handshake: with a ws::server over memory streams",
          "[unit][memory][client_handshake]") {
    ws::server_options opts = test::memory_options();
    opts.subprotocols = {"superchat", "chat"};
    test::memory_server s{opts};
    test::echo(s.server);
    std::string opened_with;
    s.server.on_open([&](const auto& conn) {
        opened_with = conn->subprotocol();
        conn->send_text("welcome");
    });
    ws::handshake_offer offer;
    offer.host = "::1";
    offer.port = 9001;

    /// Sends the request of `handshake`, reads the answer one byte at a time into `parser`,
    /// and returns the bytes that came after the head.
    const auto exchange = [](test::memory_client& client, const ws::client_handshake& handshake,
                             ws::response_parser& parser) {
        client.send_raw(handshake.request());
        const std::string answer = client.read_raw();
        std::size_t at = 0;
        while (parser.current() == ws::response_parser::state::incomplete && at < answer.size())
            at += parser.feed(&answer[at], 1);
        REQUIRE(parser.current() == ws::response_parser::state::done);
        return answer.substr(at);
    };

    SECTION("a subprotocol offered and chosen; frames behind the 101 are kept") {
        offer.subprotocols = {"chat", "v2"};
        offer.extensions = "permessage-deflate"; // the server does not do it: declined silently
        const ws::client_handshake handshake{offer};
        test::memory_client client{s};
        ws::response_parser parser;
        const std::string after = exchange(client, handshake, parser);
        const ws::handshake_result result = handshake.verify(parser.response());
        INFO(result.error.message());
        REQUIRE(result.accepted());
        CHECK(result.status == 101);
        CHECK(result.subprotocol == "chat");
        CHECK(result.extensions.empty());
        CHECK(opened_with == "chat");
        std::size_t used = 0;
        const auto welcome = test::decode_frame(after, used);
        REQUIRE(welcome);
        CHECK(welcome->payload == "welcome");
        CHECK(used == after.size());

        client.send_text("echo me");
        const auto echo = client.read_frame();
        REQUIRE(echo);
        CHECK(echo->payload == "echo me");
    }
    SECTION("no subprotocol in common: the server chooses none, which is accepted") {
        offer.subprotocols = {"v3"};
        const ws::client_handshake handshake{offer};
        test::memory_client client{s};
        ws::response_parser parser;
        exchange(client, handshake, parser);
        const ws::handshake_result result = handshake.verify(parser.response());
        CHECK(result.accepted());
        CHECK(result.subprotocol.empty());
    }
    SECTION("a refusal keeps its status") {
        s.server.on_upgrade([](const ws::http_request& req, ws::upgrade_decision& decision) {
            if (req.header("Authorization") != std::optional<std::string_view>{"Bearer ok"})
                decision.reject(401, "who are you");
        });
        offer.headers = {{"Authorization", "Bearer wrong"}};
        const ws::client_handshake refused{offer};
        test::memory_client client{s};
        ws::response_parser parser;
        const std::string body = exchange(client, refused, parser);
        const ws::handshake_result result = refused.verify(parser.response());
        CHECK(result.error == ws::error::unexpected_status);
        CHECK(result.status == 401);
        CHECK(parser.response().header("Content-Length") ==
              std::optional<std::string_view>{std::to_string(body.size())});
        CHECK(body == "who are you");

        offer.headers = {{"Authorization", "Bearer ok"}};
        const ws::client_handshake allowed{offer};
        test::memory_client second{s};
        ws::response_parser again;
        exchange(second, allowed, again);
        CHECK(allowed.verify(again.response()).accepted());
    }
    SECTION("the answer to another attempt's key is refused") {
        const ws::client_handshake first{offer};
        const ws::client_handshake second{offer};
        test::memory_client client{s};
        ws::response_parser parser;
        exchange(client, first, parser);
        CHECK(first.verify(parser.response()).accepted());
        CHECK(second.verify(parser.response()).error == ws::error::bad_accept_key);
    }
}
