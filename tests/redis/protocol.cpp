// The RESP reader (hiredis' redisReader building redis_reply values) and the command
// formatter, on bytes alone: every split of a stream, binary payloads, malformed input, limits.
#include <wschat/chat/detail/redis_protocol.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using chat::detail::redis_reader;
using chat::detail::redis_reply;

namespace {

using namespace std::string_literals;

/// Every reply type, nesting, empty and nil values, and a bulk string holding NUL, CR and LF.
const std::string stream = "+OK\r\n"
                           "-ERR unknown command 'FOO'\r\n"
                           ":-42\r\n"
                           "$0\r\n\r\n"
                           "$-1\r\n"
                           "*-1\r\n"
                           "*0\r\n"
                           "$7\r\na\0b\r\nc\0\r\n"s
                           "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n*2\r\n:1\r\n$-1\r\n"
                           ":9223372036854775807\r\n";

std::vector<redis_reply> expected() {
    redis_reply nested;
    nested.type = redis_reply::kind::array;
    nested.elements = {redis_reply::number(1), redis_reply{}};
    redis_reply message;
    message.type = redis_reply::kind::array;
    message.elements = {redis_reply::string("message"), redis_reply::string("room"), nested};
    redis_reply empty_array;
    empty_array.type = redis_reply::kind::array;
    return {redis_reply::status("OK"),
            redis_reply::error("ERR unknown command 'FOO'"),
            redis_reply::number(-42),
            redis_reply::string(""),
            redis_reply{},
            redis_reply{},
            empty_array,
            redis_reply::string("a\0b\r\nc\0"s),
            message,
            redis_reply::number(9223372036854775807LL)};
}

std::vector<redis_reply> drain(redis_reader& reader) {
    std::vector<redis_reply> out;
    while (auto r = reader.next())
        out.push_back(std::move(*r));
    return out;
}

} // namespace

TEST_CASE("redis reader: a stream split at every byte boundary gives the same replies",
          "[redis][reader]") {
    const auto want = expected();
    SECTION("one piece") {
        redis_reader reader;
        reader.feed(stream);
        CHECK(drain(reader) == want);
        CHECK(reader.buffered() == 0);
        CHECK_FALSE(reader.error());
    }
    SECTION("two pieces, split everywhere") {
        for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
            redis_reader reader;
            std::vector<redis_reply> got;
            reader.feed(std::string_view{stream}.substr(0, cut));
            for (auto& r : drain(reader))
                got.push_back(std::move(r));
            reader.feed(std::string_view{stream}.substr(cut));
            for (auto& r : drain(reader))
                got.push_back(std::move(r));
            INFO("split at byte " << cut);
            REQUIRE(got == want);
            REQUIRE_FALSE(reader.error());
        }
    }
    SECTION("one byte at a time") {
        redis_reader reader;
        std::vector<redis_reply> got;
        for (const char c : stream) {
            reader.feed(std::string_view{&c, 1});
            for (auto& r : drain(reader))
                got.push_back(std::move(r));
        }
        CHECK(got == want);
    }
}

TEST_CASE("redis reader: a 1 MiB binary bulk string arrives whole", "[redis][reader]") {
    std::string payload(1 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(i * 7 % 256);
    const std::string wire = "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
    redis_reader reader;
    for (std::size_t at = 0; at < wire.size(); at += 65536) {
        CHECK_FALSE(reader.next()); // incomplete until the last piece
        reader.feed(std::string_view{wire}.substr(at, 65536));
    }
    auto reply = reader.next();
    REQUIRE(reply);
    CHECK(reply->is_string());
    CHECK(reply->str == payload);
}

TEST_CASE("redis reader: bytes that are not RESP fail it for good", "[redis][reader]") {
    for (const std::string& garbage : {"HTTP/1.1 200 OK\r\n"s, "!boom\r\n"s, "\x00\x01\x02\r\n"s,
                                       "*2\r\n:1\r\n?x\r\n"s, ":12ab\r\n"s}) {
        INFO("garbage: " << garbage);
        redis_reader reader;
        reader.feed(garbage);
        CHECK_FALSE(reader.next());
        CHECK(reader.error() == chat::redis_errc::protocol);
        CHECK_FALSE(reader.error_text().empty());
        // Later valid bytes do not revive it: the stream cannot be resynchronised.
        reader.feed("+OK\r\n");
        CHECK_FALSE(reader.next());
        CHECK(reader.error());
    }
}

TEST_CASE("redis reader: replies before the bad bytes are still returned", "[redis][reader]") {
    redis_reader reader;
    reader.feed("+OK\r\n:7\r\n!nope\r\n:8\r\n");
    CHECK(reader.error() == chat::redis_errc::protocol);
    CHECK(reader.next() == redis_reply::status("OK"));
    CHECK(reader.next() == redis_reply::number(7));
    CHECK_FALSE(reader.next());
}

TEST_CASE("redis reader: a large feed of small replies (the read buffer's size)",
          "[redis][reader]") {
    std::string wire;
    std::size_t count = 0;
    for (; wire.size() < 65536 * 3; ++count)
        wire += "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$" + std::to_string(count % 100) + "\r\n" +
                std::string(count % 100, 'x') + "\r\n";
    redis_reader reader;
    reader.feed(wire);
    std::size_t got = 0;
    bool all_right = true;
    while (auto r = reader.next()) {
        all_right = all_right && r->elements.size() == 3 && r->elements[2].str.size() == got % 100;
        ++got;
    }
    CHECK(got == count);
    CHECK(all_right);
    CHECK(reader.buffered() == 0);
}

TEST_CASE("redis reader: limits refuse what would allocate without bound", "[redis][reader]") {
    SECTION("an array count past max_elements fails before any element arrives") {
        chat::detail::redis_reader_limits limits;
        limits.max_elements = 1000;
        redis_reader reader{limits};
        reader.feed("*1001\r\n");
        CHECK_FALSE(reader.next());
        CHECK(reader.error() == chat::redis_errc::protocol);
    }
    SECTION("an array of max_elements is fine") {
        chat::detail::redis_reader_limits limits;
        limits.max_elements = 3;
        redis_reader reader{limits};
        reader.feed("*3\r\n:1\r\n:2\r\n:3\r\n");
        auto r = reader.next();
        REQUIRE(r);
        CHECK(r->elements.size() == 3);
    }
    SECTION("a nested array past the limit fails too, and the partial reply is freed") {
        chat::detail::redis_reader_limits limits;
        limits.max_elements = 4;
        redis_reader reader{limits};
        reader.feed("*2\r\n$3\r\nabc\r\n*5\r\n");
        CHECK_FALSE(reader.next());
        CHECK(reader.error());
    }
    SECTION("a bulk string announced larger than max_buffered fails once that much is buffered") {
        chat::detail::redis_reader_limits limits;
        limits.max_buffered = 1024;
        redis_reader reader{limits};
        reader.feed("$999999999\r\n");
        CHECK_FALSE(reader.next());
        CHECK_FALSE(reader.error());
        reader.feed(std::string(2000, 'x'));
        CHECK_FALSE(reader.next());
        CHECK(reader.error() == chat::redis_errc::protocol);
    }
}

TEST_CASE("redis command formatting is binary-safe RESP", "[redis][reader]") {
    std::string wire;
    const std::string value = "a\0\r\nb"s;
    REQUIRE(chat::detail::append_command(wire, std::vector<std::string>{"SET", "k", value}));
    const std::string set = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n"s;
    CHECK(wire == set);
    SECTION("appends") {
        REQUIRE(chat::detail::append_command(wire, std::vector<std::string_view>{"PING"}));
        CHECK(wire == set + "*1\r\n$4\r\nPING\r\n");
    }
    SECTION("an empty command is refused") {
        CHECK_FALSE(chat::detail::append_command(wire, std::vector<std::string>{}));
        CHECK(wire == set);
    }
}
