// iot_gateway's wire format, shared by the gateway and its device simulator
// (examples/iot_devices); the dashboard page decodes the same bytes in JavaScript. Sans-I/O.
//
// Integers are little-endian. A device sends one binary message per reading (24 bytes):
//
//     offset size  field
//     0      1     type          0x01 reading
//     1      1     version       1
//     2      2     reserved      0
//     4      4     seq           1, 2, 3 ... per connection (must grow)
//     8      2     temperature   i16, hundredths of a degree Celsius, -4000..12500
//     10     2     humidity      u16, hundredths of a percent, 0..10000
//     12     2     battery       u16, millivolts, 0..10000
//     14     2     reserved      0
//     16     8     time          u64, the device's clock, ms since the Unix epoch
//
// The device's id is not in the message: it is the one the connection's path names
// (/device/ID), so a device cannot speak for another.
//
// The gateway sends a dashboard, for each device it subscribed to:
//
//     reading (0x81), 32 + n bytes: u8 type, u8 version, u8 n (id length), u8 online (1),
//         then bytes 4..23 of the device's reading (seq, temperature, humidity, battery,
//         reserved, time), u64 the gateway's clock when it arrived, then the id (n bytes)
//     status (0x82), 4 + n bytes: u8 type, u8 version, u8 n, u8 online (0 or 1), the id
//
// A device message that is not a valid reading (text, another size, type or version,
// non-zero reserved bytes, a value out of range, a seq that does not grow) closes the device
// with 1003 (text) or 1007 (invalid payload) and a reason that says what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace telemetry {

constexpr std::uint8_t protocol_version = 1;
constexpr std::size_t reading_size = 24;
constexpr std::size_t max_id_size = 64;

enum class type : std::uint8_t { reading = 0x01, dashboard_reading = 0x81, status = 0x82 };

/// One reading, in the units of the wire.
struct reading {
    std::uint32_t seq = 0;
    std::int16_t centi_celsius = 0;
    std::uint16_t centi_percent = 0;
    std::uint16_t millivolts = 0;
    std::uint64_t time_ms = 0;
};

/// True for a device id: 1-64 of A-Z a-z 0-9 _ - (also what keeps it safe in JSON and HTML).
inline bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= max_id_size &&
           id.find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
               std::string_view::npos;
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
} // namespace detail

/// A device's reading as sent.
inline std::string encode(const reading& r) {
    std::string out;
    out.reserve(reading_size);
    detail::put(out, static_cast<std::uint8_t>(type::reading), 1);
    detail::put(out, protocol_version, 1);
    detail::put(out, 0, 2);
    detail::put(out, r.seq, 4);
    detail::put(out, static_cast<std::uint16_t>(r.centi_celsius), 2);
    detail::put(out, r.centi_percent, 2);
    detail::put(out, r.millivolts, 2);
    detail::put(out, 0, 2);
    detail::put(out, r.time_ms, 8);
    return out;
}

/// A device's message as a reading, or nothing with what is wrong in `why`.
inline std::optional<reading> decode(std::string_view bytes, std::string& why) {
    if (bytes.size() != reading_size) {
        why = "reading of " + std::to_string(bytes.size()) + " bytes, expected " +
              std::to_string(reading_size);
        return std::nullopt;
    }
    if (detail::get(bytes, 0, 1) != static_cast<std::uint8_t>(type::reading)) {
        why = "message type " + std::to_string(detail::get(bytes, 0, 1)) +
              ": a device sends readings (type 1)";
        return std::nullopt;
    }
    if (detail::get(bytes, 1, 1) != protocol_version) {
        why = "protocol version " + std::to_string(detail::get(bytes, 1, 1)) + ", expected " +
              std::to_string(protocol_version);
        return std::nullopt;
    }
    if (detail::get(bytes, 2, 2) != 0 || detail::get(bytes, 14, 2) != 0) {
        why = "reading with non-zero reserved bytes";
        return std::nullopt;
    }
    reading r;
    r.seq = static_cast<std::uint32_t>(detail::get(bytes, 4, 4));
    r.centi_celsius = static_cast<std::int16_t>(detail::get(bytes, 8, 2));
    r.centi_percent = static_cast<std::uint16_t>(detail::get(bytes, 10, 2));
    r.millivolts = static_cast<std::uint16_t>(detail::get(bytes, 12, 2));
    r.time_ms = detail::get(bytes, 16, 8);
    if (r.centi_celsius < -4000 || r.centi_celsius > 12500) {
        why = "temperature " + std::to_string(r.centi_celsius) + " outside -4000..12500";
        return std::nullopt;
    }
    if (r.centi_percent > 10000) {
        why = "humidity " + std::to_string(r.centi_percent) + " outside 0..10000";
        return std::nullopt;
    }
    if (r.millivolts > 10000) {
        why = "battery " + std::to_string(r.millivolts) + " mV outside 0..10000";
        return std::nullopt;
    }
    return r;
}

/// What a dashboard receives for `device_bytes` (a valid reading) from device `id`.
inline std::string dashboard_reading(std::string_view id, std::string_view device_bytes,
                                     std::uint64_t gateway_time_ms) {
    std::string out;
    out.reserve(32 + id.size());
    detail::put(out, static_cast<std::uint8_t>(type::dashboard_reading), 1);
    detail::put(out, protocol_version, 1);
    detail::put(out, id.size(), 1);
    detail::put(out, 1, 1);
    out.append(device_bytes.substr(4, 20));
    detail::put(out, gateway_time_ms, 8);
    out.append(id);
    return out;
}

/// What a dashboard receives when device `id` comes or goes.
inline std::string dashboard_status(std::string_view id, bool online) {
    std::string out;
    out.reserve(4 + id.size());
    detail::put(out, static_cast<std::uint8_t>(type::status), 1);
    detail::put(out, protocol_version, 1);
    detail::put(out, id.size(), 1);
    detail::put(out, online ? 1 : 0, 1);
    out.append(id);
    return out;
}

} // namespace telemetry
