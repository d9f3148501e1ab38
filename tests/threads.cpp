// Rooms under concurrency: a server run by four threads, several rooms, clients that talk,
// leave and re-join at once, and the application calling into rooms from threads of its own.
// Meant to be run under ThreadSanitizer too (the tsan preset): keep it well under 20 s there.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/ws/detail/strand_pool.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A one-shot signal for many waiting threads.
class gate {
public:
    void open() {
        {
            std::lock_guard<std::mutex> lock{mutex_};
            open_ = true;
        }
        opened_.notify_all();
    }
    /// False when the gate stayed shut for `timeout` (the caller goes on: never a hang).
    bool wait(std::chrono::milliseconds timeout = 30s) {
        std::unique_lock<std::mutex> lock{mutex_};
        return opened_.wait_for(lock, timeout, [this] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable opened_;
    bool open_ = false;
};

/// A chat line: room letter, sender number, '#', sequence number ("b2#17").
struct chat_line {
    char room;
    int sender;
    int seq;
};

std::string make_line(char room, int sender, int seq) {
    return room + std::to_string(sender) + "#" + std::to_string(seq);
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
}

/// Nothing when `text` is not a well-formed chat line.
std::optional<chat_line> parse_line(std::string_view text) {
    const auto hash = text.find('#');
    if (text.size() < 4 || hash == std::string_view::npos ||
        !std::islower(static_cast<unsigned char>(text[0])) ||
        !all_digits(text.substr(1, hash - 1)) || !all_digits(text.substr(hash + 1)))
        return std::nullopt;
    return chat_line{text[0], std::stoi(std::string{text.substr(1, hash - 1)}),
                     std::stoi(std::string{text.substr(hash + 1)})};
}

/// What one client heard over all its connections. Written by its reader threads, one
/// connection after the other; read by others only after those threads were joined.
struct transcript {
    std::vector<std::string> lines;  // chat lines (anything with a '#'), in arrival order
    std::atomic<int> count{0};       // lines.size(), for watching progress from outside
    std::string error;               // the first failure, empty when none
    std::atomic<bool> failed{false}; // error is set, for watching from outside

    void fail(const std::string& why) {
        if (error.empty())
            error = why;
        failed = true;
    }
};

/// One connection of a test client. A reader thread records every chat line until the
/// server's Close frame arrives (or 10 s of silence); the owning thread sends and leaves.
class session {
public:
    session(std::uint16_t port, const std::string& path, transcript& heard)
        : client_(port, path), heard_(heard) {
        client_.auto_pong = false; // only the owning thread writes to the socket
        reader_ = std::thread{[this] { read(); }};
    }
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session() {
        if (reader_.joinable()) { // not left cleanly (a failure): wake the reader and go
            ::shutdown(client_.socket().fd(), SHUT_RDWR);
            reader_.join();
        }
    }

    bool send(const std::string& text) { return client_.send_text(text); }

    /// Leaves cleanly: Close 1000, the server's Close back, then its TCP close.
    bool leave() {
        const bool sent = client_.send_close(1000, "bye");
        reader_.join();
        return sent && close_echoed_ && client_.socket().wait_for_eof(5s);
    }

private:
    void read() {
        try {
            for (;;) {
                auto f = client_.read_frame(10s);
                if (!f)
                    return heard_.fail("no Close from the server (timeout or EOF)");
                if (f->opcode == test::op_close) {
                    close_echoed_ = f->close_code() == 1000;
                    return;
                }
                if (f->opcode == test::op_text && f->payload.find('#') != std::string::npos) {
                    heard_.lines.push_back(std::move(f->payload));
                    ++heard_.count;
                }
            }
        } catch (const std::exception& e) {
            heard_.fail(e.what());
        }
    }

    test::ws_client client_;
    transcript& heard_;
    bool close_echoed_ = false; // written by the reader, read after joining it
    std::thread reader_;
};

/// The lines of `heard` from each sender of `room` (0 .. senders-1), in arrival order;
/// counts lines that are malformed or come from elsewhere in `strays`.
std::vector<std::vector<int>> by_sender(const std::vector<std::string>& heard, char room,
                                        int senders, int& strays) {
    std::vector<std::vector<int>> seqs(static_cast<std::size_t>(senders));
    strays = 0;
    for (const std::string& text : heard) {
        const auto line = parse_line(text);
        if (!line || line->room != room || line->sender < 0 || line->sender >= senders)
            ++strays;
        else
            seqs[static_cast<std::size_t>(line->sender)].push_back(line->seq);
    }
    return seqs;
}

bool strictly_increasing(const std::vector<int>& seqs) {
    return std::adjacent_find(seqs.begin(), seqs.end(), std::greater_equal<int>{}) == seqs.end();
}

/// Exactly 0, 1, ..., n-1.
bool exactly_once_in_order(const std::vector<int>& seqs, int n) {
    if (seqs.size() != static_cast<std::size_t>(n))
        return false;
    for (int i = 0; i < n; ++i)
        if (seqs[static_cast<std::size_t>(i)] != i)
            return false;
    return true;
}

} // namespace

TEST_CASE("three rooms on a four-thread server: clients join, chat, leave and re-join at once",
          "[room][threads]") {
    constexpr int room_count = 3;
    constexpr int per_room = 4;
    constexpr int per_sender = 400;
    constexpr int churner = per_room - 1; // in each room, this member leaves and re-joins...
    constexpr int stint = 100;            // ...after every `stint` lines it sends

    // Declared before the server: its handlers refer to them until the server has stopped.
    std::array<chat::room<>, room_count> rooms;
    test::running_server s{test::loopback_options(), 4};
    const auto room_of = [&rooms](const auto& conn) -> chat::room<>* {
        const std::string_view path = conn->request().path();
        if (path.size() == 2 && path[0] == '/' && path[1] >= 'a' && path[1] < 'a' + room_count)
            return &rooms[static_cast<std::size_t>(path[1] - 'a')];
        return nullptr;
    };
    s.server.on_open([room_of](const auto& conn) {
        if (auto* room = room_of(conn))
            room->join(conn);
    });
    s.server.on_message([room_of](const auto& conn, const ws::message& msg) {
        if (auto* room = room_of(conn))
            room->receive(conn, msg);
    });
    s.server.on_close([room_of](const auto& conn, const ws::close_info&) {
        if (auto* room = room_of(conn))
            room->leave(conn);
    });
    s.start();
    const std::uint16_t port = s.port();

    struct member {
        char room;
        int id;
        transcript heard;
        bool left_cleanly = true;
    };
    std::vector<std::unique_ptr<member>> members;
    for (int r = 0; r < room_count; ++r)
        for (int i = 0; i < per_room; ++i)
            members.push_back(std::unique_ptr<member>{new member{char('a' + r), i, {}}});

    std::atomic<int> connected{0}, done_talking{0};
    constexpr int stints = per_sender / stint;
    constexpr int all_rejoins = room_count * (stints - 1);
    std::atomic<int> rejoins{0};
    gate talk, leave;
    std::vector<std::thread> threads;
    for (auto& m : members) {
        threads.emplace_back([&, &me = *m] {
            try {
                const std::string path{'/', me.room};
                const auto say = [&me](session& to, int from, int until) {
                    for (int n = from; n < until; ++n) {
                        if (!to.send(make_line(me.room, me.id, n)))
                            throw std::runtime_error{"send failed"};
                        std::this_thread::sleep_for(100us); // a conversation, not a burst
                    }
                };
                auto conn = std::make_unique<session>(port, path, me.heard);
                ++connected;
                talk.wait();
                if (me.id == churner) {
                    for (int k = 0; k < stints; ++k) {
                        if (k > 0) { // leave, then come back under a new connection
                            me.left_cleanly = conn->leave() && me.left_cleanly;
                            conn = std::make_unique<session>(port, path, me.heard);
                            ++rejoins;
                        }
                        say(*conn, k * stint, (k + 1) * stint);
                    }
                } else {
                    // The last lines wait for every re-join: members come and go while
                    // the others talk, however slow the machine (TSan) is.
                    say(*conn, 0, per_sender - stint);
                    test::eventually([&] { return rejoins == all_rejoins; }, 20s);
                    say(*conn, per_sender - stint, per_sender);
                }
                ++done_talking;
                leave.wait();
                me.left_cleanly = conn->leave() && me.left_cleanly;
            } catch (const std::exception& e) {
                me.heard.fail(e.what());
            }
        });
    }

    // Everyone is in before anyone talks, so that the members who stay can hear it all.
    const bool all_in = test::eventually(
        [&] {
            return connected == room_count * per_room &&
                   std::all_of(rooms.begin(), rooms.end(),
                               [&](const auto& room) { return room.size() == per_room; });
        },
        10s);
    CHECK(all_in);
    talk.open();

    // Until those who stay have heard every line: the sizes never pass one lingering
    // connection of the re-joining member.
    std::size_t largest = 0;
    const bool all_heard = test::eventually(
        [&] {
            for (const auto& room : rooms)
                largest = std::max(largest, room.size());
            return done_talking == room_count * per_room &&
                   std::all_of(members.begin(), members.end(), [&](const auto& m) {
                       return m->id == churner || m->heard.count.load() >= per_room * per_sender ||
                              m->heard.failed;
                   });
        },
        30s);
    CHECK(all_heard);
    CHECK(largest <= per_room + 1);
    CHECK(rejoins == all_rejoins);
    // Every member is in again (the re-joined ones under their new connection), once.
    CHECK(test::eventually([&] {
        return std::all_of(rooms.begin(), rooms.end(),
                           [&](const auto& room) { return room.size() == per_room; });
    }));

    leave.open();
    for (auto& t : threads)
        t.join();
    CHECK(test::eventually([&] {
        return s.server.connection_count() == 0 &&
               std::all_of(rooms.begin(), rooms.end(),
                           [](const auto& room) { return room.size() == 0; });
    }));
    for (const auto& room : rooms)
        CHECK(room.size() == 0);
    CHECK(s.server.connection_count() == 0);

    for (const auto& m : members) {
        INFO("member " << m->id << " of room " << m->room);
        CHECK(m->heard.error.empty());
        CHECK(m->left_cleanly);
        int strays = 0;
        const auto seqs = by_sender(m->heard.lines, m->room, per_room, strays);
        CHECK(strays == 0); // nothing from another room, nothing garbled
        for (int from = 0; from < per_room; ++from) {
            INFO("lines from member " << from);
            const auto& heard = seqs[static_cast<std::size_t>(from)];
            if (m->id == churner)
                CHECK(strictly_increasing(heard)); // gaps while out, but no repeats
            else
                CHECK(exactly_once_in_order(heard, per_sender));
        }
    }
}

TEST_CASE("room.broadcast() and room.size() from three application threads while members come "
          "and go",
          "[room][threads]") {
    constexpr int broadcasters = 3;
    constexpr int per_broadcaster = 300;
    constexpr int comers = 4; // threads that join and leave over and over

    test::running_room<> fixture{{}, test::loopback_options(), 4};
    auto& room = fixture.room;
    const std::uint16_t port = fixture.port();

    transcript observer_heard;
    auto observer = std::make_unique<session>(port, "/", observer_heard);
    REQUIRE(test::eventually([&] { return room.size() == 1; }));

    struct sizes {
        std::size_t smallest = SIZE_MAX, largest = 0;
    };
    std::array<sizes, broadcasters> seen;
    std::array<transcript, comers> comer_heard;
    std::array<int, comers> visits{};
    std::array<bool, comers> left_cleanly{};
    std::atomic<int> broadcasting{broadcasters};
    gate start;
    std::vector<std::thread> threads;

    for (int b = 0; b < broadcasters; ++b) {
        threads.emplace_back([&, b] {
            start.wait();
            auto& mine = seen[static_cast<std::size_t>(b)];
            for (int n = 0; n < per_broadcaster; ++n) {
                const std::string text = make_line('x', b, n);
                room.broadcast(std::string_view{text});
                const std::size_t now = room.size();
                mine.smallest = std::min(mine.smallest, now);
                mine.largest = std::max(mine.largest, now);
                std::this_thread::sleep_for(200us);
            }
            --broadcasting;
        });
    }
    for (int c = 0; c < comers; ++c) {
        threads.emplace_back([&, c] {
            const auto i = static_cast<std::size_t>(c);
            left_cleanly[i] = true;
            start.wait();
            try {
                do {
                    session visit{port, "/", comer_heard[i]};
                    std::this_thread::sleep_for(std::chrono::microseconds{500 * (c + 1)});
                    left_cleanly[i] = visit.leave() && left_cleanly[i];
                    ++visits[i];
                } while (broadcasting > 0);
            } catch (const std::exception& e) {
                comer_heard[i].fail(e.what());
            }
        });
    }
    start.open();
    for (auto& t : threads)
        t.join();

    constexpr int total = broadcasters * per_broadcaster;
    CHECK(test::eventually([&] { return observer_heard.count.load() >= total; }, 10s));
    CHECK(test::eventually([&] { return room.size() == 1; }));
    CHECK(observer->leave());
    observer.reset();
    CHECK(test::eventually([&] { return room.size() == 0; }));
    CHECK(test::eventually([&] { return fixture.s.server.connection_count() == 0; }));

    // The size each broadcaster read: the observer was always in; each comer had at most
    // one connection in the room, and one more on its way out.
    for (const auto& range : seen) {
        CHECK(range.smallest >= 1);
        CHECK(range.largest <= 1 + 2 * comers);
    }

    int strays = 0;
    CHECK(observer_heard.error.empty());
    const auto all = by_sender(observer_heard.lines, 'x', broadcasters, strays);
    CHECK(strays == 0);
    for (const auto& seqs : all)
        CHECK(exactly_once_in_order(seqs, per_broadcaster));

    for (std::size_t i = 0; i < comers; ++i) {
        INFO("comer " << i << " after " << visits[i] << " visits");
        CHECK(comer_heard[i].error.empty());
        CHECK(left_cleanly[i]);
        CHECK(visits[i] >= 1);
        const auto heard = by_sender(comer_heard[i].lines, 'x', broadcasters, strays);
        CHECK(strays == 0);
        for (const auto& seqs : heard)
            CHECK(strictly_increasing(seqs)); // each broadcaster's order, across visits
    }
}

TEST_CASE("connections share a fixed set of strands: n and n + size share one, neighbours do not",
          "[threads]") {
    using pool_type = ws::detail::strand_pool<asio::io_context::executor_type>;
    asio::io_context io;
    pool_type pool;
    auto& first = pool.pick(1, io.get_executor());
    auto& again = pool.pick(1 + pool_type::size, io.get_executor());
    auto& neighbour = pool.pick(2, io.get_executor());
    CHECK(&first == &again);
    CHECK(first == again);
    CHECK(&first != &neighbour);
    CHECK(first != neighbour); // distinct Asio strands, not two handles of one

    // Work on one strand from four threads runs one handler at a time.
    std::atomic<bool> busy{false};
    std::atomic<int> overlaps{0}, ran{0};
    for (int i = 0; i < 400; ++i)
        asio::post(i % 2 == 0 ? first : again, [&] {
            if (busy.exchange(true))
                ++overlaps;
            std::this_thread::sleep_for(10us);
            busy = false;
            ++ran;
        });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] { io.run(); });
    for (auto& t : threads)
        t.join();
    CHECK(ran == 400);
    CHECK(overlaps == 0);
}
