// Slow readers over real sockets: bounded memory, and nobody else loses a message.
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;

using test::ws_client;

TEST_CASE("a member that never reads is closed with 1008; the others get everything",
          "[backpressure]") {
    auto opts = test::loopback_options();
    opts.max_send_queue_bytes = 256 * 1024;
    opts.close_timeout = 500ms;
    // Declared before the server: its handlers refer to them until the server has stopped.
    chat::room<> room;
    std::atomic<bool> slow_dropped{false};
    test::running_server s{opts};
    room.attach(s.server);
    s.server.on_close([&](const auto&, const ws::close_info& info) {
        if (info.error == ws::error::send_queue_full && info.code == 1008)
            slow_dropped = true;
    });
    s.start();

    ws_client sender{s.port()};
    ws_client reader{s.port()};
    ws_client slow{s.port(), "/", {}, 4096}; // a small receive window, and it never reads
    REQUIRE(test::eventually([&] { return room.size() == 3; }));

    constexpr int messages = 400;
    const std::string line(16 * 1024, 'm');
    std::thread talk{[&] {
        for (int i = 0; i < messages; ++i)
            sender.send_text(std::to_string(i) + line);
    }};
    // Both well-behaved members drain everything (the sender hears itself too): all 400
    // messages, in order, whatever the slow member does.
    const auto drain = [&](ws_client& member) {
        int next = 0;
        while (next < messages) {
            auto text = member.read_text(5s);
            if (!text)
                break;
            if (text->size() > line.size() && std::stoi(*text) == next)
                ++next;
        }
        return next;
    };
    int sender_heard = 0;
    std::thread echo_drain{[&] { sender_heard = drain(sender); }};
    CHECK(drain(reader) == messages);
    talk.join();
    echo_drain.join();
    CHECK(sender_heard == messages);
    CHECK(test::eventually([&] { return slow_dropped.load(); }));
    CHECK(room.size() == 2);
    CHECK(slow.socket().wait_for_eof(3s));
}
