// ws::client<ws::asio_tls> against wschat's TLS server with a certificate made by the test:
// verification succeeds with the CA pinned (by DNS name and by IP SAN), fails for another
// host name and for a self-signed certificate against the system store (and is then not
// retried), and turning it off works but says so.
#if __has_include(<openssl/ssl.h>)

#include "support/client_loop.hpp"
#include "support/dev_cert.hpp"
#include "support/echo.hpp"
#include "support/running_server.hpp"

#include <wschat/ws/client_tls.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;

TEST_CASE("client: wss:// with certificate verification", "[integration][client][tls]") {
    const test::dev_cert cert = test::dev_cert::make("localhost");
    const test::temp_dir dir;
    const std::string ca_file = dir.write("ca.pem", cert.cert_pem);
    test::basic_running_server<ws::asio_tls> s{
        test::loopback_options(), 1, ws::asio_tls::from_memory(cert.cert_pem, cert.key_pem)};
    test::echo(s.server);
    s.start();
    const std::string port = std::to_string(s.port());
    asio::io_context io;
    test::client_record record;
    ws::client_options opts;
    opts.reconnect.initial_delay = 10s;

    const auto opens = [&](const std::string& url) {
        opts.url = url;
        ws::client<ws::asio_tls> client{io, opts};
        record.watch(client);
        client.connect();
        REQUIRE(test::run_until(io, [&] { return client.is_open() || !record.closes.empty(); }));
        if (!client.is_open())
            return false;
        client.send_text("secret");
        REQUIRE(test::run_until(io, [&] { return record.messages.size() == 1; }));
        CHECK(record.messages[0] == "secret");
        return true;
    };

    SECTION("pinned CA, by DNS name (SNI) and by IP address (IP SAN)") {
        opts.tls.ca_file = ca_file;
        const std::string host = GENERATE(std::string{"localhost"}, std::string{"127.0.0.1"});
        CHECK(opens("wss://" + host + ":" + port + "/"));
        CHECK(record.errors.empty());
    }
    SECTION("pinned CA, but another host name: refused, not retried") {
        opts.tls.ca_file = ca_file;
        opts.tls.server_name = "chat.example.com";
        CHECK_FALSE(opens("wss://127.0.0.1:" + port + "/"));
        REQUIRE(record.closes.size() == 1);
        INFO(record.closes[0].error.message());
        CHECK(record.closes[0].error.category() == asio::error::get_ssl_category());
        CHECK_FALSE(record.closes[0].will_retry);
        CHECK(record.closes[0].stop_reason.rfind("TLS: ", 0) == 0);
    }
    SECTION("pinned CA, but an IP address the certificate does not name: refused") {
        opts.tls.ca_file = ca_file;
        opts.tls.server_name = "127.0.0.2";
        CHECK_FALSE(opens("wss://127.0.0.1:" + port + "/"));
        REQUIRE(record.closes.size() == 1);
        CHECK(record.closes[0].error.category() == asio::error::get_ssl_category());
    }
    SECTION("self-signed, against the system store: refused") {
        CHECK_FALSE(opens("wss://localhost:" + port + "/"));
        REQUIRE(record.closes.size() == 1);
        CHECK(record.closes[0].error.category() == asio::error::get_ssl_category());
        CHECK_FALSE(record.closes[0].will_retry);
    }
    SECTION("verification turned off: it connects, and says so at every attempt") {
        opts.tls.insecure_skip_verification = true;
        CHECK(opens("wss://localhost:" + port + "/"));
        REQUIRE(record.errors.size() == 1);
        CHECK(record.errors[0] == ws::client_error::tls_verification_disabled);
    }
    SECTION("a CA file that cannot be read: connect() says so") {
        opts.tls.ca_file = (dir.path() / "missing.pem").string();
        opts.url = "wss://localhost:" + port + "/";
        ws::client<ws::asio_tls> client{io, opts};
        std::error_code ec;
        client.connect(ec);
        CHECK(ec);
    }
    SECTION("ws:// on the TLS client is refused") {
        opts.url = "ws://localhost:" + port + "/";
        ws::client<ws::asio_tls> client{io, opts};
        std::error_code ec;
        client.connect(ec);
        CHECK(ec == ws::client_error::transport_mismatch);
    }
}

#endif // OpenSSL
