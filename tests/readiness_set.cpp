// The readiness set on its own, over socket pairs: what it reports, that a removed target
// outlives the events harvested before its removal, and that an io_context whose set has
// emptied runs out of work.
#include <wschat/ws/detail/io/readiness_set.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A target that records the events it is told of and counts the live targets.
struct recorder {
    static inline std::atomic<int> alive{0};
    recorder() { ++alive; }
    ~recorder() { --alive; }
    recorder(const recorder&) = delete;
    recorder& operator=(const recorder&) = delete;

    void ready(std::uint32_t events) {
        reported.push_back(events);
        if (on_report)
            on_report(events);
    }
    std::vector<std::uint32_t> reported; // the set's strand only
    std::function<void(std::uint32_t)> on_report;
};

using set_type = ws::detail::readiness_set<recorder>;

/// A connected pair of non-blocking stream sockets, closed at the end.
struct socket_pair {
    socket_pair() {
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    }
    ~socket_pair() {
        for (const int fd : fds)
            if (fd >= 0)
                ::close(fd);
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    int ours() const { return fds[0]; }
    int peers() const { return fds[1]; }
    int fds[2] = {-1, -1};
};

bool any_has(const std::vector<std::uint32_t>& events, std::uint32_t bits) {
    for (const std::uint32_t e : events)
        if ((e & bits) != 0)
            return true;
    return false;
}

} // namespace

TEST_CASE("the readiness set reports a socket writable when added, then readable on data, then "
          "its peer's end",
          "[readiness]") {
    asio::io_context io;
    auto set = std::make_shared<set_type>(io);
    socket_pair pair;
    auto target = std::make_shared<recorder>();
    REQUIRE_FALSE(set->add(pair.ours(), *target));

    io.run_for(50ms);
    io.restart();
    REQUIRE_FALSE(target->reported.empty());
    CHECK_FALSE(any_has(target->reported, set_type::readable));
    target->reported.clear();

    REQUIRE(::write(pair.peers(), "x", 1) == 1);
    io.run_for(50ms);
    io.restart();
    CHECK(any_has(target->reported, set_type::readable));
    CHECK_FALSE(any_has(target->reported, set_type::ending));
    target->reported.clear();

    ::shutdown(pair.peers(), SHUT_WR);
    io.run_for(50ms);
    io.restart();
    CHECK(any_has(target->reported, set_type::ending));

    set->remove(pair.ours(), std::move(target));
    io.run();
    CHECK(recorder::alive == 0);
}

TEST_CASE("an io_context whose readiness set has emptied runs out of work", "[readiness]") {
    asio::io_context io;
    auto set = std::make_shared<set_type>(io);
    socket_pair first;
    socket_pair second;
    auto a = std::make_shared<recorder>();
    auto b = std::make_shared<recorder>();
    REQUIRE_FALSE(set->add(first.ours(), *a));
    REQUIRE_FALSE(set->add(second.ours(), *b));
    // Removed while the io_context runs: run() returns only once the set's wait is gone.
    asio::steady_timer later{io, 20ms};
    later.async_wait([&](std::error_code) {
        set->remove(first.ours(), std::move(a));
        set->remove(second.ours(), std::move(b));
    });
    std::atomic<bool> returned{false};
    std::thread runner{[&] {
        io.run();
        returned = true;
    }};
    for (int i = 0; i < 200 && !returned; ++i)
        std::this_thread::sleep_for(10ms);
    if (!returned)
        io.stop(); // so that a failure does not hang the suite
    runner.join();
    CHECK(returned);
    CHECK(recorder::alive == 0);
}

TEST_CASE("a target removed while its events are being handed out stays alive for them",
          "[readiness]") {
    asio::io_context io;
    auto set = std::make_shared<set_type>(io);
    // Many sockets all readable at once: the first report removes every target, so the
    // rest of the harvest names targets whose owners have let go of them.
    constexpr int count = 64;
    std::vector<std::unique_ptr<socket_pair>> pairs;
    std::vector<std::shared_ptr<recorder>> owners;
    int reports = 0;
    for (int i = 0; i < count; ++i) {
        pairs.push_back(std::make_unique<socket_pair>());
        owners.push_back(std::make_shared<recorder>());
        owners.back()->on_report = [&](std::uint32_t) {
            ++reports;
            if (owners.empty())
                return;
            for (int j = 0; j < count; ++j)
                set->remove(pairs[static_cast<std::size_t>(j)]->ours(),
                            std::move(owners[static_cast<std::size_t>(j)]));
            owners.clear();
        };
        REQUIRE_FALSE(set->add(pairs.back()->ours(), *owners.back()));
    }
    io.run(); // ASan would catch a report to a freed target
    CHECK(reports >= 1);
    CHECK(recorder::alive == 0);
}
