// wschat — counters of what a server and its rooms do, for monitoring.
#pragma once

#include <wschat/chat/history.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/server.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// Why a room turned a member's message away (counted in `room_counters`). New reasons go
/// before `other`.
enum class refusal_reason : std::uint8_t {
    bad_message, ///< the policy could not read it: bad JSON, an unknown envelope, not text
    too_long,    ///< longer than the policy or the room accepts
    rate,        ///< over a rate limit of the room
    not_member,  ///< for a room the sender has not joined
    other,       ///< anything else (keep last: it sizes the counters)
};

/// The number of `refusal_reason` values (for tables indexed by reason).
inline constexpr std::size_t refusal_reason_count =
    static_cast<std::size_t>(refusal_reason::other) + 1;

/// The reason's name as written above ("bad_message", …): for metric labels and logs. The
/// view refers to a string literal.
constexpr std::string_view to_string(refusal_reason reason) noexcept {
    switch (reason) {
    case refusal_reason::bad_message:
        return "bad_message";
    case refusal_reason::too_long:
        return "too_long";
    case refusal_reason::rate:
        return "rate";
    case refusal_reason::not_member:
        return "not_member";
    case refusal_reason::other:
        return "other";
    }
    return "other";
}

/// What a room did, as counted by its `room_counters` at one moment.
struct room_stats {
    std::uint64_t joins = 0;        ///< members who joined
    std::uint64_t leaves = 0;       ///< members who left (however they went)
    std::uint64_t messages_in = 0;  ///< messages members sent to the room
    std::uint64_t bytes_in = 0;     ///< the payload bytes of those messages
    std::uint64_t messages_out = 0; ///< deliveries: a frame queued for N members counts N
    std::uint64_t bytes_out = 0;    ///< the bytes of those deliveries, frame headers included
    /// Messages turned away, by `refusal_reason` (index with `static_cast<std::size_t>`).
    std::array<std::uint64_t, refusal_reason_count> refused{};
    /// Resume requests, by `recovery_outcome` (index with `static_cast<std::size_t>`).
    std::array<std::uint64_t, recovery_outcome_count> resumes{};
};

/// The counters a room bumps as it works; `snapshot()` reads them.
///
/// Each count is a relaxed atomic: bumping one costs one uncontended atomic add, and a
/// broadcast is counted once (`count_sent(members, bytes)`), never per member.
///
/// Thread safety: every member may be called from any thread at any time. Counts read one
/// after the other are each a recent value, not a consistent snapshot of them all.
///
/// ```cpp
/// chat::room_counters counters;
/// counters.count_message_in(msg.data.size());
/// counters.count_sent(members.size(), frame.size()); // one broadcast
/// chat::room_stats now = counters.snapshot();
/// ```
class room_counters {
public:
    /// A member joined.
    void count_join() noexcept { add(joins_); }
    /// A member left.
    void count_leave() noexcept { add(leaves_); }
    /// A member sent the room a message of `payload_bytes` bytes.
    void count_message_in(std::size_t payload_bytes) noexcept {
        add(messages_in_);
        add(bytes_in_, payload_bytes);
    }
    /// One frame of `frame_bytes` bytes was queued for `members` members (a broadcast; or a
    /// reply, a welcome or a replay, with `members` 1).
    void count_sent(std::size_t members, std::size_t frame_bytes) noexcept {
        add(messages_out_, members);
        add(bytes_out_, members * frame_bytes);
    }
    /// A member's message was turned away for `reason`.
    void count_refusal(refusal_reason reason) noexcept {
        add(refused_[static_cast<std::size_t>(reason)]);
    }
    /// A member asked to resume, with this outcome (see `history::since`).
    void count_resume(recovery_outcome outcome) noexcept {
        add(resumes_[static_cast<std::size_t>(outcome)]);
    }

    /// Every count, read now.
    room_stats snapshot() const noexcept {
        room_stats s;
        s.joins = read(joins_);
        s.leaves = read(leaves_);
        s.messages_in = read(messages_in_);
        s.bytes_in = read(bytes_in_);
        s.messages_out = read(messages_out_);
        s.bytes_out = read(bytes_out_);
        for (std::size_t i = 0; i < refusal_reason_count; ++i)
            s.refused[i] = read(refused_[i]);
        for (std::size_t i = 0; i < recovery_outcome_count; ++i)
            s.resumes[i] = read(resumes_[i]);
        return s;
    }

private:
    using counter = std::atomic<std::uint64_t>;
    static void add(counter& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }
    static std::uint64_t read(const counter& c) noexcept {
        return c.load(std::memory_order_relaxed);
    }

    counter joins_{0};
    counter leaves_{0};
    counter messages_in_{0};
    counter bytes_in_{0};
    counter messages_out_{0};
    counter bytes_out_{0};
    std::array<counter, refusal_reason_count> refused_{};
    std::array<counter, recovery_outcome_count> resumes_{};
};

/// What a cluster bus (`chat::redis_bus`) did, as counted by its `bus_counters` at one moment.
struct bus_stats {
    /// 1 while the bus can publish and hear its rooms (both its broker connections are up),
    /// else 0.
    std::uint64_t connected = 0;
    std::uint64_t disconnects = 0;    ///< times it lost its broker
    std::uint64_t published = 0;      ///< messages the broker numbered for this node
    std::uint64_t publish_errors = 0; ///< publishes answered with an error (broker away, busy)
    std::uint64_t delivered = 0;      ///< messages handed to the lobby, each once
    std::uint64_t duplicates = 0;     ///< messages heard again and skipped
    std::uint64_t gaps_filled = 0;    ///< missed messages fetched from the room's stream
    std::uint64_t resets = 0;         ///< rooms restarted: a new epoch or a gap too old to fill
    std::uint64_t dropped = 0;        ///< messages not kept while a room synced (refetched)
    std::uint64_t command_errors = 0; ///< other broker commands that failed (presence, syncs)
};

/// The counters a bus bumps as it works; relaxed atomics like `room_counters`.
///
/// Thread safety: every member may be called from any thread at any time.
class bus_counters {
public:
    using counter = std::atomic<std::uint64_t>; ///< one count
    counter connected{0};                       ///< see `bus_stats::connected`
    counter disconnects{0};                     ///< see `bus_stats::disconnects`
    counter published{0};                       ///< see `bus_stats::published`
    counter publish_errors{0};                  ///< see `bus_stats::publish_errors`
    counter delivered{0};                       ///< see `bus_stats::delivered`
    counter duplicates{0};                      ///< see `bus_stats::duplicates`
    counter gaps_filled{0};                     ///< see `bus_stats::gaps_filled`
    counter resets{0};                          ///< see `bus_stats::resets`
    counter dropped{0};                         ///< see `bus_stats::dropped`
    counter command_errors{0};                  ///< see `bus_stats::command_errors`

    /// Adds `n` to `c`.
    static void add(counter& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }

    /// Every count, read now.
    bus_stats snapshot() const noexcept {
        const auto read = [](const counter& c) { return c.load(std::memory_order_relaxed); };
        return {read(connected), read(disconnects),   read(published),   read(publish_errors),
                read(delivered), read(duplicates),    read(gaps_filled), read(resets),
                read(dropped),   read(command_errors)};
    }
};

/// The number of `ws::limit` values (for tables indexed by limit).
inline constexpr std::size_t limit_count = static_cast<std::size_t>(ws::limit::origin) + 1;

/// The limit's name as in `ws::limit` ("message_rate", …): for metric labels and logs. The
/// view refers to a string literal.
constexpr std::string_view limit_name(ws::limit which) noexcept {
    switch (which) {
    case ws::limit::header_size:
        return "header_size";
    case ws::limit::handshake_time:
        return "handshake_time";
    case ws::limit::message_size:
        return "message_size";
    case ws::limit::send_queue:
        return "send_queue";
    case ws::limit::message_rate:
        return "message_rate";
    case ws::limit::heartbeat:
        return "heartbeat";
    case ws::limit::idle:
        return "idle";
    case ws::limit::connections:
        return "connections";
    case ws::limit::origin:
        return "origin";
    }
    return "unknown";
}

/// The close codes that `server_stats` counts one by one: those of RFC 6455 and the IANA
/// registry, 1000 to 1015 but the unassigned 1004. Every other code (the applications' 3000
/// to 4999) shares one count, so that peers cannot make the number of counters grow.
inline constexpr std::array<std::uint16_t, 15> counted_close_codes = {
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015};

/// The number of close-code counts: one per counted code, and the last for every other.
inline constexpr std::size_t close_code_slots = counted_close_codes.size() + 1;

/// Where `code` is counted in `server_stats::closed`: its place in `counted_close_codes`, or
/// the last slot for any other code.
constexpr std::size_t close_code_slot(std::uint16_t code) noexcept {
    for (std::size_t i = 0; i < counted_close_codes.size(); ++i)
        if (counted_close_codes[i] == code)
            return i;
    return counted_close_codes.size();
}

/// What a server saw, as counted by `server_metrics` at one moment.
struct server_stats {
    /// Connections that completed their handshake while the metrics were attached.
    std::uint64_t connections_opened = 0;
    /// Connections open at the snapshot (`server::connection_count()`); 0 from a snapshot
    /// taken without the server.
    std::uint64_t connections_open = 0;
    std::uint64_t messages_in = 0; ///< messages received from peers
    std::uint64_t bytes_in = 0;    ///< their payload bytes (after inflation, if compressed)
    /// Connections that ended, by close code: index `close_code_slot(code)` (1006: ended
    /// without a Close frame; the last slot: codes not in `counted_close_codes`).
    std::array<std::uint64_t, close_code_slots> closed{};
    /// How often peers ran into each of the server's limits (`server::limit_hits`), index
    /// `static_cast<std::size_t>(limit)`; zeros in a snapshot taken without the server.
    std::array<std::uint64_t, limit_count> limit_hits{};
};

/// Counts what a `ws::server` sees: connections opened and closed (by close code), messages
/// and bytes received; and reads the server's open connections and limit hits when asked
/// for a snapshot of it.
///
/// It listens through the server's handlers (`add_handlers`), like a room. Its handlers hold
/// the counters themselves, not the `server_metrics` object, so destroying it while it is
/// attached is safe (the handlers then count on for nobody until the server goes).
///
/// Thread safety: every member may be called from any thread, also while the server's
/// io_context runs (on several threads). The counts are relaxed atomics: each read is a
/// recent value, and reads one after the other are not a consistent snapshot.
///
/// ```cpp
/// chat::server_metrics metrics;
/// metrics.attach(server);
/// server.on_http([&](const ws::http_request&, ws::http_response& res) {
///     chat::prometheus_text text;
///     chat::append_server(text, metrics.snapshot(server));
///     res.set_header("Content-Type", chat::prometheus_text::content_type);
///     res.body = text.str();
/// });
/// ```
class server_metrics {
public:
    /// Metrics attached to no server, every count 0.
    server_metrics() = default;
    /// Not copyable: it names the handlers it added.
    server_metrics(const server_metrics&) = delete;
    /// Not copyable: it names the handlers it added.
    server_metrics& operator=(const server_metrics&) = delete;

    /// Starts counting what `server` sees from now on (connections already open count when
    /// they close, not when they opened). Attaching to a server it is attached to already
    /// does nothing; attached to several servers, it counts what they all see.
    template <class Transport>
    void attach(ws::server<Transport>& server) {
        using connection_ptr = typename ws::server<Transport>::connection_ptr;
        std::lock_guard<std::mutex> lock{mutex_};
        if (find(&server) != attachments_.end())
            return;
        const auto& c = counters_;
        const ws::handler_id id = server.add_handlers({
            [c](const connection_ptr&) { c->add(c->opened); },
            [c](const connection_ptr&, const ws::message& msg) {
                c->add(c->messages_in);
                c->add(c->bytes_in, msg.data.size());
            },
            [c](const connection_ptr&, const ws::close_info& info) {
                c->add(c->closed[close_code_slot(info.code)]);
            },
        });
        attachments_.emplace_back(&server, id);
    }

    /// Stops counting what `server` sees (the counts so far stay). A no-op when not attached
    /// to it.
    template <class Transport>
    void detach(ws::server<Transport>& server) {
        std::lock_guard<std::mutex> lock{mutex_};
        const auto at = find(&server);
        if (at == attachments_.end())
            return;
        server.remove_handlers(at->second);
        attachments_.erase(at);
    }

    /// The counts so far (`connections_open` and `limit_hits` are 0: they are the server's).
    server_stats snapshot() const noexcept {
        server_stats s;
        s.connections_opened = counters::read(counters_->opened);
        s.messages_in = counters::read(counters_->messages_in);
        s.bytes_in = counters::read(counters_->bytes_in);
        for (std::size_t i = 0; i < close_code_slots; ++i)
            s.closed[i] = counters::read(counters_->closed[i]);
        return s;
    }

    /// The counts so far, with `server`'s open connections and limit hits.
    template <class Transport>
    server_stats snapshot(const ws::server<Transport>& server) const {
        server_stats s = snapshot();
        s.connections_open = server.connection_count();
        for (std::size_t i = 0; i < limit_count; ++i)
            s.limit_hits[i] = server.limit_hits(static_cast<ws::limit>(i));
        return s;
    }

private:
    struct counters {
        using counter = std::atomic<std::uint64_t>;
        static void add(counter& c, std::uint64_t n = 1) noexcept {
            c.fetch_add(n, std::memory_order_relaxed);
        }
        static std::uint64_t read(const counter& c) noexcept {
            return c.load(std::memory_order_relaxed);
        }
        counter opened{0};
        counter messages_in{0};
        counter bytes_in{0};
        std::array<counter, close_code_slots> closed{};
    };

    /// The servers attached to, by address (only compared, never followed), and the id of
    /// the handlers added to each.
    using attachment = std::pair<const void*, ws::handler_id>;
    std::vector<attachment>::iterator find(const void* server) {
        return std::find_if(attachments_.begin(), attachments_.end(),
                            [server](const attachment& a) { return a.first == server; });
    }

    std::shared_ptr<counters> counters_ = std::make_shared<counters>();
    std::mutex mutex_;
    std::vector<attachment> attachments_;
};

WSCHAT_END_NAMESPACE
