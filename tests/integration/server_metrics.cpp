// chat::server_metrics on a real server over TCP: connections, messages and bytes counted
// through the server's handlers, close codes as the peers and the server chose them, the
// server's limit hits and open connections read at the snapshot, and detach.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/chat/metrics.hpp>
#include <wschat/chat/prometheus.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;

namespace {

std::uint64_t closed_with(const chat::server_stats& s, std::uint16_t code) {
    return s.closed[chat::close_code_slot(code)];
}

/// Reads frames until the server's Close; its code, or 0 when none came.
std::uint16_t close_code_from(test::ws_client& client) {
    while (const auto f = client.read_frame(5s))
        if (f->opcode == test::op_close)
            return f->close_code();
    return 0;
}

} // namespace

TEST_CASE("server_metrics: counts what a real server sees", "[integration][metrics]") {
    auto opts = test::loopback_options();
    opts.max_message_size = 100;
    test::running_server s{opts};
    chat::server_metrics metrics;
    metrics.attach(s.server);
    metrics.attach(s.server); // once is enough: nothing is counted twice
    s.start();

    {
        test::ws_client a{s.port()};
        test::ws_client b{s.port()};
        REQUIRE(test::eventually([&] {
            const chat::server_stats now = metrics.snapshot(s.server);
            return now.connections_opened == 2 && now.connections_open == 2;
        }));
        CHECK(a.send_text("hello"));
        CHECK(a.send_text(""));
        CHECK(b.send(test::op_binary, "xyz"));
        REQUIRE(test::eventually([&] { return metrics.snapshot().messages_in == 3; }));
        CHECK(metrics.snapshot().bytes_in == 8);

        CHECK(a.send_close(1000));
        CHECK(close_code_from(a) == 1000);
        CHECK(b.send_close(4001, "bye"));
        CHECK(close_code_from(b) == 4001);
        REQUIRE(test::eventually([&] {
            const chat::server_stats now = metrics.snapshot(s.server);
            return now.connections_open == 0 && closed_with(now, 1000) == 1 &&
                   closed_with(now, 4001) == 1; // 4001 is counted in "other"
        }));
    }
    chat::server_stats now = metrics.snapshot(s.server);
    CHECK(closed_with(now, 3000) == 1); // "other" too
    CHECK(closed_with(now, 1009) == 0);

    {
        test::ws_client big{s.port()};
        CHECK(big.send_text(std::string(200, 'x')));
        CHECK(close_code_from(big) == 1009);
    }
    REQUIRE(test::eventually([&] { return closed_with(metrics.snapshot(), 1009) == 1; }));
    now = metrics.snapshot(s.server);
    CHECK(now.limit_hits[static_cast<std::size_t>(ws::limit::message_size)] == 1);
    CHECK(now.limit_hits[static_cast<std::size_t>(ws::limit::message_rate)] == 0);
    CHECK(now.connections_opened == 3);
    CHECK(now.messages_in == 3); // the refused message never reached the handlers

    // A snapshot without the server has the handlers' counts only.
    const chat::server_stats own = metrics.snapshot();
    CHECK(own.connections_opened == 3);
    CHECK(own.limit_hits[static_cast<std::size_t>(ws::limit::message_size)] == 0);

    SECTION("the exposition of a live server") {
        chat::prometheus_text page;
        chat::append_server(page, now);
        const std::string text = page.str();
        CHECK(text.find("\nwschat_connections_opened_total 3\n") != std::string::npos);
        CHECK(text.find("\nwschat_connections_closed_total{code=\"1009\"} 1\n") !=
              std::string::npos);
        CHECK(text.find("\nwschat_limit_hits_total{limit=\"message_size\"} 1\n") !=
              std::string::npos);
    }
    SECTION("after detach nothing more is counted") {
        metrics.detach(s.server);
        metrics.detach(s.server); // a no-op
        {
            test::ws_client late{s.port()};
            CHECK(late.send_text("unseen"));
            CHECK(late.send_close(1000));
            CHECK(close_code_from(late) == 1000);
        }
        REQUIRE(test::eventually([&] { return s.server.connection_count() == 0; }));
        const chat::server_stats after = metrics.snapshot();
        CHECK(after.connections_opened == 3);
        CHECK(after.messages_in == 3);
        CHECK(closed_with(after, 1000) == 1);

        metrics.attach(s.server); // and again once attached anew
        test::ws_client again{s.port()};
        REQUIRE(test::eventually([&] { return metrics.snapshot().connections_opened == 4; }));
    }
}
