// wschat — SHA-1 (FIPS 180-4), used only to compute Sec-WebSocket-Accept.
#pragma once

#include <wschat/detail/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// Rotates a 32-bit word left by `bits` (0 < bits < 32).
constexpr std::uint32_t sha1_rotate_left(std::uint32_t value, unsigned bits) noexcept {
    return (value << bits) | (value >> (32U - bits));
}

/// Runs the SHA-1 compression function on one 64-byte block, updating `state`.
inline void sha1_compress(std::array<std::uint32_t, 5>& state, const std::uint8_t* block) noexcept {
    std::array<std::uint32_t, 80> schedule{};
    for (std::size_t i = 0; i < 16; ++i) {
        const std::uint8_t* word = block + 4 * i;
        schedule[i] = std::uint32_t{word[0]} << 24 | std::uint32_t{word[1]} << 16 |
                      std::uint32_t{word[2]} << 8 | std::uint32_t{word[3]};
    }
    for (std::size_t i = 16; i < 80; ++i)
        schedule[i] = sha1_rotate_left(
            schedule[i - 3] ^ schedule[i - 8] ^ schedule[i - 14] ^ schedule[i - 16], 1);

    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (std::size_t i = 0; i < 80; ++i) {
        std::uint32_t mixed = 0;
        std::uint32_t constant = 0;
        if (i < 20) {
            mixed = (b & c) | (~b & d);
            constant = 0x5A827999;
        } else if (i < 40) {
            mixed = b ^ c ^ d;
            constant = 0x6ED9EBA1;
        } else if (i < 60) {
            mixed = (b & c) | (b & d) | (c & d);
            constant = 0x8F1BBCDC;
        } else {
            mixed = b ^ c ^ d;
            constant = 0xCA62C1D6;
        }
        const std::uint32_t next = sha1_rotate_left(a, 5) + mixed + e + constant + schedule[i];
        e = d;
        d = c;
        c = sha1_rotate_left(b, 30);
        b = a;
        a = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

/// The SHA-1 digest of `size` bytes at `data`.
///
/// SHA-1 is broken for collision resistance; RFC 6455 uses it only to prove that the
/// server understood the handshake, which is the only use wschat makes of it.
inline std::array<std::uint8_t, 20> sha1(const void* data, std::size_t size) noexcept {
    std::array<std::uint32_t, 5> state{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const auto* bytes = static_cast<const std::uint8_t*>(data);

    const std::size_t whole_blocks_size = size - size % 64;
    for (std::size_t offset = 0; offset < whole_blocks_size; offset += 64)
        sha1_compress(state, bytes + offset);

    // The padding (0x80, zeros, 64-bit big-endian bit length) takes one or two final blocks,
    // depending on whether the leftover bytes leave room for the 9 mandatory padding bytes.
    std::array<std::uint8_t, 128> tail{};
    const std::size_t leftover = size - whole_blocks_size;
    if (leftover > 0)
        std::memcpy(tail.data(), bytes + whole_blocks_size, leftover);
    tail[leftover] = 0x80;
    const std::size_t tail_size = leftover + 9 <= 64 ? 64 : 128;
    const std::uint64_t bit_length = static_cast<std::uint64_t>(size) * 8U;
    for (std::size_t i = 0; i < 8; ++i)
        tail[tail_size - 1 - i] = static_cast<std::uint8_t>(bit_length >> (8 * i));
    for (std::size_t offset = 0; offset < tail_size; offset += 64)
        sha1_compress(state, tail.data() + offset);

    std::array<std::uint8_t, 20> digest{};
    for (std::size_t i = 0; i < 5; ++i) {
        digest[4 * i] = static_cast<std::uint8_t>(state[i] >> 24);
        digest[4 * i + 1] = static_cast<std::uint8_t>(state[i] >> 16);
        digest[4 * i + 2] = static_cast<std::uint8_t>(state[i] >> 8);
        digest[4 * i + 3] = static_cast<std::uint8_t>(state[i]);
    }
    return digest;
}

/// The SHA-1 digest of the bytes of `text`.
inline std::array<std::uint8_t, 20> sha1(std::string_view text) noexcept {
    return sha1(text.data(), text.size());
}

} // namespace detail
WSCHAT_END_NAMESPACE
