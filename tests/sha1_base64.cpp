// Tests for the SHA-1 and base64 primitives behind Sec-WebSocket-Accept.
#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/detail/sha1.hpp>
#include <wschat/ws/handshake.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

namespace {

std::string hex(const std::array<std::uint8_t, 20>& digest) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (std::uint8_t byte : digest) {
        text += digits[byte >> 4];
        text += digits[byte & 0xF];
    }
    return text;
}

} // namespace

TEST_CASE("sha1 matches the FIPS 180 test vectors", "[sha1]") {
    using ws::detail::sha1;

    SECTION("one block: \"abc\"") {
        CHECK(hex(sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
    SECTION("the empty message") {
        CHECK(hex(sha1("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        CHECK(hex(sha1(nullptr, 0)) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
    SECTION("448 bits: the padding spills into a second block") {
        CHECK(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }
    SECTION("896 bits") {
        CHECK(hex(sha1("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                       "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")) ==
              "a49b2446a02c645bf419f995b67091253a04a259");
    }
    SECTION("one million 'a'") {
        const std::string million(1000000, 'a');
        CHECK(hex(sha1(million)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }
    SECTION("lengths around the block and padding boundaries") {
        // Digests from Python's hashlib.sha1(b'a' * n).
        const std::pair<std::size_t, const char*> vectors[] = {
            {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
            {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
            {57, "f08f24908d682555111be7ff6f004e78283d989a"},
            {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
            {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
            {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
            {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
            {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
        };
        for (const auto& [length, digest] : vectors) {
            INFO("length " << length);
            CHECK(hex(sha1(std::string(length, 'a'))) == digest);
        }
    }
}

TEST_CASE("Sec-WebSocket-Accept follows RFC 6455 section 1.3", "[sha1][base64]") {
    CHECK(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("base64 matches RFC 4648 section 10", "[base64]") {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    SECTION("encode") {
        for (const auto& [plain, encoded] : vectors)
            CHECK(ws::detail::base64_encode(plain.data(), plain.size()) == encoded);
    }
    SECTION("decode") {
        for (const auto& [plain, encoded] : vectors) {
            INFO("encoded \"" << encoded << "\"");
            CHECK(ws::detail::base64_decode(encoded) == plain);
            CHECK(ws::detail::base64_decoded_size(encoded) == plain.size());
        }
    }
}

TEST_CASE("base64 round-trips arbitrary bytes", "[base64]") {
    SECTION("random bytes of every length up to 100") {
        std::mt19937 random{20240601};
        std::uniform_int_distribution<int> byte{0, 255};
        for (std::size_t length = 0; length < 100; ++length) {
            std::string bytes;
            for (std::size_t i = 0; i < length; ++i)
                bytes += static_cast<char>(byte(random));
            const std::string encoded = ws::detail::base64_encode(bytes.data(), bytes.size());
            INFO("length " << length << " encoded " << encoded);
            CHECK(encoded.size() == (length + 2) / 3 * 4);
            CHECK(ws::detail::base64_decode(encoded) == bytes);
        }
    }
    SECTION("every byte value") {
        std::string all;
        for (int value = 0; value < 256; ++value)
            all += static_cast<char>(value);
        CHECK(ws::detail::base64_decode(ws::detail::base64_encode(all.data(), all.size())) == all);
    }
}

TEST_CASE("base64_decode rejects anything but strict base64", "[base64]") {
    const char* const malformed[] = {
        "Zg",          // missing padding
        "Zg=",         // length not a multiple of 4
        "Z===",        // three padding characters
        "====",        // padding only
        "Zm=v",        // padding in the middle of a group
        "Zg==Zg==",    // padding before the last group
        "Zm9v====",    // a whole group of padding
        "Zh==",        // non-zero bits under the padding (one byte)
        "Zm9=",        // non-zero bits under the padding (two bytes)
        "Zm9v\n",      // line break
        " Zm9v",       // leading space
        "Zm 9v",       // inner space
        "Zm-v",        // base64url alphabet
        "Zm_v",        // base64url alphabet
        "Zm9\xC3\xA9", // non-ASCII
    };
    SECTION("malformed inputs") {
        for (const char* text : malformed) {
            INFO("input \"" << text << "\"");
            CHECK_FALSE(ws::detail::base64_decode(text).has_value());
            CHECK_FALSE(ws::detail::base64_decoded_size(text).has_value());
        }
    }
    SECTION("an embedded NUL is not base64") {
        const std::string with_nul{"Zm\0v", 4};
        CHECK_FALSE(ws::detail::base64_decode(with_nul).has_value());
    }
}
