// The Transport concept: the server over a Unix domain socket (ws::asio_local), and over a
// transport an application writes itself, checked by ws::check_transport.
#include "support/echo.hpp"
#include "support/running_server.hpp"
#include "support/test_client.hpp"

#include <wschat/wschat.hpp>

#include <catch2/catch.hpp>

#include <asio/local/connect_pair.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;

namespace {

/// A fresh path for a socket file in a fresh directory, removed afterwards.
class socket_path {
public:
    socket_path() {
        std::string pattern = (std::filesystem::temp_directory_path() / "wschat-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error{"mkdtemp failed"};
        dir_ = pattern;
    }
    ~socket_path() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    std::string path() const { return (dir_ / "chat.sock").string(); }

private:
    std::filesystem::path dir_;
};

/// What a crashed server leaves behind: a socket file nobody accepts on.
void leave_stale_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    ::close(fd);
}

using local_server = test::basic_running_server<ws::asio_local>;

} // namespace

TEST_CASE("transport: a server on a Unix domain socket chats and removes its file on stop",
          "[transport][unix]") {
    socket_path where;
    const std::string path = where.path();
    SECTION("fresh path") {
    }
    SECTION("a stale socket file from a crashed server is replaced") {
        leave_stale_socket(path);
    }

    std::string seen_address;
    local_server s{test::loopback_options(), 1, ws::asio_local{path}};
    s.server.on_message(
        [&](const auto& conn, const ws::message&) { seen_address = conn->remote_address(); });
    test::echo(s.server);
    s.start();
    CHECK(std::filesystem::status(path).type() == std::filesystem::file_type::socket);
    CHECK(s.server.local_endpoint().path() == path);

    {
        test::ws_client client{test::peer{0, path, std::nullopt}};
        CHECK(client.send_text("over a Unix socket"));
        CHECK(client.read_text() == "over a Unix socket");
        CHECK(seen_address == "unix");
        // A second server on the same path while this one accepts is refused, and leaves
        // the file alone.
        asio::io_context other_io;
        std::error_code ec;
        ws::server<ws::asio_local> second{other_io, test::loopback_options(), ec,
                                          ws::asio_local{path}};
        CHECK(ec == asio::error::address_in_use);
        CHECK(std::filesystem::exists(path));
        CHECK(client.send_text("still here"));
        CHECK(client.read_text() == "still here");
    }
    CHECK(s.stop());
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("transport: a path that is not a socket is never removed", "[transport][unix]") {
    socket_path where;
    const std::string path = where.path();
    { std::ofstream{path} << "precious"; }
    asio::io_context io;
    std::error_code ec;
    ws::server<ws::asio_local> s{io, test::loopback_options(), ec, ws::asio_local{path}};
    CHECK(ec == asio::error::address_in_use);
    CHECK(std::filesystem::is_regular_file(path));
}

// --- a transport of the application's own -------------------------------------------------

namespace {

/// Streams the application hands to the server itself, instead of the server listening: one
/// end of a socketpair, a socket inherited from a parent process or from systemd. Written
/// against the concept in ws/transport.hpp and nothing else.
struct handed_over {
    using stream_type = asio::local::stream_protocol::socket;

    /// The "listening" side: a queue of streams, and the server's accept waiting for one.
    struct mailbox {
        std::mutex mutex;
        std::deque<stream_type> streams;
        std::function<void(std::error_code, stream_type)> waiting;
        bool closed = false;
    };

    class acceptor_type {
    public:
        using endpoint_type = asio::local::stream_protocol::endpoint;
        /// The server makes its acceptor on its strand, then assigns what `listen` returns.
        template <class Executor>
        explicit acceptor_type(const Executor&) {}
        acceptor_type(asio::io_context& io, std::shared_ptr<mailbox> box)
            : io_(&io), box_(std::move(box)) {}
        endpoint_type local_endpoint(std::error_code&) const { return {}; }

    private:
        friend struct handed_over;
        asio::io_context* io_ = nullptr;
        std::shared_ptr<mailbox> box_;
    };

    std::shared_ptr<mailbox> box = std::make_shared<mailbox>();

    /// The application's side: gives the server a connected stream.
    void hand_over(stream_type stream) const {
        std::function<void(std::error_code, stream_type)> accept;
        {
            std::lock_guard<std::mutex> lock{box->mutex};
            if (!box->waiting)
                return box->streams.push_back(std::move(stream));
            accept = std::exchange(box->waiting, nullptr);
        }
        accept({}, std::move(stream));
    }

    acceptor_type listen(asio::io_context& io, const ws::listen_address&, std::error_code&) const {
        return acceptor_type{io, box};
    }

    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        // Each completion runs on the executor the server bound to its handler.
        auto executor = asio::get_associated_executor(handler, acceptor.io_->get_executor());
        auto deliver = [executor, h = std::forward<Handler>(handler)](std::error_code ec,
                                                                      stream_type s) mutable {
            asio::post(executor, [h, ec, s = std::move(s)]() mutable { h(ec, std::move(s)); });
        };
        std::unique_lock<std::mutex> lock{box->mutex};
        if (box->closed) {
            lock.unlock();
            return deliver(asio::error::operation_aborted, stream_type{*acceptor.io_});
        }
        if (box->streams.empty()) {
            box->waiting = std::move(deliver);
            return;
        }
        stream_type next = std::move(box->streams.front());
        box->streams.pop_front();
        lock.unlock();
        deliver({}, std::move(next));
    }

    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::function<void(std::error_code, stream_type)> waiting;
        {
            std::lock_guard<std::mutex> lock{box->mutex};
            box->closed = true;
            waiting = std::exchange(box->waiting, nullptr);
        }
        if (waiting)
            waiting(asio::error::operation_aborted, stream_type{*acceptor.io_});
    }

    void shutdown_send(stream_type& stream) const {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
    }
    void close(stream_type& stream) const noexcept {
        std::error_code ignored;
        stream.close(ignored);
    }
    std::string remote_address(const stream_type&) const { return "handed-over"; }
};

static_assert(ws::check_transport<handed_over>());

// The checks behind check_transport's messages see what is missing.
struct no_handshake {
    using stream_type = ws::asio_tcp::stream_type;
    using acceptor_type = ws::asio_tcp::acceptor_type;
};
static_assert(ws::detail::has_stream_type<no_handshake>::value);
static_assert(!ws::detail::has_async_handshake<no_handshake>::value);
static_assert(!ws::detail::has_remote_address<no_handshake>::value);
static_assert(!ws::detail::has_stream_type<int>::value);

} // namespace

namespace {
/// TCP whose own handshake waits for the client to send one byte first, as a port knock or
/// a PROXY protocol header would: a plain socket whose transport handshake reads.
struct knock_first_tcp : ws::asio_tcp {
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        auto knock = std::make_unique<char>();
        char& into = *knock;
        asio::async_read(stream, asio::buffer(&into, 1),
                         [h = std::forward<Handler>(handler), knock = std::move(knock)](
                             std::error_code ec, std::size_t) mutable { h(ec); });
    }
};
static_assert(ws::check_transport<knock_first_tcp>());
} // namespace

TEST_CASE("transport: a client that never completes the transport's own handshake is cut off at "
          "the handshake timeout, and one that does is served",
          "[transport]") {
    auto opts = test::loopback_options();
    opts.handshake_timeout = 300ms;
    test::basic_running_server<knock_first_tcp> s{opts};
    s.start();

    test::socket_client silent{s.port()};
    test::socket_client knocking{s.port()};
    REQUIRE(knocking.send_raw("!" + test::upgrade_request()));
    const auto head = knocking.read_until("\r\n\r\n", 3s);
    REQUIRE(head);
    CHECK(head->rfind("HTTP/1.1 101", 0) == 0);
    // The server's read of the knock is pending on the silent client's socket; the timeout
    // must cancel it and close the socket, not leave both waiting for the client.
    CHECK(silent.wait_for_eof(3s));
    CHECK(s.stop());
}

TEST_CASE("transport: an application's own transport serves a room", "[transport]") {
    const handed_over transport;
    chat::room<handed_over> room; // before the server, whose handlers refer to it
    test::basic_running_server<handed_over> s{test::loopback_options(), 1, transport};
    room.attach(s.server);
    s.start();

    const auto connect = [&] {
        asio::local::stream_protocol::socket ours{s.io}, theirs{s.io};
        asio::local::connect_pair(ours, theirs);
        transport.hand_over(std::move(ours));
        return std::make_unique<test::ws_client>(test::peer{0, {}, std::nullopt, theirs.release()});
    };
    auto alice = connect();
    CHECK(alice->read_text() == "Welcome to the chat room!");
    CHECK(alice->read_text() == "Online users: 1");
    auto bob = connect();
    CHECK(bob->read_text() == "Welcome to the chat room!");
    CHECK(alice->read_text() == "Online users: 2");
    CHECK(bob->read_text() == "Online users: 2");
    CHECK(alice->send_text("hello over a socketpair"));
    CHECK(alice->read_text() == "hello over a socketpair");
    CHECK(bob->read_text() == "hello over a socketpair");
    bob.reset(); // a peer that vanishes: the room goes on without it
    CHECK(alice->read_text() == "Online users: 1");
    alice.reset();
    CHECK(s.stop());
}

TEST_CASE("transport: behind a proxy on a Unix socket, trusting \"unix\" believes X-Forwarded-For",
          "[transport][unix]") {
    socket_path where;
    const std::string path = where.path();
    const bool trusted = GENERATE(true, false);
    auto opts = test::loopback_options();
    if (trusted)
        opts.trusted_proxies = {"unix"};
    std::string seen_address;
    local_server s{opts, 1, ws::asio_local{path}};
    s.server.on_open([&](const auto& conn) {
        seen_address = conn->remote_address();
        conn->send_text("opened");
    });
    s.start();
    test::ws_client client{test::peer{0, path, std::nullopt}, "/",
                           "X-Forwarded-For: 203.0.113.7\r\n"};
    CHECK(client.read_text() == "opened");
    CHECK(seen_address == (trusted ? "203.0.113.7" : "unix"));
}
