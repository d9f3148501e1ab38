// wschat — a lock of one byte, for a connection's send queue.
#pragma once

#include <wschat/detail/config.hpp>

#include <atomic>
#include <thread>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Guards critical sections a few instructions long (a push onto a vector, a swap of two),
/// where a `std::mutex` would cost more than the section: 40 bytes in every connection,
/// most of an idle connection's send state. A waiter spins briefly, then yields its time
/// slice, so a holder preempted in the section is not spun against for a whole slice.
/// BasicLockable: use it with `std::lock_guard`.
class spin_lock {
public:
    void lock() noexcept {
        while (locked_.exchange(true, std::memory_order_acquire))
            for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins)
                if (spins >= spins_before_yield)
                    std::this_thread::yield();
    }

    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    static constexpr int spins_before_yield = 64;
    std::atomic<bool> locked_{false};
};

} // namespace detail

WSCHAT_END_NAMESPACE
