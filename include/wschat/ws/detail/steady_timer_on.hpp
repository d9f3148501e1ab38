// wschat — the timer type of the library's own deadlines, on a concrete executor.
#pragma once

#include <wschat/detail/config.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/wait_traits.hpp>

#include <chrono>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A steady-clock timer whose waits complete on `Executor` (a strand, or the io_context's
/// own executor). Asio's `steady_timer` holds the type-erased `any_io_executor` instead,
/// whose machinery costs every program that includes the library some 20 KB of code and a
/// share of its compile time; a concrete executor costs neither.
template <class Executor>
using steady_timer_on =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, Executor>;

} // namespace detail

WSCHAT_END_NAMESPACE
