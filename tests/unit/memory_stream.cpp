// ws::memory_stream and ws::memory_transport themselves: ordering, the Asio completion rules,
// end of stream, closing, the read and capacity knobs, injected errors, and the io_context's
// shutdown with operations still waiting.
#include "support/memory_client.hpp"

#include <wschat/ws/memory_stream.hpp>

#include <catch2/catch.hpp>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace {

/// What one asynchronous operation completed with, once it has.
struct outcome {
    std::optional<std::error_code> ec;
    std::size_t size = 0;
    auto handler() {
        return [this](std::error_code e, std::size_t n) {
            ec = e;
            size = n;
        };
    }
};

} // namespace

static_assert(ws::check_transport<ws::memory_transport>());

TEST_CASE("memory stream: what one end writes the other reads, in order, completed through "
          "the io_context",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    outcome wrote;
    asio::async_write(a, asio::buffer(std::string_view{"hello, "}), wrote.handler());
    CHECK_FALSE(wrote.ec); // never inside the initiating call
    test::settle(io);
    REQUIRE(wrote.ec);
    CHECK_FALSE(*wrote.ec);
    CHECK(wrote.size == 7);
    a.write_some(asio::buffer(std::string_view{"world"}));

    char into[64];
    outcome read;
    b.async_read_some(asio::buffer(into), read.handler());
    CHECK_FALSE(read.ec);
    test::settle(io);
    REQUIRE(read.ec);
    CHECK_FALSE(*read.ec);
    CHECK(std::string(into, read.size) == "hello, world");

    // The other direction is independent.
    b.write_some(asio::buffer(std::string_view{"back"}));
    CHECK(a.read_available() == "back");
    CHECK(a.read_available().empty());
}

TEST_CASE("memory stream: a read waits for data, and counts as outstanding work meanwhile",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    char into[8];
    outcome read;
    b.async_read_some(asio::buffer(into), read.handler());
    test::settle(io);
    CHECK_FALSE(read.ec);
    CHECK_FALSE(io.stopped()); // run() would wait for it, as for a socket's read
    a.write_some(asio::buffer(std::string_view{"x"}));
    test::settle(io);
    REQUIRE(read.ec);
    CHECK(read.size == 1);
    CHECK(io.stopped()); // nothing waits any more
}

TEST_CASE("memory stream: read_size and peer_read_size split the stream at every position",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    const std::string sent = "abcdefg";
    const std::size_t size = GENERATE(1, 2, 3);
    SECTION("set by the reader") {
        b.read_size(size);
    }
    SECTION("set by the writer") {
        a.peer_read_size(size);
    }
    a.write_some(asio::buffer(sent));
    std::string got;
    for (std::size_t reads = 1; got.size() < sent.size(); ++reads) {
        char into[16];
        outcome read;
        b.async_read_some(asio::buffer(into), read.handler());
        test::settle(io);
        REQUIRE(read.ec);
        REQUIRE_FALSE(*read.ec);
        CHECK(read.size == std::min(size, sent.size() - got.size()));
        got.append(into, read.size);
        REQUIRE(reads <= sent.size());
    }
    CHECK(got == sent);
    CHECK_THROWS_AS(b.read_size(0), std::invalid_argument);
}

TEST_CASE("memory stream: after the peer closes or shuts down sending, reads drain then see eof",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    const bool shutdown = GENERATE(true, false);
    a.write_some(asio::buffer(std::string_view{"last words"}));
    if (shutdown)
        a.shutdown_send();
    else
        a.close();
    CHECK_FALSE(b.eof()); // not before the data is read
    char into[64];
    outcome first;
    b.async_read_some(asio::buffer(into), first.handler());
    test::settle(io);
    REQUIRE(first.ec);
    CHECK_FALSE(*first.ec);
    CHECK(std::string(into, first.size) == "last words");
    CHECK(b.eof());
    outcome second;
    b.async_read_some(asio::buffer(into), second.handler());
    test::settle(io);
    REQUIRE(second.ec);
    CHECK(*second.ec == asio::error::eof);

    outcome back;
    b.async_write_some(asio::buffer(std::string_view{"reply"}), back.handler());
    test::settle(io);
    REQUIRE(back.ec);
    if (shutdown) { // a half-closed peer still reads
        CHECK_FALSE(*back.ec);
        CHECK(a.read_available() == "reply");
    } else {
        CHECK(*back.ec == asio::error::connection_reset);
    }
}

TEST_CASE("memory stream: a read waiting when the peer closes completes with eof",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    char into[8];
    outcome read;
    b.async_read_some(asio::buffer(into), read.handler());
    test::settle(io);
    REQUIRE_FALSE(read.ec);
    { auto gone = std::move(a); } // destroying an end closes it
    test::settle(io);
    REQUIRE(read.ec);
    CHECK(*read.ec == asio::error::eof);
}

TEST_CASE("memory stream: closing an end aborts its waiting operations; it then refuses more",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    b.input_capacity(1);
    char into[8];
    outcome read, write;
    a.async_read_some(asio::buffer(into), read.handler());
    a.async_write_some(asio::buffer(std::string_view{"xy"}), write.handler());
    test::settle(io);
    REQUIRE_FALSE(read.ec);
    REQUIRE(write.ec); // took the one byte of room
    CHECK(write.size == 1);
    outcome waiting;
    a.async_write_some(asio::buffer(std::string_view{"y"}), waiting.handler());
    test::settle(io);
    REQUIRE_FALSE(waiting.ec); // no room: waits

    a.close();
    CHECK_FALSE(a.is_open());
    test::settle(io);
    REQUIRE(read.ec);
    CHECK(*read.ec == asio::error::operation_aborted);
    REQUIRE(waiting.ec);
    CHECK(*waiting.ec == asio::error::operation_aborted);
    outcome later;
    a.async_read_some(asio::buffer(into), later.handler());
    test::settle(io);
    REQUIRE(later.ec);
    CHECK(*later.ec == asio::error::bad_descriptor);
    CHECK(b.read_available() == "x"); // what was written before the close still arrives
    CHECK(b.eof());
}

TEST_CASE("memory stream: input_capacity makes the writer wait until the reader reads",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    b.input_capacity(4);
    const std::string sent = "0123456789";
    outcome wrote;
    asio::async_write(a, asio::buffer(sent), wrote.handler()); // composed: many write_some
    test::settle(io);
    CHECK_FALSE(wrote.ec);
    std::error_code full;
    CHECK(a.write_some(asio::buffer(std::string_view{"z"}), full) == 0);
    CHECK(full == asio::error::would_block);
    std::string got;
    for (int rounds = 0; rounds < 10 && got.size() < sent.size(); ++rounds) {
        const std::string part = b.read_available();
        CHECK(part.size() <= 4);
        got += part;
        test::settle(io);
    }
    CHECK(got == sent);
    REQUIRE(wrote.ec);
    CHECK_FALSE(*wrote.ec);
    CHECK(wrote.size == sent.size());
}

TEST_CASE("memory stream: an injected error fails waiting and later operations of that end",
          "[unit][memory_stream]") {
    asio::io_context io;
    auto [a, b] = ws::make_memory_stream_pair(io);
    char into[8];
    outcome read;
    b.async_read_some(asio::buffer(into), read.handler());
    test::settle(io);
    b.fail(asio::error::connection_reset);
    test::settle(io);
    REQUIRE(read.ec);
    CHECK(*read.ec == asio::error::connection_reset);
    outcome write;
    b.async_write_some(asio::buffer(std::string_view{"x"}), write.handler());
    test::settle(io);
    REQUIRE(write.ec);
    CHECK(*write.ec == asio::error::connection_reset);
    CHECK_FALSE(b.is_open());
    CHECK(a.is_open());
}

TEST_CASE("memory stream: operations the io_context never ran are destroyed with it, and "
          "what their handlers own with them",
          "[unit][memory_stream]") {
    std::weak_ptr<ws::memory_stream> watched;
    {
        asio::io_context io;
        auto [a, b] = ws::make_memory_stream_pair(io);
        // The handler owns the end it reads from: a cycle only the io_context's shutdown
        // can break, as with a connection that owns its socket.
        auto owner = std::make_shared<ws::memory_stream>(std::move(b));
        watched = owner;
        auto buffer = std::make_shared<std::string>(8, '\0');
        owner->async_read_some(asio::buffer(*buffer),
                               [owner, buffer](std::error_code, std::size_t) {});
        test::settle(io);
        owner.reset();
        CHECK_FALSE(watched.expired());
    }
    CHECK(watched.expired());
}

TEST_CASE("memory transport: connect, accept, refuse, and one listener at a time",
          "[unit][memory_stream]") {
    asio::io_context io;
    ws::memory_transport transport{io};
    std::error_code ec;
    ws::memory_stream refused = transport.connect(ec);
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(refused.is_open());
    CHECK_THROWS_AS(transport.connect(), std::system_error);

    ws::memory_transport::acceptor_type acceptor = transport.listen(io, "anything", ec);
    REQUIRE_FALSE(ec);
    CHECK(acceptor.local_endpoint(ec) == "memory");
    const ws::memory_transport copy = transport;
    ws::memory_transport::acceptor_type second = copy.listen(io, 0, ec);
    CHECK(ec == asio::error::address_in_use);

    ws::memory_stream early = transport.connect(); // waits in the backlog
    std::optional<ws::memory_stream> accepted;
    const auto accept = [&] {
        transport.async_accept(acceptor, [&](std::error_code e, ws::memory_stream s) {
            CHECK_FALSE(e);
            accepted.emplace(std::move(s));
        });
    };
    accept();
    test::settle(io);
    REQUIRE(accepted);
    early.write_some(asio::buffer(std::string_view{"hi"}));
    CHECK(accepted->read_available() == "hi");
    CHECK(transport.remote_address(*accepted) == "memory");

    accepted.reset();
    accept(); // waits for the next connection
    test::settle(io);
    CHECK_FALSE(accepted);
    ws::memory_stream late = copy.connect();
    test::settle(io);
    REQUIRE(accepted);

    // Closing the acceptor aborts the accept waiting on it and refuses connections.
    std::optional<std::error_code> aborted;
    transport.async_accept(acceptor, [&](std::error_code e, ws::memory_stream) { aborted = e; });
    test::settle(io);
    REQUIRE_FALSE(aborted);
    transport.close_acceptor(acceptor);
    test::settle(io);
    REQUIRE(aborted);
    CHECK(*aborted == asio::error::operation_aborted);
    transport.connect(ec);
    CHECK(ec == asio::error::connection_refused);

    // Listening again works; connections never accepted are closed with the acceptor.
    acceptor = transport.listen(io, 0, ec);
    REQUIRE_FALSE(ec);
    ws::memory_stream unaccepted = transport.connect();
    CHECK_FALSE(unaccepted.eof());
    transport.close_acceptor(acceptor);
    CHECK(unaccepted.eof());
}
