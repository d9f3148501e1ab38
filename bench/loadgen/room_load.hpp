// loadgen — room workloads W1-W4: N members in one room, some of them sending.
//
// W1 (closed loop): member 0 keeps `in_flight` of its own messages outstanding; a message
//    completes when member 0 receives its own copy back (the room relays to the sender too),
//    and each completion sends the next. The sender has an epoll set of its own, looked at
//    between every few receivers' events: in a real room the sender is a separate client,
//    not one queued behind 999 receivers in the load generator's loop, and a sender that
//    answers late would leave the server with fewer messages per turn than it is offered. Reports
//    deliveries/s: benchmark frames received by all members, counted by arrival time inside the
//    measured window.
// W2/W3 (open loop): S senders at R msg/s each on a fixed schedule (message j of the run at
//    t0 + j/(S*R), from sender j % S), whatever the server does; latency is measured from the
//    scheduled time, so a stalled server cannot hide its backlog (no coordinated omission).
//    Messages that fall due are sent between every few receivers' events too, so a long
//    batch of arrivals does not delay them.
// W4: N idle members, held open for `hold` seconds after a {"event": "ready"} line, while
//    a driver measures the server's memory. W1-W3 do the same after their run with --hold:
//    the memory of members that have received traffic (permessage-deflate's per-connection
//    streams are made on first use).
// Payloads: the fixed 64-byte stamp (payload.hpp), or chat JSON envelopes (json_payload.hpp),
//    compressed with permessage-deflate when --deflate on and the server agrees (every member
//    must). Bytes read off the members' sockets inside the window give the wire bytes per
//    delivery (WebSocket frames, headers included; not TCP/IP headers).
// Every member checks each sender's sequence numbers: gaps are losses, a number seen again
// (or too late) is a duplicate.
#pragma once

#include "client.hpp"
#include "common.hpp"
#include "histogram.hpp"
#include "json_payload.hpp"
#include "options.hpp"
#include "payload.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <vector>

namespace loadgen {

class room_load {
public:
    explicit room_load(const options& opts)
        : opts_(opts), address_(ipv4_address(opts.host, opts.port)),
          host_header_(opts.host + ':' + std::to_string(opts.port)), members_(opts.members),
          sent_(opts.senders, 0), buffer_(256 * 1024) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = timer_token;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev);
        if (opts_.mode == "w1") {
            sender_epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
            ev.data.u64 = senders_token; // a blocking wait wakes for the sender too
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sender_epoll_fd_, &ev);
        }
        for (member& m : members_) {
            m.next_seq.assign(opts.senders, 0);
#if defined(WSCHAT_BENCH_DEFLATE)
            if (opts_.deflate)
                m.conn.offer_deflate(shared_inflater_);
#endif
        }
        if (opts_.payload == "json")
            envelopes_ = std::make_unique<json_envelopes>(opts_.senders);
    }
    room_load(const room_load&) = delete;
    room_load& operator=(const room_load&) = delete;
    ~room_load() {
        members_.clear();
        ::close(timer_fd_);
        if (sender_epoll_fd_ >= 0)
            ::close(sender_epoll_fd_);
        ::close(epoll_fd_);
    }

    /// Runs the workload and prints its JSON line; returns the exit status.
    int run() {
        json_line out;
        out.add("mode", opts_.mode).add("members", std::uint64_t{opts_.members});
        const std::uint64_t setup_start = now_ns();
        if (!connect_and_join(out))
            return 1;
        out.add("join_s", static_cast<double>(now_ns() - setup_start) / 1e9)
            .add("payload", opts_.payload);
        if (opts_.deflate && !check_deflate(out))
            return 1;
        if (opts_.mode == "w4")
            hold(out);
        else if (opts_.mode == "w1")
            closed_loop(out);
        else
            open_loop(out);
        out.print();
        return errors_ == 0 ? 0 : 1;
    }

private:
    static constexpr std::uint64_t timer_token = ~std::uint64_t{0};
    static constexpr std::uint64_t senders_token = timer_token - 1;
    /// Receivers' events handled between two looks at the senders.
    static constexpr int events_per_sender_check = 16;

    struct member {
        client conn;
        std::vector<std::uint32_t> next_seq; ///< per sender: the sequence number expected next
        std::uint64_t online = 0;            ///< the highest presence count received
    };

    /// What the parser reports for one member's connection.
    struct frame_events {
        room_load& load;
        std::uint32_t index;

        void on_message(ws::opcode, std::string_view payload) { load.on_message(index, payload); }
        void on_ping(std::string_view payload) {
            load.members_[index].conn.send(ws::opcode::pong, payload);
        }
        void on_pong(std::string_view) {}
        void on_close(std::uint16_t, std::string_view) { ++load.closed_by_server_; }
        void on_error(std::error_code) { ++load.errors_; }
    };

    // --- setup ----------------------------------------------------------------------------

    bool connect_and_join(json_line& out) {
        const std::uint64_t deadline = now_ns() + to_ns(opts_.join_timeout);
        std::size_t started = 0;
        while (joined_ < members_.size() && now_ns() < deadline) {
            // Keep at most connect_batch connections in their handshake at once.
            while (started < members_.size() && started - open_ < opts_.connect_batch) {
                const bool own_set = sender_epoll_fd_ >= 0 && started < opts_.senders;
                if (!members_[started].conn.start(own_set ? sender_epoll_fd_ : epoll_fd_, address_,
                                                  host_header_, started, started + 1))
                    return fail(out, "connect failed");
                ++started;
            }
            poll(now_ns() + 10'000'000);
            if (failed_ > 0)
                return fail(out, refused_ > 0 ? "upgrade refused (connection limit?)"
                                              : "connection failed during setup");
        }
        if (joined_ < members_.size())
            return fail(out, "timed out waiting for every member to join");
        return true;
    }

    bool fail(json_line& out, const char* why) {
        out.add("error", why)
            .add("open", std::uint64_t{open_})
            .add("joined", std::uint64_t{joined_});
        out.print();
        return false;
    }

    // --- workloads --------------------------------------------------------------------------

    void closed_loop(json_line& out) {
        const std::uint64_t start = now_ns();
        window_start_ = start + to_ns(opts_.warmup);
        window_end_ = window_start_ + to_ns(opts_.duration);
        sending_ = true;
        for (std::size_t i = 0; i < opts_.in_flight; ++i)
            send_next(0, now_ns());
        while (now_ns() < window_end_)
            poll(window_end_);
        sending_ = false;
        cpu_.note(now_ns(), window_start_, window_end_);
        drain();
        if (opts_.hold > 0)
            linger(out);
        out.add("in_flight", std::uint64_t{opts_.in_flight});
        report(out);
    }

    void open_loop(json_line& out) {
        interval_ns_ = 1e9 / (opts_.rate * static_cast<double>(opts_.senders));
        t0_ = now_ns() + 1'000'000;
        window_start_ = t0_ + to_ns(opts_.warmup);
        window_end_ = window_start_ + to_ns(opts_.duration);
        sending_ = true;
        while (due(next_due_) < window_end_) {
            arm_timer(due(next_due_));
            poll(window_end_);
            send_due();
        }
        while (now_ns() < window_end_)
            poll(window_end_);
        sending_ = false;
        cpu_.note(now_ns(), window_start_, window_end_);
        drain();
        if (opts_.hold > 0)
            linger(out);
        out.add("senders", std::uint64_t{opts_.senders}).add("rate", opts_.rate);
        report(out);
    }

    /// The open loop's schedule: when message `j` of the run is due.
    std::uint64_t due(std::uint64_t j) const {
        return t0_ + static_cast<std::uint64_t>(static_cast<double>(j) * interval_ns_);
    }

    /// Open loop: sends every message whose time has come.
    void send_due() {
        if (!sending_ || opts_.mode == "w1")
            return;
        for (const std::uint64_t now = now_ns();
             due(next_due_) <= now && due(next_due_) < window_end_; ++next_due_)
            send_next(static_cast<std::uint32_t>(next_due_ % opts_.senders), due(next_due_));
    }

    /// Every member compressed, all with the same parameters (it is one server); reports them.
    bool check_deflate(json_line& out) {
#if defined(WSCHAT_BENCH_DEFLATE)
        const deflate_link* first = members_[0].conn.deflate();
        for (const member& m : members_)
            if (!m.conn.deflate() || m.conn.deflate()->params() != first->params())
                return fail(out, "the server declined permessage-deflate, or not alike for all");
        const ws::deflate_params& p = first->params();
        out.add("deflate_server_context", !p.server_no_context_takeover)
            .add("deflate_client_context", !p.client_no_context_takeover)
            .add("deflate_server_window_bits", std::uint64_t{p.server_max_window_bits})
            .add("deflate_client_window_bits", std::uint64_t{p.client_max_window_bits});
        return true;
#else
        return fail(out, "built without zlib");
#endif
    }

    void hold(json_line& out) {
        linger(out);
        add_counters(out);
    }

    /// Prints the {"event": "ready"} line and keeps every member open for `hold` seconds.
    void linger(json_line& out) {
        json_line{}.add("event", "ready").add("members", std::uint64_t{opts_.members}).print();
        const std::uint64_t end = now_ns() + to_ns(opts_.hold);
        while (now_ns() < end)
            poll(end);
        out.add("hold_s", opts_.hold).add("still_open", std::uint64_t{open_});
    }

    /// Sends the next message of `sender`, stamped with `stamp_ns`.
    void send_next(std::uint32_t sender, std::uint64_t stamp_ns) {
        char fixed[payload_size];
        std::string_view payload{fixed, payload_size};
        if (envelopes_) {
            stamp_ns -= stamp_ns % 1000; // an envelope carries microseconds
            payload = envelopes_->write({sender, sent_[sender]++, stamp_ns});
        } else {
            write_payload(fixed, {sender, sent_[sender]++, stamp_ns});
        }
        if (stamp_ns >= window_start_ && stamp_ns < window_end_)
            ++window_sent_;
        members_[sender].conn.send(ws::opcode::text, payload);
        ++outstanding_;
    }

    /// Waits up to `grace` seconds for every member to receive every message sent.
    void drain() {
        std::uint64_t sent = 0;
        for (const std::uint32_t n : sent_)
            sent += n;
        expected_ = sent * members_.size();
        const std::uint64_t deadline = now_ns() + to_ns(opts_.grace);
        while (delivered_ + gaps_ < expected_ && now_ns() < deadline && open_ > 0)
            poll(deadline);
    }

    void report(json_line& out) {
        const double seconds = opts_.duration;
        std::uint64_t sent = 0;
        for (const std::uint32_t n : sent_)
            sent += n;
        out.add("duration_s", seconds)
            .add("sent", sent)
            .add("expected", expected_)
            .add("delivered", delivered_)
            .add("undelivered", expected_ - delivered_)
            .add("delivered_fraction",
                 expected_ == 0 ? 0.0
                                : static_cast<double>(delivered_) / static_cast<double>(expected_))
            .add("window_deliveries", window_deliveries_)
            .add("deliveries_per_s", static_cast<double>(window_deliveries_) / seconds)
            .add("latency_samples", latency_.count())
            .add("latency_population", window_sent_ * members_.size())
            .add("p1_us", micros(latency_.quantile(0.01, window_sent_ * members_.size())))
            .add("p50_us", micros(latency_.quantile(0.50, window_sent_ * members_.size())))
            .add("p99_us", micros(latency_.quantile(0.99, window_sent_ * members_.size())))
            .add("max_us", static_cast<double>(latency_.max()) / 1e3)
            .add("loadgen_cpu", cpu_.loadgen_share(seconds))
            .add("window_wire_bytes", window_wire_bytes_)
            .add("wire_bytes_per_delivery", window_deliveries_ == 0
                                                ? 0.0
                                                : static_cast<double>(window_wire_bytes_) /
                                                      static_cast<double>(window_deliveries_));
        if (const std::optional<double> server = cpu_.server_share(seconds))
            out.add("server_cpu_window", *server);
#if defined(WSCHAT_BENCH_DEFLATE)
        if (opts_.deflate)
            out.add("shared_inflates", shared_inflater_.inflated());
#endif
        add_counters(out);
    }

    void add_counters(json_line& out) {
        out.add("gaps", gaps_)
            .add("duplicates", duplicates_)
            .add("closed_by_server", closed_by_server_)
            .add("disconnected", failed_)
            .add("protocol_errors", errors_)
            .add("corrupt", corrupt_);
    }

    // --- events -----------------------------------------------------------------------------

    void on_message(std::uint32_t index, std::string_view payload) {
        member& m = members_[index];
        if (envelopes_) {
            bool intact = true;
            const auto s = envelopes_->read(payload, intact);
            if (!intact) {
                ++corrupt_;
                ++errors_;
            }
            if (s)
                return on_stamp(index, *s);
            if (!intact)
                return;
        } else if (const auto s = read_payload(payload)) {
            return on_stamp(index, *s);
        }
        constexpr std::string_view presence = "Online users: ";
        if (payload.substr(0, presence.size()) != presence)
            return; // the welcome line, or anything else the server says
        std::uint64_t count = 0;
        for (const char c : payload.substr(presence.size()))
            count = count * 10 + static_cast<std::uint64_t>(c - '0');
        if (m.online < members_.size() && count >= members_.size())
            ++joined_;
        m.online = count > m.online ? count : m.online;
    }

    void on_stamp(std::uint32_t index, const stamp& s) {
        if (s.sender >= opts_.senders) {
            ++errors_;
            return;
        }
        std::uint32_t& next = members_[index].next_seq[s.sender];
        if (s.sequence < next) {
            ++duplicates_;
            return;
        }
        gaps_ += s.sequence - next;
        next = s.sequence + 1;
        ++delivered_;
        if (read_time_ >= window_start_ && read_time_ < window_end_)
            ++window_deliveries_;
        if (s.sent_ns >= window_start_ && s.sent_ns < window_end_)
            latency_.record(read_time_ > s.sent_ns ? read_time_ - s.sent_ns : 0);
        if (index == s.sender) {
            --outstanding_;
            if (sending_ && opts_.mode == "w1")
                send_next(s.sender, now_ns());
        }
    }

    void arm_timer(std::uint64_t at_ns) {
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(at_ns / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(at_ns % 1'000'000'000);
        ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
    }

    /// Notes this process's CPU time when the measured window opens and closes.
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

    /// What the senders are owed between receivers' events: W1's sender its arrivals (its
    /// own epoll set, without waiting), the open loop its messages that fell due.
    void serve_senders() {
        send_due();
        if (sender_epoll_fd_ < 0)
            return;
        epoll_event events[8];
        const int n = ::epoll_wait(sender_epoll_fd_, events, 8, 0);
        for (int i = 0; i < n; ++i)
            handle(events[i]);
    }

    void handle(const epoll_event& event) {
        if (event.data.u64 == timer_token) {
            std::uint64_t expirations = 0;
            [[maybe_unused]] const auto r = ::read(timer_fd_, &expirations, sizeof expirations);
            return; // what is due goes out in serve_senders
        }
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
            const long got = m.conn.on_readable(buffer_.data(), buffer_.size(), handler);
            if (got > 0 && read_time_ >= window_start_ && read_time_ < window_end_)
                window_wire_bytes_ += static_cast<std::uint64_t>(got);
        }
        account(m, before);
    }

    /// Counts connections opening and failing.
    void account(const member& m, client::phase before) {
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
    sockaddr_in address_;
    std::string host_header_;
    int epoll_fd_ = -1;
    int sender_epoll_fd_ = -1; ///< W1: the sender's own set (see the top of this file)
    int timer_fd_ = -1;
    std::vector<member> members_;
    std::vector<std::uint32_t> sent_; ///< per sender: messages sent
    std::vector<std::uint8_t> buffer_;

    std::size_t open_ = 0;
    std::size_t joined_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t refused_ = 0;
    bool sending_ = false;
    std::uint64_t outstanding_ = 0;
    std::uint64_t t0_ = 0;       ///< open loop: when message 0 is due
    double interval_ns_ = 0;     ///< open loop: between two messages of the schedule
    std::uint64_t next_due_ = 0; ///< open loop: the next message of the schedule
    std::uint64_t window_start_ = ~std::uint64_t{0};
    std::uint64_t window_end_ = ~std::uint64_t{0};
    std::uint64_t read_time_ = 0;
    cpu_window cpu_{opts_.server_pid};          // readings at the window's edges
    std::uint64_t window_wire_bytes_ = 0;       ///< read off the members' sockets in the window
    std::unique_ptr<json_envelopes> envelopes_; ///< --payload json
#if defined(WSCHAT_BENCH_DEFLATE)
    shared_inflater shared_inflater_; ///< members' messages compressed without context
#endif

    std::uint64_t expected_ = 0;
    std::uint64_t window_sent_ = 0; ///< messages stamped inside the window: latency's population
    std::uint64_t delivered_ = 0;
    std::uint64_t window_deliveries_ = 0;
    std::uint64_t gaps_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t closed_by_server_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t corrupt_ = 0; ///< envelopes that differ from what was sent
    histogram latency_;
};

} // namespace loadgen
