// Test support — the bytes a client sends: its frames (masked, or not to test the server's
// refusal), Close payloads and the upgrade request. Written from RFC 6455, sharing no code
// with the library.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace test {

/// Encodes one client frame; masked unless told otherwise (to test the server's refusal).
inline std::string encode(std::uint8_t opcode, std::string_view payload, bool fin = true,
                          bool masked = true, std::uint8_t rsv = 0) {
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
    const std::uint8_t mask_bit = masked ? 0x80 : 0;
    const std::uint64_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(mask_bit | n));
    } else if (n <= 0xFFFF) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((n >> shift) & 0xFF));
    }
    if (!masked)
        return out + std::string{payload};
    thread_local std::mt19937 random{12345}; // test threads each mask with their own keys
    char key[4];
    for (char& k : key)
        k = static_cast<char>(random());
    out.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
    return out;
}

/// A close frame payload: big-endian code + reason.
inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string out{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    return out + std::string{reason};
}

/// The request a browser would send, with a fixed key (RFC 6455 §1.3's).
inline std::string upgrade_request(std::string_view path = "/", std::string_view extra = {}) {
    return "GET " + std::string{path} +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string{extra} + "\r\n";
}

} // namespace test
