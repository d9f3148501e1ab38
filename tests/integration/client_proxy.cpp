// ws::client through an HTTP CONNECT proxy that the test runs on 127.0.0.1: the tunnel
// carries the WebSocket connection; credentials go in Proxy-Authorization; a refusal by the
// proxy is reported with its status.
#include "support/client_loop.hpp"
#include "support/connect_proxy.hpp"
#include "support/echo.hpp"
#include "support/running_server.hpp"

#include <wschat/ws/client.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;

TEST_CASE("client: through an HTTP CONNECT proxy", "[integration][client][proxy]") {
    test::running_server s;
    test::echo(s.server);
    s.start();
    const std::string target = "127.0.0.1:" + std::to_string(s.port());
    asio::io_context io;
    test::client_record record;
    ws::client_options opts;
    opts.url = "ws://" + target + "/via-proxy";

    SECTION("without credentials") {
        test::connect_proxy proxy;
        opts.proxy = proxy.url();
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
        client.send_text("through the tunnel");
        REQUIRE(test::run_until(io, [&] { return record.messages.size() == 1; }));
        CHECK(record.messages[0] == "through the tunnel");
        const auto requests = proxy.requests();
        REQUIRE(requests.size() == 1);
        CHECK(requests[0].rfind("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n", 0) ==
              0);
        CHECK(requests[0].find("Proxy-Authorization") == std::string::npos);
    }
    SECTION("with basic authentication") {
        test::connect_proxy proxy{"Basic dXNlcjpwYXNz"}; // user:pass
        const bool right = GENERATE(true, false);
        opts.proxy = "http://user:" + std::string{right ? "pass" : "nope"} +
                     "@127.0.0.1:" + std::to_string(proxy.port());
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        if (right) {
            REQUIRE(test::run_until(io, [&] { return client.is_open(); }));
            client.send_binary("ok");
            REQUIRE(test::run_until(io, [&] { return record.messages.size() == 1; }));
            CHECK(record.messages[0] == "bin:ok");
        } else {
            REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
            CHECK(record.closes[0].error == ws::client_error::proxy_refused);
            CHECK(record.closes[0].http_status == 407);
            CHECK_FALSE(record.closes[0].will_retry);
            CHECK(record.opens.empty());
        }
    }
    SECTION("a proxy that is not there: the attempt fails and is retried") {
        opts.proxy = "http://127.0.0.1:1";
        opts.reconnect.initial_delay = 10s;
        ws::client<> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
        CHECK(record.closes[0].error == asio::error::connection_refused);
        CHECK(record.closes[0].will_retry);
    }
}
