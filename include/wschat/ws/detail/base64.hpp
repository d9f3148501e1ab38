// wschat — base64 (RFC 4648 §4) for the Sec-WebSocket-Key / Sec-WebSocket-Accept headers.
#pragma once

#include <wschat/detail/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// The RFC 4648 §4 alphabet, indexed by 6-bit value.
inline constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks a byte that is not in the alphabet in `base64_values`.
inline constexpr std::uint8_t base64_invalid = 0xFF;

/// Builds the reverse of `base64_alphabet`: byte → 6-bit value, or base64_invalid.
constexpr std::array<std::uint8_t, 256> make_base64_values() noexcept {
    std::array<std::uint8_t, 256> values{};
    for (auto& value : values)
        value = base64_invalid;
    for (std::size_t i = 0; i < base64_alphabet.size(); ++i)
        values[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::uint8_t>(i);
    return values;
}

/// Byte → 6-bit value, or base64_invalid (including for the padding character '=').
inline constexpr std::array<std::uint8_t, 256> base64_values = make_base64_values();

/// Encodes `size` bytes at `data` as padded base64.
inline std::string base64_encode(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    std::string text;
    text.reserve((size + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const std::uint32_t group = std::uint32_t{bytes[i]} << 16 |
                                    std::uint32_t{bytes[i + 1]} << 8 | std::uint32_t{bytes[i + 2]};
        text += base64_alphabet[group >> 18];
        text += base64_alphabet[(group >> 12) & 0x3F];
        text += base64_alphabet[(group >> 6) & 0x3F];
        text += base64_alphabet[group & 0x3F];
    }
    const std::size_t leftover = size - i;
    if (leftover > 0) {
        const std::uint32_t group =
            std::uint32_t{bytes[i]} << 16 | (leftover == 2 ? std::uint32_t{bytes[i + 1]} << 8 : 0U);
        text += base64_alphabet[group >> 18];
        text += base64_alphabet[(group >> 12) & 0x3F];
        text += leftover == 2 ? base64_alphabet[(group >> 6) & 0x3F] : '=';
        text += '=';
    }
    return text;
}

/// The number of bytes `text` decodes to, or std::nullopt when it is not strict base64:
/// the length must be a multiple of 4, '=' may only pad the last group, no whitespace or
/// line breaks, and the unused bits before the padding must be zero (so each byte string
/// has exactly one accepted encoding). Checks without allocating.
inline std::optional<std::size_t> base64_decoded_size(std::string_view text) noexcept {
    if (text.size() % 4 != 0)
        return std::nullopt;
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=')
        padding = text[text.size() - 2] == '=' ? 2 : 1;
    const std::size_t data_chars = text.size() - padding;
    for (std::size_t i = 0; i < data_chars; ++i)
        if (base64_values[static_cast<unsigned char>(text[i])] == base64_invalid)
            return std::nullopt;
    if (padding > 0) {
        // The last data character contributes 4 (one '=') or 2 (two '=') bits that would
        // belong to a missing byte: they must be zero, so "Zg==" is "f" and "Zh==" is invalid.
        const std::uint8_t last = base64_values[static_cast<unsigned char>(text[data_chars - 1])];
        const std::uint8_t unused_bits_mask = padding == 2 ? 0x0F : 0x03;
        if ((last & unused_bits_mask) != 0)
            return std::nullopt;
    }
    return text.size() / 4 * 3 - padding;
}

/// Strict RFC 4648 decode (rules as for base64_decoded_size); std::nullopt when malformed.
inline std::optional<std::string> base64_decode(std::string_view text) {
    const std::optional<std::size_t> size = base64_decoded_size(text);
    if (!size)
        return std::nullopt;
    std::string bytes;
    bytes.reserve(*size);
    std::uint32_t bits = 0;
    unsigned bit_count = 0;
    for (std::size_t i = 0; bytes.size() < *size; ++i) {
        bits = bits << 6 | base64_values[static_cast<unsigned char>(text[i])];
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            bytes += static_cast<char>((bits >> bit_count) & 0xFF);
        }
    }
    return bytes;
}

} // namespace detail
WSCHAT_END_NAMESPACE
