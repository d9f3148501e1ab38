// Shared by the tests/redis/ cases: an io_context driven on the test thread until a condition
// holds, and connection options with short timeouts so that faults show within a second.
#pragma once

#include "support/redis_server.hpp"

#include <wschat/chat/detail/redis_connection.hpp>
#include <wschat/chat/detail/redis_subscriber.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace redis_test {

using namespace std::chrono_literals;
using chat::detail::redis_reply;
using chat::detail::redis_state;

/// Runs `io` on this thread until `done` holds; false if it did not within `timeout`.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        io.restart();
        io.run_one_for(10ms);
    }
    return true;
}

/// Runs `io` for `duration` whatever happens.
inline void run_for(asio::io_context& io, std::chrono::milliseconds duration) {
    io.restart();
    io.run_for(duration);
}

/// Options for `url` with timeouts and backoff short enough for tests.
inline chat::detail::redis_options options(const std::string& url) {
    chat::detail::redis_options o;
    o.endpoint = chat::detail::parse_redis_url(url);
    o.connect_timeout = 1000ms;
    o.command_timeout = 1000ms;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
}

/// Every state a link went through, and the errors it reported.
struct state_log {
    std::vector<chat::detail::redis_state_event> events;

    std::function<void(const chat::detail::redis_state_event&)> handler() {
        return [this](const chat::detail::redis_state_event& e) { events.push_back(e); };
    }
    std::size_t count(redis_state s) const {
        std::size_t n = 0;
        for (const auto& e : events)
            n += e.state == s;
        return n;
    }
    bool last_is(redis_state s) const { return !events.empty() && events.back().state == s; }
};

/// The outcome of one command, filled in by its handler, which also counts its calls.
struct outcome {
    int calls = 0;
    std::error_code ec;
    redis_reply reply;

    std::function<void(std::error_code, redis_reply)> handler() {
        return [this](std::error_code e, redis_reply r) {
            ++calls;
            ec = e;
            reply = std::move(r);
        };
    }
    bool done() const { return calls > 0; }
};

/// A reply handler that ignores the outcome.
inline std::function<void(std::error_code, redis_reply)> ignore() {
    return [](std::error_code, redis_reply) {};
}

} // namespace redis_test
