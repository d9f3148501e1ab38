// wschat — the masking keys of a client's frames, from the operating system's generator.
#pragma once

#include <wschat/detail/config.hpp>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include <sys/random.h>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A fresh 32-bit masking key. RFC 6455 §10.3 asks that a script in a browser cannot predict
/// the keys of the frames its client sends, lest it choose the bytes a proxy in between
/// reads; the kernel's generator (getrandom) gives that, and drawing 64 keys per call keeps
/// it off the path of most frames. Per thread: safe to call from any thread.
inline std::uint32_t next_mask_key() {
    struct pool {
        std::array<std::uint32_t, 64> keys;
        std::size_t next = 64; // all used: fill on the next call
    };
    thread_local pool here;
    if (here.next == here.keys.size()) {
        auto* bytes = reinterpret_cast<unsigned char*>(here.keys.data());
        std::size_t filled = 0;
        while (filled < sizeof here.keys) {
            const ssize_t got = ::getrandom(bytes + filled, sizeof here.keys - filled, 0);
            if (got < 0 && errno != EINTR)
                throw std::system_error{errno, std::system_category(), "getrandom"};
            if (got > 0)
                filled += static_cast<std::size_t>(got);
        }
        here.next = 0;
    }
    return here.keys[here.next++];
}

} // namespace detail

WSCHAT_END_NAMESPACE
