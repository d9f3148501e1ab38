// wschat — a server's sweep: one timer for every connection's deadlines, idle and heartbeat
// timeouts, and the heartbeat's pings.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/detail/registry.hpp>
#include <wschat/ws/detail/steady_timer_on.hpp>
#include <wschat/ws/detail/timekeeping.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Sweeps the connections of a server (a connection has no timer of its own): each sweep
/// ends those past their handshake or close deadline, silent past the heartbeat timeout or
/// idle past the idle timeout and, when a heartbeat is due, pings the rest with one shared
/// frame. Runs on the server's strand, on a timer of the steady clock every sweep_period();
/// with a manual clock the server sweeps at each advance instead.
template <class Connection>
class sweeper {
public:
    using strand_type = asio::strand<asio::io_context::executor_type>;
    using clock = time_source::clock;

    sweeper(strand_type& strand, const server_options& options, const time_source& time)
        : options_(options), timer_(strand), heartbeat_(time.now(), options.heartbeat_interval),
          ping_(make_frame(opcode::ping, {})) {}

    /// Arms the timer for the next sweep: `on_due(ec)` runs then. False when no sweep is
    /// ever due (every timeout off).
    template <class Handler>
    bool schedule(Handler on_due) {
        const std::chrono::milliseconds period = sweep_period(options_);
        if (period.count() <= 0)
            return false;
        timer_.expires_after(period);
        timer_.async_wait(std::move(on_due));
        return true;
    }

    /// Sweeps `registry` at `now`. Under the registry's lock rather than over a copy: a
    /// connection's sweep only reads atomics, posts, or queues the ping, none of which takes
    /// that lock; the cork (of `executor`), released after the lock, sends the pings.
    void sweep(connection_registry<Connection>& registry, clock::time_point now,
               const asio::io_context::executor_type& executor) {
        const shared_frame ping = heartbeat_.due_at(now) ? ping_ : shared_frame{};
        cork corked{executor};
        registry.for_each([&](Connection& conn) { connection_access::sweep(conn, now, ping); });
    }

    /// No more sweeps.
    void cancel() { timer_.cancel(); }

private:
    const server_options& options_;
    steady_timer_on<strand_type> timer_;
    heartbeat_schedule heartbeat_;
    const shared_frame ping_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
