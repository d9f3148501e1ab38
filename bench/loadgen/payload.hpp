// loadgen — the 64-byte benchmark message: who sent it, its sequence number and when.
//
//     wsb:SSSSSS:QQQQQQQQQQ:TTTTTTTTTTTTTTTTTTTT:.....................
//         sender  sequence   steady_clock ns
//
// Fixed-width decimal fields keep the payload valid UTF-8 text (every server relays it as a
// text message) and make parsing a handful of multiply-adds. The "wsb:" prefix tells benchmark
// messages from the servers' own welcome and presence lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace loadgen {

constexpr std::size_t payload_size = 64;
constexpr std::string_view payload_prefix = "wsb:";

struct stamp {
    std::uint32_t sender = 0;
    std::uint32_t sequence = 0;
    std::uint64_t sent_ns = 0; ///< steady_clock time the message was (scheduled to be) sent
};

namespace detail {
constexpr std::size_t sender_at = 4, sender_digits = 6;
constexpr std::size_t sequence_at = 11, sequence_digits = 10;
constexpr std::size_t time_at = 22, time_digits = 20;

inline void put_digits(char* out, std::uint64_t value, std::size_t digits) noexcept {
    for (std::size_t i = digits; i-- > 0; value /= 10)
        out[i] = static_cast<char>('0' + value % 10);
}

inline std::uint64_t get_digits(const char* in, std::size_t digits, bool& ok) noexcept {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        const auto d = static_cast<unsigned>(in[i] - '0');
        ok = ok && d < 10;
        value = value * 10 + d;
    }
    return value;
}
} // namespace detail

/// Writes the payload_size bytes of `s` to `out`.
inline void write_payload(char* out, const stamp& s) noexcept {
    std::memset(out, '.', payload_size);
    std::memcpy(out, payload_prefix.data(), payload_prefix.size());
    detail::put_digits(out + detail::sender_at, s.sender, detail::sender_digits);
    out[detail::sequence_at - 1] = ':';
    detail::put_digits(out + detail::sequence_at, s.sequence, detail::sequence_digits);
    out[detail::time_at - 1] = ':';
    detail::put_digits(out + detail::time_at, s.sent_ns, detail::time_digits);
    out[detail::time_at + detail::time_digits] = ':';
}

/// The stamp of a benchmark payload; nullopt for any other message.
inline std::optional<stamp> read_payload(std::string_view payload) noexcept {
    if (payload.size() != payload_size ||
        payload.substr(0, payload_prefix.size()) != payload_prefix)
        return std::nullopt;
    bool ok = true;
    stamp s;
    s.sender = static_cast<std::uint32_t>(
        detail::get_digits(payload.data() + detail::sender_at, detail::sender_digits, ok));
    s.sequence = static_cast<std::uint32_t>(
        detail::get_digits(payload.data() + detail::sequence_at, detail::sequence_digits, ok));
    s.sent_ns = detail::get_digits(payload.data() + detail::time_at, detail::time_digits, ok);
    if (!ok)
        return std::nullopt;
    return s;
}

} // namespace loadgen
