// A connection's send queue without I/O (ws/detail/send_queue.hpp): flush scheduling, the
// slow-reader bound under both policies, partial writes, and the last frame.
#include <wschat/ws/detail/send_queue.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

using ws::detail::frame_queue;
using ws::detail::send_queue;

namespace {

/// A frame of `size` bytes, each `fill`.
ws::shared_frame frame(std::size_t size, char fill = 'x') {
    return ws::shared_frame::copy_of(std::string(size, fill));
}

/// Takes every queued frame, as the stream back end does; returns their first bytes.
std::string take_all(send_queue& queue) {
    std::string firsts;
    queue.take([&](const frame_queue& frames, std::size_t offset) {
        CHECK(offset == 0);
        for (const ws::shared_frame& f : frames)
            firsts += static_cast<char>(f.data()[0]);
        return frames.size();
    });
    return firsts;
}

ws::server_options
bounded(std::size_t max_bytes,
        ws::server_options::overflow_action action = ws::server_options::overflow_action::close) {
    ws::server_options options;
    options.max_send_queue_bytes = max_bytes;
    options.slow_reader_action = action;
    return options;
}

} // namespace

TEST_CASE("send_queue: one flush is scheduled until the queue drains", "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(1000);
    CHECK(queue.push(frame(10), false, options).start_flush);
    CHECK_FALSE(queue.push(frame(20), false, options).start_flush);
    CHECK(queue.queued_bytes() == 30);
    CHECK(take_all(queue) == "xx");
    const auto progress = queue.written(30, false);
    CHECK_FALSE(progress.write_again);
    CHECK_FALSE(progress.drained_after_last);
    CHECK(queue.queued_bytes() == 0);
    CHECK(queue.push(frame(5), false, options).start_flush);
}

TEST_CASE("send_queue: a frame queued during a write is written next", "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(1000);
    queue.push(frame(10, 'a'), false, options);
    CHECK(take_all(queue) == "a");
    CHECK_FALSE(queue.push(frame(10, 'b'), false, options).start_flush); // a write is in flight
    const auto progress = queue.written(10, false);
    CHECK(progress.write_again);
    CHECK(take_all(queue) == "b");
}

TEST_CASE("send_queue: a full socket keeps the taken frames, resuming inside the first",
          "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(1000);
    queue.push(frame(10, 'a'), false, options);
    queue.push(frame(10, 'b'), false, options);
    CHECK(take_all(queue) == "ab");
    const auto progress = queue.written(14, true); // a whole, 4 bytes of b
    CHECK_FALSE(progress.write_again);             // wait for room
    CHECK(queue.queued_bytes() == 6);
    std::size_t resumed_at = 99;
    queue.take([&](const frame_queue& frames, std::size_t offset) {
        CHECK(frames.size() == 1);
        CHECK(frames[0].data()[0] == 'b');
        resumed_at = offset;
        return frames.size();
    });
    CHECK(resumed_at == 4);
    queue.written(6, false);
    CHECK(queue.queued_bytes() == 0);
}

TEST_CASE("send_queue: over the bound, overflow_action::close asks to close",
          "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(100);
    CHECK_FALSE(queue.push(frame(60), false, options).overflow);
    const auto over = queue.push(frame(60), false, options);
    CHECK(over.overflow);
    CHECK_FALSE(over.dropped);
    SECTION("the untaken backlog is dropped, the taken frames stay") {
        queue.push(frame(1), false, options);
        // Nothing taken yet: everything goes.
        queue.drop_untaken();
        CHECK(queue.queued_bytes() == 0);
    }
    SECTION("the last frame (a Close) is exempt from the bound") {
        const auto last = queue.push(frame(500), true, options);
        CHECK_FALSE(last.overflow);
        CHECK(queue.queued_bytes() == 620);
    }
}

TEST_CASE("send_queue: over the bound, drop_oldest drops the oldest untaken frames",
          "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(100, ws::server_options::overflow_action::drop_oldest);
    queue.push(frame(40, 'a'), false, options);
    CHECK(take_all(queue) == "a"); // in the write under way: never dropped
    queue.push(frame(40, 'b'), false, options);
    const auto pushed = queue.push(frame(40, 'c'), false, options);
    CHECK(pushed.dropped);
    CHECK_FALSE(pushed.overflow);
    CHECK(queue.queued_bytes() == 80);
    queue.written(40, false);
    CHECK(take_all(queue) == "c");
}

TEST_CASE("send_queue: the last frame closes the queue, and its write is reported",
          "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(1000);
    queue.push(frame(10, 'a'), false, options);
    queue.push(frame(4, 'z'), true, options);
    CHECK_FALSE(queue.push(frame(10, 'n'), false, options).start_flush); // ignored
    CHECK(queue.queued_bytes() == 14);
    CHECK(take_all(queue) == "az");
    CHECK(queue.written(14, false).drained_after_last);
}

TEST_CASE("send_queue: close empties the queue, which takes nothing more", "[unit][send_queue]") {
    send_queue queue;
    const auto options = bounded(1000);
    queue.push(frame(10), false, options);
    queue.close();
    CHECK(queue.queued_bytes() == 0);
    const auto pushed = queue.push(frame(10), false, options);
    CHECK_FALSE(pushed.start_flush);
    CHECK(queue.queued_bytes() == 0);
}
