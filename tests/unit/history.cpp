// chat::history: numbering, the three bounds, what a reconnecting client is told and sent,
// recent(n), epochs, and that the frames held are the broadcast's own shared frames.
#include <wschat/chat/history.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using time_point = chat::history::clock::time_point;

const time_point t0{}; // the tests' clock starts here

ws::shared_frame frame_of(std::uint64_t sequence, std::size_t padding = 0) {
    return ws::make_frame(ws::opcode::text,
                          "m" + std::to_string(sequence) + std::string(padding, '.'));
}

/// Appends messages numbered as the history numbers them, one second apart from `start`.
void append_n(chat::history& h, int n, time_point start = t0, std::size_t padding = 0) {
    for (int i = 0; i < n; ++i) {
        const std::uint64_t expected = h.next_sequence();
        CHECK(h.append(frame_of(expected, padding), start + std::chrono::seconds{i}) == expected);
    }
}

/// The payloads of `frames`, in order.
std::vector<std::string> texts(const std::vector<ws::shared_frame>& frames) {
    std::vector<std::string> out;
    for (const ws::shared_frame& f : frames)
        out.emplace_back(f.payload());
    return out;
}

std::vector<std::string> names(std::uint64_t first, std::uint64_t last) {
    std::vector<std::string> out;
    for (std::uint64_t s = first; s <= last; ++s)
        out.push_back("m" + std::to_string(s));
    return out;
}

} // namespace

TEST_CASE("history: messages are numbered from 1, each frame held once in order",
          "[unit][history]") {
    chat::history h;
    CHECK(h.last_sequence() == 0);
    CHECK(h.next_sequence() == 1);
    CHECK(h.size() == 0);
    CHECK(h.bytes() == 0);
    CHECK(h.position().epoch == h.epoch());
    CHECK(h.position().sequence == 0);

    append_n(h, 5);
    CHECK(h.last_sequence() == 5);
    CHECK(h.next_sequence() == 6);
    CHECK(h.size() == 5);
    CHECK(h.position().sequence == 5);
    CHECK(texts(h.recent(100, t0 + 5s)) == names(1, 5));
    std::size_t bytes = 0;
    for (const ws::shared_frame& f : h.recent(100, t0 + 5s))
        bytes += f.size();
    CHECK(h.bytes() == bytes);
}

TEST_CASE("history: the frames held are the broadcast's shared frames, not copies",
          "[unit][history]") {
    chat::history h;
    const ws::shared_frame sent = ws::make_frame(ws::opcode::text, "shared");
    h.append(sent, t0);
    const std::vector<ws::shared_frame> replay = h.recent(1, t0);
    REQUIRE(replay.size() == 1);
    CHECK(replay[0].data() == sent.data()); // the same bytes, one allocation

    const chat::recovery r = h.since({h.epoch(), 0}, 10, t0);
    REQUIRE(r.frames.size() == 1);
    CHECK(r.frames[0].data() == sent.data());
}

TEST_CASE("history: bounded by count", "[unit][history]") {
    chat::history_options opts;
    opts.max_messages = 3;
    chat::history h{opts};
    append_n(h, 10);
    CHECK(h.size() == 3);
    CHECK(h.last_sequence() == 10);
    CHECK(texts(h.recent(100, t0 + 10s)) == names(8, 10));

    SECTION("growing past the ring's first size keeps the order") {
        opts.max_messages = 100;
        chat::history big{opts};
        append_n(big, 250);
        CHECK(big.size() == 100);
        CHECK(texts(big.recent(1000, t0 + 250s)) == names(151, 250));
    }
}

TEST_CASE("history: bounded by bytes", "[unit][history]") {
    // Every frame below is 2 header bytes + "mN" + 98 dots = 102 bytes; 350 bytes hold 3.
    chat::history_options opts;
    opts.max_bytes = 350;
    chat::history h{opts};
    append_n(h, 9, t0, 98);
    CHECK(h.size() == 3);
    CHECK(h.bytes() <= 350);
    CHECK(texts(h.recent(100, t0 + 9s)).size() == 3);
    CHECK(h.recent(1, t0 + 9s)[0].payload().substr(0, 2) == "m9");

    SECTION("a frame larger than the bound is numbered but not held, nor anything older") {
        const std::uint64_t n =
            h.append(ws::make_frame(ws::opcode::text, std::string(400, 'x')), t0 + 10s);
        CHECK(n == 10);
        CHECK(h.size() == 0);
        CHECK(h.bytes() == 0);
        CHECK(h.since({h.epoch(), 9}, 100, t0 + 10s).result == chat::recovery_outcome::too_old);
        CHECK(h.since({h.epoch(), 10}, 100, t0 + 10s).result == chat::recovery_outcome::recovered);
        append_n(h, 2, t0 + 11s);
        CHECK(texts(h.recent(100, t0 + 12s)) == names(11, 12));
    }
}

TEST_CASE("history: bounded by age", "[unit][history]") {
    chat::history_options opts;
    opts.max_age = 10s;
    chat::history h{opts};
    append_n(h, 5); // at 0 s .. 4 s

    // Readers skip what is max_age old at the time they are given, without dropping it.
    CHECK(texts(h.recent(100, t0 + 12s)) == names(4, 5)); // those of 0 s .. 2 s are too old
    CHECK(h.size() == 5);
    CHECK(h.since({h.epoch(), 2}, 100, t0 + 12s).result == chat::recovery_outcome::too_old);
    CHECK(texts(h.since({h.epoch(), 3}, 100, t0 + 12s).frames) == names(4, 5));

    h.expire(t0 + 12s);
    CHECK(h.size() == 2);
    h.expire(t0 + 100s);
    CHECK(h.size() == 0);
    CHECK(h.bytes() == 0);
    CHECK(h.last_sequence() == 5); // the numbering goes on

    SECTION("appending drops what has aged") {
        append_n(h, 3, t0 + 200s);        // 200 s .. 202 s
        h.append(frame_of(9), t0 + 211s); // 200 s and 201 s are 10 s old now
        CHECK(texts(h.recent(100, t0 + 211s)) == (std::vector<std::string>{"m8", "m9"}));
        CHECK(h.size() == 2);
    }
    SECTION("a time that goes back counts as the newest entry's") {
        append_n(h, 1, t0 + 300s);
        h.append(frame_of(7), t0); // would be 300 s old otherwise
        CHECK(texts(h.recent(100, t0 + 305s)) == names(6, 7));
    }
}

TEST_CASE("history: seconds::max() means no bound by age", "[unit][history]") {
    chat::history_options opts;
    opts.max_age = std::chrono::seconds::max();
    chat::history h{opts};
    append_n(h, 2);
    const time_point much_later = t0 + std::chrono::hours{24 * 365 * 100};
    h.expire(much_later);
    CHECK(texts(h.recent(10, much_later)) == names(1, 2));
}

TEST_CASE("history: any bound 0 keeps nothing but still numbers", "[unit][history]") {
    for (int which = 0; which < 3; ++which) {
        CAPTURE(which);
        chat::history_options opts;
        if (which == 0)
            opts.max_messages = 0;
        else if (which == 1)
            opts.max_bytes = 0;
        else
            opts.max_age = 0s;
        chat::history h{opts};
        append_n(h, 4);
        CHECK(h.size() == 0);
        CHECK(h.bytes() == 0);
        CHECK(h.last_sequence() == 4);
        CHECK(h.recent(10, t0 + 4s).empty());
        CHECK(h.since({h.epoch(), 4}, 10, t0 + 4s).result == chat::recovery_outcome::recovered);
        CHECK(h.since({h.epoch(), 3}, 10, t0 + 4s).result == chat::recovery_outcome::too_old);
    }
}

TEST_CASE("history: what a reconnecting client is told", "[unit][history]") {
    chat::history_options opts;
    opts.max_messages = 50;
    chat::history h{opts};
    const time_point now = t0 + 100s;

    SECTION("seen 0 in an empty history: recovered, nothing to send") {
        const chat::recovery r = h.since({h.epoch(), 0}, 10, t0);
        CHECK(r.result == chat::recovery_outcome::recovered);
        CHECK(static_cast<bool>(r));
        CHECK(r.frames.empty());
        CHECK(r.position.epoch == h.epoch());
        CHECK(r.position.sequence == 0);
    }

    append_n(h, 80); // 31..80 held
    REQUIRE(h.size() == 50);

    SECTION("seen the last message: recovered, nothing to send") {
        const chat::recovery r = h.since({h.epoch(), 80}, 10, now);
        CHECK(r.result == chat::recovery_outcome::recovered);
        CHECK(r.frames.empty());
        CHECK(r.position.sequence == 80);
    }
    SECTION("a gap within the history: exactly the missed frames, in order, none twice") {
        for (const std::uint64_t seen : {30, 31, 50, 79}) {
            CAPTURE(seen);
            const chat::recovery r = h.since({h.epoch(), seen}, 100, now);
            CHECK(r.result == chat::recovery_outcome::recovered);
            CHECK(texts(r.frames) == names(seen + 1, 80));
            CHECK(r.position.sequence == 80);
            CHECK(r.position.epoch == h.epoch());
        }
    }
    SECTION("the message after the position was evicted: too_old") {
        for (const std::uint64_t seen : {0, 1, 29}) {
            CAPTURE(seen);
            const chat::recovery r = h.since({h.epoch(), seen}, 1000, now);
            CHECK(r.result == chat::recovery_outcome::too_old);
            CHECK_FALSE(static_cast<bool>(r));
            CHECK(r.frames.empty());
            CHECK(r.position.sequence == 80);
        }
    }
    SECTION("a position ahead of the history: unknown_position") {
        const chat::recovery r = h.since({h.epoch(), 81}, 100, now);
        CHECK(r.result == chat::recovery_outcome::unknown_position);
        CHECK(r.frames.empty());
        CHECK(r.position.sequence == 80);
    }
    SECTION("another epoch: epoch_changed, whatever the sequence") {
        for (const std::string& epoch : {std::string{"0123456789abcdef"}, std::string{},
                                         h.epoch() + "0", std::string{"not hex at all"}}) {
            CAPTURE(epoch);
            const chat::recovery r = h.since({epoch, 50}, 100, now);
            CHECK(r.result == chat::recovery_outcome::epoch_changed);
            CHECK(r.frames.empty());
            CHECK(r.position.epoch == h.epoch());
        }
    }
    SECTION("more missed than the caller sends: too_many; exactly the cap is fine") {
        CHECK(h.since({h.epoch(), 69}, 10, now).result == chat::recovery_outcome::too_many);
        const chat::recovery r = h.since({h.epoch(), 70}, 10, now);
        CHECK(r.result == chat::recovery_outcome::recovered);
        CHECK(texts(r.frames) == names(71, 80));
        CHECK(h.since({h.epoch(), 79}, 0, now).result == chat::recovery_outcome::too_many);
        CHECK(h.since({h.epoch(), 80}, 0, now).result == chat::recovery_outcome::recovered);
    }
    SECTION("after the client recovered, its position is the history's") {
        const chat::recovery r = h.since({h.epoch(), 60}, 100, now);
        append_n(h, 2, now);
        CHECK(texts(h.since(r.position, 100, now + 2s).frames) == names(81, 82));
    }
}

TEST_CASE("history: recent(n)", "[unit][history]") {
    chat::history h;
    CHECK(h.recent(5, t0).empty());
    append_n(h, 7);
    CHECK(texts(h.recent(3, t0 + 7s)) == names(5, 7));
    CHECK(texts(h.recent(7, t0 + 7s)) == names(1, 7));
    CHECK(texts(h.recent(70, t0 + 7s)) == names(1, 7));
    CHECK(h.recent(0, t0 + 7s).empty());
}

TEST_CASE("history: reset loses the history under a new epoch", "[unit][history]") {
    chat::history h;
    append_n(h, 5);
    const std::string before = h.epoch();
    h.reset();
    CHECK(h.epoch() != before);
    CHECK(h.last_sequence() == 0);
    CHECK(h.next_sequence() == 1);
    CHECK(h.size() == 0);
    CHECK(h.bytes() == 0);
    const chat::recovery r = h.since({before, 3}, 100, t0 + 5s);
    CHECK(r.result == chat::recovery_outcome::epoch_changed);
    CHECK(r.position.epoch == h.epoch());
    CHECK(r.position.sequence == 0);
    append_n(h, 1, t0 + 10s);
    CHECK(texts(h.recent(10, t0 + 10s)) == names(1, 1));
}

TEST_CASE("history: epochs are 16 lowercase hex digits, distinct for every history",
          "[unit][history]") {
    std::set<std::string> seen;
    chat::history reused;
    for (int i = 0; i < 1000; ++i) {
        const chat::history h;
        CHECK(h.epoch().size() == 16);
        CHECK(h.epoch().find_first_not_of("0123456789abcdef") == std::string::npos);
        seen.insert(h.epoch());
        reused.reset();
        seen.insert(reused.epoch());
    }
    CHECK(seen.size() == 2000);
}

TEST_CASE("history: order survives the ring wrapping, shrinking and growing again",
          "[unit][history]") {
    chat::history_options opts;
    opts.max_messages = 5; // wraps an 8-slot ring again and again
    opts.max_age = 10s;
    chat::history h{opts};
    append_n(h, 23);
    CHECK(texts(h.recent(10, t0 + 23s)) == names(19, 23));

    opts.max_messages = 1000;
    opts.max_age = 1000s;
    chat::history big{opts};
    append_n(big, 500);     // at 0 s .. 499 s
    big.expire(t0 + 1488s); // all but those of 489 s .. 499 s: the ring shrinks
    CHECK(big.size() == 11);
    CHECK(texts(big.since({big.epoch(), 489}, 100, t0 + 1488s).frames) == names(490, 500));
    for (int i = 0; i < 100; ++i) // and grows again
        big.append(frame_of(big.next_sequence()), t0 + 1488s);
    CHECK(big.size() == 111);
    CHECK(texts(big.recent(1000, t0 + 1488s)) == names(490, 600));
    big.expire(t0 + 10000s);
    CHECK(big.size() == 0);
    CHECK(big.bytes() == 0);
    append_n(big, 3, t0 + 20000s);
    CHECK(texts(big.recent(10, t0 + 20002s)) == names(601, 603));
}
