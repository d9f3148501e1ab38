// Test support for abuse tests: a fast frame reader, well-behaved chatters that check they
// lose nothing while others misbehave, and helpers to watch many sockets close.
//
// Nothing here calls Catch2: its assertions are not thread-safe, so threads record what they
// saw and the test checks it on the main thread.
#pragma once

#include "test_client.hpp"

#include <wschat/ws/options.hpp>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace test::abuse {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Reads frames off a socket (decoded by decode_frame) with a buffer that is consumed by
/// offset and compacted only when half of it is read, so a flood of small frames costs
/// O(bytes).
class frame_stream {
public:
    enum class status { frame, timeout, eof };

    explicit frame_stream(int fd) : fd_(fd) {}

    /// The HTTP response head, up to and including the blank line.
    std::optional<std::string> read_head(steady::time_point deadline) {
        std::size_t at;
        while ((at = buffer_.find("\r\n\r\n", pos_)) == std::string::npos)
            if (!fill(deadline))
                return std::nullopt;
        std::string head = buffer_.substr(pos_, at + 4 - pos_);
        pos_ = at + 4;
        return head;
    }

    /// The next frame; `timeout` or `eof` when none arrived in time or the peer is gone.
    status next(frame& out, steady::time_point deadline) {
        for (;;) {
            if (parse(out))
                return status::frame;
            if (!fill(deadline))
                return eof_ ? status::eof : status::timeout;
        }
    }

    bool eof() const { return eof_; }

private:
    bool parse(frame& out) {
        std::size_t used = 0;
        auto next = decode_frame(std::string_view{buffer_}.substr(pos_), used);
        if (!next)
            return false;
        out = std::move(*next);
        pos_ += used;
        return true;
    }

    bool fill(steady::time_point deadline) {
        if (eof_)
            return false;
        if (pos_ > 0 && pos_ * 2 >= buffer_.size()) {
            buffer_.erase(0, pos_);
            pos_ = 0;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) <= 0)
            return false;
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    int fd_;
    std::string buffer_;
    std::size_t pos_ = 0;
    bool eof_ = false;
};

/// A WebSocket client that completes its handshake in the constructor and reads with a
/// frame_stream. `receive_buffer` > 0 shrinks SO_RCVBUF before connecting (a slow reader).
class fast_client {
public:
    explicit fast_client(std::uint16_t port, std::string_view path = "/", int receive_buffer = 0)
        : socket_(port, receive_buffer), frames_(socket_.fd()) {
        socket_.send_raw(upgrade_request(path));
        const auto head = frames_.read_head(steady::now() + 5s);
        if (!head || head->rfind("HTTP/1.1 101", 0) != 0)
            throw std::runtime_error{"handshake failed: " + head.value_or("(no response)")};
    }

    socket_client& socket() { return socket_; }
    frame_stream& frames() { return frames_; }

    bool send(std::uint8_t opcode, std::string_view payload) {
        return socket_.send_raw(encode(opcode, payload));
    }

    /// Reads frames until a Close frame (its code), EOF or reset (nothing), or `timeout`
    /// (nothing, and `timed_out` set). Data frames are discarded, pings answered.
    std::optional<std::uint16_t> await_close(std::chrono::milliseconds timeout,
                                             bool* timed_out = nullptr) {
        const auto deadline = steady::now() + timeout;
        frame f;
        for (;;) {
            const auto st = frames_.next(f, deadline);
            if (st != frame_stream::status::frame) {
                if (timed_out)
                    *timed_out = st == frame_stream::status::timeout;
                return std::nullopt;
            }
            if (f.opcode == op_close)
                return f.close_code();
            if (f.opcode == op_ping)
                send(op_pong, f.payload);
        }
    }

private:
    socket_client socket_;
    frame_stream frames_;
};

/// Splits "word id seq ..." (lowercase word, decimal id and seq: the chatters' and the
/// abusers' sequenced messages) into the key "word id" and the sequence number; nothing for
/// any other text ("Online users: 3" included).
inline std::optional<std::pair<std::string, long>> sequenced(std::string_view text) {
    const auto first = text.find(' ');
    if (first == std::string_view::npos)
        return std::nullopt;
    const auto second = text.find(' ', first + 1);
    if (second == std::string_view::npos)
        return std::nullopt;
    const auto third = std::min(text.find(' ', second + 1), text.size());
    const auto all = [](std::string_view s, bool (*pred)(char)) {
        return !s.empty() && std::all_of(s.begin(), s.end(), pred);
    };
    const auto word = text.substr(0, first);
    const auto id = text.substr(first + 1, second - first - 1);
    const std::string seq{text.substr(second + 1, third - second - 1)};
    if (!all(word, [](char c) { return c >= 'a' && c <= 'z'; }) ||
        !all(id, [](char c) { return c >= '0' && c <= '9'; }) ||
        !all(seq, [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    const long n = std::strtol(seq.c_str(), nullptr, 10);
    return std::make_pair(std::string{text.substr(0, second)}, n);
}

/// What one well-behaved member observed.
struct chatter_report {
    int sent = 0;                      ///< own messages sent (each echoed before the next)
    std::map<std::string, long> heard; ///< per "word id": how many, all in order from 0
    std::chrono::microseconds max_rtt{0};
    std::chrono::microseconds total_rtt{0};
    std::vector<std::chrono::microseconds> rtts; ///< every round trip, in order
    std::string error;                           ///< the first thing that went wrong, if any
};

/// Well-behaved members of a room chatting as fast as an honest client may: each sends
/// "honest <id> <seq> <padding>", waits for its own echo (the round trip), and checks that every
/// sequenced message it hears — its own, the other chatters', an abuser's "flood 0 <seq>" — arrives
/// complete and in order. Connects in the constructor, chats between start() and finish().
class chatters {
public:
    explicit chatters(std::uint16_t port, int members = 2, std::size_t padding = 16)
        : padding_(padding, 'p'), finals_(static_cast<std::size_t>(members)),
          rounds_(static_cast<std::size_t>(members)), reports_(static_cast<std::size_t>(members)) {
        for (int i = 0; i < members; ++i)
            clients_.push_back(std::make_unique<fast_client>(port, "/honest"));
        for (auto& f : finals_)
            f = -1;
        for (auto& n : rounds_)
            n = 0;
    }
    chatters(const chatters&) = delete;
    chatters& operator=(const chatters&) = delete;
    ~chatters() { finish(); }

    int size() const { return static_cast<int>(clients_.size()); }

    void start() {
        for (int i = 0; i < size(); ++i)
            threads_.emplace_back([this, i] { run(i); });
    }

    /// Waits until every member has completed `rounds` more round trips; false when one
    /// stopped (see problems()) or `timeout` passed first.
    bool await_rounds(int rounds, std::chrono::milliseconds timeout = 10s) {
        std::vector<int> target;
        for (const auto& n : rounds_)
            target.push_back(n + rounds);
        const auto deadline = steady::now() + timeout;
        for (;;) {
            bool done = true;
            for (std::size_t i = 0; i < rounds_.size(); ++i) {
                if (finals_[i] >= 0)
                    return false;
                done = done && rounds_[i] >= target[i];
            }
            if (done)
                return true;
            if (steady::now() >= deadline)
                return false;
            std::this_thread::sleep_for(1ms);
        }
    }

    /// Stops sending, lets every member hear everything that was sent, joins.
    void finish() {
        stop_ = true;
        for (auto& t : threads_)
            t.join();
        threads_.clear();
    }

    /// Before finish(): the members also wait to hear `count` messages "key 0", "key 1", ...
    /// (an abuser's sequenced messages) before they stop.
    void expect(const std::string& key, long count) {
        std::lock_guard<std::mutex> lock{mutex_};
        expected_[key] = count;
    }

    const chatter_report& report(int i) const { return reports_[static_cast<std::size_t>(i)]; }

    /// Round trips each member makes before any abuse starts: the latency baseline.
    static constexpr std::size_t baseline_rounds = 20;

    /// After finish(): the median round trip of the baseline rounds (`baseline`) or of all
    /// later ones, across members.
    std::chrono::microseconds median_rtt(bool baseline) const {
        std::vector<std::chrono::microseconds> samples;
        for (const auto& r : reports_) {
            const auto split = r.rtts.begin() + static_cast<std::ptrdiff_t>(
                                                    std::min(baseline_rounds, r.rtts.size()));
            samples.insert(samples.end(), baseline ? r.rtts.begin() : split,
                           baseline ? split : r.rtts.end());
        }
        if (samples.empty())
            return {};
        const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
        std::nth_element(samples.begin(), middle, samples.end());
        return *middle;
    }

    std::chrono::microseconds max_rtt() const {
        std::chrono::microseconds worst{0};
        for (const auto& r : reports_)
            worst = std::max(worst, r.max_rtt);
        return worst;
    }

    /// Every member heard every member's messages, in order, and nothing went wrong.
    std::string problems() const {
        std::string out;
        for (int i = 0; i < size(); ++i) {
            const auto& r = report(i);
            if (!r.error.empty())
                out += "chatter " + std::to_string(i) + ": " + r.error + "\n";
            std::lock_guard<std::mutex> lock{mutex_};
            for (const auto& [key, count] : expected_) {
                const auto it = r.heard.find(key);
                const long got = it == r.heard.end() ? 0 : it->second;
                if (got != count)
                    out += "chatter " + std::to_string(i) + " heard " + std::to_string(got) +
                           " of " + std::to_string(count) + " \"" + key + "\" messages\n";
            }
            for (int j = 0; j < size(); ++j) {
                const auto it = r.heard.find("honest " + std::to_string(j));
                const long got = it == r.heard.end() ? 0 : it->second;
                if (got != report(j).sent)
                    out += "chatter " + std::to_string(i) + " heard " + std::to_string(got) +
                           " of chatter " + std::to_string(j) + "'s " +
                           std::to_string(report(j).sent) + " messages\n";
            }
        }
        return out;
    }

    std::string summary() const {
        std::string out;
        for (int i = 0; i < size(); ++i) {
            const auto& r = report(i);
            out += "chatter " + std::to_string(i) + ": " + std::to_string(r.sent) +
                   " round trips, max " + std::to_string(r.max_rtt.count()) + " us, mean " +
                   std::to_string(r.sent ? r.total_rtt.count() / r.sent : 0) + " us\n";
        }
        return out;
    }

private:
    /// Honest means within the server's default message rate limit (at 80 % of it): a
    /// chatter that echoes as fast as loopback allows (10 k round trips/s and more) would
    /// itself be closed with 1008 for flooding.
    const std::chrono::nanoseconds send_interval_{
        static_cast<long long>(1e9 / (0.8 * ws::server_options{}.max_messages_per_second))};

    void run(int id) {
        auto& r = reports_[static_cast<std::size_t>(id)];
        auto& client = *clients_[static_cast<std::size_t>(id)];
        const std::string own = "honest " + std::to_string(id);
        frame f;
        // Handles one frame; false (with r.error set) when the member should stop.
        const auto handle = [&](const frame& in) {
            if (in.opcode == op_ping) {
                if (!client.send(op_pong, in.payload))
                    r.error = "send failed";
                return r.error.empty();
            }
            if (in.opcode == op_close) {
                r.error = "closed by the server with " + std::to_string(in.close_code());
                return false;
            }
            if (in.opcode != op_text)
                return true;
            const auto seq = sequenced(in.payload);
            if (!seq)
                return true;
            long& next = r.heard[seq->first];
            if (seq->second != next) {
                r.error = "from \"" + seq->first + "\" expected #" + std::to_string(next) +
                          ", got #" + std::to_string(seq->second);
                return false;
            }
            ++next;
            return true;
        };
        const auto read_one = [&](steady::time_point deadline) {
            const auto st = client.frames().next(f, deadline);
            if (st == frame_stream::status::frame)
                return handle(f);
            r.error = st == frame_stream::status::eof ? "connection lost" : "timed out";
            return false;
        };

        auto next_send = steady::now();
        while (!stop_ && r.error.empty()) {
            std::this_thread::sleep_until(next_send);
            const auto t0 = steady::now();
            next_send = t0 + send_interval_;
            if (!client.send(op_text, own + " " + std::to_string(r.sent) + " " + padding_)) {
                r.error = "send failed";
                break;
            }
            // A lost message shows as a timeout here; a slow one only as a long round trip.
            const auto deadline = t0 + 10s;
            while (r.error.empty() && r.heard[own] <= r.sent)
                if (!read_one(deadline))
                    r.error += " waiting for own message #" + std::to_string(r.sent);
            if (!r.error.empty())
                break;
            const auto rtt =
                std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0);
            r.max_rtt = std::max(r.max_rtt, rtt);
            r.total_rtt += rtt;
            r.rtts.push_back(rtt);
            ++r.sent;
            ++rounds_[static_cast<std::size_t>(id)];
        }
        finals_[static_cast<std::size_t>(id)] = r.sent;
        // Drain: hear the others' last messages (they may still be sending).
        const auto deadline = steady::now() + 10s;
        const auto all_heard = [&] {
            for (int j = 0; j < size(); ++j) {
                const int final_count = finals_[static_cast<std::size_t>(j)];
                if (final_count < 0 || r.heard["honest " + std::to_string(j)] < final_count)
                    return false;
            }
            std::lock_guard<std::mutex> lock{mutex_};
            for (const auto& [key, count] : expected_)
                if (r.heard[key] < count)
                    return false;
            return true;
        };
        // Short reads: the others' final counts may be published while this one waits.
        while (r.error.empty() && !all_heard()) {
            const auto st = client.frames().next(f, std::min(deadline, steady::now() + 10ms));
            if (st == frame_stream::status::frame) {
                handle(f);
                continue;
            }
            if (st == frame_stream::status::eof)
                r.error = "connection lost";
            else if (steady::now() >= deadline)
                r.error = "timed out";
            else
                continue;
            r.error += " while draining; heard";
            for (const auto& [key, count] : r.heard)
                r.error += " \"" + key + "\" x" + std::to_string(count);
            for (int j = 0; j < size(); ++j)
                r.error += ", chatter " + std::to_string(j) + " sent " +
                           std::to_string(finals_[static_cast<std::size_t>(j)]);
        }
    }

    std::string padding_;
    std::vector<std::unique_ptr<fast_client>> clients_;
    std::vector<std::atomic<int>> finals_; // sent, once a member has stopped sending
    std::vector<std::atomic<int>> rounds_; // round trips so far
    std::vector<chatter_report> reports_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<std::string, long> expected_;
};

/// The soft limit on open files.
inline long open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return 1 << 20;
    return static_cast<long>(limit.rlim_cur);
}

/// Waits until the peer has closed each of `fds` (EOF or reset; any data is discarded),
/// for at most `timeout`. Returns, per fd, when its close was seen (nothing: still open).
inline std::vector<std::optional<steady::time_point>>
wait_closed_by_peer(const std::vector<int>& fds, std::chrono::milliseconds timeout,
                    std::size_t* bytes_received = nullptr) {
    std::vector<std::optional<steady::time_point>> closed(fds.size());
    std::size_t open = fds.size();
    const auto deadline = steady::now() + timeout;
    std::vector<pollfd> polled;
    std::vector<std::size_t> index;
    while (open > 0 && steady::now() < deadline) {
        polled.clear();
        index.clear();
        for (std::size_t i = 0; i < fds.size(); ++i)
            if (!closed[i]) {
                polled.push_back({fds[i], POLLIN, 0});
                index.push_back(i);
            }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (::poll(polled.data(), polled.size(), static_cast<int>(left.count()) + 1) <= 0)
            continue;
        for (std::size_t k = 0; k < polled.size(); ++k) {
            if (polled[k].revents == 0)
                continue;
            char chunk[4096];
            const ssize_t n = ::recv(polled[k].fd, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n > 0) {
                if (bytes_received)
                    *bytes_received += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            closed[index[k]] = steady::now();
            --open;
        }
    }
    return closed;
}

} // namespace test::abuse
