// ws::shared_frame: the bytes make_frame writes, what a frame says about itself, and derived
// frames kept with their source for every thread that asks with the same key.
#include <wschat/ws/shared_frame.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("shared_frame: make_frame's header, payload and RSV1", "[unit][shared_frame]") {
    for (const std::size_t size : {0, 125, 126, 65535, 65536}) {
        CAPTURE(size);
        const std::string payload(size, 'z');
        const ws::shared_frame frame = ws::make_frame(ws::opcode::binary, payload);
        CHECK(frame.is_message());
        CHECK(frame.message_opcode() == ws::opcode::binary);
        CHECK(frame.payload() == payload);
        CHECK(frame.bytes() == ws::encode_frame(ws::opcode::binary, payload));
    }
    const ws::shared_frame compressed = ws::make_frame(ws::opcode::text, "x", true);
    CHECK(static_cast<unsigned>(compressed.data()[0]) == 0xC1); // FIN, RSV1, text
    CHECK_FALSE(ws::make_frame(ws::opcode::ping, "").is_message());
    CHECK_FALSE(ws::shared_frame::copy_of("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_message());
    CHECK_FALSE(ws::shared_frame{}.is_message());
}

TEST_CASE("shared_frame: a derived frame is made once per key and freed with its source",
          "[unit][shared_frame]") {
    int made = 0;
    const auto upper = [&made](const ws::shared_frame& f) {
        ++made;
        std::string text{f.payload()};
        for (char& c : text)
            c = static_cast<char>(c - 'a' + 'A');
        return ws::make_frame(f.message_opcode(), text);
    };
    const char key = 0;
    const char other_key = 0;
    ws::shared_frame source = ws::make_frame(ws::opcode::text, "abc");
    const ws::shared_frame first = source.derived(&key, upper);
    const ws::shared_frame again = source.derived(&key, upper);
    CHECK(first.payload() == "ABC");
    CHECK(again.data() == first.data());
    CHECK(made == 1);
    const ws::shared_frame elsewhere = source.derived(&other_key, upper);
    CHECK(elsewhere.data() != first.data()); // another key is not kept: made anew
    CHECK(made == 2);
    source = {}; // the source goes; what was handed out stays valid
    CHECK(first.payload() == "ABC");

    SECTION("threads asking at once all get the one kept frame") {
        const ws::shared_frame shared = ws::make_frame(ws::opcode::text, "abcdef");
        std::atomic<int> makes{0};
        std::vector<const std::uint8_t*> seen(4);
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < seen.size(); ++t)
            threads.emplace_back([&, t] {
                const ws::shared_frame d = shared.derived(&key, [&](const ws::shared_frame& f) {
                    ++makes;
                    return ws::make_frame(f.message_opcode(), "derived");
                });
                seen[t] = shared
                              .derived(&key,
                                       [](const ws::shared_frame&) {
                                           return ws::make_frame(ws::opcode::text, "never kept");
                                       })
                              .data();
                CHECK(d.payload() == "derived");
            });
        for (auto& t : threads)
            t.join();
        for (const auto* p : seen)
            CHECK(p == seen[0]);
        CHECK(makes >= 1);
    }
}
