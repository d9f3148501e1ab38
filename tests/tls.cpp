// ws::asio_tls over real sockets: wss:// with certificates made for the test, the protocol
// floor (TLS 1.2), failed handshakes that disturb nobody, the handshake deadline, certificate
// reloads without a restart, and a graceful stop.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#if WSCHAT_TEST_TLS

#include "support/dev_cert.hpp"
#include "support/echo.hpp"

#include <wschat/ws/tls.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;

namespace {

using tls_server = test::basic_running_server<ws::asio_tls>;

/// An echo server over TLS with `cert`, its handshake bounded by `handshake_timeout`.
std::unique_ptr<tls_server> echo_over(const ws::asio_tls& tls,
                                      std::chrono::milliseconds handshake_timeout = 10s) {
    auto opts = test::loopback_options();
    opts.handshake_timeout = handshake_timeout;
    auto s = std::make_unique<tls_server>(opts, 1, tls);
    test::echo(s->server);
    s->start();
    return s;
}

/// A client that trusts `ca` (a PEM file) and offers TLS versions `min`..`max` (0: any).
test::peer wss(std::uint16_t port, const std::string& ca, int min = 0, int max = 0) {
    return test::peer{port, {}, test::tls_settings{ca, "localhost", min, max}};
}

std::string peer_common_name(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr)
        return {};
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    X509_free(cert);
    return name;
}

bool echoes(test::ws_client& client, const std::string& text) {
    return client.send_text(text) && client.read_text() == text;
}

} // namespace

TEST_CASE("tls: a wss client verifies the certificate and chats", "[tls]") {
    test::temp_dir dir;
    const auto cert = test::dev_cert::make();
    const std::string ca = dir.write("cert.pem", cert.cert_pem);
    const std::string key = dir.write("key.pem", cert.key_pem);

    SECTION("certificate and key from PEM files") {
        auto s = echo_over(ws::asio_tls::from_files(ca, key));
        test::ws_client client{wss(s->port(), ca)};
        CHECK(echoes(client, "over wss from files"));
        const std::string big(300 * 1024, 'x'); // many TLS records each way
        CHECK(client.send(test::op_binary, big));
        const auto back = client.read_frame();
        REQUIRE(back);
        CHECK(back->payload == big);
    }
    SECTION("certificate and key from memory") {
        auto s = echo_over(ws::asio_tls::from_memory(cert.cert_pem, cert.key_pem));
        test::ws_client client{wss(s->port(), ca)};
        CHECK(echoes(client, "over wss from memory"));
    }
    SECTION("unusable certificates are refused when the transport is made") {
        const auto other = test::dev_cert::make("other");
        std::error_code ec;
        CHECK_FALSE(ws::tls_context_from_memory(cert.cert_pem, other.key_pem, ec)); // not its key
        CHECK(ec);
        CHECK_FALSE(ws::tls_context_from_files((dir.path() / "missing.pem").string(), key, ec));
        CHECK(ec);
        CHECK_THROWS_AS(ws::asio_tls::from_memory("not a certificate", cert.key_pem),
                        std::system_error);
    }
}

TEST_CASE("tls: only TLS 1.2 and 1.3 are accepted", "[tls]") {
    test::temp_dir dir;
    const auto cert = test::dev_cert::make();
    const std::string ca = dir.write("cert.pem", cert.cert_pem);
    auto s = echo_over(ws::asio_tls::from_memory(cert.cert_pem, cert.key_pem));

    for (const int old : {TLS1_VERSION, TLS1_1_VERSION}) {
        INFO("a client offering at most version 0x" << std::hex << old);
        CHECK_THROWS_WITH(test::socket_client(wss(s->port(), ca, old, old)),
                          Catch::Contains("alert protocol version")); // the server's refusal
    }
    for (const int good : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        test::ws_client client{wss(s->port(), ca, good, good)};
        CHECK(SSL_version(client.socket().ssl()) == good);
        CHECK(echoes(client, "negotiated"));
    }
}

TEST_CASE("tls: failed handshakes are closed and disturb no one", "[tls]") {
    test::temp_dir dir;
    const auto cert = test::dev_cert::make();
    const std::string ca = dir.write("cert.pem", cert.cert_pem);
    auto s = echo_over(ws::asio_tls::from_memory(cert.cert_pem, cert.key_pem), 500ms);

    test::ws_client honest{wss(s->port(), ca)};
    REQUIRE(echoes(honest, "before"));

    SECTION("plain HTTP on the TLS port") {
        test::socket_client plain{s->port()};
        plain.send_raw(test::upgrade_request());
        const std::string answer = plain.read_all(2s);
        CHECK(plain.eof());
        CHECK(answer.find("HTTP/1.1 101") == std::string::npos);
    }
    SECTION("garbage bytes") {
        test::socket_client garbage{s->port()};
        garbage.send_raw(std::string(64, '\xFF'));
        garbage.read_all(2s);
        CHECK(garbage.eof());
    }
    SECTION("a client that stalls in the middle of its TLS handshake") {
        test::socket_client stalled{s->port()};
        stalled.send_raw("\x16\x03\x01\x02\x00"); // a ClientHello record header, then nothing
        CHECK(stalled.wait_for_eof(3s));
        CHECK(
            test::eventually([&] { return s->server.limit_hits(ws::limit::handshake_time) == 1; }));
    }
    SECTION("a client that does not trust the certificate") {
        const auto stranger = test::dev_cert::make("stranger");
        CHECK_THROWS_WITH(
            test::socket_client(wss(s->port(), dir.write("other.pem", stranger.cert_pem))),
            Catch::Contains("certificate verify failed"));
    }
    SECTION("an expired certificate is refused by the client") {
        const auto expired = test::dev_cert::make("localhost", -30, 1);
        auto old = echo_over(ws::asio_tls::from_memory(expired.cert_pem, expired.key_pem));
        CHECK_THROWS_WITH(
            test::socket_client(wss(old->port(), dir.write("expired.pem", expired.cert_pem))),
            Catch::Contains("certificate verify failed"));
    }
    CHECK(echoes(honest, "after"));
    CHECK(s->server.connection_count() == 1);
}

TEST_CASE("tls: a new certificate is served without a restart", "[tls]") {
    test::temp_dir dir;
    const auto first = test::dev_cert::make("first");
    const auto second = test::dev_cert::make("second");
    const std::string ca = dir.write("first.pem", first.cert_pem);
    const std::string ca2 = dir.write("second.pem", second.cert_pem);
    const auto tls = ws::asio_tls::from_memory(first.cert_pem, first.key_pem);
    auto s = echo_over(tls);

    test::ws_client before{wss(s->port(), ca)};
    CHECK(peer_common_name(before.socket().ssl()) == "first");

    std::error_code ec;
    tls.reload_files(dir.write("second-cert.pem", second.cert_pem),
                     dir.write("second-key.pem", second.key_pem), ec);
    REQUIRE_FALSE(ec);
    test::ws_client after{wss(s->port(), ca2)};
    CHECK(peer_common_name(after.socket().ssl()) == "second");
    CHECK(echoes(before, "the open connection keeps its session"));
    CHECK(echoes(after, "the new one uses the new certificate"));

    tls.reload_memory("not a certificate", second.key_pem, ec);
    CHECK(ec);
    test::ws_client still{wss(s->port(), ca2)};
    CHECK(peer_common_name(still.socket().ssl()) == "second"); // a failed reload changes nothing
}

TEST_CASE("tls: a graceful stop sends 1001 and closes every wss connection", "[tls]") {
    test::temp_dir dir;
    const auto cert = test::dev_cert::make();
    const std::string ca = dir.write("cert.pem", cert.cert_pem);
    auto s = echo_over(ws::asio_tls::from_memory(cert.cert_pem, cert.key_pem));
    test::ws_client a{wss(s->port(), ca)};
    test::ws_client b{wss(s->port(), ca)};
    REQUIRE(test::eventually([&] { return s->server.connection_count() == 2; }));

    std::thread stopper{[&] { CHECK(s->stop()); }};
    for (test::ws_client* client : {&a, &b}) {
        const auto close = client->read_frame();
        REQUIRE(close);
        CHECK(close->opcode == test::op_close);
        CHECK(close->close_code() == 1001);
        client->send_close(1001);
        CHECK(client->socket().wait_for_eof(3s));
    }
    stopper.join();
}

#endif // WSCHAT_TEST_TLS
