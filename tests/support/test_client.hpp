// Test support — a deliberately simple blocking WebSocket client on POSIX sockets.
//
// It shares no code with the library (the frame encoder of client_bytes.hpp, the strict
// decoder of frame_decoder.hpp, and its own use of OpenSSL for TLS), so integration tests check the
// server against an independent reading of RFC 6455, byte for byte, over TCP, TLS or a Unix domain
// socket.
#pragma once

#if __has_include(<openssl/ssl.h>)
#define WSCHAT_TEST_TLS 1
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "client_bytes.hpp"
#include "frame_decoder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace test {

using namespace std::chrono_literals;

/// TLS settings of a test client.
struct tls_settings {
    std::string ca_file;                   ///< PEM file of the CA (the dev certificate) to trust
    std::string server_name = "localhost"; ///< SNI and the name the certificate must carry
    int min_version = 0, max_version = 0;  ///< e.g. TLS1_1_VERSION; 0: OpenSSL's defaults
};

/// How a test client reaches the server: TCP on 127.0.0.1, optionally with TLS, or a Unix
/// domain socket.
struct peer {
    std::uint16_t port = 0;
    std::string unix_path; ///< non-empty: connect to this socket file instead of the port
    std::optional<tls_settings> tls;
    int connected_fd = -1; ///< >= 0: a socket already connected (a socketpair end) to adopt
};

/// A connection to the server with blocking reads bounded by timeouts.
class socket_client {
public:
    explicit socket_client(std::uint16_t port, int receive_buffer = 0)
        : socket_client(peer{port, {}, std::nullopt}, receive_buffer) {}

    /// Connects, and completes the TLS handshake when `to.tls` is set (throws on failure,
    /// with OpenSSL's reason).
    explicit socket_client(const peer& to, int receive_buffer = 0) {
        if (to.connected_fd >= 0) {
            fd_ = to.connected_fd;
            return;
        }
        const bool local = !to.unix_path.empty();
        fd_ = ::socket(local ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0)
            throw std::runtime_error{"socket() failed"};
        if (receive_buffer > 0)
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        int connected = -1;
        if (local) {
            sockaddr_un address{};
            address.sun_family = AF_UNIX;
            std::strncpy(address.sun_path, to.unix_path.c_str(), sizeof address.sun_path - 1);
            connected = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        } else {
            int one = 1;
            ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_port = htons(to.port);
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            connected = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        }
        if (connected != 0) {
            close();
            throw std::runtime_error{"connect() failed"};
        }
        if (to.tls)
            start_tls(*to.tls);
    }
    socket_client(const socket_client&) = delete;
    socket_client& operator=(const socket_client&) = delete;
    ~socket_client() { close(); }

    /// Closes the socket, without a TLS close_notify: like a peer that vanishes.
    void close() {
#if WSCHAT_TEST_TLS
        ssl_.reset();
        ctx_.reset();
#endif
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    /// Closes with SO_LINGER 0: the peer sees a TCP reset.
    void reset() {
        linger hard{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        close();
    }

    /// Writes all bytes; false when the peer has gone.
    bool send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = write_some(bytes);
            if (n <= 0)
                return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads exactly `n` bytes unless the timeout passes or the peer closes first.
    std::optional<std::string> read_exact(std::size_t n, std::chrono::milliseconds timeout) {
        while (buffer_.size() - read_at_ < n)
            if (!fill(timeout))
                return std::nullopt;
        std::string out = buffer_.substr(read_at_, n);
        read_at_ += n;
        return out;
    }

    /// Reads up to and including `delimiter`.
    std::optional<std::string> read_until(std::string_view delimiter,
                                          std::chrono::milliseconds timeout) {
        std::size_t at;
        while ((at = buffer_.find(delimiter, read_at_)) == std::string::npos)
            if (!fill(timeout))
                return std::nullopt;
        const std::size_t end = at + delimiter.size();
        std::string out = buffer_.substr(read_at_, end - read_at_);
        read_at_ = end;
        return out;
    }

    /// Everything until the peer closes (or the timeout), e.g. an HTTP error response.
    std::string read_all(std::chrono::milliseconds timeout) {
        while (fill(timeout)) {
        }
        std::string out = buffer_.substr(read_at_);
        discard();
        return out;
    }

    /// The next frame, decoded strictly (see decode_frame: throws std::runtime_error on a
    /// frame no server may send), or nothing on timeout or EOF.
    std::optional<frame> read_frame(std::chrono::milliseconds timeout) {
        for (;;) {
            std::size_t used = 0;
            auto next = decode_frame(std::string_view{buffer_}.substr(read_at_), used);
            if (next) {
                read_at_ += used;
                return next;
            }
            if (!fill(timeout))
                return std::nullopt;
        }
    }

    /// True when the peer has closed the TCP connection (EOF or reset) within the timeout;
    /// unread data arriving before that is discarded.
    bool wait_for_eof(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            discard();
            if (!fill(std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())))
                return eof_;
        }
        return false;
    }

    bool eof() const {
        return eof_;
    }
    int fd() const {
        return fd_;
    }
    /// True once the server's TLS close_notify has arrived (the TCP FIN is still `eof()`).
    bool tls_closed() const {
        return tls_closed_;
    }

#if WSCHAT_TEST_TLS
    /// OpenSSL's connection: negotiated protocol, peer certificate.
    SSL* ssl() const {
        return ssl_.get();
    }
#endif

private:
    void start_tls([[maybe_unused]] const tls_settings& settings) {
#if WSCHAT_TEST_TLS
        const auto fail = [this](const std::string& what) {
            char reason[256] = "no details";
            if (const unsigned long e = ERR_get_error())
                ERR_error_string_n(e, reason, sizeof reason);
            close();
            throw std::runtime_error{"TLS " + what + " failed: " + reason};
        };
        // SSL_write() writes with write(2), not send(MSG_NOSIGNAL): a server that has closed
        // must fail the write, not kill the test binary with SIGPIPE.
        static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
        (void)sigpipe_ignored;
        ctx_.reset(SSL_CTX_new(TLS_client_method()));
        if (!ctx_)
            fail("context");
        if (settings.min_version)
            SSL_CTX_set_min_proto_version(ctx_.get(), settings.min_version);
        if (settings.max_version)
            SSL_CTX_set_max_proto_version(ctx_.get(), settings.max_version);
        if (settings.min_version && settings.min_version < TLS1_2_VERSION)
            SSL_CTX_set_security_level(ctx_.get(), 0); // let old protocols be offered at all
        if (!settings.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(ctx_.get(), settings.ca_file.c_str(), nullptr) != 1)
                fail("loading " + settings.ca_file);
            SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
        }
        ssl_.reset(SSL_new(ctx_.get()));
        SSL_set_fd(ssl_.get(), fd_);
        SSL_set_tlsext_host_name(ssl_.get(), settings.server_name.c_str());
        if (!settings.ca_file.empty())
            SSL_set1_host(ssl_.get(), settings.server_name.c_str());
        // Blocking handshake, bounded like the reads.
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ERR_clear_error();
        if (SSL_connect(ssl_.get()) != 1)
            fail("handshake");
#else
        throw std::runtime_error{"this test build has no OpenSSL"};
#endif
    }

    ssize_t write_some(std::string_view bytes) {
#if WSCHAT_TEST_TLS
        if (ssl_) {
            const int n = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size()));
            return n > 0 ? n : -1;
        }
#endif
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }

    /// Reads what is there within the timeout: >0 bytes, 0 at EOF, -1 on timeout. Over TLS,
    /// a close_notify ends the TLS stream, then the raw socket is read for its EOF: nothing
    /// may follow a close_notify.
    ssize_t read_some(char* chunk, std::size_t size, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
#if WSCHAT_TEST_TLS
            const bool tls = ssl_ && !tls_closed_;
            if (!tls || SSL_pending(ssl_.get()) == 0) {
#endif
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                pollfd p{fd_, POLLIN, 0};
                if (left.count() < 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                    return -1;
#if WSCHAT_TEST_TLS
            }
            if (tls) {
                const int n = SSL_read(ssl_.get(), chunk, static_cast<int>(size));
                if (n > 0)
                    return n;
                const int error = SSL_get_error(ssl_.get(), n);
                if (error == SSL_ERROR_WANT_READ)
                    continue; // a record that was not application data (a session ticket)
                if (error == SSL_ERROR_ZERO_RETURN) {
                    tls_closed_ = true;
                    continue;
                }
                return 0; // EOF without close_notify, or a TLS error: the connection is over
            }
#endif
            const ssize_t n = ::recv(fd_, chunk, size, 0);
            return n < 0 ? 0 : n;
        }
    }

    bool fill(std::chrono::milliseconds timeout) {
        if (eof_)
            return false;
        char chunk[65536];
        const ssize_t n = read_some(chunk, sizeof chunk, timeout);
        if (n < 0)
            return false;
        if (n == 0) {
            eof_ = true;
            return false;
        }
        // Drop what was read before appending, so that reading many small frames from a
        // fast stream costs linear time (erasing at the front per frame would be quadratic).
        buffer_.erase(0, read_at_);
        read_at_ = 0;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    void discard() {
        buffer_.clear();
        read_at_ = 0;
    }

    int fd_ = -1;
    bool eof_ = false;
    bool tls_closed_ = false;
#if WSCHAT_TEST_TLS
    struct ssl_ctx_free {
        void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
    };
    struct ssl_free {
        void operator()(SSL* ssl) const { SSL_free(ssl); }
    };
    std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx_;
    std::unique_ptr<SSL, ssl_free> ssl_;
#endif
    std::string buffer_;
    std::size_t read_at_ = 0; // bytes of buffer_ already handed out
};

/// A WebSocket client: handshake in the constructor, then frames.
class ws_client {
public:
    explicit ws_client(std::uint16_t port, std::string_view path = "/",
                       std::string_view extra_headers = {}, int receive_buffer = 0)
        : ws_client(peer{port, {}, std::nullopt}, path, extra_headers, receive_buffer) {}

    explicit ws_client(const peer& to, std::string_view path = "/",
                       std::string_view extra_headers = {}, int receive_buffer = 0)
        : socket_(to, receive_buffer) {
        socket_.send_raw(upgrade_request(path, extra_headers));
        const auto head = socket_.read_until("\r\n\r\n", 5s);
        if (!head || head->rfind("HTTP/1.1 101", 0) != 0)
            throw std::runtime_error{"handshake failed: " + head.value_or("(no response)")};
        response_head_ = *head;
    }

    const std::string& response_head() const { return response_head_; }
    socket_client& socket() { return socket_; }

    bool send(std::uint8_t opcode, std::string_view payload, bool fin = true) {
        return socket_.send_raw(encode(opcode, payload, fin));
    }
    bool send_text(std::string_view text) { return send(op_text, text); }
    bool send_close(std::uint16_t code, std::string_view reason = {}) {
        return send(op_close, close_payload(code, reason));
    }

    /// The next frame, or nothing on timeout or EOF. Pings are answered and skipped unless
    /// `auto_pong` is off.
    std::optional<frame> read_frame(std::chrono::milliseconds timeout = 5s) {
        for (;;) {
            auto next = read_any_frame(timeout);
            if (!next || next->opcode != op_ping || !auto_pong)
                return next;
            send(op_pong, next->payload);
        }
    }

    /// The payload of the next text frame, or nothing.
    std::optional<std::string> read_text(std::chrono::milliseconds timeout = 5s) {
        auto next = read_frame(timeout);
        if (!next || next->opcode != op_text)
            return std::nullopt;
        return next->payload;
    }

    bool auto_pong = true;

private:
    std::optional<frame> read_any_frame(std::chrono::milliseconds timeout) {
        return socket_.read_frame(timeout);
    }

    socket_client socket_;
    std::string response_head_;
};

} // namespace test
