// Test support — a scripted server on a raw socket, for the client's side of RFC 6455: the
// test writes every byte the "server" answers (a wrong accept key, a masked frame, a 503,
// silence) and reads what the client sends, frame by frame, unmasked by hand.
#pragma once

#include <wschat/ws/handshake.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace test {

/// A frame as a client sent it.
struct client_frame {
    std::uint8_t opcode = 0;
    bool fin = true;
    bool masked = false;
    std::string payload; // unmasked
    std::uint16_t close_code() const {
        return payload.size() < 2
                   ? 1005
                   : static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                                static_cast<std::uint8_t>(payload[1]));
    }
};

/// One accepted connection, driven by the script. Reads give up after their timeout
/// (returning nothing) so that a script never hangs a test.
class fake_peer {
public:
    explicit fake_peer(int fd) : fd_(fd) {}
    fake_peer(const fake_peer&) = delete;
    fake_peer& operator=(const fake_peer&) = delete;
    ~fake_peer() { ::close(fd_); }

    /// The request head, up to and including the blank line.
    std::optional<std::string> read_head(std::chrono::milliseconds timeout = std::chrono::seconds{
                                             5}) {
        while (buffer_.find("\r\n\r\n") == std::string::npos)
            if (!fill(timeout))
                return std::nullopt;
        const std::size_t end = buffer_.find("\r\n\r\n") + 4;
        std::string head = buffer_.substr(0, end);
        buffer_.erase(0, end);
        return head;
    }

    /// The value of header `name` (as the client spells it) in `head`.
    static std::string header(const std::string& head, const std::string& name) {
        const std::size_t at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos)
            return {};
        const std::size_t from = at + name.size() + 4;
        return head.substr(from, head.find("\r\n", from) - from);
    }

    /// A 101 answer for `head`, with `extra` header lines (each ending in \r\n) and the
    /// right accept key unless `accept` is given.
    static std::string accept_answer(const std::string& head, const std::string& extra = {},
                                     std::optional<std::string> accept = std::nullopt) {
        const std::string key =
            accept ? *accept : ws::accept_key(header(head, "Sec-WebSocket-Key"));
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
               "Upgrade\r\nSec-WebSocket-Accept: " +
               key + "\r\n" + extra + "\r\n";
    }

    /// An unmasked server frame (`mask`: masked with a fixed key, which a client must refuse).
    static std::string frame(std::uint8_t opcode, const std::string& payload, bool fin = true,
                             bool mask = false) {
        std::string out;
        out += static_cast<char>((fin ? 0x80 : 0) | opcode);
        const char mask_bit = mask ? static_cast<char>(0x80) : 0;
        if (payload.size() < 126) {
            out += static_cast<char>(mask_bit | static_cast<char>(payload.size()));
        } else if (payload.size() < 65536) {
            out += static_cast<char>(mask_bit | 126);
            out += static_cast<char>(payload.size() >> 8);
            out += static_cast<char>(payload.size() & 0xFF);
        } else {
            out += static_cast<char>(mask_bit | 127);
            for (int shift = 56; shift >= 0; shift -= 8)
                out +=
                    static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> shift) & 0xFF);
        }
        if (!mask)
            return out + payload;
        const char key[4] = {1, 2, 3, 4};
        out.append(key, 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            out += static_cast<char>(payload[i] ^ key[i % 4]);
        return out;
    }

    bool write(const std::string& bytes) {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    /// The next frame the client sent, or nothing by `timeout` (or at its EOF).
    std::optional<client_frame> read_frame(std::chrono::milliseconds timeout = std::chrono::seconds{
                                               5}) {
        if (!need(2, timeout))
            return std::nullopt;
        client_frame f;
        const auto b0 = static_cast<std::uint8_t>(buffer_[0]);
        const auto b1 = static_cast<std::uint8_t>(buffer_[1]);
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        f.masked = (b1 & 0x80) != 0;
        std::uint64_t size = b1 & 0x7F;
        std::size_t at = 2;
        const std::size_t extra = size == 126 ? 2 : size == 127 ? 8 : 0;
        if (!need(at + extra + (f.masked ? 4 : 0), timeout))
            return std::nullopt;
        if (extra != 0) {
            size = 0;
            for (std::size_t i = 0; i < extra; ++i)
                size = (size << 8) | static_cast<std::uint8_t>(buffer_[at + i]);
            at += extra;
        }
        std::string key;
        if (f.masked) {
            key = buffer_.substr(at, 4);
            at += 4;
        }
        if (!need(at + size, timeout))
            return std::nullopt;
        f.payload = buffer_.substr(at, size);
        if (f.masked)
            for (std::size_t i = 0; i < f.payload.size(); ++i)
                f.payload[i] = static_cast<char>(f.payload[i] ^ key[i % 4]);
        buffer_.erase(0, at + size);
        return f;
    }

    /// Waits for the client to close TCP; true when it did within `timeout`.
    bool wait_eof(std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
        while (fill(timeout))
            buffer_.clear();
        return eof_;
    }

private:
    bool need(std::size_t size, std::chrono::milliseconds timeout) {
        while (buffer_.size() < size)
            if (!fill(timeout))
                return false;
        return true;
    }

    bool fill(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
            return false;
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    int fd_;
    std::string buffer_;
    bool eof_ = false;
};

/// Listens on 127.0.0.1 and runs `script(peer, n)` on a thread for each connection n
/// (counting from 0), one after the other, until destroyed.
class fake_ws_server {
public:
    using script = std::function<void(fake_peer&, int)>;

    explicit fake_ws_server(script run) : run_(std::move(run)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
            ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
            throw std::runtime_error{"fake_ws_server: cannot listen"};
        port_ = ntohs(address.sin_port);
        thread_ = std::thread{[this] { serve(); }};
    }
    fake_ws_server(const fake_ws_server&) = delete;
    fake_ws_server& operator=(const fake_ws_server&) = delete;
    ~fake_ws_server() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }

    std::uint16_t port() const { return port_; }
    /// Connections accepted so far.
    int accepted() const { return accepted_; }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0)
                continue;
            fake_peer peer{client};
            const int n = accepted_++;
            run_(peer, n);
        }
    }

    script run_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

} // namespace test
