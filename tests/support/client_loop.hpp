// Test support — driving a ws::client's io_context from the test's thread until something
// has happened, and recording the client's events.
#pragma once

#include <wschat/ws/client.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace test {

/// Runs `io` until `condition` holds; false if it did not within `timeout`. The io_context
/// is restarted when it ran out of work, so a client waiting on nothing does not end it.
inline bool run_until(asio::io_context& io, const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        if (io.stopped())
            io.restart();
        io.run_one_for(std::chrono::milliseconds{10});
    }
    return true;
}

/// Runs `io` for `duration`, also while it has nothing to do (a client waiting on a manual
/// clock): what a test uses to show that something does NOT happen.
inline void run_for(asio::io_context& io, std::chrono::milliseconds duration) {
    run_until(
        io, [] { return false; }, duration);
}

/// Everything a client reported, in order.
struct client_record {
    std::vector<unsigned> attempts;
    std::vector<ws::client_open> opens;
    std::vector<std::string> messages; // text as is, binary prefixed "bin:"
    std::vector<ws::client_closed> closes;
    std::vector<std::error_code> errors;

    /// Installs the handlers on `client` (replacing any).
    template <class Client>
    void watch(Client& client) {
        client
            .on_connecting(
                [this](const ws::client_connecting& c) { attempts.push_back(c.attempt); })
            .on_open([this](const ws::client_open& o) { opens.push_back(o); })
            .on_message([this](const ws::message& m) {
                messages.push_back(m.is_text() ? std::string{m.data}
                                               : "bin:" + std::string{m.data});
            })
            .on_close([this](const ws::client_closed& c) { closes.push_back(c); })
            .on_error([this](std::error_code ec, std::string_view) { errors.push_back(ec); });
    }
};

} // namespace test
