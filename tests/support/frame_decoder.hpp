// Test support — the one client-side reader of the frames a server sends: strict about
// every rule RFC 6455 §5 sets for them, and independent of the library's own frame code.
//
// Bytes in, frames out, no I/O: the socket clients (test_client.hpp, abuse.hpp) and the
// in-memory tests (memory_client.hpp) all read through decode_frame().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace test {

/// One frame as read off the wire.
struct frame {
    std::uint8_t opcode = 0;
    bool fin = true;
    std::string payload;
    bool rsv1 = false; ///< compressed (only where decode_frame was told an extension allows it)

    /// For close frames: the status code, or 1005 when the payload is empty.
    std::uint16_t close_code() const {
        if (payload.size() < 2)
            return 1005;
        return static_cast<std::uint16_t>((std::uint8_t(payload[0]) << 8) |
                                          std::uint8_t(payload[1]));
    }
    /// For close frames: the reason after the code.
    std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

constexpr std::uint8_t op_continuation = 0x0, op_text = 0x1, op_binary = 0x2, op_close = 0x8,
                       op_ping = 0x9, op_pong = 0xA;

/// Decodes the server frame at the start of `bytes`. Returns it and sets `used` to its size
/// on the wire; returns nothing (and `used` 0) while `bytes` holds only part of it. Throws
/// std::runtime_error, as soon as the bytes that show it have arrived, when the frame breaks
/// a rule RFC 6455 sets for a server's frames: masked (§5.1), RSV bits without an extension
/// (§5.2; with `compressed_allowed`, RSV1 on a message's first frame is permessage-deflate's,
/// RFC 7692 §6), a reserved opcode, a non-minimal or 64-bit-overflowing length (§5.2), a fragmented
/// or oversized control frame (§5.5), a one-byte Close payload (§5.5.1).
inline std::optional<frame> decode_frame(std::string_view bytes, std::size_t& used,
                                         bool compressed_allowed = false) {
    used = 0;
    if (bytes.size() < 2)
        return std::nullopt;
    const auto b0 = static_cast<std::uint8_t>(bytes[0]);
    const auto b1 = static_cast<std::uint8_t>(bytes[1]);
    frame f;
    f.fin = (b0 & 0x80) != 0;
    f.opcode = b0 & 0x0F;
    f.rsv1 = (b0 & 0x40) != 0;
    const bool data_start = f.opcode == op_text || f.opcode == op_binary;
    if ((b0 & 0x30) != 0 || (f.rsv1 && !(compressed_allowed && data_start)))
        throw std::runtime_error{"the server set RSV bits without an extension"};
    if ((b1 & 0x80) != 0)
        throw std::runtime_error{"the server sent a masked frame"};
    if ((f.opcode > op_binary && f.opcode < op_close) || f.opcode > op_pong)
        throw std::runtime_error{"the server sent reserved opcode " + std::to_string(f.opcode)};
    std::uint64_t length = b1 & 0x7F;
    const std::size_t extended = length == 126 ? 2 : length == 127 ? 8 : 0;
    if (bytes.size() < 2 + extended)
        return std::nullopt;
    if (extended != 0) {
        length = 0;
        for (std::size_t i = 2; i < 2 + extended; ++i)
            length = (length << 8) | static_cast<std::uint8_t>(bytes[i]);
        if ((extended == 2 && length < 126) || (extended == 8 && length <= 0xFFFF) ||
            (length >> 63) != 0)
            throw std::runtime_error{"the server sent a non-minimal or invalid length"};
    }
    if (f.opcode >= op_close && (!f.fin || length > 125))
        throw std::runtime_error{"the server sent a fragmented or oversized control frame"};
    if (f.opcode == op_close && length == 1)
        throw std::runtime_error{"the server sent a Close frame with a one-byte payload"};
    const std::size_t header = 2 + extended;
    if (bytes.size() - header < length)
        return std::nullopt;
    f.payload.assign(bytes.substr(header, static_cast<std::size_t>(length)));
    used = header + static_cast<std::size_t>(length);
    return f;
}

} // namespace test
