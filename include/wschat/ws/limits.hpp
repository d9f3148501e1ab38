// wschat — the limits a server enforces, and counters of how often each was hit.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/error.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Each limit of `server_options` that a peer can run into, with what the server does to a
/// peer that hits it (an HTTP status, a close code, or "dropped": the connection ends
/// without a Close frame).
enum class limit : std::uint8_t {
    header_size,    ///< `max_header_bytes`: 431
    handshake_time, ///< `handshake_timeout`: dropped
    message_size,   ///< `max_message_size`: close 1009
    send_queue,     ///< `max_send_queue_bytes`: close 1008, or oldest frames dropped
    message_rate,   ///< `max_messages_per_second`: close 1008, or message dropped
    heartbeat,      ///< `heartbeat_timeout`: dropped
    idle,           ///< `idle_timeout`: close 1001
    connections,    ///< `max_connections` or `max_connections_per_address`: 503
    origin,         ///< `allowed_origins`: 403 (keep last: it sizes the counters)
};

/// The limit an error stands for, if it stands for one: `limit::message_size` for
/// `error::message_too_big`; nullopt for a protocol error, which no option bounds.
constexpr std::optional<limit> limit_for(error e) noexcept {
    switch (e) {
    case error::header_too_large:
        return limit::header_size;
    case error::handshake_timeout:
        return limit::handshake_time;
    case error::message_too_big:
        return limit::message_size;
    case error::send_queue_full:
        return limit::send_queue;
    case error::rate_limited:
        return limit::message_rate;
    case error::heartbeat_timeout:
        return limit::heartbeat;
    case error::idle_timeout:
        return limit::idle;
    case error::server_busy:
        return limit::connections;
    case error::origin_not_allowed:
        return limit::origin;
    default:
        return std::nullopt;
    }
}

/// How many times each limit was hit since the server started.
///
/// Thread safety: every member may be called from any thread at any time. Each count is an
/// atomic updated and read with relaxed ordering: a read is a recent value, and counts read
/// one after the other are not a consistent snapshot.
///
/// A server keeps one and counts in it the limits its peers run into; read it with
/// `server::limit_hits(limit)`.
///
/// ```cpp
/// ws::limit_counters hits;
/// hits.add(ws::error::send_queue_full);       // counted as limit::send_queue
/// hits.add(ws::error::unmasked_frame);        // a protocol error: not counted
/// std::uint64_t n = hits[ws::limit::send_queue]; // 1
/// ```
class limit_counters {
public:
    /// Counts one hit of `which`.
    void add(limit which) noexcept {
        counts_[static_cast<std::size_t>(which)].fetch_add(1, std::memory_order_relaxed);
    }
    /// Counts `ec` when it is a wschat error that stands for a limit (see limit_for); other
    /// errors are ignored.
    void add(std::error_code ec) noexcept {
        if (ec.category() != error_category())
            return;
        if (const auto which = limit_for(static_cast<error>(ec.value())))
            add(*which);
    }
    /// How many times `which` was hit so far; 0 until it is.
    std::uint64_t operator[](limit which) const noexcept {
        return counts_[static_cast<std::size_t>(which)].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(limit::origin) + 1> counts_{};
};

WSCHAT_END_NAMESPACE
