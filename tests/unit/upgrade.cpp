// The server's upgrade negotiation without I/O (ws/detail/upgrade.hpp): a parsed request and a
// decider in, the exact bytes of the answer out.
#include "support/client_bytes.hpp"

#include <wschat/ws/detail/upgrade.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <string>

namespace {

/// The request head `bytes`, parsed.
ws::http_request parsed(const std::string& bytes) {
    ws::request_parser parser;
    parser.feed(bytes.data(), bytes.size());
    REQUIRE(parser.current() == ws::request_parser::state::done);
    return parser.request();
}

/// A decider that records what it was asked and answers as the test says.
struct recording_decider final : ws::detail::upgrade_decider {
    std::function<void(ws::upgrade_decision&)> decide = [](ws::upgrade_decision&) {};
    int http_calls = 0;
    int upgrade_calls = 0;
    std::string seen_address;
    std::string preselected;

    void answer_http(const ws::http_request& request, ws::http_response& response) override {
        ++http_calls;
        response.status = 200;
        response.body = "page " + request.target;
    }
    void decide_upgrade(const ws::http_request&, ws::upgrade_decision& decision) override {
        ++upgrade_calls;
        seen_address = decision.remote_address;
        preselected = decision.subprotocol;
        decide(decision);
    }
};

ws::detail::upgrade_answer negotiate(const std::string& request, recording_decider& decider,
                                     const ws::server_options& options = {},
                                     bool over_limit = false) {
    return ws::detail::negotiate_upgrade(parsed(request), "192.0.2.7", over_limit, options,
                                         decider);
}

const std::string accepted_head = "HTTP/1.1 101 Switching Protocols\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

} // namespace

TEST_CASE("upgrade: a valid request is answered with the exact 101", "[unit][upgrade]") {
    recording_decider decider;
    const auto answer = negotiate(test::upgrade_request("/chat"), decider);
    CHECK(answer.opens);
    CHECK_FALSE(answer.refused_for);
    CHECK(answer.response.serialize() == accepted_head + "\r\n");
    CHECK(decider.upgrade_calls == 1);
    CHECK(decider.http_calls == 0);
    CHECK(decider.seen_address == "192.0.2.7");
}

TEST_CASE("upgrade: the subprotocol is the server's first that the client offers",
          "[unit][upgrade]") {
    recording_decider decider;
    ws::server_options options;
    options.subprotocols = {"v3", "v2", "v1"};
    const std::string offer = "Sec-WebSocket-Protocol: v1, v2\r\n";

    SECTION("preselected, and sent back") {
        const auto answer = negotiate(test::upgrade_request("/", offer), decider, options);
        CHECK(decider.preselected == "v2");
        CHECK(answer.opens);
        CHECK(answer.decision.subprotocol == "v2");
        CHECK(answer.response.serialize() == accepted_head + "Sec-WebSocket-Protocol: v2\r\n\r\n");
    }
    SECTION("none in common: none is sent") {
        options.subprotocols = {"v9"};
        const auto answer = negotiate(test::upgrade_request("/", offer), decider, options);
        CHECK(decider.preselected.empty());
        CHECK(answer.response.serialize() == accepted_head + "\r\n");
    }
    SECTION("the decider may choose another one the client offered") {
        decider.decide = [](ws::upgrade_decision& d) { d.accept("v1"); };
        const auto answer = negotiate(test::upgrade_request("/", offer), decider, options);
        CHECK(answer.opens);
        CHECK(answer.response.serialize() == accepted_head + "Sec-WebSocket-Protocol: v1\r\n\r\n");
    }
    SECTION("one the client did not offer is a server error, not a 101") {
        decider.decide = [](ws::upgrade_decision& d) { d.accept("v3"); };
        const auto answer = negotiate(test::upgrade_request("/", offer), decider, options);
        CHECK_FALSE(answer.opens);
        CHECK_FALSE(answer.refused_for);
        CHECK(answer.response.serialize() ==
              "HTTP/1.1 500 Internal Server Error\r\n"
              "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
              "Content-Length: 38\r\n\r\nserver chose a subprotocol not offered");
    }
}

TEST_CASE("upgrade: the decider's refusal and user data", "[unit][upgrade]") {
    recording_decider decider;
    SECTION("refused with its status and reason, which is not a limit hit") {
        decider.decide = [](ws::upgrade_decision& d) { d.reject(401, "who are you"); };
        const auto answer = negotiate(test::upgrade_request(), decider);
        CHECK_FALSE(answer.opens);
        CHECK_FALSE(answer.refused_for);
        CHECK(answer.response.serialize() ==
              "HTTP/1.1 401 Unauthorized\r\n"
              "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
              "Content-Length: 11\r\n\r\nwho are you");
    }
    SECTION("accepted with user data, which the answer carries") {
        decider.decide = [](ws::upgrade_decision& d) { d.user_data = 42; };
        auto answer = negotiate(test::upgrade_request(), decider);
        REQUIRE(answer.opens);
        REQUIRE(std::any_cast<int>(&answer.decision.user_data) != nullptr);
        CHECK(std::any_cast<int>(answer.decision.user_data) == 42);
    }
}

TEST_CASE("upgrade: checks and limits refuse with their status, before the decider",
          "[unit][upgrade]") {
    recording_decider decider;
    SECTION("over a connection limit: 503 whatever was asked") {
        const auto answer = negotiate("GET / HTTP/1.1\r\nHost: x\r\n\r\n", decider, {}, true);
        CHECK(answer.refused_for == ws::error::server_busy);
        CHECK(answer.response.serialize() ==
              "HTTP/1.1 503 Service Unavailable\r\n"
              "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
              "Content-Length: 24\r\n\r\nconnection limit reached");
        CHECK(decider.http_calls == 0);
    }
    SECTION("a wrong version: 426 naming the version to use") {
        std::string request = test::upgrade_request();
        request.replace(request.find("Version: 13"), 11, "Version: 8");
        const auto answer = negotiate(request, decider);
        CHECK(answer.refused_for == ws::error::bad_version);
        CHECK(answer.response.serialize() ==
              "HTTP/1.1 426 Upgrade Required\r\n"
              "Content-Type: text/plain; charset=utf-8\r\nConnection: Upgrade, close\r\n"
              "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              "Content-Length: 43\r\n\r\nunsupported Sec-WebSocket-Version (need 13)");
    }
    SECTION("no key: 400") {
        std::string request = test::upgrade_request();
        request.erase(request.find("Sec-WebSocket-Key"), 45);
        const auto answer = negotiate(request, decider);
        CHECK(answer.refused_for == ws::error::bad_key);
        CHECK(answer.response.status == 400);
        CHECK(answer.response.body == "missing or malformed Sec-WebSocket-Key");
    }
    CHECK(decider.upgrade_calls == 0);
    CHECK_FALSE(decider.seen_address.size());
}

TEST_CASE("upgrade: a plain HTTP request gets the decider's answer with Connection: close",
          "[unit][upgrade]") {
    recording_decider decider;
    const auto answer = negotiate("GET /index HTTP/1.1\r\nHost: x\r\n\r\n", decider);
    CHECK_FALSE(answer.opens);
    CHECK_FALSE(answer.refused_for);
    CHECK(decider.http_calls == 1);
    CHECK(decider.upgrade_calls == 0);
    CHECK(answer.response.serialize() ==
          "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\npage /index");
}

TEST_CASE("upgrade: a request that fails to parse is refused with its error", "[unit][upgrade]") {
    const auto answer = ws::detail::refusal(ws::error::header_too_large);
    CHECK_FALSE(answer.opens);
    CHECK(answer.refused_for == ws::error::header_too_large);
    CHECK(answer.response.status == 431);
    CHECK(answer.response.body == std::error_code{ws::error::header_too_large}.message());
}
