// wschat — a server's graceful stop: who waits for its last connection to finish, and the
// deadline after which the rest are cut off.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/steady_timer_on.hpp>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The drain of a stopping server whose strand is a `Strand`. `begin` and `cancel` run on
/// that strand; `finish_if` from any thread (a connection finishing). A template so that a
/// unit that never stops a server (separate compilation) instantiates none of its timer.
template <class Strand>
class drain {
public:
    explicit drain(Strand& strand) : deadline_(strand) {}

    /// Begins (again, for another stop call): `on_stopped`, when set, waits for the end;
    /// `on_deadline(ec)` runs once `after` has passed, unless cancelled first.
    template <class Handler>
    void begin(std::chrono::milliseconds after, const std::function<void()>& on_stopped,
               Handler on_deadline) {
        deadline_.expires_after(after);
        deadline_.async_wait(std::move(on_deadline));
        if (on_stopped) {
            std::lock_guard<std::mutex> lock{mutex_};
            waiting_.push_back(on_stopped);
        }
    }

    /// When `nothing_left()` (asked under the drain's lock, so that one caller takes who
    /// waits): returns who waits, to be called, and forgets them. Otherwise nullopt.
    template <class Check>
    std::optional<std::vector<std::function<void()>>> finish_if(Check&& nothing_left) {
        std::lock_guard<std::mutex> lock{mutex_};
        if (!nothing_left())
            return std::nullopt;
        return std::exchange(waiting_, {});
    }

    /// Nothing is left to drain: the deadline must not keep the io_context busy.
    void cancel() { deadline_.cancel(); }

private:
    steady_timer_on<Strand> deadline_;
    std::mutex mutex_; // of waiting_
    std::vector<std::function<void()>> waiting_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
