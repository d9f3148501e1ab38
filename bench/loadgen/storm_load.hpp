// loadgen — W5 storm: a join storm. `members` clients connect at once, at most
// `connect_batch` of them in their handshake at a time (as a proxy in front of the server
// lets a reconnect wave through), and stay connected, reading everything the server sends.
//
// Reports joins/s: members divided by the time from the first connect() to the last 101
// received. Every frame and byte (WebSocket header and payload, not the 101's head) each
// member receives is counted, during the storm (up to the last 101) and until the room has
// settled: every member has seen "Online users: N" with the full count (a server coalescing
// its presence may take a while), or, when no presence came at all (a server without a
// room), nothing arrived for `settle_quiet_ns`; within `grace` seconds.
// A member that never sees the full count is reported (`unconverged`): the count a member
// sees must converge to the true one, however announcements are batched.
// With --server-pid, the server's CPU during the storm (cores' worth).
#pragma once

#include "client.hpp"
#include "common.hpp"
#include "options.hpp"

#include <cstdint>
#include <string_view>
#include <sys/epoll.h>
#include <vector>

namespace loadgen {

class storm_load {
public:
    explicit storm_load(const options& opts)
        : opts_(opts), address_(ipv4_address(opts.host, opts.port)),
          host_header_(opts.host + ':' + std::to_string(opts.port)), members_(opts.members),
          buffer_(64 * 1024) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    }
    storm_load(const storm_load&) = delete;
    storm_load& operator=(const storm_load&) = delete;
    ~storm_load() {
        members_.clear();
        ::close(epoll_fd_);
    }

    int run() {
        json_line out;
        out.add("mode", "storm")
            .add("members", std::uint64_t{opts_.members})
            .add("connect_batch", std::uint64_t{opts_.connect_batch});
        const double cpu_start = cpu_seconds();
        const double server_cpu_start =
            opts_.server_pid > 0 ? process_cpu_seconds(opts_.server_pid) : -1;
        first_connect_ = now_ns();
        if (!storm(out))
            return 1;
        const double storm_s = static_cast<double>(last_open_ - first_connect_) / 1e9;
        const double loadgen_cpu = cpu_seconds() - cpu_start;
        const double server_cpu =
            server_cpu_start >= 0 ? process_cpu_seconds(opts_.server_pid) - server_cpu_start : -1;
        const std::uint64_t storm_frames = frames_, storm_bytes = bytes_;
        settle();
        const auto n = static_cast<double>(members_.size());
        std::uint64_t unconverged = 0;
        for (const member& m : members_)
            unconverged += m.online > 0 && m.online != members_.size() ? 1 : 0;
        out.add("storm_s", storm_s)
            .add("joins_per_s", n / storm_s)
            .add("frames_per_member", static_cast<double>(storm_frames) / n)
            .add("bytes_per_member", static_cast<double>(storm_bytes) / n)
            .add("settle_s", static_cast<double>(settled_ - last_open_) / 1e9)
            .add("total_frames_per_member", static_cast<double>(frames_) / n)
            .add("total_bytes_per_member", static_cast<double>(bytes_) / n)
            .add("members_with_presence", with_presence_)
            .add("unconverged", unconverged)
            .add("still_open", std::uint64_t{open_})
            .add("loadgen_cpu", loadgen_cpu / storm_s);
        if (server_cpu >= 0)
            out.add("server_cpu_storm", server_cpu / storm_s);
        out.print();
        return unconverged == 0 && open_ == members_.size() ? 0 : 1;
    }

private:
    /// Nothing received for this long after the storm: the room has nothing more to say.
    static constexpr std::uint64_t settle_quiet_ns = 300'000'000;

    struct member {
        client conn;
        std::uint64_t online = 0; ///< the last presence count received
    };

    struct frame_events {
        storm_load& load;
        member& m;

        void on_message(ws::opcode, std::string_view payload) {
            load.count(payload.size());
            constexpr std::string_view presence = "Online users: ";
            if (payload.substr(0, presence.size()) != presence)
                return; // the welcome line
            std::uint64_t count = 0;
            for (const char c : payload.substr(presence.size()))
                count = count * 10 + static_cast<std::uint64_t>(c - '0');
            load.with_presence_ += m.online == 0 ? 1 : 0;
            m.online = count;
        }
        void on_ping(std::string_view payload) {
            load.count(payload.size());
            m.conn.send(ws::opcode::pong, payload);
        }
        void on_pong(std::string_view payload) { load.count(payload.size()); }
        void on_close(std::uint16_t, std::string_view) { ++load.errors_; }
        void on_error(std::error_code) { ++load.errors_; }
    };

    /// A server frame's bytes on the wire: its unmasked header and the payload.
    void count(std::size_t payload) {
        ++frames_;
        bytes_ += payload + (payload < 126 ? 2 : payload < 65536 ? 4 : 10);
        last_frame_ = now_ns();
    }

    /// Connects every member, `connect_batch` in their handshake at a time, until the last
    /// 101 has arrived. False (with the error in `out`) when one failed or time ran out.
    bool storm(json_line& out) {
        const std::uint64_t deadline = first_connect_ + to_ns(opts_.join_timeout);
        std::size_t started = 0;
        while (open_ < members_.size()) {
            while (started < members_.size() && started - open_ < opts_.connect_batch) {
                in_addr from{};
                if (opts_.source_addresses > 1)
                    from.s_addr = htonl(
                        0x7F000002U + static_cast<std::uint32_t>(started % opts_.source_addresses));
                if (!members_[started].conn.start(epoll_fd_, address_, host_header_, started,
                                                  started + 1, from))
                    return fail(out, "connect failed");
                ++started;
            }
            if (now_ns() > deadline)
                return fail(out, "timed out waiting for every member to join");
            poll(now_ns() + 10'000'000);
            if (failed_ > 0 || errors_ > 0)
                return fail(out, refused_ > 0 ? "upgrade refused (connection limit?)"
                                              : "connection failed or closed during the storm");
        }
        return true;
    }

    /// Reads until every member saw the full count, or nothing came for a while.
    void settle() {
        const std::uint64_t deadline = last_open_ + to_ns(opts_.grace);
        last_frame_ = now_ns();
        for (;;) {
            const std::uint64_t now = now_ns();
            const bool silent = with_presence_ == 0 && now - last_frame_ >= settle_quiet_ns;
            if (converged() || now >= deadline || silent)
                break;
            poll(now + 10'000'000);
        }
        settled_ = converged() ? last_frame_ : now_ns();
    }

    bool converged() const {
        for (const member& m : members_)
            if (m.online != members_.size())
                return false;
        return true;
    }

    bool fail(json_line& out, const char* why) {
        out.add("error", why)
            .add("open", std::uint64_t{open_})
            .add("failed", failed_)
            .add("protocol_errors", errors_);
        out.print();
        return false;
    }

    void poll(std::uint64_t deadline_ns) {
        const std::uint64_t now = now_ns();
        const int timeout_ms =
            deadline_ns > now ? static_cast<int>((deadline_ns - now + 999'999) / 1'000'000) : 0;
        epoll_event events[256];
        const int n = ::epoll_wait(epoll_fd_, events, 256, timeout_ms);
        for (int e = 0; e < n; ++e) {
            member& m = members_[events[e].data.u64];
            const client::phase before = m.conn.state();
            if ((events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 &&
                before != client::phase::idle)
                m.conn.on_writable();
            if ((events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 &&
                m.conn.state() != client::phase::idle && m.conn.state() != client::phase::closed) {
                frame_events handler{*this, m};
                m.conn.on_readable(buffer_.data(), buffer_.size(), handler);
            }
            account(m, before);
        }
    }

    /// Counts connections opening (the time of the last 101) and failing.
    void account(const member& m, client::phase before) {
        const client::phase after = m.conn.state();
        if (before != client::phase::open && after == client::phase::open) {
            ++open_;
            last_open_ = now_ns();
        }
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
    std::vector<member> members_;
    std::vector<std::uint8_t> buffer_;
    std::size_t open_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t refused_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t with_presence_ = 0; ///< members that have heard a count
    std::uint64_t frames_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t first_connect_ = 0;
    std::uint64_t last_open_ = 0;
    std::uint64_t last_frame_ = 0;
    std::uint64_t settled_ = 0;
};

} // namespace loadgen
