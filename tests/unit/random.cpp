// ws::random_bytes and ws::random_hex: the kernel's generator fills exactly what is asked,
// and what it gives differs from call to call.
#include <wschat/ws/random.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <set>
#include <string>

TEST_CASE("random_bytes fills exactly the bytes asked for", "[unit][random]") {
    std::array<unsigned char, 64> buffer{};
    buffer.fill(0xAA);
    ws::random_bytes(buffer.data() + 8, 48);
    CHECK(
        std::all_of(buffer.begin(), buffer.begin() + 8, [](unsigned char b) { return b == 0xAA; }));
    CHECK(std::all_of(buffer.end() - 8, buffer.end(), [](unsigned char b) { return b == 0xAA; }));
    // 48 bytes all 0xAA from a working generator: a chance of 2^-384.
    CHECK_FALSE(std::all_of(buffer.begin() + 8, buffer.end() - 8,
                            [](unsigned char b) { return b == 0xAA; }));
}

TEST_CASE("random_hex gives lowercase hex of twice the size, different every time",
          "[unit][random]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string token = ws::random_hex(16);
        REQUIRE(token.size() == 32);
        REQUIRE(token.find_first_not_of("0123456789abcdef") == std::string::npos);
        seen.insert(token);
    }
    CHECK(seen.size() == 1000);
    CHECK(ws::random_hex(0).empty());
}
