// wschat — metrics as Prometheus text (exposition format 0.0.4), for a /metrics endpoint.
#pragma once

#include <wschat/chat/history.hpp>
#include <wschat/chat/metrics.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/limits.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// One label of a sample, as in `wschat_room_members{room="lobby"}`.
struct metric_label {
    std::string_view name;  ///< `[a-zA-Z_][a-zA-Z0-9_]*`, not beginning with `__` (reserved)
    std::string_view value; ///< any UTF-8 text; escaped as the format requires
};

/// What a metric family is: a counter only goes up (its name ends in `_total`), a gauge
/// goes up and down.
enum class metric_type : std::uint8_t {
    counter, ///< a count since the program started
    gauge,   ///< a value now
};

/// Builds a page in the Prometheus text exposition format, version 0.0.4: what a
/// `/metrics` endpoint answers, with `content_type` as its Content-Type.
///
/// Samples may be added in any order; the page groups them by family, each family once with
/// its `# HELP` and `# TYPE` lines, in the order the families were first added, and its
/// samples in the order they were added. Label values and help texts are escaped as the
/// format requires (backslashes and line feeds; double quotes in label values too). Each
/// label set should be added once per family.
///
/// Thread safety: none; build a page per request.
///
/// ```cpp
/// chat::prometheus_text page;
/// page.counter("app_logins_total", "Logins since the start.", {{"method", "password"}}, 12);
/// page.gauge("app_sessions", "Sessions open now.", {}, 3);
/// response.set_header("Content-Type", chat::prometheus_text::content_type);
/// response.body = page.str();
/// ```
class prometheus_text {
public:
    /// The Content-Type of the page.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

    /// Adds one sample of the family `name`. The first sample of a family declares it, with
    /// `type` and `help`; later samples must have the same type (their help is not used).
    /// Throws `std::invalid_argument` for a name or label name the format does not allow, a
    /// counter whose name does not end in `_total`, or a family added with another type.
    /// Finding the family costs a look at each family before it (a page has a few dozen).
    void add(metric_type type, std::string_view name, std::string_view help,
             std::initializer_list<metric_label> labels, std::uint64_t value) {
        std::string& samples = family_of(type, name, help).samples;
        samples += name;
        if (labels.size() > 0) {
            char separator = '{';
            for (const metric_label& label : labels) {
                if (!valid_label_name(label.name))
                    throw std::invalid_argument{"prometheus_text: bad label name \"" +
                                                std::string{label.name} + "\" in " +
                                                std::string{name}};
                samples += separator;
                samples += label.name;
                samples += "=\"";
                escape(samples, label.value, true);
                samples += '"';
                separator = ',';
            }
            samples += '}';
        }
        samples += ' ';
        samples += std::to_string(value);
        samples += '\n';
    }

    /// Adds a sample of the counter family `name` (see `add`).
    void counter(std::string_view name, std::string_view help,
                 std::initializer_list<metric_label> labels, std::uint64_t value) {
        add(metric_type::counter, name, help, labels, value);
    }

    /// Adds a sample of the gauge family `name` (see `add`).
    void gauge(std::string_view name, std::string_view help,
               std::initializer_list<metric_label> labels, std::uint64_t value) {
        add(metric_type::gauge, name, help, labels, value);
    }

    /// The page: every family with its HELP and TYPE lines and its samples, each line ending
    /// in a newline. Empty when nothing was added.
    std::string str() const {
        std::string page;
        for (const family& f : families_)
            page += f.samples;
        return page;
    }

private:
    struct family {
        std::string name;
        metric_type type;
        std::string samples; // the HELP and TYPE lines, then the samples
    };

    family& family_of(metric_type type, std::string_view name, std::string_view help) {
        for (family& f : families_) {
            if (f.name != name)
                continue;
            if (f.type != type)
                throw std::invalid_argument{"prometheus_text: " + std::string{name} +
                                            " added both as a counter and as a gauge"};
            return f;
        }
        if (!valid_metric_name(name))
            throw std::invalid_argument{"prometheus_text: bad metric name \"" + std::string{name} +
                                        '"'};
        constexpr std::string_view total = "_total";
        if (type == metric_type::counter &&
            (name.size() < total.size() || name.substr(name.size() - total.size()) != total))
            throw std::invalid_argument{"prometheus_text: counter " + std::string{name} +
                                        " does not end in _total"};
        family& f = families_.emplace_back(family{std::string{name}, type, {}});
        f.samples += "# HELP ";
        f.samples += name;
        f.samples += ' ';
        escape(f.samples, help, false);
        f.samples += "\n# TYPE ";
        f.samples += name;
        f.samples += type == metric_type::counter ? " counter\n" : " gauge\n";
        return f;
    }

    /// Appends `text` escaped: backslash and newline always, the double quote in a label
    /// value.
    static void escape(std::string& out, std::string_view text, bool label_value) {
        for (const char c : text) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '\n')
                out += "\\n";
            else if (c == '"' && label_value)
                out += "\\\"";
            else
                out += c;
        }
    }

    static bool name_char(char c, bool first, bool colon) {
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
    }
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static bool valid_metric_name(std::string_view name) {
        for (std::size_t i = 0; i < name.size(); ++i)
            if (!name_char(name[i], i == 0, true))
                return false;
        return !name.empty();
    }
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, without the reserved `__` prefix
    static bool valid_label_name(std::string_view name) {
        for (std::size_t i = 0; i < name.size(); ++i)
            if (!name_char(name[i], i == 0, false))
                return false;
        return !name.empty() && name.substr(0, 2) != "__";
    }

    std::vector<family> families_;
};

/// Adds a server's stats to `page`: `wschat_connections_opened_total`,
/// `wschat_connections_open`, `wschat_messages_received_total`,
/// `wschat_received_bytes_total`, `wschat_connections_closed_total{code}` (every counted
/// code and `other`) and `wschat_limit_hits_total{limit}` (every `ws::limit`).
inline void append_server(prometheus_text& page, const server_stats& s) {
    page.counter("wschat_connections_opened_total",
                 "WebSocket connections that completed their handshake.", {}, s.connections_opened);
    page.gauge("wschat_connections_open", "WebSocket connections open now.", {},
               s.connections_open);
    page.counter("wschat_messages_received_total", "Messages received from peers.", {},
                 s.messages_in);
    page.counter("wschat_received_bytes_total",
                 "Payload bytes of the messages received from peers.", {}, s.bytes_in);
    for (std::size_t i = 0; i < close_code_slots; ++i) {
        const std::string code =
            i < counted_close_codes.size() ? std::to_string(counted_close_codes[i]) : "other";
        page.counter("wschat_connections_closed_total",
                     "Connections ended, by close code (1006: without a Close frame; other: "
                     "application and unregistered codes).",
                     {{"code", code}}, s.closed[i]);
    }
    for (std::size_t i = 0; i < limit_count; ++i)
        page.counter("wschat_limit_hits_total",
                     "Times peers ran into a limit of the server (ws::server_options), by limit.",
                     {{"limit", limit_name(static_cast<ws::limit>(i))}}, s.limit_hits[i]);
}

/// Adds a room's stats to `page`, labelled `room="<room>"`: `wschat_room_joins_total`,
/// `wschat_room_leaves_total`, `wschat_room_messages_received_total`,
/// `wschat_room_received_bytes_total`, `wschat_room_messages_sent_total`,
/// `wschat_room_sent_bytes_total`, `wschat_room_refused_total{reason}` (every
/// `refusal_reason`) and `wschat_room_resumes_total{outcome}` (every `recovery_outcome`).
/// Call it once per room; the families stay grouped whatever the order.
inline void append_room(prometheus_text& page, std::string_view room, const room_stats& s) {
    page.counter("wschat_room_joins_total", "Members who joined the room.", {{"room", room}},
                 s.joins);
    page.counter("wschat_room_leaves_total", "Members who left the room.", {{"room", room}},
                 s.leaves);
    page.counter("wschat_room_messages_received_total", "Messages members sent to the room.",
                 {{"room", room}}, s.messages_in);
    page.counter("wschat_room_received_bytes_total",
                 "Payload bytes of the messages members sent to the room.", {{"room", room}},
                 s.bytes_in);
    page.counter("wschat_room_messages_sent_total",
                 "Frames queued for the room's members (a broadcast to N members counts N).",
                 {{"room", room}}, s.messages_out);
    page.counter("wschat_room_sent_bytes_total",
                 "Bytes of the frames queued for the room's members, frame headers included.",
                 {{"room", room}}, s.bytes_out);
    for (std::size_t i = 0; i < refusal_reason_count; ++i)
        page.counter("wschat_room_refused_total", "Messages the room turned away, by reason.",
                     {{"room", room}, {"reason", to_string(static_cast<refusal_reason>(i))}},
                     s.refused[i]);
    for (std::size_t i = 0; i < recovery_outcome_count; ++i)
        page.counter("wschat_room_resumes_total",
                     "Requests to resume after a reconnect, by outcome (recovered: every missed "
                     "message was sent).",
                     {{"room", room}, {"outcome", to_string(static_cast<recovery_outcome>(i))}},
                     s.resumes[i]);
}

/// Adds `wschat_room_members{room="<room>"}`, the room's online count (`room::size()`).
inline void append_room_members(prometheus_text& page, std::string_view room, std::size_t members) {
    page.gauge("wschat_room_members", "Members in the room now.", {{"room", room}}, members);
}

/// Appends a cluster bus's figures (`redis_bus::stats()`): whether it is connected, and its
/// publishes, deliveries, gaps and errors.
inline void append_bus(prometheus_text& page, const bus_stats& s) {
    page.gauge("wschat_bus_connected", "1 while the cluster bus can publish and hear its rooms.",
               {}, s.connected);
    page.counter("wschat_bus_disconnects_total", "Times the cluster bus lost its broker.", {},
                 s.disconnects);
    page.counter("wschat_bus_published_total", "Messages the broker numbered for this node.", {},
                 s.published);
    page.counter("wschat_bus_publish_errors_total",
                 "Publishes answered with an error (broker away or busy).", {}, s.publish_errors);
    page.counter("wschat_bus_delivered_total", "Room messages the bus delivered, each once.", {},
                 s.delivered);
    page.counter("wschat_bus_duplicates_total", "Room messages heard again and skipped.", {},
                 s.duplicates);
    page.counter("wschat_bus_gaps_filled_total", "Missed messages fetched from a room's stream.",
                 {}, s.gaps_filled);
    page.counter("wschat_bus_resets_total",
                 "Rooms restarted: a new epoch, or a gap too old to fill.", {}, s.resets);
    page.counter("wschat_bus_dropped_total", "Messages not kept while a room synced (refetched).",
                 {}, s.dropped);
    page.counter("wschat_bus_command_errors_total",
                 "Other broker commands that failed (presence, syncs, tokens).", {},
                 s.command_errors);
}

WSCHAT_END_NAMESPACE
