// Tests for the opening handshake: request parsing, RFC 6455 §4.2.1 checks, responses.
#include <wschat/ws/handshake.hpp>

#include <catch2/catch.hpp>

#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

const header_list browser_headers = {
    {"Host", "example.com:8080"},
    {"Connection", "Upgrade"},
    {"Pragma", "no-cache"},
    {"Cache-Control", "no-cache"},
    {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"},
    {"Upgrade", "websocket"},
    {"Origin", "http://example.com:8080"},
    {"Sec-WebSocket-Version", "13"},
    {"Accept-Encoding", "gzip, deflate, br"},
    {"Accept-Language", "en-US,en;q=0.9"},
    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"},
    {"Sec-WebSocket-Protocol", "chat, superchat"},
};

std::string request_text(const std::string& request_line, const header_list& headers,
                         const char* eol = "\r\n") {
    std::string text = request_line + eol;
    for (const auto& [name, value] : headers)
        text += name + ": " + value + eol;
    return text + eol;
}

const std::string browser_request = request_text("GET /chat?room=1 HTTP/1.1", browser_headers);

/// `browser_headers` with the header `name` replaced by `value`, or removed if value is null.
header_list with_header(const std::string& name, const char* value) {
    header_list headers;
    for (const auto& header : browser_headers) {
        if (header.first != name)
            headers.push_back(header);
        else if (value != nullptr)
            headers.emplace_back(name, value);
    }
    return headers;
}

/// Parses `text` in one feed; REQUIREs that it is a complete head.
ws::http_request parse_ok(const std::string& text) {
    ws::request_parser parser;
    REQUIRE(parser.feed(text.data(), text.size()) == text.size());
    INFO(parser.error().message());
    REQUIRE(parser.current() == ws::request_parser::state::done);
    return parser.request();
}

/// The error of parsing `text` in one feed (empty when it parses).
std::error_code parse_error(const std::string& text, std::size_t max = 8192) {
    ws::request_parser parser{max};
    parser.feed(text.data(), text.size());
    return parser.error();
}

} // namespace

TEST_CASE("a browser's upgrade request is parsed and accepted", "[handshake]") {
    const ws::http_request req = parse_ok(browser_request);

    SECTION("request line and headers") {
        CHECK(req.method == "GET");
        CHECK(req.target == "/chat?room=1");
        CHECK(req.path() == "/chat");
        CHECK(req.query() == "room=1");
        CHECK(req.version_major == 1);
        CHECK(req.version_minor == 1);
        REQUIRE(req.headers.size() == browser_headers.size());
        for (std::size_t i = 0; i < browser_headers.size(); ++i) {
            CHECK(req.headers[i].name == browser_headers[i].first);
            CHECK(req.headers[i].value == browser_headers[i].second);
        }
        CHECK(req.header("host") == std::optional<std::string_view>{"example.com:8080"});
        CHECK(req.header("SEC-WEBSOCKET-KEY") ==
              std::optional<std::string_view>{"dGhlIHNhbXBsZSBub25jZQ=="});
        CHECK_FALSE(req.header("Cookie").has_value());
    }
    SECTION("validation and the 101 response") {
        CHECK(ws::is_websocket_request(req));
        CHECK_FALSE(ws::validate_upgrade(req));
        const ws::http_response response = ws::make_upgrade_response(req, "chat");
        CHECK(response.status == 101);
        const std::string wire = response.serialize();
        CHECK(wire.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
        CHECK(wire.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
        CHECK(wire.find("\r\nConnection: Upgrade\r\n") != std::string::npos);
        CHECK(wire.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
              std::string::npos);
        CHECK(wire.find("\r\nSec-WebSocket-Protocol: chat\r\n") != std::string::npos);
        CHECK(wire.find("Content-Length") == std::string::npos);
        CHECK(wire.size() >= 4);
        CHECK(wire.substr(wire.size() - 4) == "\r\n\r\n");
        CHECK(wire.find("\r\n\r\n") == wire.size() - 4);
    }
    SECTION("no subprotocol header when none is chosen") {
        CHECK(ws::make_upgrade_response(req).serialize().find("Sec-WebSocket-Protocol") ==
              std::string::npos);
    }
    SECTION("offered subprotocols") {
        CHECK(ws::requested_subprotocols(req) ==
              std::vector<std::string_view>{"chat", "superchat"});
    }
}

TEST_CASE("upgrade requests that RFC 6455 section 4.2.1 rejects", "[handshake]") {
    struct rejection {
        const char* name;
        std::string text;
        ws::error expected;
        int status;
    };
    const std::vector<rejection> cases = {
        {"POST", request_text("POST /chat HTTP/1.1", browser_headers), ws::error::not_get, 400},
        {"HTTP/1.0", request_text("GET /chat HTTP/1.0", browser_headers),
         ws::error::bad_http_version, 400},
        {"no Host", request_text("GET / HTTP/1.1", with_header("Host", nullptr)),
         ws::error::missing_host, 400},
        {"no Upgrade", request_text("GET / HTTP/1.1", with_header("Upgrade", nullptr)),
         ws::error::missing_upgrade, 400},
        {"Upgrade: h2c", request_text("GET / HTTP/1.1", with_header("Upgrade", "h2c")),
         ws::error::missing_upgrade, 400},
        {"Connection: keep-alive only",
         request_text("GET / HTTP/1.1", with_header("Connection", "keep-alive")),
         ws::error::missing_connection_upgrade, 400},
        {"no Connection", request_text("GET / HTTP/1.1", with_header("Connection", nullptr)),
         ws::error::missing_connection_upgrade, 400},
        {"no key", request_text("GET / HTTP/1.1", with_header("Sec-WebSocket-Key", nullptr)),
         ws::error::bad_key, 400},
        {"key of 15 bytes",
         request_text("GET / HTTP/1.1", with_header("Sec-WebSocket-Key",
                                                    "MDEyMzQ1Njc4OWFiY2Rl")), // "0123456789abcde"
         ws::error::bad_key, 400},
        {"key of 17 bytes",
         request_text("GET / HTTP/1.1",
                      with_header("Sec-WebSocket-Key", "MDEyMzQ1Njc4OWFiY2RlZmc=")),
         ws::error::bad_key, 400},
        {"key not base64",
         request_text("GET / HTTP/1.1",
                      with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ!!")),
         ws::error::bad_key, 400},
        {"key twice",
         request_text("GET / HTTP/1.1",
                      [] {
                          header_list headers = browser_headers;
                          headers.emplace_back("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
                          return headers;
                      }()),
         ws::error::bad_key, 400},
        {"version 8", request_text("GET / HTTP/1.1", with_header("Sec-WebSocket-Version", "8")),
         ws::error::bad_version, 426},
        {"no version",
         request_text("GET / HTTP/1.1", with_header("Sec-WebSocket-Version", nullptr)),
         ws::error::bad_version, 426},
    };
    for (const rejection& c : cases) {
        INFO(c.name);
        const ws::http_request req = parse_ok(c.text);
        const std::error_code ec = ws::validate_upgrade(req);
        CHECK(ec == c.expected);
        CHECK(ws::http_status_for(ec) == c.status);
    }

    SECTION("version 8 is answered with 426 and the version we speak") {
        const std::string wire =
            ws::make_error_response(426, "unsupported WebSocket version").serialize();
        CHECK(wire.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0) == 0);
        CHECK(wire.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
        CHECK(wire.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
    }
}

TEST_CASE("upgrade requests that are accepted despite unusual spelling", "[handshake]") {
    SECTION("Connection: keep-alive, Upgrade (Firefox)") {
        const auto req = parse_ok(
            request_text("GET / HTTP/1.1", with_header("Connection", "keep-alive, Upgrade")));
        CHECK_FALSE(ws::validate_upgrade(req));
    }
    SECTION("mixed-case names and values") {
        header_list headers;
        for (const auto& [name, value] : browser_headers) {
            std::string mixed = name;
            for (std::size_t i = 0; i < mixed.size(); i += 2)
                mixed[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[i])));
            if (name == "Upgrade")
                headers.emplace_back(mixed, "WebSocket");
            else if (name == "Connection")
                headers.emplace_back(mixed, "UPGRADE");
            else
                headers.emplace_back(mixed, value);
        }
        CHECK_FALSE(ws::validate_upgrade(parse_ok(request_text("GET / HTTP/1.1", headers))));
    }
    SECTION("Upgrade and Connection split over repeated headers") {
        header_list headers = with_header("Connection", "keep-alive");
        headers.emplace_back("connection", "upgrade");
        CHECK_FALSE(ws::validate_upgrade(parse_ok(request_text("GET / HTTP/1.1", headers))));
    }
    SECTION("bare LF line endings") {
        CHECK_FALSE(
            ws::validate_upgrade(parse_ok(request_text("GET / HTTP/1.1", browser_headers, "\n"))));
    }
    SECTION("whitespace around values") {
        const std::string text = "GET / HTTP/1.1\r\nHost:\texample.com \r\nUpgrade:   websocket\r\n"
                                 "Connection: Upgrade\t\r\n"
                                 "Sec-WebSocket-Key:dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13  \r\n\r\n";
        const auto req = parse_ok(text);
        CHECK(req.header("Host") == std::optional<std::string_view>{"example.com"});
        CHECK_FALSE(ws::validate_upgrade(req));
    }
}

TEST_CASE("plain HTTP requests are told apart", "[handshake]") {
    const auto req = parse_ok("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_FALSE(ws::is_websocket_request(req));
    CHECK(ws::validate_upgrade(req) == ws::error::missing_upgrade);
    CHECK(req.path() == "/index.html");
    CHECK(req.query().empty());
}

TEST_CASE("malformed request heads are bad requests", "[handshake]") {
    const char* const malformed[] = {
        "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",         // blank line before the request line
        "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",            // trailing space
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",            // double space
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",          // space in the target
        "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",         // control character in the target
        "GET /\r\nHost: x\r\n\r\n",                      // HTTP/0.9 style
        "GET / http/1.1\r\nHost: x\r\n\r\n",             // lower-case protocol
        "GET / HTTP/1.10\r\nHost: x\r\n\r\n",            // two-digit minor version
        "GET / HTTP/x.1\r\nHost: x\r\n\r\n",             // non-digit version
        "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",             // method not a token
        " GET / HTTP/1.1\r\nHost: x\r\n\r\n",            // leading space
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",            // whitespace before the colon
        "GET / HTTP/1.1\r\nHost x\r\n\r\n",              // no colon
        "GET / HTTP/1.1\r\n: x\r\n\r\n",                 // empty name
        "GET / HTTP/1.1\r\nHo\"st: x\r\n\r\n",           // name not a token
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
        "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", // obs-fold with a tab
        "GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n",        // control character in a value
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",          // bare CR in a value
        "GET / HTTP/1.1\r\nHost: a\x7F\r\n\r\n",         // DEL in a value
        "GET / HTTP/1.1\r\nHost: x\r\n \r\n\r\n",        // whitespace-only line
    };
    for (const char* text : malformed) {
        INFO("request: " << text);
        CHECK(parse_error(text) == ws::error::bad_request);
        CHECK(ws::http_status_for(parse_error(text)) == 400);
    }
    SECTION("a NUL byte in a value") {
        static const char with_nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
        const std::string text{with_nul, sizeof with_nul - 1};
        CHECK(parse_error(text) == ws::error::bad_request);
    }
    SECTION("a tab inside a value is allowed") {
        CHECK(parse_ok("GET / HTTP/1.1\r\nX-Tab: a\tb\r\n\r\n").header("x-tab") ==
              std::optional<std::string_view>{"a\tb"});
    }
}

TEST_CASE("request heads are bounded", "[handshake]") {
    SECTION("a header section over the limit is header_too_large, answered with 431") {
        header_list headers = browser_headers;
        headers.emplace_back("Cookie", std::string(8000, 'c'));
        const std::error_code ec = parse_error(request_text("GET / HTTP/1.1", headers));
        CHECK(ec == ws::error::header_too_large);
        CHECK(ws::http_status_for(ec) == 431);
        CHECK(ws::make_error_response(431, "too large")
                  .serialize()
                  .rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0) == 0);
    }
    SECTION("a head of exactly the limit is accepted, one byte more is not") {
        const std::string text = browser_request;
        CHECK_FALSE(parse_error(text, text.size()));
        CHECK(parse_error(text, text.size() - 1) == ws::error::header_too_large);
    }
    SECTION("a 100k-byte single line, whole or in pieces, never buffers past the limit") {
        const std::string line = "GET /" + std::string(100000, 'a');
        CHECK(parse_error(line) == ws::error::header_too_large);
        ws::request_parser parser;
        std::size_t consumed = 0;
        for (std::size_t at = 0; at < line.size(); at += 1000)
            consumed +=
                parser.feed(line.data() + at, std::min<std::size_t>(1000, line.size() - at));
        CHECK(parser.current() == ws::request_parser::state::failed);
        CHECK(parser.error() == ws::error::header_too_large);
        CHECK(consumed <= 8192);
    }
    SECTION("more than 100 headers") {
        header_list headers;
        for (int i = 0; i < 101; ++i)
            headers.emplace_back("X-" + std::to_string(i), "v");
        CHECK(parse_error(request_text("GET / HTTP/1.1", headers)) == ws::error::header_too_large);
        headers.pop_back();
        CHECK_FALSE(parse_error(request_text("GET / HTTP/1.1", headers)));
    }
}

TEST_CASE("the request parser is incremental", "[handshake]") {
    const ws::http_request whole = parse_ok(browser_request);
    const auto same = [&whole](const ws::http_request& req) {
        if (req.method != whole.method || req.target != whole.target ||
            req.headers.size() != whole.headers.size())
            return false;
        for (std::size_t i = 0; i < req.headers.size(); ++i)
            if (req.headers[i].name != whole.headers[i].name ||
                req.headers[i].value != whole.headers[i].value)
                return false;
        return true;
    };

    SECTION("split at every byte position") {
        for (std::size_t cut = 0; cut <= browser_request.size(); ++cut) {
            INFO("cut at " << cut);
            ws::request_parser parser;
            std::size_t consumed = parser.feed(browser_request.data(), cut);
            CHECK(consumed == cut);
            consumed += parser.feed(browser_request.data() + cut, browser_request.size() - cut);
            CHECK(consumed == browser_request.size());
            REQUIRE(parser.current() == ws::request_parser::state::done);
            CHECK(same(parser.request()));
        }
    }
    SECTION("byte by byte") {
        ws::request_parser parser;
        for (char c : browser_request) {
            CHECK(parser.current() == ws::request_parser::state::incomplete);
            CHECK(parser.feed(&c, 1) == 1);
        }
        CHECK(parser.current() == ws::request_parser::state::done);
        CHECK(same(parser.request()));
    }
    SECTION("bytes after the head are left for the caller") {
        const std::string frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        const std::string text = browser_request + frame;
        ws::request_parser parser;
        CHECK(parser.feed(text.data(), text.size()) == browser_request.size());
        CHECK(parser.current() == ws::request_parser::state::done);
        CHECK(parser.feed(text.data() + browser_request.size(), frame.size()) == 0);
    }
    SECTION("reset parses the next request on a keep-alive connection") {
        const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        const std::string second = "HEAD /b HTTP/1.1\r\nHost: y\r\n\r\n";
        const std::string text = first + second;
        ws::request_parser parser;
        CHECK(parser.feed(text.data(), text.size()) == first.size());
        CHECK(parser.request().target == "/a");
        parser.reset();
        CHECK(parser.current() == ws::request_parser::state::incomplete);
        CHECK(parser.feed(text.data() + first.size(), second.size()) == second.size());
        CHECK(parser.request().method == "HEAD");
        CHECK(parser.request().headers.size() == 1);
        CHECK(parser.request().header("host") == std::optional<std::string_view>{"y"});
    }
    SECTION("a failed parser consumes nothing more") {
        ws::request_parser parser;
        const std::string bad = "BAD REQUEST LINE\r\n";
        parser.feed(bad.data(), bad.size());
        CHECK(parser.current() == ws::request_parser::state::failed);
        CHECK(parser.feed(browser_request.data(), browser_request.size()) == 0);
    }
}

TEST_CASE("header_has_token", "[handshake]") {
    CHECK(ws::header_has_token("Upgrade", "upgrade"));
    CHECK(ws::header_has_token("keep-alive, Upgrade", "upgrade"));
    CHECK(ws::header_has_token("UPGRADE,keep-alive", "upgrade"));
    CHECK(ws::header_has_token(" \tupgrade\t ", "upgrade"));
    CHECK(ws::header_has_token("keep-alive,,upgrade,", "upgrade"));
    CHECK_FALSE(ws::header_has_token("upgraded", "upgrade"));
    CHECK_FALSE(ws::header_has_token("not-upgrade", "upgrade"));
    CHECK_FALSE(ws::header_has_token("up grade", "upgrade"));
    CHECK_FALSE(ws::header_has_token("", "upgrade"));
    CHECK_FALSE(ws::header_has_token(",,", "upgrade"));
    CHECK_FALSE(ws::header_has_token("a, , b", ""));
}

TEST_CASE("requested_subprotocols", "[handshake]") {
    header_list headers = with_header("Sec-WebSocket-Protocol", " , chat ,, superchat\t");
    headers.emplace_back("sec-websocket-protocol", "v2.chat");
    const auto req = parse_ok(request_text("GET / HTTP/1.1", headers));
    CHECK(ws::requested_subprotocols(req) ==
          std::vector<std::string_view>{"chat", "superchat", "v2.chat"});
    CHECK(req.header_list("Sec-WebSocket-Protocol") == ", chat ,, superchat, v2.chat");
    CHECK(ws::requested_subprotocols(
              parse_ok(
                  request_text("GET / HTTP/1.1", with_header("Sec-WebSocket-Protocol", nullptr))))
              .empty());
}

TEST_CASE("http_response", "[handshake]") {
    SECTION("status line, headers, Content-Length and body") {
        ws::http_response response;
        response.status = 404;
        response.set_header("Content-Type", "text/plain");
        response.body = "nothing here";
        CHECK(response.serialize() == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                                      "Content-Length: 12\r\n\r\nnothing here");
    }
    SECTION("set_header replaces case-insensitively") {
        ws::http_response response;
        response.set_header("X-A", "1");
        response.set_header("x-a", "2");
        REQUIRE(response.headers.size() == 1);
        CHECK(response.headers[0].value == "2");
    }
    SECTION("a custom reason and an explicit Content-Length") {
        ws::http_response response;
        response.status = 299;
        response.reason = "Fine";
        response.set_header("Content-Length", "5");
        CHECK(response.serialize() == "HTTP/1.1 299 Fine\r\nContent-Length: 5\r\n\r\n");
    }
    SECTION("no Content-Length for 204 and 304") {
        for (int status : {204, 304}) {
            ws::http_response response;
            response.status = status;
            CHECK(response.serialize().find("Content-Length") == std::string::npos);
        }
    }
    SECTION("CR and LF in values cannot inject headers") {
        ws::http_response response;
        response.set_header("Location", "/x\r\nSet-Cookie: evil=1");
        const std::string wire = response.serialize();
        CHECK(wire.find("\r\nSet-Cookie") == std::string::npos);
        CHECK(wire.find("Location: /x  Set-Cookie: evil=1\r\n") != std::string::npos);
    }
    SECTION("error responses close the connection") {
        const ws::http_response response = ws::make_error_response(400, "bad request");
        CHECK(response.status == 400);
        CHECK(response.body == "bad request");
        const std::string wire = response.serialize();
        CHECK(wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
        CHECK(wire.find("\r\nConnection: close\r\n") != std::string::npos);
        CHECK(wire.find("\r\nContent-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
        CHECK(wire.find("\r\nContent-Length: 11\r\n\r\nbad request") != std::string::npos);
    }
    SECTION("reason phrases") {
        for (int status : {101, 200, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 413, 426,
                           429, 431, 500, 501, 503}) {
            INFO("status " << status);
            CHECK_FALSE(ws::reason_phrase(status).empty());
        }
        CHECK(ws::reason_phrase(299).empty());
    }
}

TEST_CASE("query parameters and cookies of a request", "[handshake][http]") {
    ws::http_request req;
    req.target = "/chat?room=lobby&name=Bob%20Li+Jr&bad=%4&empty=&name=second";
    req.headers = {{"Cookie", "theme=dark; name=Al%C3%AFce"}, {"Cookie", "sid=42"}};

    CHECK(req.query_param("room") == "lobby");
    CHECK(req.query_param("name") == "Bob Li Jr"); // the first one counts, decoded
    CHECK(req.query_param("empty") == "");
    CHECK_FALSE(req.query_param("bad"));   // a malformed escape
    CHECK_FALSE(req.query_param("nam"));   // whole keys only
    CHECK_FALSE(req.query_param("lobby")); // values are not keys

    CHECK(req.cookie("theme") == "dark");
    CHECK(req.cookie("name") == "Al%C3%AFce"); // as sent
    CHECK(ws::percent_decode(*req.cookie("name")) == "Al\xC3\xAF"
                                                     "ce");
    CHECK(req.cookie("sid") == "42"); // from the second Cookie header
    CHECK_FALSE(req.cookie("room"));

    ws::http_request bare;
    bare.target = "/";
    CHECK_FALSE(bare.query_param("name"));
    CHECK_FALSE(bare.cookie("name"));
}
