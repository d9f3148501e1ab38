// game_server's wire format and movement rule, shared by the server and its bots
// (examples/game_bot). Sans-I/O: bytes in, values out.
//
// Every message is one binary WebSocket message; integers are little-endian. It starts with
// an 8-byte header:
//
//     offset size  field
//     0      1     type     0x01 input (client -> server); 0x81 welcome, 0x82 snapshot
//     1      1     version  1
//     2      2     count    players in a snapshot; 0 otherwise
//     4      4     tick     input: the last tick the client has seen; welcome: the tick
//                           just broadcast; snapshot: its own tick (1, 2, 3 ... no gaps)
//
// input (16 bytes): header, then u32 seq (1, 2, 3 ... per connection), i8 dx, i8 dy (each
// -max_step..max_step), u8 buttons, u8 zero.
// welcome (16 bytes, to the joining player only): header, then u32 player id, u16 tick rate
// (Hz), u16 the match's player limit. The next snapshot the player receives is tick + 1.
// snapshot (8 + 16 count bytes, to every player of the match): header, then per player u32
// id, u32 ack (the seq of the last input applied, 0 for none), i32 x, i32 y.
//
// Anything else from a client (text, a short or long message, an unknown type or version, a
// step out of range, a seq that does not grow) closes it with 1003 (text) or 1007 (invalid
// payload) and a reason that says what was wrong.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace game {

constexpr std::uint8_t protocol_version = 1;
constexpr std::size_t header_size = 8;
constexpr std::size_t input_size = 16;
constexpr std::size_t welcome_size = 16;
constexpr std::size_t player_size = 16;
/// The largest |dx| and |dy| of one input.
constexpr int max_step = 8;
/// Players stay within -world_edge..world_edge on both axes.
constexpr std::int32_t world_edge = 100000;

enum class type : std::uint8_t { input = 0x01, welcome = 0x81, snapshot = 0x82 };

struct header {
    type kind = type::input;
    std::uint16_t count = 0;
    std::uint32_t tick = 0;
};

struct input {
    std::uint32_t last_tick = 0; ///< the header's tick
    std::uint32_t seq = 0;
    std::int8_t dx = 0;
    std::int8_t dy = 0;
    std::uint8_t buttons = 0;
};

struct welcome {
    std::uint32_t tick = 0;
    std::uint32_t player = 0;
    std::uint16_t tick_hz = 0;
    std::uint16_t max_players = 0;
};

struct player_state {
    std::uint32_t id = 0;
    std::uint32_t ack = 0;
    std::int32_t x = 0;
    std::int32_t y = 0;
};

struct snapshot {
    std::uint32_t tick = 0;
    std::vector<player_state> players;
};

/// The movement rule: one input moves a player by (dx, dy), stopping at the world's edge.
/// The server applies it; a bot applies it to what it sent and compares with the snapshots.
inline void move(player_state& p, int dx, int dy) {
    p.x = std::clamp<std::int32_t>(p.x + dx, -world_edge, world_edge);
    p.y = std::clamp<std::int32_t>(p.y + dy, -world_edge, world_edge);
}

namespace detail {
inline void put(std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
inline std::uint64_t get(std::string_view in, std::size_t at, int bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
        value |= std::uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
    return value;
}
inline void put_header(std::string& out, type kind, std::uint16_t count, std::uint32_t tick) {
    put(out, static_cast<std::uint8_t>(kind), 1);
    put(out, protocol_version, 1);
    put(out, count, 2);
    put(out, tick, 4);
}
} // namespace detail

/// The header of `bytes`; what is wrong in `why` when it is too short or of another version.
inline std::optional<header> read_header(std::string_view bytes, std::string& why) {
    if (bytes.size() < header_size) {
        why = "message of " + std::to_string(bytes.size()) + " bytes: shorter than the " +
              std::to_string(header_size) + "-byte header";
        return std::nullopt;
    }
    if (detail::get(bytes, 1, 1) != protocol_version) {
        why = "protocol version " + std::to_string(detail::get(bytes, 1, 1)) + ", expected " +
              std::to_string(protocol_version);
        return std::nullopt;
    }
    return header{static_cast<type>(bytes[0]), static_cast<std::uint16_t>(detail::get(bytes, 2, 2)),
                  static_cast<std::uint32_t>(detail::get(bytes, 4, 4))};
}

// --- client -> server -------------------------------------------------------------------------

inline std::string encode_input(const input& in) {
    std::string out;
    out.reserve(input_size);
    detail::put_header(out, type::input, 0, in.last_tick);
    detail::put(out, in.seq, 4);
    detail::put(out, static_cast<std::uint8_t>(in.dx), 1);
    detail::put(out, static_cast<std::uint8_t>(in.dy), 1);
    detail::put(out, in.buttons, 1);
    detail::put(out, 0, 1);
    return out;
}

/// An input message, or nothing with the reason in `why`.
inline std::optional<input> decode_input(std::string_view bytes, std::string& why) {
    const auto head = read_header(bytes, why);
    if (!head)
        return std::nullopt;
    if (head->kind != type::input) {
        why = "message type " + std::to_string(static_cast<int>(head->kind)) +
              ": a client sends only inputs (type 1)";
        return std::nullopt;
    }
    if (bytes.size() != input_size) {
        why = "input of " + std::to_string(bytes.size()) + " bytes, expected " +
              std::to_string(input_size);
        return std::nullopt;
    }
    input in;
    in.last_tick = head->tick;
    in.seq = static_cast<std::uint32_t>(detail::get(bytes, 8, 4));
    in.dx = static_cast<std::int8_t>(detail::get(bytes, 12, 1));
    in.dy = static_cast<std::int8_t>(detail::get(bytes, 13, 1));
    in.buttons = static_cast<std::uint8_t>(detail::get(bytes, 14, 1));
    if (head->count != 0 || bytes[15] != 0) {
        why = "input with non-zero reserved bytes";
        return std::nullopt;
    }
    if (in.dx < -max_step || in.dx > max_step || in.dy < -max_step || in.dy > max_step) {
        why = "input step (" + std::to_string(in.dx) + ", " + std::to_string(in.dy) +
              ") beyond +-" + std::to_string(max_step);
        return std::nullopt;
    }
    return in;
}

// --- server -> client -------------------------------------------------------------------------

inline std::string encode_welcome(const welcome& w) {
    std::string out;
    out.reserve(welcome_size);
    detail::put_header(out, type::welcome, 0, w.tick);
    detail::put(out, w.player, 4);
    detail::put(out, w.tick_hz, 2);
    detail::put(out, w.max_players, 2);
    return out;
}

inline std::string encode_snapshot(const snapshot& s) {
    std::string out;
    out.reserve(header_size + player_size * s.players.size());
    detail::put_header(out, type::snapshot, static_cast<std::uint16_t>(s.players.size()), s.tick);
    for (const player_state& p : s.players) {
        detail::put(out, p.id, 4);
        detail::put(out, p.ack, 4);
        detail::put(out, static_cast<std::uint32_t>(p.x), 4);
        detail::put(out, static_cast<std::uint32_t>(p.y), 4);
    }
    return out;
}

inline std::optional<welcome> decode_welcome(std::string_view bytes, std::string& why) {
    const auto head = read_header(bytes, why);
    if (!head)
        return std::nullopt;
    if (head->kind != type::welcome || bytes.size() != welcome_size) {
        why = "not a welcome";
        return std::nullopt;
    }
    return welcome{head->tick, static_cast<std::uint32_t>(detail::get(bytes, 8, 4)),
                   static_cast<std::uint16_t>(detail::get(bytes, 12, 2)),
                   static_cast<std::uint16_t>(detail::get(bytes, 14, 2))};
}

inline std::optional<snapshot> decode_snapshot(std::string_view bytes, std::string& why) {
    const auto head = read_header(bytes, why);
    if (!head)
        return std::nullopt;
    if (head->kind != type::snapshot || bytes.size() != header_size + player_size * head->count) {
        why = "not a snapshot";
        return std::nullopt;
    }
    snapshot s;
    s.tick = head->tick;
    s.players.reserve(head->count);
    for (std::size_t at = header_size; at < bytes.size(); at += player_size)
        s.players.push_back({static_cast<std::uint32_t>(detail::get(bytes, at, 4)),
                             static_cast<std::uint32_t>(detail::get(bytes, at + 4, 4)),
                             static_cast<std::int32_t>(detail::get(bytes, at + 8, 4)),
                             static_cast<std::int32_t>(detail::get(bytes, at + 12, 4))});
    return s;
}

} // namespace game
