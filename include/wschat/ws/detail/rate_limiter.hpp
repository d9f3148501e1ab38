// wschat — a message rate limit kept in one number.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A token bucket of `rate` messages per second with bursts of up to `burst`, kept as one
/// time stamp (the generic cell rate algorithm): each message moves the time at which the
/// bucket would be full again one interval later; a message that would move it more than
/// a burst's worth ahead of now is refused. 8 bytes per connection, no timer.
class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    /// True when a message arriving at `now` is within the limit (and counts it); always
    /// true when `rate` is 0 or less.
    bool admit(clock::time_point now, double rate, std::size_t burst) noexcept {
        if (rate <= 0)
            return true;
        const auto interval = static_cast<clock::rep>(
            static_cast<double>(clock::duration{std::chrono::seconds{1}}.count()) / rate);
        const auto allowance = static_cast<clock::rep>(std::max<std::size_t>(burst, 1) - 1);
        const clock::rep ticks = now.time_since_epoch().count();
        const clock::rep full_at = std::max(full_at_, ticks);
        if (full_at - ticks > allowance * interval)
            return false;
        full_at_ = full_at + interval;
        return true;
    }

private:
    clock::rep full_at_ = 0; // when the bucket would be full again, in ticks
};

} // namespace detail

WSCHAT_END_NAMESPACE
