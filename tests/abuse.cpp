// Hostile peers against a room while well-behaved members chat: the honest members lose
// nothing and keep reasonable round trips, the server stays bounded and responsive.
#include "support/abuse.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using test::abuse::steady;
using connection_ptr = std::shared_ptr<ws::connection<ws::asio_tcp>>;

long long ms_between(steady::time_point from, steady::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

/// What the server reported, per request target: the connections it opened (weakly, so no
/// socket outlives the io_context) and how they ended. Declared before the running_server
/// whose handlers refer to it.
struct server_log {
    void watch(ws::server<ws::asio_tcp>& server) {
        server.on_open([this](const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            opened[conn->request().target].push_back(conn);
        });
        server.on_close([this](const connection_ptr& conn, const ws::close_info& info) {
            std::lock_guard<std::mutex> lock{mutex};
            closed[conn->request().target].push_back(info);
        });
    }
    std::vector<ws::close_info> closes(const std::string& target) {
        std::lock_guard<std::mutex> lock{mutex};
        return closed[target];
    }
    std::shared_ptr<ws::connection<ws::asio_tcp>> connection(const std::string& target) {
        std::lock_guard<std::mutex> lock{mutex};
        const auto it = opened.find(target);
        return it == opened.end() || it->second.empty() ? nullptr : it->second.back().lock();
    }

    std::mutex mutex;
    std::map<std::string, std::vector<std::weak_ptr<ws::connection<ws::asio_tcp>>>> opened;
    std::map<std::string, std::vector<ws::close_info>> closed;
};

/// Starts the chatters and lets them get going before the abuse starts.
void start_honest(test::abuse::chatters& honest) {
    honest.start();
    CHECK(honest.await_rounds(test::abuse::chatters::baseline_rounds));
}

/// Lets the chatters go on a little after the abuse, stops them, and checks, on the main
/// thread, that they lost nothing.
void check_honest(test::abuse::chatters& honest) {
    CHECK(honest.await_rounds(20));
    honest.finish();
    WARN(honest.summary());
    CHECK(honest.problems() == "");
    // Keeping its latency: the typical round trip under abuse stays within a small multiple
    // of the same members' round trip before it (relative, so that a slow machine or a
    // sanitizer build moves both), and no single one stalls.
    const auto before = honest.median_rtt(true);
    const auto during = honest.median_rtt(false);
    WARN("median round trip " << before.count() << " us before the abuse, " << during.count()
                              << " us during and after it");
    CHECK(during <= 10 * before + std::chrono::microseconds{10ms});
    CHECK(honest.max_rtt() < std::chrono::microseconds{2s});
}

bool is_protocol_failure(std::uint16_t code) {
    return code == 1002 || code == 1003 || code == 1007 || code == 1009;
}

} // namespace

TEST_CASE("500 connections abandoned mid-handshake are all dropped by the handshake timeout",
          "[abuse]") {
    auto opts = test::loopback_options();
    opts.handshake_timeout = 300ms;
    chat::room<> room;
    test::running_server s{opts};
    room.attach(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));
    start_honest(honest);

    // The server holds one descriptor per connection in this same process.
    const long limit = test::abuse::open_file_limit();
    const int count = static_cast<int>(std::min<long>(500, (limit - 200) / 2));
    INFO("RLIMIT_NOFILE " << limit);
    REQUIRE(count >= 100);
    if (count < 500)
        WARN("only " << count << " connections: RLIMIT_NOFILE is " << limit);

    const auto t0 = steady::now();
    std::vector<std::unique_ptr<test::socket_client>> abandoned;
    std::vector<int> fds;
    for (int i = 0; i < count; ++i) {
        abandoned.push_back(std::make_unique<test::socket_client>(s.port()));
        abandoned.back()->send_raw("GET /chat HTT"); // half a request line, then silence
        fds.push_back(abandoned.back()->fd());
    }
    const auto all_sent = steady::now();
    std::size_t answered_bytes = 0;
    const auto closed = test::abuse::wait_closed_by_peer(fds, 10s, &answered_bytes);

    int closed_count = 0;
    auto first = steady::time_point::max();
    auto last = steady::time_point::min();
    for (const auto& when : closed)
        if (when) {
            ++closed_count;
            first = std::min(first, *when);
            last = std::max(last, *when);
        }
    CHECK(closed_count == count);
    if (closed_count > 0) {
        WARN(count << " half requests sent in " << ms_between(t0, all_sent) << " ms; closed by "
                   << "the server between " << ms_between(t0, first) << " and "
                   << ms_between(t0, last) << " ms after the first connect; " << answered_bytes
                   << " bytes answered");
        CHECK(ms_between(t0, first) >= 295); // the timer cannot fire early
        CHECK(ms_between(t0, last) < 5000);
    }
    // The server still takes new members.
    test::abuse::fast_client late{s.port()};
    CHECK(test::eventually([&] { return room.size() == 3; }));
    check_honest(honest);
}

TEST_CASE("two slow readers that keep pinging are closed with 1008; the chatters lose nothing",
          "[abuse]") {
    auto opts = test::loopback_options();
    opts.max_send_queue_bytes = 64 * 1024;
    opts.close_timeout = 1s;
    chat::room<> room;
    server_log log;
    test::running_server s{opts};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port(), 2, 1024}; // 1 KiB lines fill a queue quickly
    test::abuse::fast_client never{s.port(), "/never-reads", 4096};
    test::abuse::fast_client trickle{s.port(), "/trickle", 4096};
    REQUIRE(test::eventually([&] { return room.size() == 4; }));
    const auto still_open = [&](const std::string& target) {
        auto conn = log.connection(target);
        return conn && conn->is_open();
    };
    REQUIRE(still_open("/never-reads"));
    REQUIRE(still_open("/trickle"));
    start_honest(honest);

    const auto started = steady::now();
    // Never reads a byte, pings every 5 ms until the server has given up on it.
    std::thread never_thread{[&] {
        while (still_open("/never-reads") && steady::now() - started < 10s) {
            never.send(test::op_ping, "are you there?");
            std::this_thread::sleep_for(5ms);
        }
    }};
    // Reads one frame every 5 ms and pings; once dropped, reads fast up to the Close frame.
    std::optional<std::uint16_t> trickle_code;
    bool trickle_eof = false;
    std::thread trickle_thread{[&] {
        test::frame f;
        while (still_open("/trickle") && steady::now() - started < 10s) {
            trickle.send(test::op_ping, "slowly");
            trickle.frames().next(f, steady::now() + 5ms);
            if (f.opcode == test::op_close)
                break;
            std::this_thread::sleep_for(5ms);
        }
        trickle_code = f.opcode == test::op_close ? f.close_code() : trickle.await_close(5s);
        if (trickle_code)
            trickle.send(test::op_close, test::close_payload(*trickle_code));
        trickle_eof = trickle.socket().wait_for_eof(5s);
    }};
    never_thread.join();
    trickle_thread.join();
    const auto dropped = steady::now();

    CHECK(trickle_code == std::optional<std::uint16_t>{1008});
    CHECK(trickle_eof);
    // The one that never reads may not even get the Close frame (its window is full): the
    // server cuts it off after close_timeout.
    CHECK(never.socket().wait_for_eof(5s));
    REQUIRE(test::eventually([&] { return log.closes("/never-reads").size() == 1; }));
    REQUIRE(test::eventually([&] { return log.closes("/trickle").size() == 1; }));
    for (const auto* target : {"/never-reads", "/trickle"}) {
        INFO(target);
        const auto info = log.closes(target).front();
        CHECK(info.code == 1008);
        CHECK(info.error == ws::error::send_queue_full);
    }
    CHECK(room.size() == 2);
    WARN("both slow readers dropped " << ms_between(started, dropped) << " ms into the chat");
    check_honest(honest);
}

TEST_CASE("one member flooding for a second does not hold up the others", "[abuse]") {
    auto opts = test::loopback_options(); // the default 4 MiB queue bound
    opts.close_timeout = 500ms;
    chat::room<> room;
    server_log log;
    test::running_server s{opts};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    test::abuse::fast_client flooder{s.port(), "/flood"};
    REQUIRE(test::eventually([&] { return room.size() == 3; }));
    const auto flood_conn = log.connection("/flood");
    REQUIRE(flood_conn);
    start_honest(honest);

    // The flooder reads (and discards) what it is sent as fast as it can: it is not a slow
    // reader. The server may still cut it off for flooding; the honest members, never.
    std::atomic<bool> flooding{true};
    std::thread discard{[&] {
        char chunk[65536];
        while (flooding) {
            pollfd p{flooder.socket().fd(), POLLIN, 0};
            if (::poll(&p, 1, 50) > 0 &&
                ::recv(flooder.socket().fd(), chunk, sizeof chunk, MSG_DONTWAIT) == 0)
                break;
        }
    }};
    long flood_sent = 0;
    std::size_t max_queued = 0;
    std::thread flood{[&] {
        const std::string filler(64, 'f');
        std::string batch;
        const auto until = steady::now() + 1s;
        while (steady::now() < until) {
            batch.clear();
            for (int i = 0; i < 64; ++i)
                batch += test::encode(test::op_text,
                                      "flood 0 " + std::to_string(flood_sent++) + " " + filler);
            if (!flooder.socket().send_raw(batch))
                break;
        }
    }};
    // Meanwhile, how much the server queues for anyone.
    const auto watch_until = steady::now() + 1s;
    while (steady::now() < watch_until) {
        {
            std::lock_guard<std::mutex> lock{log.mutex};
            for (const auto& [target, conns] : log.opened)
                for (const auto& weak : conns)
                    if (auto conn = weak.lock())
                        max_queued = std::max(max_queued, conn->queued_bytes());
        }
        std::this_thread::sleep_for(1ms);
    }
    flood.join();
    // Every member hears the whole flood in order, or (if the server cut the flooder off)
    // an in-order prefix of it: the chatters flag any gap.
    const bool flooder_kept = flood_conn->is_open();
    if (flooder_kept)
        honest.expect("flood 0", flood_sent);
    check_honest(honest);
    flooding = false;
    discard.join();
    WARN(flood_sent << " flood messages in 1 s; largest send queue seen " << max_queued
                    << " bytes; flooder " << (flooder_kept ? "kept" : "cut off"));
    // Closes are reported once the close handshake ended (at most close_timeout).
    std::this_thread::sleep_for(opts.close_timeout + 100ms);
    for (const auto* target : {"/honest", "/flood"})
        for (const auto& info : log.closes(target))
            WARN("the server closed " << target << " with " << info.code << " ("
                                      << info.error.message() << ")");
    CHECK(log.closes("/honest").empty());
}

TEST_CASE("members resetting TCP in the middle of a frame header or payload", "[abuse]") {
    chat::room<> room;
    server_log log;
    test::running_server s{test::loopback_options()};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));
    start_honest(honest);

    // A 14-byte header (64-bit length, masked) and an 8-byte one followed by 4096 bytes.
    const std::string long_frame = test::encode(test::op_text, std::string(70000, 'a'));
    const std::string mid_frame = test::encode(test::op_text, std::string(4096, 'b'));
    constexpr int rounds = 50;
    for (int i = 0; i < rounds; ++i) {
        {
            test::abuse::fast_client abuser{s.port(), "/reset-header"};
            abuser.socket().send_raw(long_frame.substr(0, 1 + i % 13));
            std::this_thread::sleep_for(1ms);
            abuser.socket().reset();
        }
        {
            test::abuse::fast_client abuser{s.port(), "/reset-payload"};
            abuser.socket().send_raw(mid_frame.substr(0, 8 + 1 + (i * 97) % 4095));
            std::this_thread::sleep_for(1ms);
            abuser.socket().reset();
        }
    }
    CHECK(test::eventually([&] { return log.closes("/reset-header").size() == rounds; }));
    CHECK(test::eventually([&] { return log.closes("/reset-payload").size() == rounds; }));
    CHECK(test::eventually([&] { return room.size() == 2; }));
    std::set<std::uint16_t> codes;
    for (const auto* target : {"/reset-header", "/reset-payload"})
        for (const auto& info : log.closes(target))
            codes.insert(info.code);
    CHECK(codes == std::set<std::uint16_t>{1006}); // abnormal: no Close frame
    check_honest(honest);
}

TEST_CASE("random bytes after a valid handshake end in a protocol-error close", "[abuse]") {
    chat::room<> room;
    server_log log;
    test::running_server s{test::loopback_options()};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));
    start_honest(honest);

    constexpr int clients = 20;
    std::vector<std::string> outcome(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            try {
                test::abuse::fast_client abuser{s.port(), "/random"};
                std::mt19937 random{20240601u + static_cast<unsigned>(i)};
                std::string garbage(64 * 1024, '\0');
                for (char& c : garbage)
                    c = static_cast<char>(random() & 0xFF);
                abuser.socket().send_raw(garbage); // may fail once the server has had enough
                bool timed_out = false;
                const auto code = abuser.await_close(5s, &timed_out);
                outcome[static_cast<std::size_t>(i)] = code        ? std::to_string(*code)
                                                       : timed_out ? "timeout"
                                                                   : "eof";
            } catch (const std::exception& e) {
                outcome[static_cast<std::size_t>(i)] = e.what();
            }
        });
    for (auto& t : threads)
        t.join();
    std::map<std::string, int> tally;
    for (int i = 0; i < clients; ++i) {
        const auto& o = outcome[static_cast<std::size_t>(i)];
        ++tally[o];
        INFO("client " << i << ": " << o);
        CHECK((o == "eof" ||
               (o.size() == 4 && is_protocol_failure(static_cast<std::uint16_t>(std::stoi(o))))));
    }
    std::string summary;
    for (const auto& [o, n] : tally)
        summary += o + " x" + std::to_string(n) + " ";
    WARN("random-byte clients ended with: " << summary);
    CHECK(test::eventually([&] { return log.closes("/random").size() == clients; }));
    CHECK(test::eventually([&] { return room.size() == 2; }));
    check_honest(honest);
}

TEST_CASE("a 100 000-byte header line is refused with 431 and the connection closed", "[abuse]") {
    chat::room<> room;
    test::running_server s{test::loopback_options()};
    room.attach(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    REQUIRE(test::eventually([&] { return room.size() == 2; }));
    start_honest(honest);

    const std::string huge(100'000, 'x');
    std::string request;
    std::set<std::string> statuses;
    SECTION("in a header") {
        request = test::upgrade_request("/", "X-Huge: " + huge + "\r\n");
        statuses = {"431"};
    }
    SECTION("in the request line") {
        request = test::upgrade_request("/" + huge);
        statuses = {"431", "414"};
    }
    test::socket_client client{s.port()};
    client.send_raw(request); // may stop short if the server closes first
    const auto head = client.read_until("\r\n\r\n", 5s);
    REQUIRE(head);
    INFO(*head);
    CHECK(head->rfind("HTTP/1.1 ", 0) == 0);
    CHECK(statuses.count(head->substr(9, 3)) == 1);
    CHECK(client.wait_for_eof(5s));
    CHECK(room.size() == 2);
    check_honest(honest);
}

TEST_CASE("a frame declaring 2^62 bytes is refused at once", "[abuse]") {
    auto opts = test::loopback_options();
    opts.close_timeout = 500ms;
    chat::room<> room;
    server_log log;
    test::running_server s{opts};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    test::abuse::fast_client abuser{s.port(), "/huge"};
    REQUIRE(test::eventually([&] { return room.size() == 3; }));
    start_honest(honest);

    // FIN + opcode, masked 64-bit length, masking key, and not one payload byte.
    const auto header = [](std::uint8_t first, std::uint64_t length) {
        std::string out{static_cast<char>(first), static_cast<char>(0x80 | 127)};
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((length >> shift) & 0xFF));
        return out + "MASK";
    };
    std::string bytes;
    std::set<std::uint16_t> accepted{1009, 1002};
    SECTION("binary") {
        bytes = header(0x82, std::uint64_t{1} << 62);
    }
    SECTION("text") {
        bytes = header(0x81, std::uint64_t{1} << 62);
    }
    SECTION("a continuation of a started message") {
        bytes = test::encode(test::op_text, "start ", false) + header(0x80, std::uint64_t{1} << 62);
    }
    SECTION("2^63: the most significant bit set") {
        bytes = header(0x82, std::uint64_t{1} << 63);
        accepted = {1002};
    }
    SECTION("a ping") {
        bytes = header(0x89, std::uint64_t{1} << 62);
        accepted = {1002};
    }
    const auto sent = steady::now();
    REQUIRE(abuser.socket().send_raw(bytes));
    const auto code = abuser.await_close(2s);
    const auto answered = steady::now();
    REQUIRE(code);
    CHECK(accepted.count(*code) == 1);
    WARN("refused with " << *code << " after " << ms_between(sent, answered) << " ms");
    CHECK(ms_between(sent, answered) < 1000);
    // The server ends its direction right behind its Close, and forgets the connection
    // once we close ours.
    abuser.send(test::op_close, test::close_payload(*code));
    CHECK(abuser.socket().wait_for_eof(3s));
    abuser.socket().close();
    CHECK(test::eventually([&] { return log.closes("/huge").size() == 1; }));
    check_honest(honest);
}

TEST_CASE("a peer flooding pings and never reading is cut off at the queue bound", "[abuse]") {
    auto opts = test::loopback_options();
    opts.max_send_queue_bytes = 256 * 1024;
    opts.close_timeout = 500ms;
    chat::room<> room;
    server_log log;
    test::running_server s{opts};
    room.attach(s.server);
    log.watch(s.server);
    s.start();
    test::abuse::chatters honest{s.port()};
    test::abuse::fast_client pinger{s.port(), "/pinger", 4096};
    REQUIRE(test::eventually([&] { return room.size() == 3; }));
    const auto conn = log.connection("/pinger");
    REQUIRE(conn);
    start_honest(honest);

    // Non-blocking sends, so a server that stopped reading could not hang the test.
    std::atomic<bool> pinging{true};
    long pings = 0;
    int send_error = 0;
    std::thread flood{[&] {
        std::string batch;
        for (int i = 0; i < 64; ++i)
            batch += test::encode(test::op_ping, std::string(125, 'p'));
        std::size_t offset = 0;
        const auto until = steady::now() + 10s;
        while (steady::now() < until) {
            pollfd p{pinger.socket().fd(), POLLOUT, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            const ssize_t n = ::send(pinger.socket().fd(), batch.data() + offset,
                                     batch.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            if (n <= 0) {
                send_error = errno;
                break;
            }
            offset += static_cast<std::size_t>(n);
            if (offset == batch.size()) {
                offset = 0;
                pings += 64;
            }
        }
        pinging = false;
    }};
    const auto started = steady::now();
    std::size_t max_queued = 0;
    while (pinging) {
        max_queued = std::max(max_queued, conn->queued_bytes());
        std::this_thread::sleep_for(200us);
    }
    const auto cut_off = steady::now();
    flood.join();

    WARN("pinger cut off after " << ms_between(started, cut_off) << " ms and about " << pings
                                 << " pings (send error " << send_error << "); largest queue seen "
                                 << max_queued << " bytes");
    CHECK(send_error != 0); // the server closed the socket under it
    CHECK(ms_between(started, cut_off) < 5000);
    // The bound may be passed by what one read's worth of pings adds before the drop runs.
    CHECK(max_queued <= opts.max_send_queue_bytes + opts.read_buffer_size * 2);
    REQUIRE(test::eventually([&] { return log.closes("/pinger").size() == 1; }));
    const auto info = log.closes("/pinger").front();
    CHECK(info.code == 1008);
    CHECK(info.error == ws::error::send_queue_full);
    CHECK(room.size() == 2);
    check_honest(honest);
}
