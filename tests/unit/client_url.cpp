// The client's URL and proxy parsing, and its backoff: sans-I/O, every case by value.
#include <wschat/ws/detail/backoff.hpp>
#include <wschat/ws/detail/http_connect.hpp>
#include <wschat/ws/url.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("parse_ws_url", "[unit][client][url]") {
    std::error_code ec;
    SECTION("ws:// and wss:// with defaults, ports, IPv6, paths and queries") {
        auto url = ws::parse_ws_url("ws://example.com", ec);
        REQUIRE(url);
        CHECK_FALSE(ec);
        CHECK(url->scheme == ws::ws_url::scheme_kind::ws);
        CHECK(url->host == "example.com");
        CHECK(url->port == 80);
        CHECK(url->target == "/");
        url = ws::parse_ws_url("WSS://Example.com:8443/rooms/a?b=c", ec);
        REQUIRE(url);
        CHECK(url->secure());
        CHECK(url->host == "Example.com");
        CHECK(url->port == 8443);
        CHECK(url->target == "/rooms/a?b=c");
        url = ws::parse_ws_url("wss://[::1]/x", ec);
        REQUIRE(url);
        CHECK(url->host == "::1");
        CHECK(url->port == 443);
        url = ws::parse_ws_url("ws://[::1]:9000?q", ec);
        REQUIRE(url);
        CHECK(url->port == 9000);
        CHECK(url->target == "/?q");
    }
    SECTION("ws+unix://") {
        auto url = ws::parse_ws_url("ws+unix:///run/chat.sock:/rooms/a?x=1", ec);
        REQUIRE(url);
        CHECK(url->scheme == ws::ws_url::scheme_kind::ws_unix);
        CHECK(url->socket_path == "/run/chat.sock");
        CHECK(url->target == "/rooms/a?x=1");
        CHECK(url->host == "localhost");
        url = ws::parse_ws_url("ws+unix:///run/chat.sock", ec);
        REQUIRE(url);
        CHECK(url->target == "/");
    }
    SECTION("refused") {
        for (const char* bad :
             {"", "http://example.com/", "ws://", "ws://:80/", "ws://host:0/", "ws://host:65536/",
              "ws://host:x/", "ws://host:/", "ws://user:pw@host/", "ws://host/a#frag",
              "ws://host/a b", "ws://[::1/", "ws://::1/", "ws+unix://relative.sock",
              "ws+unix:///a.sock:rooms"}) {
            INFO(bad);
            CHECK_FALSE(ws::parse_ws_url(bad, ec));
            CHECK(ec == ws::client_error::invalid_url);
        }
    }
}

TEST_CASE("parse_proxy and the CONNECT request", "[unit][client][proxy]") {
    std::error_code ec;
    auto proxy = ws::detail::parse_proxy("http://proxy.local:3128", ec);
    REQUIRE(proxy);
    CHECK(proxy->host == "proxy.local");
    CHECK(proxy->port == 3128);
    CHECK(proxy->authorization.empty());
    CHECK(ws::detail::connect_request(*proxy, "example.com", 443) ==
          "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    CHECK(ws::detail::connect_request(*proxy, "::1", 80) ==
          "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");

    proxy = ws::detail::parse_proxy("http://Aladdin:open sesame@10.0.0.1:8080/", ec);
    CHECK_FALSE(proxy); // a space is not allowed unencoded
    proxy = ws::detail::parse_proxy("http://Aladdin:opensesame@10.0.0.1:8080/", ec);
    REQUIRE(proxy);
    CHECK(proxy->authorization == "Basic QWxhZGRpbjpvcGVuc2VzYW1l");
    CHECK(ws::detail::connect_request(*proxy, "h", 1)
              .find("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuc2VzYW1l\r\n") !=
          std::string::npos);

    for (const char* bad : {"", "https://p:1", "socks5://p:1", "http://", "http://p:0",
                            "http://user@p:1", "http://p:1/path"}) {
        INFO(bad);
        CHECK_FALSE(ws::detail::parse_proxy(bad, ec));
        CHECK(ec == ws::client_error::invalid_proxy);
    }

    ws::http_response answer;
    answer.status = 200;
    CHECK_FALSE(ws::detail::check_connect_response(answer));
    answer.status = 407;
    CHECK(ws::detail::check_connect_response(answer) == ws::client_error::proxy_refused);
}

TEST_CASE("backoff: capped exponential, full jitter, reset", "[unit][client][backoff]") {
    std::vector<double> draws{0.0, 0.999999, 0.5, 0.25, 0.999999, 0.999999, 0.999999};
    std::size_t next = 0;
    ws::detail::backoff b{100ms, 1000ms, [&] { return draws[next++ % draws.size()]; }};
    CHECK(b.next() == 0ms); // [0, 100]
    CHECK(b.ceiling() == 100ms);
    CHECK(b.next() == 200ms);  // [0, 200], top
    CHECK(b.next() == 200ms);  // half of [0, 400]
    CHECK(b.next() == 200ms);  // a quarter of [0, 800]
    CHECK(b.next() == 1000ms); // capped
    CHECK(b.ceiling() == 1000ms);
    CHECK(b.retries() == 5);
    for (int i = 0; i < 100; ++i) // the exponent never overflows
        CHECK(b.next() <= 1000ms);
    b.reset();
    CHECK(b.retries() == 0);
    next = 1;
    CHECK(b.next() == 100ms);

    // Out-of-range draws from a user's source are clamped into [0, 1).
    ws::detail::backoff wild{100ms, 1000ms, [] { return 7.0; }};
    CHECK(wild.next() == 100ms);
    ws::detail::backoff negative{100ms, 1000ms, [] { return -1.0; }};
    CHECK(negative.next() == 0ms);
}
