// What a server keeps of time, without I/O (ws/detail/timekeeping.hpp): deadlines, silent and
// idle peers, the sweep period and the heartbeat schedule.
#include <wschat/ws/detail/timekeeping.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using namespace std::chrono_literals;
using ws::detail::connection_times;
using ws::detail::due;

namespace {
const std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
} // namespace

TEST_CASE("timekeeping: the handshake and close deadlines", "[unit][timekeeping]") {
    ws::server_options options;
    connection_times times{t0};
    CHECK(times.due_at(t0 + 1h, false, options) == due::nothing); // no deadline set
    times.set_deadline(t0, 5s);
    CHECK(times.due_at(t0 + 4999ms, false, options) == due::nothing);
    CHECK(times.due_at(t0 + 5s, false, options) == due::deadline);
    times.set_deadline(t0 + 5s, 1s); // moved on: the close deadline
    CHECK(times.due_at(t0 + 5500ms, false, options) == due::nothing);
    CHECK(times.due_at(t0 + 6s, false, options) == due::deadline);
}

TEST_CASE("timekeeping: an open connection is silent or idle, never past a deadline",
          "[unit][timekeeping]") {
    ws::server_options options;
    options.heartbeat_interval = 10s;
    options.heartbeat_timeout = 30s;
    options.idle_timeout = 20s;
    connection_times times{t0};
    times.set_deadline(t0, 1s);
    times.opened(t0);
    CHECK(times.due_at(t0 + 5s, true, options) == due::nothing);

    SECTION("no message past the idle timeout, though the peer answers pings") {
        times.heard(t0 + 19s);
        CHECK(times.due_at(t0 + 19s, true, options) == due::nothing);
        CHECK(times.due_at(t0 + 20s, true, options) == due::idle);
        times.message_received(); // counts from when its bytes were heard
        CHECK(times.due_at(t0 + 38s, true, options) == due::nothing);
        CHECK(times.due_at(t0 + 39s, true, options) == due::idle);
    }
    SECTION("silence past the heartbeat timeout comes first") {
        options.idle_timeout = 0ms;
        CHECK(times.due_at(t0 + 29s, true, options) == due::nothing);
        CHECK(times.due_at(t0 + 30s, true, options) == due::silent);
        times.heard(t0 + 25s);
        CHECK(times.last_heard() == t0 + 25s);
        CHECK(times.due_at(t0 + 54s, true, options) == due::nothing);
    }
    SECTION("without a heartbeat, silence is not checked") {
        options.heartbeat_interval = 0ms;
        options.idle_timeout = 0ms;
        CHECK(times.due_at(t0 + 24h, true, options) == due::nothing);
    }
}

TEST_CASE("timekeeping: the sweep period is the shortest timeout, quartered for deadlines",
          "[unit][timekeeping]") {
    ws::server_options options;
    options.heartbeat_interval = 0ms;
    options.idle_timeout = 0ms;
    options.handshake_timeout = 8s;
    options.close_timeout = 12s;
    CHECK(ws::detail::sweep_period(options) == 2s);
    options.idle_timeout = 1s;
    CHECK(ws::detail::sweep_period(options) == 1s);
    options.heartbeat_interval = 500ms;
    CHECK(ws::detail::sweep_period(options) == 500ms);
    options = {};
    options.heartbeat_interval = options.idle_timeout = 0ms;
    options.handshake_timeout = options.close_timeout = 0ms;
    CHECK(ws::detail::sweep_period(options) == 0ms);
}

TEST_CASE("timekeeping: the heartbeat is due once per interval", "[unit][timekeeping]") {
    ws::detail::heartbeat_schedule beat{t0, 10s};
    CHECK_FALSE(beat.due_at(t0 + 9s));
    CHECK(beat.due_at(t0 + 10s));
    CHECK_FALSE(beat.due_at(t0 + 15s)); // the next one counts from the last ping
    CHECK(beat.due_at(t0 + 20s));
    ws::detail::heartbeat_schedule off{t0, 0ms};
    CHECK_FALSE(off.due_at(t0 + 24h));
}
