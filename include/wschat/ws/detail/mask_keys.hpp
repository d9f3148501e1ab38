// wschat — the masking keys of a client's frames, from the operating system's generator.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/random.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A fresh 32-bit masking key. RFC 6455 §10.3 asks that a script in a browser cannot predict
/// the keys of the frames its client sends, lest it choose the bytes a proxy in between
/// reads; the kernel's generator (ws::random_bytes) gives that, and drawing 64 keys per call keeps
/// it off the path of most frames. Per thread: safe to call from any thread.
inline std::uint32_t next_mask_key() {
    struct pool {
        std::array<std::uint32_t, 64> keys;
        std::size_t next = 64; // all used: fill on the next call
    };
    thread_local pool here;
    if (here.next == here.keys.size()) {
        random_bytes(here.keys.data(), sizeof here.keys);
        here.next = 0;
    }
    return here.keys[here.next++];
}

} // namespace detail

WSCHAT_END_NAMESPACE
