// Test support — a ws::server running its io_context on a background thread.
#pragma once

#include <wschat/wschat.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace test {

using namespace std::chrono_literals;

/// Options for a server under test: loopback, a free port, otherwise the defaults.
inline ws::server_options loopback_options() {
    ws::server_options opts;
    opts.address = "127.0.0.1";
    opts.port = 0;
    return opts;
}

/// Waits until `condition` holds, polling; false if it never did within `timeout`.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// Owns an io_context, a server on it (over `Transport`) and the thread running it. Install
/// handlers (or attach rooms) between construction and `start()`.
template <class Transport = ws::asio_tcp>
class basic_running_server {
public:
    explicit basic_running_server(ws::server_options opts = loopback_options(), int threads = 1,
                                  Transport transport = {})
        : server(io, std::move(opts), std::move(transport)), threads_(threads) {}
    basic_running_server(const basic_running_server&) = delete;
    basic_running_server& operator=(const basic_running_server&) = delete;
    ~basic_running_server() { stop(); }

    void start() {
        for (int i = 0; i < threads_; ++i)
            pool_.emplace_back([this] { io.run(); });
    }

    std::uint16_t port() const { return server.local_endpoint().port(); }

    /// Graceful stop; true when the stop completed and the io_context ran out of work
    /// within `timeout` (the threads are joined either way).
    bool stop(std::chrono::milliseconds timeout = 10s) {
        if (pool_.empty())
            return true;
        // Completed means the server left no work behind, so the io_context's run()
        // returned by itself. If a test already stopped the server, that may have happened
        // before our own stop() could run, so the callback is not waited for.
        auto stopped = std::make_shared<std::atomic<bool>>(false);
        server.stop([stopped] { *stopped = true; });
        const bool completed = eventually([&] { return *stopped || io.stopped(); }, timeout) &&
                               eventually([this] { return io.stopped(); }, timeout);
        if (!completed)
            io.stop();
        for (auto& t : pool_)
            t.join();
        pool_.clear();
        return completed;
    }

    asio::io_context io;
    ws::server<Transport> server;

private:
    int threads_;
    std::vector<std::thread> pool_;
};

using running_server = basic_running_server<>;

/// A room attached to a running server: the common set-up of room tests.
template <class Policy = chat::text_policy>
struct running_room {
    explicit running_room(Policy policy = {}, ws::server_options opts = loopback_options(),
                          int threads = 1)
        : room(std::move(policy)), s(std::move(opts), threads) {
        room.attach(s.server);
        s.start();
    }
    std::uint16_t port() const { return s.port(); }

    chat::room<ws::asio_tcp, Policy> room;
    running_server s;
};

} // namespace test
