// Micro-benchmark of the machine, not of wschat: what one small loopback TCP write costs when
// a broadcast writes each member once, and the latency floor that sets for W2.
//
// A room that writes a message to N members makes at least N send() calls, one per member's
// socket. On loopback each call also runs the receiving side of TCP (the kernel delivers the
// segment inside the sender's call), so its cost is a property of the kernel and the machine,
// and it is paid by every server alike. W2 asks that 99 % of a message's 1000 deliveries
// arrive within 8 ms; the 990th member's write cannot start before 989 others are done, so
// a server with one core cannot beat 990 writes' worth of this cost, whatever it does.
//
// The sender thread writes one 66-byte frame (a 64-byte text message, as the benchmark's)
// to each of 1000 connections in turn, for 1 s per run, while a client thread on another
// core drains them all through epoll, as the load generator does. Median of 5 runs.
//
//     loopback_bench [--connections N] [--sender-core A --receiver-core B]
#include <wschat/ws/frame.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

constexpr int runs = 5;
constexpr auto run_length = std::chrono::seconds(1);
/// W2's latency target and the share of deliveries it covers.
constexpr double w2_target_ms = 8.0;
constexpr double w2_quantile = 0.99;

struct options {
    std::size_t connections = 1000;
    int sender_core = -1; ///< -1: not pinned
    int receiver_core = -1;
};

options parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const int value = std::stoi(argv[i + 1]);
        if (flag == "--connections" && value > 0)
            o.connections = static_cast<std::size_t>(value);
        else if (flag == "--sender-core")
            o.sender_core = value;
        else if (flag == "--receiver-core")
            o.receiver_core = value;
        else
            throw std::invalid_argument("bad option " + flag);
    }
    if (argc % 2 == 0)
        throw std::invalid_argument("an option lacks its value");
    return o;
}

void pin_this_thread(int core) {
    if (core < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

/// Closes its descriptors when the benchmark ends, however it ends.
struct descriptors {
    std::vector<int> fds;
    ~descriptors() {
        for (const int fd : fds)
            ::close(fd);
    }
    int keep(int fd) {
        if (fd < 0)
            throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
        fds.push_back(fd);
        return fd;
    }
};

/// One loopback connection: the server's end (written) and the client's (drained).
struct connection_pair {
    int server_end = -1;
    int client_end = -1;
};

std::vector<connection_pair> connect_pairs(std::size_t count, descriptors& owned) {
    const int listener = owned.keep(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, 4096) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::runtime_error(std::string{"listen: "} + std::strerror(errno));
    std::vector<connection_pair> pairs(count);
    const int one = 1;
    for (connection_pair& pair : pairs) {
        pair.client_end = owned.keep(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(pair.client_end, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
            throw std::runtime_error(std::string{"connect: "} + std::strerror(errno));
        pair.server_end = owned.keep(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
        // As every server in the benchmark does: a frame leaves when it is written.
        ::setsockopt(pair.server_end, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return pairs;
}

/// The client side, on a thread of its own until destroyed: waits in epoll like the load
/// generator and reads whatever arrives.
class draining_client {
public:
    draining_client(const std::vector<connection_pair>& pairs, int core)
        : thread_([this, &pairs, core] { drain(pairs, core); }) {}
    draining_client(const draining_client&) = delete;
    draining_client& operator=(const draining_client&) = delete;
    ~draining_client() {
        stop_ = true;
        thread_.join();
    }

private:
    void drain(const std::vector<connection_pair>& pairs, int core) {
        pin_this_thread(core);
        descriptors owned;
        const int epoll_fd = owned.keep(::epoll_create1(EPOLL_CLOEXEC));
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            ::fcntl(pairs[i].client_end, F_SETFL, O_NONBLOCK);
            epoll_event event{};
            event.events = EPOLLIN;
            event.data.u64 = i;
            ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pairs[i].client_end, &event);
        }
        std::vector<char> buffer(256 * 1024);
        epoll_event events[256];
        while (!stop_.load(std::memory_order_relaxed)) {
            const int ready = ::epoll_wait(epoll_fd, events, 256, 50);
            for (int i = 0; i < ready; ++i)
                while (::read(pairs[events[i].data.u64].client_end, buffer.data(), buffer.size()) >
                       0) {
                }
        }
    }

    std::atomic<bool> stop_{false};
    std::thread thread_; // last: starts once stop_ is set up
};

/// Microseconds per send() over one run: one frame to each connection in turn.
double time_one_run(const std::vector<connection_pair>& pairs, const std::string& frame) {
    std::uint64_t sends = 0;
    const auto start = bench_clock::now();
    auto elapsed = bench_clock::duration{};
    do {
        for (const connection_pair& pair : pairs)
            if (::send(pair.server_end, frame.data(), frame.size(), MSG_NOSIGNAL) !=
                static_cast<ssize_t>(frame.size()))
                throw std::runtime_error(std::string{"send: "} + std::strerror(errno));
        sends += pairs.size();
        elapsed = bench_clock::now() - start;
    } while (elapsed < run_length);
    return std::chrono::duration<double, std::micro>(elapsed).count() / static_cast<double>(sends);
}

} // namespace

int main(int argc, char** argv) try {
    const options opts = parse_options(argc, argv);
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0) { // two descriptors per connection
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }
    descriptors owned;
    const std::vector<connection_pair> pairs = connect_pairs(opts.connections, owned);
    const std::string frame = ws::encode_frame(ws::opcode::text, std::string(64, 'x'));

    std::vector<double> micros_per_send;
    {
        const draining_client client{pairs, opts.receiver_core};
        pin_this_thread(opts.sender_core);
        for (int run = 0; run < runs; ++run)
            micros_per_send.push_back(time_one_run(pairs, frame));
    }

    std::sort(micros_per_send.begin(), micros_per_send.end());
    const double median = micros_per_send[micros_per_send.size() / 2];
    const auto members_within =
        static_cast<std::size_t>(w2_quantile * static_cast<double>(opts.connections) + 0.5);
    std::printf("loopback send, %zu B frame, %zu connections %9.2f us per send (runs: %.2f-%.2f)\n",
                frame.size(), opts.connections, median, micros_per_send.front(),
                micros_per_send.back());
    std::printf("one write to %zu of %zu members %12.2f ms (W2 asks for p99 < %.0f ms)\n",
                members_within, opts.connections,
                median * static_cast<double>(members_within) / 1e3, w2_target_ms);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "loopback_bench: %s\n", e.what());
    return 1;
}
