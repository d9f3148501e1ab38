// The opening handshake over real sockets: statuses, plain HTTP, decisions, timeouts.
#include "support/echo.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

using test::socket_client;

namespace {

/// Sends raw request bytes and returns everything the server answers before closing.
std::string http_exchange(std::uint16_t port, const std::string& request) {
    socket_client client{port};
    client.send_raw(request);
    return client.read_all(2s);
}

std::string status_line(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
}

/// A browser-like upgrade request with one header replaced or removed (empty value).
std::string request_with(const std::string& name, const std::string& value) {
    std::string request = "GET /chat HTTP/1.1\r\n";
    const std::pair<std::string, std::string> headers[] = {
        {"Host", "127.0.0.1"},
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
        {"Sec-WebSocket-Version", "13"}};
    for (const auto& [header, default_value] : headers) {
        const std::string& v = header == name ? value : default_value;
        if (!v.empty())
            request += header + ": " + v + "\r\n";
    }
    return request + "\r\n";
}

} // namespace

TEST_CASE("a valid upgrade gets 101 with the RFC's accept key", "[handshake][server]") {
    test::running_server s;
    s.start();
    test::ws_client client{s.port()};
    const std::string& head = client.response_head();
    CHECK(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    CHECK(head.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
          std::string::npos);
    CHECK(head.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
}

TEST_CASE("invalid upgrades are refused with the right status", "[handshake][server]") {
    test::running_server s;
    s.start();
    const auto port = s.port();

    SECTION("wrong version: 426 naming version 13") {
        const auto response = http_exchange(port, request_with("Sec-WebSocket-Version", "8"));
        CHECK(status_line(response) == "HTTP/1.1 426 Upgrade Required");
        CHECK(response.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
    }
    SECTION("missing or malformed key: 400") {
        CHECK(status_line(http_exchange(port, request_with("Sec-WebSocket-Key", ""))) ==
              "HTTP/1.1 400 Bad Request");
        CHECK(status_line(http_exchange(port, request_with("Sec-WebSocket-Key", "c2hvcnQ="))) ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("Connection without the upgrade token: 400") {
        CHECK(status_line(http_exchange(port, request_with("Connection", "keep-alive"))) ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("Connection as a list with the token in any case: accepted") {
        socket_client client{port};
        client.send_raw(request_with("Connection", "keep-alive, UPGRADE"));
        const auto head = client.read_until("\r\n\r\n", 2s);
        REQUIRE(head);
        CHECK(status_line(*head) == "HTTP/1.1 101 Switching Protocols");
    }
    SECTION("missing Host: 400") {
        CHECK(status_line(http_exchange(port, request_with("Host", ""))) ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("not GET: 400") {
        auto request = request_with("Host", "127.0.0.1");
        request.replace(0, 3, "PUT");
        CHECK(status_line(http_exchange(port, request)) == "HTTP/1.1 400 Bad Request");
    }
    SECTION("malformed request line: 400") {
        CHECK(status_line(http_exchange(port, "GARBAGE\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
    }
    SECTION("a header section over the limit: 431, also as one 100k-byte line") {
        auto big = request_with("Host", "127.0.0.1");
        big.insert(big.size() - 2, "X-Filler: " + std::string(9000, 'a') + "\r\n");
        CHECK(status_line(http_exchange(port, big)) ==
              "HTTP/1.1 431 Request Header Fields Too Large");
        CHECK(status_line(http_exchange(port, "GET /" + std::string(100'000, 'a'))) ==
              "HTTP/1.1 431 Request Header Fields Too Large");
    }
}

TEST_CASE("plain HTTP goes to on_http, or gets 426 by default", "[handshake][server]") {
    SECTION("default") {
        test::running_server s;
        s.start();
        const auto response = http_exchange(s.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(status_line(response) == "HTTP/1.1 426 Upgrade Required");
    }
    SECTION("served by the application") {
        test::running_server s;
        s.server.on_http([](const ws::http_request& request, ws::http_response& response) {
            response.set_header("Content-Type", "text/plain");
            response.body = "you asked for " + std::string{request.path()};
        });
        s.start();
        const auto response = http_exchange(s.port(), "GET /page?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(status_line(response) == "HTTP/1.1 200 OK");
        CHECK(response.find("\r\nConnection: close\r\n") != std::string::npos);
        CHECK(response.substr(response.size() - 19) == "you asked for /page");
    }
}

TEST_CASE("on_upgrade can refuse with a status or choose a subprotocol", "[handshake][server]") {
    auto opts = test::loopback_options();
    opts.subprotocols = {"chat.v2", "chat"};
    test::running_server s{opts};
    s.server.on_upgrade([](const ws::http_request& request, ws::upgrade_decision& decision) {
        if (request.query() == "token=bad")
            decision.reject(403, "not allowed");
    });
    std::mutex seen_mutex;
    std::vector<std::string> seen; // conn->subprotocol() of each connection, as it opens
    s.server.on_open([&](const auto& conn) {
        std::lock_guard<std::mutex> lock{seen_mutex};
        seen.push_back(conn->subprotocol());
    });
    s.start();

    const auto refused = http_exchange(s.port(), test::upgrade_request("/?token=bad"));
    CHECK(status_line(refused) == "HTTP/1.1 403 Forbidden");
    CHECK(refused.find("not allowed") != std::string::npos);

    test::ws_client both{s.port(), "/", "Sec-WebSocket-Protocol: chat, chat.v2\r\n"};
    CHECK(both.response_head().find("\r\nSec-WebSocket-Protocol: chat.v2\r\n") !=
          std::string::npos);
    test::ws_client unknown{s.port(), "/", "Sec-WebSocket-Protocol: mqtt\r\n"};
    CHECK(unknown.response_head().find("Sec-WebSocket-Protocol") == std::string::npos);
    REQUIRE(test::eventually([&] {
        std::lock_guard<std::mutex> lock{seen_mutex};
        return seen.size() == 2;
    }));
    CHECK(seen == std::vector<std::string>{"chat.v2", ""});
}

TEST_CASE("a client that never finishes its request is dropped in time", "[handshake][server]") {
    auto opts = test::loopback_options();
    opts.handshake_timeout = 200ms;
    test::running_server s{opts};
    s.start();
    socket_client slow{s.port()};
    REQUIRE(slow.send_raw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    const auto start = std::chrono::steady_clock::now();
    CHECK(slow.wait_for_eof(2s));
    CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("an open connection keeps its request line, not its headers", "[handshake][server]") {
    test::running_server s;
    std::string cookie_on_open;
    std::string target_later;
    std::string line_later;
    std::size_t headers_later = 99;
    s.server.on_open([&](const auto& conn) {
        cookie_on_open = std::string{conn->request().header("Cookie").value_or("")};
    });
    s.server.on_message([&](const auto& conn, const ws::message&) {
        const ws::http_request& request = conn->request();
        target_later = request.target;
        line_later = request.method + " " + std::string{request.path()} + " " +
                     std::to_string(request.version_major) + "." +
                     std::to_string(request.version_minor);
        headers_later = request.headers.size();
        conn->send_text("seen");
    });
    s.start();
    test::ws_client client{s.port(), "/room?id=7", "Cookie: name=ada\r\n"};
    REQUIRE(client.send_text("hello"));
    REQUIRE(client.read_frame());
    CHECK(cookie_on_open == "name=ada");
    CHECK(target_later == "/room?id=7");
    CHECK(line_later == "GET /room 1.1");
    CHECK(headers_later == 0);
}

TEST_CASE("frames sent right behind the request are not lost", "[handshake][server]") {
    test::running_server s;
    test::echo(s.server);
    s.start();
    socket_client client{s.port()};
    REQUIRE(client.send_raw(test::upgrade_request() + test::encode(test::op_text, "eager")));
    REQUIRE(client.read_until("\r\n\r\n", 2s));
    const auto echo = client.read_exact(7, 2s);
    REQUIRE(echo);
    CHECK(*echo == std::string{"\x81\x05"} + "eager");
}

TEST_CASE("upgrades past max_connections get 503", "[handshake][server]") {
    auto opts = test::loopback_options();
    opts.max_connections = 2;
    test::running_server s{opts};
    s.start();
    test::ws_client first{s.port()};
    test::ws_client second{s.port()};
    REQUIRE(test::eventually([&] { return s.server.connection_count() == 2; }));
    CHECK(status_line(http_exchange(s.port(), test::upgrade_request())) ==
          "HTTP/1.1 503 Service Unavailable");
}
