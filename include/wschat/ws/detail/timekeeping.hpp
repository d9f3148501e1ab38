// wschat — what a server keeps of time: each connection's deadline and signs of life, what is
// due at a sweep, how often the sweep runs and when the next heartbeat goes out.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/options.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// What a sweep finds due for a connection.
enum class due : std::uint8_t {
    nothing,
    deadline, ///< its handshake or close deadline passed
    silent,   ///< the peer was silent past the heartbeat timeout
    idle,     ///< no message past the idle timeout
};

/// A connection's times: written on its strand, read by the server's sweep (a connection
/// has no timer of its own). An open connection has no deadline and the others no idle
/// timeout, so one number serves as the handshake or close deadline (0: none) until open,
/// and while open as when the peer last sent a message. Beside it: when the peer was last
/// heard from at all. Both are steady-clock ticks, in atomics.
class connection_times {
public:
    using clock = time_source::clock;

    explicit connection_times(clock::time_point now) noexcept
        : last_seen_(time_source::ticks_at(now)) {}

    /// The handshake deadline, then the close deadline: `after` from `now`.
    void set_deadline(clock::time_point now, std::chrono::milliseconds after) noexcept {
        deadline_or_last_message_.store(time_source::ticks_at(now + after),
                                        std::memory_order_relaxed);
    }

    /// The connection opened at `now`: the handshake deadline is over, the idle timeout
    /// counts from here.
    void opened(clock::time_point now) noexcept {
        deadline_or_last_message_.store(time_source::ticks_at(now), std::memory_order_relaxed);
    }

    /// Bytes arrived at `now`: a sign of life.
    void heard(clock::time_point now) noexcept {
        last_seen_.store(time_source::ticks_at(now), std::memory_order_relaxed);
    }

    /// When bytes last arrived.
    clock::time_point last_heard() const noexcept {
        return clock::time_point{clock::duration{last_seen_.load(std::memory_order_relaxed)}};
    }

    /// A message arrived with the bytes last heard: it counts against the idle timeout.
    void message_received() noexcept {
        deadline_or_last_message_.store(last_seen_.load(std::memory_order_relaxed),
                                        std::memory_order_relaxed);
    }

    /// What is due at `now` for a connection that is `open` or not, the first of: the
    /// deadline passed, the peer silent past the heartbeat timeout, no message past the idle
    /// timeout. Reads only atomics.
    due due_at(clock::time_point now, bool open, const server_options& options) const noexcept {
        const clock::rep ticks = time_source::ticks_at(now);
        // A sweep that reads the state before a change and the mark after it may find
        // something due that is not: the connection asks again on its strand, where both are
        // current, so that costs a post and nothing more.
        const clock::rep mark = deadline_or_last_message_.load(std::memory_order_relaxed);
        if (!open)
            return mark != 0 && ticks >= mark ? due::deadline : due::nothing;
        if (options.heartbeat_interval.count() > 0 &&
            ticks - last_seen_.load(std::memory_order_relaxed) >=
                time_source::ticks_of(options.heartbeat_timeout))
            return due::silent;
        if (options.idle_timeout.count() > 0 &&
            ticks - mark >= time_source::ticks_of(options.idle_timeout))
            return due::idle;
        return due::nothing;
    }

private:
    std::atomic<clock::rep> deadline_or_last_message_{0};
    std::atomic<clock::rep> last_seen_;
};

/// How often the server sweeps its connections: as often as the shortest of the heartbeat
/// interval, the idle timeout and a quarter of the handshake and close timeouts (so those
/// deadlines are kept to within a quarter of their length); zero when all are off.
inline std::chrono::milliseconds sweep_period(const server_options& options) {
    std::chrono::milliseconds period{0};
    for (const auto enabled : {options.heartbeat_interval, options.idle_timeout,
                               options.handshake_timeout / 4, options.close_timeout / 4})
        if (enabled.count() > 0 && (period.count() == 0 || enabled < period))
            period = enabled;
    return period;
}

/// When the server pings every open connection next: every `heartbeat_interval` from its
/// start (never when the interval is zero).
class heartbeat_schedule {
public:
    using clock = time_source::clock;

    heartbeat_schedule(clock::time_point start, std::chrono::milliseconds interval) noexcept
        : interval_(interval), next_(start + interval) {}

    /// True when a ping is due at `now`; the next is then due an interval later.
    bool due_at(clock::time_point now) noexcept {
        if (interval_.count() <= 0 || now < next_)
            return false;
        next_ = now + interval_;
        return true;
    }

private:
    std::chrono::milliseconds interval_;
    clock::time_point next_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
