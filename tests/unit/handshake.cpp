// The server's opening handshake over memory streams: a valid upgrade at every split of the
// request, and every kind of refusal answered with its HTTP status and the connection ended.
#include "support/echo.hpp"
#include "support/memory_client.hpp"

#include <catch2/catch.hpp>

#include <string>

using test::memory_client;
using test::memory_server;

namespace {

/// The status line of a response head.
std::string status_line(const std::string& head) {
    return head.substr(0, head.find("\r\n"));
}

/// Sends `request` whole and returns the status line of the answer; checks the server ended
/// its direction after the answer's body.
std::string answer_to(memory_server& s, const std::string& request) {
    memory_client client{s};
    client.send_raw(request);
    const auto head = client.read_head();
    REQUIRE(head);
    client.read_raw(); // the body
    CHECK(client.server_ended());
    return status_line(*head);
}

} // namespace

TEST_CASE("handshake: a valid upgrade is answered 101 with the accept key and opens",
          "[unit][memory][handshake]") {
    memory_server s;
    std::string address;
    std::string target;
    s.server.on_open([&](const auto& conn) {
        address = std::string{conn->remote_address()};
        target = conn->request().target;
    });
    memory_client client{s};
    client.send_raw(test::upgrade_request("/room?x=1"));
    const auto head = client.read_head();
    REQUIRE(head);
    CHECK(status_line(*head) == "HTTP/1.1 101 Switching Protocols");
    CHECK(head->find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
          std::string::npos);
    CHECK(client.unread() == 0);
    CHECK(s.server.connection_count() == 1);
    CHECK(address == "memory");
    CHECK(target == "/room?x=1");
    CHECK_FALSE(client.server_ended());
}

TEST_CASE("handshake: the request split at every byte position is answered once, when whole",
          "[unit][memory][handshake]") {
    const std::string request = test::upgrade_request();
    memory_server s;
    test::echo(s.server);
    for (std::size_t split = 1; split < request.size(); ++split) {
        CAPTURE(split);
        memory_client client{s};
        client.send_raw(request.substr(0, split));
        REQUIRE(client.read_raw().empty());
        client.send_raw(request.substr(split) + test::encode(test::op_text, "after"));
        const auto head = client.read_head();
        REQUIRE(head);
        CHECK(status_line(*head) == "HTTP/1.1 101 Switching Protocols");
        const auto echo = client.read_frame(); // the frame right behind the request
        REQUIRE(echo);
        CHECK(echo->payload == "after");
    }
}

TEST_CASE("handshake: a request read one byte at a time opens the connection",
          "[unit][memory][handshake]") {
    memory_server s;
    test::echo(s.server);
    memory_client client{s};
    client.stream().peer_read_size(1); // each of the server's reads takes one byte
    client.send_raw(test::upgrade_request() + test::encode(test::op_text, "byte by byte"));
    const auto head = client.read_head();
    REQUIRE(head);
    CHECK(status_line(*head) == "HTTP/1.1 101 Switching Protocols");
    const auto echo = client.read_frame();
    REQUIRE(echo);
    CHECK(echo->payload == "byte by byte");
}

TEST_CASE("handshake: invalid requests get their HTTP status and the connection ends",
          "[unit][memory][handshake]") {
    memory_server s;
    const std::string host = "Host: 127.0.0.1\r\n";
    const std::string upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const std::string version = "Sec-WebSocket-Version: 13\r\n";
    SECTION("missing key") {
        CHECK(answer_to(s, "GET / HTTP/1.1\r\n" + host + upgrade + version + "\r\n") ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("a key that is not 16 bytes") {
        CHECK(answer_to(s, "GET / HTTP/1.1\r\n" + host + upgrade +
                               "Sec-WebSocket-Key: c2hvcnQ=\r\n" + version + "\r\n") ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("bad version: 426, naming the version the server speaks") {
        memory_client client{s};
        client.send_raw("GET / HTTP/1.1\r\n" + host + upgrade + key +
                        "Sec-WebSocket-Version: 8\r\n\r\n");
        const auto head = client.read_head();
        REQUIRE(head);
        CHECK(status_line(*head) == "HTTP/1.1 426 Upgrade Required");
        CHECK(head->find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
        client.read_raw();
        CHECK(client.server_ended());
    }
    SECTION("an upgrade that is not a GET") {
        CHECK(answer_to(s, "POST / HTTP/1.1\r\n" + host + upgrade + key + version + "\r\n") ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("HTTP/1.0") {
        CHECK(answer_to(s, "GET / HTTP/1.0\r\n" + host + upgrade + key + version + "\r\n") ==
              "HTTP/1.1 400 Bad Request");
    }
    SECTION("a head over max_header_bytes") {
        const std::string cookie =
            "Cookie: " + std::string(s.server.options().max_header_bytes, 'c') + "\r\n";
        CHECK(answer_to(s, test::upgrade_request("/", cookie)) ==
              "HTTP/1.1 431 Request Header Fields Too Large");
        CHECK(s.server.limit_hits(ws::limit::header_size) == 1);
    }
    SECTION("garbage") {
        CHECK(answer_to(s, "\x16\x03\x01 not http at all\r\n\r\n") == "HTTP/1.1 400 Bad Request");
    }
    SECTION("a plain HTTP request, with no on_http handler: 426") {
        CHECK(answer_to(s, "GET / HTTP/1.1\r\n" + host + "\r\n") ==
              "HTTP/1.1 426 Upgrade Required");
    }
    CHECK(s.server.connection_count() == 0);
}

TEST_CASE("handshake: on_upgrade may refuse with its own status", "[unit][memory][handshake]") {
    memory_server s;
    bool opened = false;
    s.server.on_upgrade([](const ws::http_request& req, ws::upgrade_decision& decision) {
        if (req.path() != "/allowed")
            decision.reject(403, "not here");
    });
    s.server.on_open([&](const auto&) { opened = true; });
    CHECK(answer_to(s, test::upgrade_request("/elsewhere")) == "HTTP/1.1 403 Forbidden");
    CHECK_FALSE(opened);
    memory_client::opened(s, "/allowed");
    CHECK(opened);
}
