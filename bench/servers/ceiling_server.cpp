// BENCH-ONLY calibration server: the least a broadcast room can do, to check that the load
// generator out-runs any real server. One thread, raw epoll, wschat's sans-I/O handshake and
// frame parser; every message read in one epoll round is appended to one batch, and each
// member gets the whole batch in one send() at the end of the round. No limits, no timers,
// no heartbeat: not a server to deploy, a ceiling to measure against (bench/run.py --servers
// ceiling).
//
//     ceiling_server --port 0      prints `listening on ws://127.0.0.1:PORT/`
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

struct member {
    int fd = -1;
    bool open = false;
    ws::request_parser request;
    ws::message_parser frames{ws::role::server, 1 << 20};
    std::string out;
    std::size_t out_pos = 0;
};

class ceiling {
public:
    explicit ceiling(std::uint16_t port) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener_, 4096) != 0)
            throw std::runtime_error("cannot listen");
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
    }

    std::uint16_t port() const noexcept { return port_; }

    void run() {
        std::vector<std::uint8_t> buffer(256 * 1024);
        epoll_event events[512];
        for (;;) {
            const int n = ::epoll_wait(epoll_, events, 512, -1);
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listener_) {
                    accept_all();
                    continue;
                }
                const auto it = members_.find(fd);
                if (it == members_.end())
                    continue;
                if ((events[i].events & EPOLLOUT) != 0)
                    flush(*it->second);
                if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0)
                    read(*it->second, buffer);
            }
            for (const int fd : dead_)
                drop(fd);
            dead_.clear();
            deliver_batch();
        }
    }

    // What the frame parser reports for one member.
    struct events_for {
        ceiling& room;
        member& m;
        void on_message(ws::opcode op, std::string_view payload) { room.add(op, payload); }
        void on_ping(std::string_view p) { m.out += ws::encode_frame(ws::opcode::pong, p); }
        void on_pong(std::string_view) {}
        void on_close(std::uint16_t, std::string_view) { room.dead_.push_back(m.fd); }
        void on_error(std::error_code) { room.dead_.push_back(m.fd); }
    };

private:
    void watch(int fd, std::uint32_t what, int op) {
        epoll_event ev{};
        ev.events = what;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_, op, fd, &ev);
    }

    void accept_all() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                return;
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            auto m = std::make_unique<member>();
            m->fd = fd;
            members_[fd] = std::move(m);
            watch(fd, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    void read(member& m, std::vector<std::uint8_t>& buffer) {
        const ssize_t n = ::read(m.fd, buffer.data(), buffer.size());
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                dead_.push_back(m.fd);
            return;
        }
        std::size_t used = 0;
        const auto size = static_cast<std::size_t>(n);
        if (!m.open) {
            used = m.request.feed(reinterpret_cast<const char*>(buffer.data()), size);
            if (m.request.current() == ws::request_parser::state::failed) {
                dead_.push_back(m.fd);
                return;
            }
            if (m.request.current() != ws::request_parser::state::done)
                return;
            if (ws::validate_upgrade(m.request.request())) {
                dead_.push_back(m.fd);
                return;
            }
            m.out += ws::make_upgrade_response(m.request.request()).serialize();
            m.out += ws::encode_frame(ws::opcode::text, "Welcome to the chat room!");
            m.open = true;
            ++open_;
            add(ws::opcode::text, "Online users: " + std::to_string(open_));
        }
        events_for handler{*this, m};
        if (used < size)
            m.frames.feed(buffer.data() + used, size - used, handler);
    }

    void add(ws::opcode op, std::string_view payload) { batch_ += ws::encode_frame(op, payload); }

    void deliver_batch() {
        for (auto& [fd, m] : members_) {
            if (m->open && !batch_.empty())
                m->out += batch_;
            if (m->out_pos < m->out.size())
                flush(*m);
        }
        batch_.clear();
    }

    void flush(member& m) {
        const bool was_blocked = m.out_pos > 0;
        while (m.out_pos < m.out.size()) {
            const ssize_t n =
                ::send(m.fd, m.out.data() + m.out_pos, m.out.size() - m.out_pos, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN)
                    break;
                dead_.push_back(m.fd);
                return;
            }
            m.out_pos += static_cast<std::size_t>(n);
        }
        if (m.out_pos == m.out.size()) {
            m.out.clear();
            m.out_pos = 0;
        }
        const bool blocked = m.out_pos > 0;
        if (blocked != was_blocked)
            watch(m.fd, EPOLLIN | (blocked ? EPOLLOUT : 0U), EPOLL_CTL_MOD);
    }

    void drop(int fd) {
        const auto it = members_.find(fd);
        if (it == members_.end())
            return;
        if (it->second->open) {
            --open_;
            add(ws::opcode::text, "Online users: " + std::to_string(open_));
        }
        ::close(fd);
        members_.erase(it);
    }

    int listener_ = -1;
    int epoll_ = -1;
    std::uint16_t port_ = 0;
    std::size_t open_ = 0;
    std::unordered_map<int, std::unique_ptr<member>> members_;
    std::vector<int> dead_;
    std::string batch_;
};

} // namespace

int main(int argc, char** argv) try {
    std::uint16_t port = 8080;
    for (int i = 1; i + 1 < argc; i += 2)
        if (std::string_view{argv[i]} == "--port")
            port = static_cast<std::uint16_t>(std::stoul(argv[i + 1]));
    std::signal(SIGPIPE, SIG_IGN);
    ceiling server{port};
    std::printf("listening on ws://127.0.0.1:%u/\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    server.run(); // ends when the driver sends SIGTERM
} catch (const std::exception& e) {
    std::fprintf(stderr, "ceiling_server: %s\n", e.what());
    return 1;
}
