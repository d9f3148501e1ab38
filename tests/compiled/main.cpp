// A user unit built against wschat::compiled (separate compilation): a chat server on a free
// port, and a plain Asio client that completes the WebSocket handshake, hears the welcome and
// the presence count, and gets its own message back. Exits 0 when all of it happened.
#include <wschat/wschat.hpp>

#ifndef WSCHAT_SEPARATE_COMPILATION
#error "this program checks separate compilation: build it against wschat::compiled"
#endif

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

/// The client's side of the socket: what has been read and not yet consumed.
class client {
public:
    explicit client(asio::ip::port_type port) : socket_(io_) {
        socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    }

    void write(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

    /// Everything up to and including `delimiter`.
    std::string read_until(const std::string& delimiter) {
        std::size_t at;
        while ((at = buffered_.find(delimiter)) == std::string::npos)
            fill();
        return take(at + delimiter.size());
    }

    /// One unmasked, unfragmented text frame of at most 125 bytes: its payload.
    std::string read_text_frame() {
        while (buffered_.size() < 2)
            fill();
        const auto first = static_cast<std::uint8_t>(buffered_[0]);
        const auto length = static_cast<std::uint8_t>(buffered_[1]);
        if (first != 0x81 || length > 125)
            throw std::runtime_error{"expected a short text frame"};
        while (buffered_.size() < 2u + length)
            fill();
        return take(2u + length).substr(2);
    }

    /// Sends `text` as one masked text frame, as a client must.
    void write_text_frame(const std::string& text) {
        const char mask[4] = {0x12, 0x34, 0x56, 0x78};
        std::string frame{'\x81', static_cast<char>(0x80 | text.size())};
        frame.append(mask, 4);
        for (std::size_t i = 0; i < text.size(); ++i)
            frame += static_cast<char>(text[i] ^ mask[i % 4]);
        write(frame);
    }

private:
    void fill() {
        char chunk[512];
        const std::size_t n = socket_.read_some(asio::buffer(chunk));
        buffered_.append(chunk, n);
    }

    std::string take(std::size_t n) {
        std::string front = buffered_.substr(0, n);
        buffered_.erase(0, n);
        return front;
    }

    asio::io_context io_;
    asio::ip::tcp::socket socket_;
    std::string buffered_;
};

void expect(const std::string& got, const std::string& want) {
    if (got != want)
        throw std::runtime_error{"expected \"" + want + "\", got \"" + got + "\""};
}

void chat_once(asio::ip::port_type port) {
    client peer{port};
    peer.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const std::string response = peer.read_until("\r\n\r\n");
    if (response.compare(0, 12, "HTTP/1.1 101") != 0 ||
        response.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string::npos)
        throw std::runtime_error{"bad handshake response: " + response};
    expect(peer.read_text_frame(), "Welcome to the chat room!");
    expect(peer.read_text_frame(), "Online users: 1");
    peer.write_text_frame("hello from a separately compiled unit");
    expect(peer.read_text_frame(), "hello from a separately compiled unit");
}

} // namespace

int main() {
    asio::io_context io;
    ws::server_options opts;
    opts.port = 0;
    ws::server<ws::asio_tcp> server{io, opts};
    chat::room<> room;
    room.attach(server);
    std::thread loop{[&io] { io.run(); }};

    int status = 0;
    try {
        chat_once(server.local_endpoint().port());
        std::puts("wschat::compiled: handshake, welcome, presence and echo");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "compiled_check: %s\n", e.what());
        status = 1;
    }
    server.stop(std::chrono::seconds{1});
    loop.join();
    return status;
}
