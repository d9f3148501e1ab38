// redis:// and unix:// URLs: what each part becomes, and a clear refusal of everything else.
#include <wschat/chat/detail/redis_url.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <system_error>

using chat::detail::parse_redis_url;

TEST_CASE("redis URL: TCP forms", "[redis][url]") {
    SECTION("host alone: port 6379, database 0, no login") {
        const auto ep = parse_redis_url("redis://cache.internal");
        CHECK(ep.host == "cache.internal");
        CHECK(ep.port == 6379);
        CHECK(ep.database == 0);
        CHECK(ep.password.empty());
        CHECK_FALSE(ep.is_unix());
        CHECK(ep.describe() == "redis://cache.internal:6379");
    }
    SECTION("port and database") {
        const auto ep = parse_redis_url("redis://127.0.0.1:6380/3");
        CHECK(ep.host == "127.0.0.1");
        CHECK(ep.port == 6380);
        CHECK(ep.database == 3);
        CHECK(ep.describe() == "redis://127.0.0.1:6380/3");
    }
    SECTION("a password alone (requirepass)") {
        const auto ep = parse_redis_url("redis://:s3cret@localhost:7000");
        CHECK(ep.username.empty());
        CHECK(ep.password == "s3cret");
        CHECK(ep.port == 7000);
        CHECK(ep.describe().find("s3cret") == std::string::npos);
    }
    SECTION("an ACL user, percent-encoded characters") {
        const auto ep = parse_redis_url("redis://chat:p%40ss%3Aw%2Fd@10.0.0.2");
        CHECK(ep.username == "chat");
        CHECK(ep.password == "p@ss:w/d");
        CHECK(ep.host == "10.0.0.2");
    }
    SECTION("IPv6 literal") {
        const auto ep = parse_redis_url("redis://[::1]:6390/1");
        CHECK(ep.host == "::1");
        CHECK(ep.port == 6390);
        CHECK(ep.database == 1);
        CHECK(ep.describe() == "redis://[::1]:6390/1");
    }
}

TEST_CASE("redis URL: Unix socket forms", "[redis][url]") {
    const auto ep = parse_redis_url("unix:///run/redis/redis.sock");
    CHECK(ep.is_unix());
    CHECK(ep.path == "/run/redis/redis.sock");
    CHECK(ep.database == 0);
    CHECK(ep.describe() == "unix:///run/redis/redis.sock");

    const auto with = parse_redis_url("unix:///tmp/r.sock?db=2&password=a%26b&user=chat");
    CHECK(with.path == "/tmp/r.sock");
    CHECK(with.database == 2);
    CHECK(with.password == "a&b");
    CHECK(with.username == "chat");
}

TEST_CASE("redis URL: anything else is refused with a reason", "[redis][url]") {
    const char* bad = GENERATE(
        "", "localhost:6379", "http://localhost", "rediss://host", "redis://", "redis://:6379",
        "redis://host:", "redis://host:0", "redis://host:65536", "redis://host:12ab",
        "redis://host/x", "redis://host/-1", "redis://user@host", "redis://:@host", "redis://[::1",
        "redis://[::1]x", "redis://:a%zz@host", "unix://relative.sock", "unix://", "unix:///s?db=x",
        "unix:///s?timeout=3", "unix:///s?user=u", "unix:///s?db");
    std::error_code ec;
    std::string why;
    const auto ep = parse_redis_url(bad, ec, why);
    INFO("URL: '" << bad << "' -> " << why);
    CHECK(ec == chat::redis_errc::invalid_url);
    CHECK_FALSE(why.empty());
    CHECK(ep.host.empty());
    CHECK(ep.path.empty());
    try {
        parse_redis_url(bad);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == chat::redis_errc::invalid_url);
        CHECK(std::string{e.what()}.find(why) != std::string::npos);
    }
}
