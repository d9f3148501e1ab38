// wschat — random bytes from the operating system's generator, for keys, nonces and tokens.
#pragma once

#include <wschat/detail/config.hpp>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

#include <sys/random.h>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Fills `size` bytes at `out` from the kernel's generator (getrandom), which is
/// unpredictable: what a masking key, a resume token or an epoch needs, and what a seeded
/// engine such as std::mt19937 is not (its state can be rebuilt from a few hundred outputs).
/// Blocks only before the kernel's generator is first seeded, early at boot. Throws
/// std::system_error if the kernel refuses. Safe to call from any thread.
inline void random_bytes(void* out, std::size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t filled = 0;
    while (filled < size) {
        const ssize_t got = ::getrandom(bytes + filled, size - filled, 0);
        if (got < 0 && errno != EINTR)
            throw std::system_error{errno, std::system_category(), "getrandom"};
        if (got > 0)
            filled += static_cast<std::size_t>(got);
    }
}

/// `size` random bytes (see random_bytes) written as 2 × `size` lowercase hex digits: a
/// token or an identifier that is safe in JSON, URLs and logs.
inline std::string random_hex(std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string bytes(size, '\0');
    random_bytes(bytes.data(), size);
    std::string hex;
    hex.reserve(2 * size);
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        hex += digits[b >> 4];
        hex += digits[b & 0xF];
    }
    return hex;
}

WSCHAT_END_NAMESPACE
