// Test support — a ws::server over memory streams (ws::memory_transport), driven on the test's
// own thread: the test writes bytes, settles the io_context, and reads what the server wrote.
// No socket, no thread, no real time: every step is deterministic.
#pragma once

#include "client_bytes.hpp"
#include "frame_decoder.hpp"

#include <wschat/ws/memory_stream.hpp>
#include <wschat/wschat.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace test {

/// Runs every handler that is ready, and every one those make ready, until none is left:
/// the server has then done all it can with what it was given. Never waits.
inline void settle(asio::io_context& io) {
    io.restart(); // poll() leaves the io_context stopped when it ran out of work
    while (io.poll() > 0)
        io.restart();
}

/// Server options under which no deadline can pass while a test runs (no heartbeat; the
/// handshake and close timeouts an hour away), so that only what the test sends decides
/// what happens. Time-driven behaviour waits for an injectable clock.
inline ws::server_options memory_options() {
    ws::server_options opts;
    opts.heartbeat_interval = std::chrono::milliseconds{0};
    opts.handshake_timeout = std::chrono::hours{1};
    opts.close_timeout = std::chrono::hours{1};
    return opts;
}

/// An io_context and a server over memory streams on it, listening. Install handlers,
/// then connect `memory_client`s.
struct memory_server {
    explicit memory_server(ws::server_options opts = memory_options())
        : transport(io), server(io, std::move(opts), transport) {}
    memory_server(const memory_server&) = delete;
    memory_server& operator=(const memory_server&) = delete;
    /// Lets the server see its clients' ends close (the clients are gone by now), so that
    /// every connection finishes: a connection the io_context never finishes stays in the
    /// server's registry, which it refers back to, and both would leak.
    ~memory_server() { settle(io); }

    asio::io_context io;
    ws::memory_transport transport; // the test's copy: connect() through it
    ws::server<ws::memory_transport> server;
};

/// The test's end of one connection to a `memory_server`: raw bytes out, the response head
/// and strictly decoded frames (decode_frame) in. Throws std::runtime_error, never calls
/// Catch, so that it stays usable from any test.
class memory_client {
public:
    /// Connects; the server accepts at the next settle.
    explicit memory_client(memory_server& to) : io_(to.io), stream_(to.transport.connect()) {}

    /// Connects and completes the opening handshake of `upgrade_request(path, extra)`;
    /// throws when the answer is not 101.
    static memory_client opened(memory_server& to, std::string_view path = "/",
                                std::string_view extra_headers = {}) {
        memory_client client{to};
        client.send_raw(upgrade_request(path, extra_headers));
        const std::optional<std::string> head = client.read_head();
        if (!head || head->rfind("HTTP/1.1 101", 0) != 0)
            throw std::runtime_error{"handshake failed: " + head.value_or("(no response)")};
        return client;
    }

    /// The test's end of the stream, for its knobs (read sizes, capacity, fail, close).
    ws::memory_stream& stream() { return stream_; }

    /// Writes `bytes` and lets the server handle them.
    void send_raw(std::string_view bytes) {
        stream_.write_some(asio::buffer(bytes.data(), bytes.size()));
        settle(io_);
    }
    /// Writes one masked frame (see encode) and lets the server handle it.
    void send(std::uint8_t opcode, std::string_view payload, bool fin = true) {
        send_raw(encode(opcode, payload, fin));
    }
    void send_text(std::string_view text) { send(op_text, text); }
    void send_close(std::uint16_t code, std::string_view reason = {}) {
        send(op_close, close_payload(code, reason));
    }

    /// Everything the server has written and no read below took yet.
    std::string read_raw() {
        take();
        return std::exchange(received_, {});
    }

    /// The HTTP response head up to and including its blank line, once it has all arrived.
    std::optional<std::string> read_head() {
        take();
        const std::size_t end = received_.find("\r\n\r\n");
        if (end == std::string::npos)
            return std::nullopt;
        std::string head = received_.substr(0, end + 4);
        received_.erase(0, end + 4);
        return head;
    }

    /// Accepts RSV1 on the first frame of a server's message, as after negotiating
    /// permessage-deflate.
    void allow_compressed() { compressed_allowed_ = true; }

    /// The next frame the server has sent, or nothing while none has arrived whole.
    std::optional<frame> read_frame() {
        take();
        std::size_t used = 0;
        std::optional<frame> next = decode_frame(received_, used, compressed_allowed_);
        received_.erase(0, used);
        return next;
    }

    /// Every whole frame the server has sent so far.
    std::vector<frame> read_frames() {
        std::vector<frame> all;
        while (std::optional<frame> next = read_frame())
            all.push_back(std::move(*next));
        return all;
    }

    /// True once the server has ended its direction (TCP's FIN: it shut down sending or
    /// closed) and every byte it sent has been read by this client.
    bool server_ended() {
        take();
        return received_.empty() && stream_.eof();
    }

    /// Bytes received and not yet read as a head or a frame.
    std::size_t unread() const { return received_.size(); }

private:
    /// Reads until the server has nothing more to write: taking bytes makes room, and a
    /// server write that waited for room then goes on.
    void take() {
        for (;;) {
            settle(io_);
            std::string more = stream_.read_available();
            if (more.empty())
                return;
            received_ += more;
        }
    }

    asio::io_context& io_;
    ws::memory_stream stream_;
    std::string received_;
    bool compressed_allowed_ = false;
};

} // namespace test
