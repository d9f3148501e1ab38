// wschat — the time a server keeps: the steady clock, or a manual clock that tests move.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A clock that moves only when told to, for tests of heartbeats, idle timeouts, handshake
/// and close deadlines and rate limits that run without waiting in real time.
///
/// A server given one in `server_options::clock` reads the time from it instead of the
/// steady clock, and runs its sweep (deadlines, heartbeats) whenever the clock is advanced
/// rather than on a timer:
///
/// ```cpp
/// auto clock = std::make_shared<ws::manual_clock>();
/// ws::server_options opts;
/// opts.clock = clock;
/// ws::server<ws::memory_transport> server{io, opts};
/// ...
/// clock->advance(opts.heartbeat_interval); // every open connection is pinged
/// io.poll();
/// ```
///
/// It starts at the steady clock's current time. Thread safety: `now` and `advance` may be
/// called from any thread.
class manual_clock {
public:
    /// The steady clock's time points, so that the two are interchangeable.
    using time_point = std::chrono::steady_clock::time_point;

    /// The current time of this clock.
    time_point now() const noexcept {
        return time_point{
            std::chrono::steady_clock::duration{ticks_.load(std::memory_order_acquire)}};
    }

    /// Moves the clock forward by `by`, then tells every server that uses it to sweep (each
    /// posts its sweep to its io_context, so run or poll the io_context afterwards).
    void advance(std::chrono::steady_clock::duration by) {
        ticks_.fetch_add(by.count(), std::memory_order_acq_rel);
        std::lock_guard<std::mutex> lock{mutex_}; // listeners only post: they never call back
        listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                        [](const std::function<bool()>& told) { return !told(); }),
                         listeners_.end());
    }

    /// Calls `listener` after each advance for as long as it returns true (a server returns
    /// false once it is gone). Used by the server.
    void on_advance(std::function<bool()> listener) {
        std::lock_guard<std::mutex> lock{mutex_};
        listeners_.push_back(std::move(listener));
    }

private:
    std::atomic<std::chrono::steady_clock::rep> ticks_{
        std::chrono::steady_clock::now().time_since_epoch().count()};
    std::mutex mutex_; // of listeners_
    std::vector<std::function<bool()>> listeners_;
};

namespace detail {

/// Where a server and its connections read the time: its manual clock when the options
/// give one, the steady clock otherwise.
class time_source {
public:
    using clock = std::chrono::steady_clock;

    explicit time_source(std::shared_ptr<manual_clock> manual) : manual_(std::move(manual)) {}

    clock::time_point now() const noexcept { return manual_ ? manual_->now() : clock::now(); }

    /// The manual clock, or null.
    const std::shared_ptr<manual_clock>& manual() const noexcept { return manual_; }

    /// A time point as a number of ticks, for atomics.
    static clock::rep ticks_at(clock::time_point t) noexcept {
        return t.time_since_epoch().count();
    }

    /// A duration as a number of ticks.
    template <class Duration>
    static clock::rep ticks_of(Duration duration) noexcept {
        return std::chrono::duration_cast<clock::duration>(duration).count();
    }

private:
    std::shared_ptr<manual_clock> manual_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
