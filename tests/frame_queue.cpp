// A connection's send queue on its own: random pushes and erasures of the front, the
// middle and everything, checked against a std::vector doing the same, through the
// queue's inline frames, its growth onto the heap, and back. Run under ASan by CI, which
// also catches a frame leaked or released twice.
#include <wschat/ws/detail/frame_queue.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace {

using ws::shared_frame;
using ws::detail::frame_queue;

/// The queue under test and a std::vector of the payloads it should hold, in step.
struct queue_and_model {
    frame_queue queue;
    std::vector<std::string> model;

    void push(const std::string& payload) {
        queue.push_back(ws::make_frame(ws::opcode::text, payload));
        model.push_back(payload);
    }

    /// Erases [first, last) of both.
    void erase(std::size_t first, std::size_t last) {
        queue.erase(queue.begin() + first, queue.begin() + last);
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(first),
                    model.begin() + static_cast<std::ptrdiff_t>(last));
    }

    /// The queue holds the model's frames, in order, each still whole.
    void check() const {
        REQUIRE(queue.size() == model.size());
        REQUIRE(queue.empty() == model.empty());
        REQUIRE(queue.end() - queue.begin() == static_cast<std::ptrdiff_t>(model.size()));
        for (std::size_t i = 0; i < model.size(); ++i)
            REQUIRE(queue[i].bytes() == ws::make_frame(ws::opcode::text, model[i]).bytes());
    }
};

} // namespace

TEST_CASE("a send queue of up to two frames holds them in itself", "[frame_queue]") {
    queue_and_model q;
    q.push("welcome");
    q.push("presence");
    CHECK(q.queue.capacity() == frame_queue::inline_capacity);
    q.check();
    q.erase(0, 1);
    q.check();
    q.push("third");
    CHECK(q.queue.capacity() == frame_queue::inline_capacity);
    q.check();

    SECTION("a third frame moves them to storage that stays once the queue drains") {
        q.push("fourth");
        CHECK(q.queue.capacity() > frame_queue::inline_capacity);
        q.check();
        const std::size_t grown = q.queue.capacity();
        q.erase(0, q.model.size());
        q.check();
        for (int i = 0; i < 3; ++i)
            q.push("again " + std::to_string(i));
        CHECK(q.queue.capacity() == grown);
        q.check();
    }
}

TEST_CASE("a send queue follows random pushes and erasures like a vector", "[frame_queue]") {
    std::mt19937 random{20261122};
    queue_and_model q;
    int next = 0;
    for (int step = 0; step < 20000; ++step) {
        const unsigned what = random() % 10;
        if (what < 6 || q.model.empty()) {
            // Payloads from 0 to 300 bytes, so frames of both header sizes mix.
            q.push(std::string(random() % 300, static_cast<char>('a' + next % 26)) +
                   std::to_string(next));
            ++next;
        } else if (what < 8) {
            q.erase(0, 1 + random() % q.model.size()); // what a write completed
        } else if (what < 9) {
            const std::size_t first = random() % q.model.size();
            q.erase(first, first + random() % (q.model.size() - first + 1)); // dropped ones
        } else {
            q.queue.clear();
            q.model.clear();
        }
        q.check();
    }
}

TEST_CASE("frames in a send queue stay shared, not copied", "[frame_queue]") {
    const shared_frame broadcast = ws::make_frame(ws::opcode::text, "to everyone");
    frame_queue queue;
    for (int i = 0; i < 5; ++i)
        queue.push_back(shared_frame{broadcast});
    for (const shared_frame& frame : queue)
        CHECK(frame.data() == broadcast.data());
    queue.erase(queue.begin() + 1, queue.begin() + 3);
    REQUIRE(queue.size() == 3);
    CHECK(queue[2].data() == broadcast.data());
}
