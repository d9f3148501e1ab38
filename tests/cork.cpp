// Tests for corking (ws/cork.hpp) on a real io_context: the flushes a handler defers
// run after it, once each and in order; the batch waits for one more poll; a large batch
// lets the event loop run between its parts; a flush that throws strands none of the rest.
#include <wschat/ws/cork.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using ws::cork;
using log_type = std::vector<std::string>;

/// What a deferred flush is given: here, a name to write to a log when flushed, and
/// something more to do then.
struct flush_target {
    log_type* log;
    std::string name;
    std::function<void()> then;
};

std::shared_ptr<void> target(log_type& log, std::string name, std::function<void()> then = {}) {
    return std::make_shared<flush_target>(flush_target{&log, std::move(name), std::move(then)});
}

void record(const std::shared_ptr<void>& flushed) {
    const auto& t = *static_cast<const flush_target*>(flushed.get());
    t.log->push_back(t.name);
    if (t.then)
        t.then();
}

void record_or_throw(const std::shared_ptr<void>& flushed) {
    record(flushed);
    if (static_cast<const flush_target*>(flushed.get())->name == "throws")
        throw std::runtime_error{"a flush failed"};
}

std::vector<std::string> numbered(std::size_t count) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < count; ++i)
        names.push_back(std::to_string(i));
    return names;
}

} // namespace

TEST_CASE("a flush deferred where no cork is open is refused", "[cork]") {
    log_type log;
    CHECK_FALSE(cork::defer(target(log, "a"), record));
    CHECK(log.empty());
}

TEST_CASE("flushes deferred under a cork run after the handler, once each, in order", "[cork]") {
    asio::io_context io;
    log_type log;
    asio::post(io, [&] {
        cork outer{io.get_executor()};
        for (const char* name : {"a", "b", "c"})
            REQUIRE(cork::defer(target(log, name), record));
        {
            cork inner{io.get_executor()}; // only the outermost cork ends the batch
            REQUIRE(cork::defer(target(log, "d"), record));
        }
        log.push_back("handler ends");
    });
    io.run();
    CHECK(log == log_type{"handler ends", "a", "b", "c", "d"});
}

TEST_CASE("corks of other executors nest with io_context corks in one batch", "[cork]") {
    asio::io_context io;
    asio::strand<asio::io_context::executor_type> strand{io.get_executor()};
    log_type log;
    asio::post(io, [&] {
        ws::basic_cork<asio::any_io_executor> outer{asio::any_io_executor{strand}};
        REQUIRE(cork::defer(target(log, "a"), record));
        {
            cork inner{io.get_executor()}; // nested: its flushes join the outer batch
            REQUIRE(cork::defer(target(log, "b"), record));
        }
        log.push_back("handler ends");
    });
    io.run();
    CHECK(log == log_type{"handler ends", "a", "b"});
}

TEST_CASE("a batch waits for one more turn of the event loop before it flushes", "[cork]") {
    asio::io_context io;
    log_type log;
    asio::post(io, [&] {
        {
            cork c{io.get_executor()};
            REQUIRE(cork::defer(target(log, "flush"), record));
        }
        // Posted after the batch: it still runs first, as reads the next poll brings would.
        asio::post(io, [&] { log.push_back("posted after the cork"); });
    });
    io.run();
    CHECK(log == log_type{"posted after the cork", "flush"});
}

TEST_CASE("a large batch lets the event loop run between its parts", "[cork]") {
    asio::io_context io;
    log_type log;
    const auto names = numbered(1000);
    // Work that arrives once the batch has begun must not wait for all 1000 flushes.
    const std::function<void()> arrive = [&] {
        asio::post(io, [&] { log.push_back("arrived during the batch"); });
    };
    asio::post(io, [&] {
        cork c{io.get_executor()};
        for (const auto& name : names)
            REQUIRE(cork::defer(target(log, name, name == "0" ? arrive : nullptr), record));
    });
    io.run();
    const auto arrived = std::find(log.begin(), log.end(), "arrived during the batch");
    REQUIRE(arrived != log.end());
    CHECK(arrived - log.begin() > 0); // after the first flush
    CHECK(arrived != log.end() - 1);  // and before the last
    // Every flush ran once, in order, around it.
    log.erase(arrived);
    CHECK(log == names);
}

TEST_CASE("a flush that throws does not strand the rest of its batch", "[cork]") {
    asio::io_context io;
    log_type log;
    asio::post(io, [&] {
        cork c{io.get_executor()};
        for (const char* name : {"a", "throws", "b", "c"})
            REQUIRE(cork::defer(target(log, name), record_or_throw));
    });
    CHECK_THROWS_AS(io.run(), std::runtime_error);
    CHECK(log == log_type{"a", "throws"});
    io.restart();
    io.run();
    CHECK(log == log_type{"a", "throws", "b", "c"});
}
