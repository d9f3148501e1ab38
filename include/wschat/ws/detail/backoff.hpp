// wschat — the client's reconnection delays: capped exponential backoff with full jitter.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The delays between reconnection attempts, after the AWS Architecture Blog's "full
/// jitter": the delay before retry n (counting from 1) is uniform in
/// [0, min(cap, base × 2^(n-1))]. Spreading retries over the whole range is what keeps
/// many clients cut off at once from all coming back at once; the cap bounds how long a
/// client stays away once the server is back. `reset()` (after a stable connection) starts
/// the sequence again. No clock: the caller decides when to reset. Not thread-safe.
class backoff {
public:
    using duration = std::chrono::milliseconds;

    /// Delays from `base` capped at `cap`, jittered by `random` (a number in [0, 1) per call).
    backoff(duration base, duration cap, std::function<double()> random)
        : base_(std::max(base, duration{1})), cap_(std::max(cap, base_)),
          random_(std::move(random)) {}

    /// The delay before the next retry, which it counts.
    duration next() {
        ++retries_;
        const duration range = ceiling();
        double r = random_();
        r = r < 0 ? 0 : (r >= 1 ? 0.999999 : r);
        return duration{static_cast<duration::rep>(r * static_cast<double>(range.count() + 1))};
    }

    /// The top of the range the last next() drew from (base before any).
    duration ceiling() const noexcept {
        const unsigned shift = std::min<unsigned>(retries_ == 0 ? 0 : retries_ - 1, 30);
        const auto grown = base_.count() * (std::int64_t{1} << shift);
        return grown >= cap_.count() ? cap_ : duration{grown};
    }

    /// Retries counted since the last reset.
    unsigned retries() const noexcept { return retries_; }

    /// Starts again from `base`: the connection was stable.
    void reset() noexcept { retries_ = 0; }

private:
    duration base_;
    duration cap_;
    std::function<double()> random_;
    unsigned retries_ = 0;
};

} // namespace detail

WSCHAT_END_NAMESPACE
