// loadgen — W5: handshakes per second. `concurrency` loops each connect, upgrade (checking
// the 101 and its accept key), send a Close frame, wait for the server to close the TCP
// connection (so TIME_WAIT stays on the server side, as with real clients), and start over.
// A handshake counts when its 101 arrives inside the measured `duration`.
//
// Connections come from `source_addresses` loopback addresses in turn (127.0.0.2, .3, ...),
// as real clients come from many hosts: from one address, the ~28k ephemeral ports wrap
// within seconds at this rate, and a SYN that lands on the server's TIME_WAIT socket of the
// same address pair stalls for a one-second SYN retransmission.
// Use --source-addresses 1 to connect from the default address only.
#pragma once

#include "client.hpp"
#include "common.hpp"
#include "options.hpp"

#include <cstdint>
#include <string_view>
#include <sys/epoll.h>
#include <vector>

namespace loadgen {

class handshake_load {
public:
    explicit handshake_load(const options& opts)
        : opts_(opts), address_(ipv4_address(opts.host, opts.port)),
          host_header_(opts.host + ':' + std::to_string(opts.port)), slots_(opts.concurrency),
          buffer_(64 * 1024) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    }
    handshake_load(const handshake_load&) = delete;
    handshake_load& operator=(const handshake_load&) = delete;
    ~handshake_load() {
        slots_.clear();
        ::close(epoll_fd_);
    }

    int run() {
        const std::uint64_t start = now_ns();
        const double cpu_at_start = cpu_seconds();
        end_ = start + to_ns(opts_.duration);
        for (std::size_t i = 0; i < slots_.size(); ++i)
            restart(i);
        while (now_ns() < end_) {
            poll(end_ < now_ns() + 100'000'000 ? end_ : now_ns() + 100'000'000);
            expire_stuck();
        }
        json_line out;
        out.add("mode", "w5")
            .add("concurrency", std::uint64_t{opts_.concurrency})
            .add("source_addresses", std::uint64_t{opts_.source_addresses})
            .add("duration_s", opts_.duration)
            .add("handshakes", handshakes_)
            .add("handshakes_per_s", static_cast<double>(handshakes_) / opts_.duration)
            .add("refused", refused_)
            .add("failures", failures_)
            .add("timeouts", timeouts_)
            .add("loadgen_cpu", (cpu_seconds() - cpu_at_start) / opts_.duration);
        out.print();
        return handshakes_ > 0 ? 0 : 1;
    }

private:
    /// How long one loop may take before it counts as stuck and is started over.
    static constexpr std::uint64_t stuck_ns = 2'000'000'000;

    struct slot {
        client conn;
        std::uint64_t started = 0;
        bool close_sent = false;
        bool server_closed = false; ///< a Close frame arrived (the TCP close follows)
    };

    struct frame_events {
        slot& s;
        void on_message(ws::opcode, std::string_view) {}
        void on_ping(std::string_view payload) { s.conn.send(ws::opcode::pong, payload); }
        void on_pong(std::string_view) {}
        void on_close(std::uint16_t, std::string_view) { s.server_closed = true; }
        void on_error(std::error_code) { s.server_closed = true; }
    };

    void restart(std::size_t i) {
        slot& s = slots_[i];
        s.close_sent = false;
        s.server_closed = false;
        s.started = now_ns();
        in_addr from{};
        if (opts_.source_addresses > 1)
            from.s_addr =
                htonl(0x7F000002U + static_cast<std::uint32_t>(seed_ % opts_.source_addresses));
        if (!s.conn.start(epoll_fd_, address_, host_header_, i, ++seed_, from))
            ++failures_;
    }

    void poll(std::uint64_t deadline_ns) {
        const std::uint64_t now = now_ns();
        const int timeout_ms =
            deadline_ns > now ? static_cast<int>((deadline_ns - now + 999'999) / 1'000'000) : 0;
        epoll_event events[256];
        const int n = ::epoll_wait(epoll_fd_, events, 256, timeout_ms);
        for (int e = 0; e < n; ++e) {
            const auto i = static_cast<std::size_t>(events[e].data.u64);
            slot& s = slots_[i];
            if (s.conn.state() == client::phase::idle || s.conn.state() == client::phase::closed)
                continue; // restarted earlier in this batch; its events come again
            if ((events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0)
                s.conn.on_writable();
            long got = 1;
            if (s.conn.state() != client::phase::closed &&
                (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
                frame_events handler{s};
                got = s.conn.on_readable(buffer_.data(), buffer_.size(), handler);
            }
            settle(i, got);
        }
    }

    /// Moves slot `i` on after its events: count the upgrade, close, or start over.
    void settle(std::size_t i, long got) {
        slot& s = slots_[i];
        const client::phase p = s.conn.state();
        if (p == client::phase::open && !s.close_sent) {
            if (now_ns() < end_)
                ++handshakes_;
            s.close_sent = true;
            s.conn.send(ws::opcode::close, "\x03\xE8"); // 1000, normal closure
            return;
        }
        if (p == client::phase::closed || (p == client::phase::idle && got == 0)) {
            // EOF after our Close is the normal end of a loop; anything else failed.
            if (!s.close_sent) {
                ++failures_;
                refused_ += s.conn.refused() ? 1 : 0;
            }
            restart(i);
        }
    }

    void expire_stuck() {
        const std::uint64_t now = now_ns();
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (now - slots_[i].started > stuck_ns) {
                ++timeouts_;
                restart(i);
            }
        }
    }

    options opts_;
    sockaddr_in address_;
    std::string host_header_;
    int epoll_fd_ = -1;
    std::vector<slot> slots_;
    std::vector<std::uint8_t> buffer_;
    std::uint64_t end_ = 0;
    std::uint64_t seed_ = 0;
    std::uint64_t handshakes_ = 0;
    std::uint64_t failures_ = 0;
    std::uint64_t refused_ = 0;
    std::uint64_t timeouts_ = 0;
};

} // namespace loadgen
