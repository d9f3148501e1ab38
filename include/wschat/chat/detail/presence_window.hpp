// wschat — how long a room waits between presence announcements.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// The window after an announcement of `sent` frames (one per member told): `interval`, or
/// as long as sending them at `frames_per_second` takes, whichever is longer (0 frames per
/// second: `interval` alone). Each frame is a write to one member; bounding their rate keeps
/// a join storm in a large room from spending the server on counts nobody reads.
inline std::chrono::microseconds presence_window(std::chrono::milliseconds interval,
                                                 std::size_t frames_per_second, std::size_t sent) {
    const std::chrono::microseconds plain = interval;
    if (frames_per_second == 0)
        return plain;
    return std::max(plain, std::chrono::microseconds{
                               static_cast<std::int64_t>(sent * 1'000'000 / frames_per_second)});
}

} // namespace detail

WSCHAT_END_NAMESPACE
