// loadgen — the lobby workload: R rooms of a chat::lobby with M members each, every member
// joining by URL (`/rooms/r<k>?name=m<i>`), and in each room one sender in a closed loop.
//
// Member 0 of each room keeps `in_flight` messages `{"type":"message","text":"…"}` outstanding;
// a message completes when the sender receives it back from its room (the lobby relays it to
// the whole room, the sender included), and each completion sends the next. The texts are
// chat lines (json_payload.hpp) that are a function of room and message number, so each
// member checks every message of its room: the room it is addressed to, its `seq` (each room
// numbers its messages 1, 2, 3 …; a number skipped is a gap, one seen again a duplicate) and
// its text, byte for byte. Reports deliveries/s (messages received by all members, counted by
// arrival time inside the measured window) and the latency of the messages sent inside the
// window, from the send() to each member's read() (p50, p99; one never delivered counts as
// infinitely late). Senders have an epoll set of their own, looked at between every few
// receivers' events, as in W1 (room_load.hpp).
//
// With --ports P1,P2,P3 (the nodes of one cluster) member i connects to the (i mod 3)-th: a
// room spread over the nodes, its sender on the first.
//
// With --hold S it prints {"event": "ready", "phase": "joined"} once every member has seen
// its room complete and idles S seconds, and likewise {"event": "ready", "phase": "after"}
// after the run: a driver takes the server's memory at both points.
#pragma once

#include "client.hpp"
#include "common.hpp"
#include "histogram.hpp"
#include "json_payload.hpp"
#include "options.hpp"
#include "payload.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <vector>

namespace loadgen {

class lobby_load {
public:
    explicit lobby_load(const options& opts)
        : opts_(opts), members_(opts.rooms * opts.members), rooms_(opts.rooms),
          buffer_(256 * 1024) {
        for (const std::uint16_t port : opts.ports) {
            addresses_.push_back(ipv4_address(opts.host, port));
            host_headers_.push_back(opts.host + ':' + std::to_string(port));
        }
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        sender_epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = senders_token; // a blocking wait wakes for the senders too
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sender_epoll_fd_, &ev);
        for (std::size_t i = 0; i < members_.size(); ++i) {
            members_[i].room = static_cast<std::uint32_t>(i / opts_.members);
            members_[i].conn.set_target("/rooms/r" + std::to_string(members_[i].room) + "?name=m" +
                                        std::to_string(i));
        }
        for (room& r : rooms_)
            r.texts.resize(ring_size);
    }
    lobby_load(const lobby_load&) = delete;
    lobby_load& operator=(const lobby_load&) = delete;
    ~lobby_load() {
        members_.clear();
        ::close(sender_epoll_fd_);
        ::close(epoll_fd_);
    }

    /// Runs the workload and prints its JSON line; returns the exit status.
    int run() {
        json_line out;
        out.add("mode", opts_.mode)
            .add("rooms", std::uint64_t{opts_.rooms})
            .add("members", std::uint64_t{opts_.members})
            .add("nodes", std::uint64_t{addresses_.size()})
            .add("connections", std::uint64_t{members_.size()});
        const std::uint64_t setup_start = now_ns();
        if (!connect_and_join(out))
            return 1;
        out.add("join_s", static_cast<double>(now_ns() - setup_start) / 1e9);
        if (opts_.hold > 0)
            linger("joined");
        closed_loop();
        if (opts_.hold > 0)
            linger("after");
        report(out);
        out.print();
        return errors_ == 0 && gaps_ == 0 && duplicates_ == 0 && corrupt_ == 0 ? 0 : 1;
    }

private:
    static constexpr std::uint64_t senders_token = ~std::uint64_t{0};
    /// Receivers' events handled between two looks at the senders.
    static constexpr int events_per_sender_check = 16;
    /// Texts remembered per room: more than any member lags behind (older ones are composed
    /// again to be checked).
    static constexpr std::size_t ring_size = 1024;

    struct member {
        client conn;
        std::uint32_t room = 0;
        std::uint64_t next_seq = 0; ///< the `seq` expected next; 0 until `joined` says
        bool complete = false;      ///< has seen its room with every member in it
    };

    struct sent_text {
        std::string text;
        std::uint64_t number = ~std::uint64_t{0};
        std::uint64_t sent_ns = 0; ///< when it was handed to send()
    };

    struct room {
        std::uint64_t first_seq = 0; ///< the seq the room gives its first message of the run
        std::uint64_t sent = 0;
        std::vector<sent_text> texts; ///< a ring of what was sent, by message number
    };

    /// What the parser reports for one member's connection.
    struct frame_events {
        lobby_load& load;
        std::uint32_t index;

        void on_message(ws::opcode, std::string_view payload) { load.on_message(index, payload); }
        void on_ping(std::string_view payload) {
            load.members_[index].conn.send(ws::opcode::pong, payload);
        }
        void on_pong(std::string_view) {}
        void on_close(std::uint16_t, std::string_view) { ++load.closed_by_server_; }
        void on_error(std::error_code) { ++load.errors_; }
    };

    bool is_sender(std::size_t index) const { return index % opts_.members == 0; }

    // --- setup ----------------------------------------------------------------------------

    bool connect_and_join(json_line& out) {
        const std::uint64_t deadline = now_ns() + to_ns(opts_.join_timeout);
        std::size_t started = 0;
        while (complete_ < members_.size() && now_ns() < deadline) {
            while (started < members_.size() && started - open_ < opts_.connect_batch) {
                const int set = is_sender(started) ? sender_epoll_fd_ : epoll_fd_;
                const std::size_t node = started % addresses_.size();
                if (!members_[started].conn.start(set, addresses_[node], host_headers_[node],
                                                  started, started + 1))
                    return fail(out, "connect failed");
                ++started;
            }
            poll(now_ns() + 10'000'000);
            if (failed_ > 0 || errors_ > 0)
                return fail(out, errors_ > 0
                                     ? "not a lobby envelope, an error envelope or a protocol error"
                                 : refused_ > 0 ? "upgrade refused (connection limit?)"
                                                : "connection failed during setup");
        }
        if (complete_ < members_.size())
            return fail(out, "timed out waiting for every member to join");
        return true;
    }

    bool fail(json_line& out, const char* why) {
        out.add("error", why)
            .add("open", std::uint64_t{open_})
            .add("complete", std::uint64_t{complete_});
        add_counters(out);
        out.print();
        return false;
    }

    /// Prints the ready line of `phase` and keeps every member open for `hold` seconds.
    void linger(const char* phase) {
        json_line{}
            .add("event", "ready")
            .add("phase", phase)
            .add("rooms", std::uint64_t{opts_.rooms})
            .print();
        const std::uint64_t end = now_ns() + to_ns(opts_.hold);
        while (now_ns() < end)
            poll(end);
    }

    // --- the run ----------------------------------------------------------------------------

    void closed_loop() {
        window_start_ = now_ns() + to_ns(opts_.warmup);
        window_end_ = window_start_ + to_ns(opts_.duration);
        sending_ = true;
        for (std::uint32_t r = 0; r < rooms_.size(); ++r)
            for (std::size_t i = 0; i < opts_.in_flight; ++i)
                send_next(r);
        while (now_ns() < window_end_)
            poll(window_end_);
        sending_ = false;
        cpu_.note(now_ns(), window_start_, window_end_);
        // Waits up to `grace` seconds for every member to receive every message sent.
        for (const room& r : rooms_)
            expected_ += r.sent * opts_.members;
        const std::uint64_t deadline = now_ns() + to_ns(opts_.grace);
        while (delivered_ + gaps_ < expected_ && now_ns() < deadline && open_ > 0)
            poll(deadline);
    }

    void send_next(std::uint32_t room_index) {
        room& r = rooms_[room_index];
        sent_text& slot = r.texts[r.sent % ring_size];
        slot.number = r.sent;
        slot.sent_ns = now_ns();
        if (slot.sent_ns >= window_start_ && slot.sent_ns < window_end_)
            ++window_sent_;
        slot.text.clear();
        json_envelopes::append_text({room_index, static_cast<std::uint32_t>(r.sent), 0}, slot.text);
        ++r.sent;
        message_.assign(R"({"type":"message","text":")");
        message_ += slot.text;
        message_ += "\"}";
        members_[room_index * opts_.members].conn.send(ws::opcode::text, message_);
    }

    void report(json_line& out) {
        std::uint64_t sent = 0;
        for (const room& r : rooms_)
            sent += r.sent;
        const double seconds = opts_.duration;
        const std::uint64_t population = window_sent_ * opts_.members;
        out.add("in_flight", std::uint64_t{opts_.in_flight})
            .add("duration_s", seconds)
            .add("sent", sent)
            .add("expected", expected_)
            .add("delivered", delivered_)
            .add("undelivered", expected_ > delivered_ ? expected_ - delivered_ : 0)
            .add("window_deliveries", window_deliveries_)
            .add("deliveries_per_s", static_cast<double>(window_deliveries_) / seconds)
            .add("latency_samples", latency_.count())
            .add("latency_population", population)
            .add("p50_us", micros(latency_.quantile(0.50, population)))
            .add("p99_us", micros(latency_.quantile(0.99, population)))
            .add("loadgen_cpu", cpu_.loadgen_share(seconds));
        if (const std::optional<double> server = cpu_.server_share(seconds))
            out.add("server_cpu_window", *server);
        add_counters(out);
    }

    void add_counters(json_line& out) {
        out.add("gaps", gaps_)
            .add("duplicates", duplicates_)
            .add("wrong_room", wrong_room_)
            .add("corrupt", corrupt_)
            .add("error_envelopes", error_envelopes_)
            .add("closed_by_server", closed_by_server_)
            .add("disconnected", failed_)
            .add("protocol_errors", errors_);
    }

    // --- envelopes --------------------------------------------------------------------------

    /// The string value of `"key":"…"` in `envelope` (none of the values read here has an
    /// escaped quote), or nullopt.
    static std::optional<std::string_view> string_field(std::string_view envelope,
                                                        std::string_view key) {
        const std::size_t at = find_key(envelope, key);
        if (at == std::string_view::npos || at >= envelope.size() || envelope[at] != '"')
            return std::nullopt;
        const std::size_t end = envelope.find('"', at + 1);
        if (end == std::string_view::npos)
            return std::nullopt;
        return envelope.substr(at + 1, end - at - 1);
    }

    /// The unsigned number of `"key":N` in `envelope`, or nullopt.
    static std::optional<std::uint64_t> number_field(std::string_view envelope,
                                                     std::string_view key) {
        std::size_t at = find_key(envelope, key);
        if (at == std::string_view::npos || at >= envelope.size() || envelope[at] < '0' ||
            envelope[at] > '9')
            return std::nullopt;
        std::uint64_t value = 0;
        for (; at < envelope.size() && envelope[at] >= '0' && envelope[at] <= '9'; ++at)
            value = value * 10 + static_cast<std::uint64_t>(envelope[at] - '0');
        return value;
    }

    /// Where the value of top-level-looking `"key":` starts, or npos.
    static std::size_t find_key(std::string_view envelope, std::string_view key) {
        for (std::size_t at = envelope.find(key); at != std::string_view::npos;
             at = envelope.find(key, at + 1)) {
            const std::size_t end = at + key.size();
            if (at > 0 && envelope[at - 1] == '"' && end + 1 < envelope.size() &&
                envelope[end] == '"' && envelope[end + 1] == ':')
                return end + 2;
        }
        return std::string_view::npos;
    }

    void on_message(std::uint32_t index, std::string_view payload) {
        member& m = members_[index];
        const auto type = string_field(payload, "type");
        if (!type) {
            ++errors_;
            return;
        }
        if (*type == "message")
            return on_room_message(index, payload);
        if (*type == "joined") {
            const auto seq = number_field(payload, "seq");
            m.next_seq = seq ? *seq + 1 : 1;
            if (is_sender(index))
                rooms_[m.room].first_seq = m.next_seq;
        } else if (*type == "error") {
            ++error_envelopes_;
            ++errors_;
            return;
        } else if (*type != "presence") {
            return; // welcome, typing, …
        }
        const auto online = number_field(payload, "online");
        if (!m.complete && online && *online >= opts_.members) {
            m.complete = true;
            ++complete_;
        }
    }

    void on_room_message(std::uint32_t index, std::string_view payload) {
        member& m = members_[index];
        const auto seq = number_field(payload, "seq");
        const auto room_name = string_field(payload, "room");
        if (!seq || !room_name || room_name->substr(0, 1) != "r" ||
            room_name->substr(1) != std::to_string(m.room)) {
            ++wrong_room_;
            ++errors_;
            return;
        }
        if (*seq < m.next_seq) {
            ++duplicates_;
            return;
        }
        gaps_ += *seq - m.next_seq;
        m.next_seq = *seq + 1;
        ++delivered_;
        if (read_time_ >= window_start_ && read_time_ < window_end_)
            ++window_deliveries_;
        room& r = rooms_[m.room];
        const auto text = string_field(payload, "text");
        const std::uint64_t number = *seq - r.first_seq;
        const sent_text& slot = r.texts[number % ring_size];
        if (slot.number == number) {
            corrupt_ += text == slot.text ? 0 : 1;
            if (slot.sent_ns >= window_start_ && slot.sent_ns < window_end_)
                latency_.record(read_time_ - slot.sent_ns);
        } else {
            scratch_.clear();
            json_envelopes::append_text({m.room, static_cast<std::uint32_t>(number), 0}, scratch_);
            corrupt_ += text == scratch_ ? 0 : 1;
        }
        if (is_sender(index) && sending_)
            send_next(m.room);
    }

    // --- the event loop ---------------------------------------------------------------------

    /// Notes this process's and the server's CPU time when the window opens and closes.
    /// One epoll_wait (until `deadline_ns` at the latest) and its events.
    void poll(std::uint64_t deadline_ns) {
        const std::uint64_t now = now_ns();
        cpu_.note(now, window_start_, window_end_);
        const int timeout_ms =
            deadline_ns > now ? static_cast<int>((deadline_ns - now + 999'999) / 1'000'000) : 0;
        epoll_event events[256];
        const int n = ::epoll_wait(epoll_fd_, events, 256, timeout_ms);
        for (int i = 0; i < n; ++i) {
            if (i % events_per_sender_check == 0)
                serve_senders();
            handle(events[i]);
        }
        serve_senders();
    }

    /// The senders' arrivals, without waiting.
    void serve_senders() {
        epoll_event events[64];
        const int n = ::epoll_wait(sender_epoll_fd_, events, 64, 0);
        for (int i = 0; i < n; ++i)
            handle(events[i]);
    }

    void handle(const epoll_event& event) {
        if (event.data.u64 == senders_token)
            return serve_senders();
        const auto index = static_cast<std::uint32_t>(event.data.u64);
        member& m = members_[index];
        const client::phase before = m.conn.state();
        if ((event.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 &&
            m.conn.state() != client::phase::idle)
            m.conn.on_writable();
        if ((event.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 &&
            m.conn.state() != client::phase::idle && m.conn.state() != client::phase::closed) {
            frame_events handler{*this, index};
            read_time_ = now_ns();
            m.conn.on_readable(buffer_.data(), buffer_.size(), handler);
        }
        const client::phase after = m.conn.state();
        if (before != client::phase::open && after == client::phase::open)
            ++open_;
        if (before == client::phase::open && after != client::phase::open)
            --open_;
        if (before != after && (after == client::phase::closed || after == client::phase::idle)) {
            ++failed_;
            refused_ += m.conn.refused() ? 1 : 0;
        }
    }

    options opts_;
    std::vector<sockaddr_in> addresses_; ///< the nodes (one unless --ports)
    std::vector<std::string> host_headers_;
    int epoll_fd_ = -1;
    int sender_epoll_fd_ = -1;
    std::vector<member> members_; ///< member i is in room i / members; the first of each sends
    std::vector<room> rooms_;
    std::vector<std::uint8_t> buffer_;
    std::string message_; ///< the envelope being sent
    std::string scratch_; ///< a text composed again to be checked

    std::size_t open_ = 0;
    std::size_t complete_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t refused_ = 0;
    bool sending_ = false;
    std::uint64_t window_start_ = ~std::uint64_t{0};
    std::uint64_t window_end_ = ~std::uint64_t{0};
    std::uint64_t read_time_ = 0;
    cpu_window cpu_{opts_.server_pid}; // readings at the window's edges

    std::uint64_t expected_ = 0;
    std::uint64_t delivered_ = 0;
    std::uint64_t window_deliveries_ = 0;
    std::uint64_t window_sent_ = 0; ///< messages sent inside the window
    histogram latency_;             ///< of the messages sent inside the window
    std::uint64_t gaps_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t wrong_room_ = 0;
    std::uint64_t corrupt_ = 0; ///< messages whose text differs from what was sent
    std::uint64_t error_envelopes_ = 0;
    std::uint64_t closed_by_server_ = 0;
    std::uint64_t errors_ = 0;
};

} // namespace loadgen
