// loadgen — one WebSocket client connection on a non-blocking socket driven by epoll:
// the HTTP upgrade (checked against Sec-WebSocket-Accept), masked frames out, wschat's own
// sans-I/O parser (role::client) for the frames in; permessage-deflate when offered and agreed.
#pragma once

#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>

#if defined(WSCHAT_BENCH_DEFLATE)
#include "deflate.hpp"

#include <memory>
#include <optional>
#endif

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace loadgen {

class client {
public:
    enum class phase { idle, connecting, upgrading, open, closed };

    client() = default;
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { reset(); }

    phase state() const noexcept { return phase_; }
    bool is_open() const noexcept { return phase_ == phase::open; }

#if defined(WSCHAT_BENCH_DEFLATE)
    /// Makes the next start() offer permessage-deflate as a browser does; compressed messages
    /// without context are then inflated by `shared`.
    void offer_deflate(shared_inflater& shared) noexcept {
        deflate_shared_ = &shared;
    }

    /// What the server agreed to, or nullptr when the connection is not compressed.
    const deflate_link* deflate() const noexcept {
        return deflate_.get();
    }
#endif

    /// The request target of the next start()'s upgrade ("/" unless set): a lobby's room path.
    void set_target(std::string target) {
        target_ = std::move(target);
    }

    /// Starts a non-blocking connect, from `from` when it is not INADDR_ANY; epoll reports
    /// it under `token`. False on failure.
    bool start(int epoll_fd, const sockaddr_in& to, const std::string& host_header,
               std::uint64_t token, std::uint64_t seed, in_addr from = {}) {
        reset();
        epoll_fd_ = epoll_fd;
        token_ = token;
        rng_ = seed * 0x9E3779B97F4A7C15ULL + 1;
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0)
            return false;
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (from.s_addr != INADDR_ANY) {
            // The port is chosen at connect() time, for this destination.
            ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sockaddr_in local{};
            local.sin_family = AF_INET;
            local.sin_addr = from;
            if (::bind(fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
                reset();
                return false;
            }
        }
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
            errno != EINPROGRESS) {
            reset();
            return false;
        }
        phase_ = phase::connecting;
        request_ = upgrade_request(host_header);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = token_;
        want_out_ = true;
        return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_, &ev) == 0;
    }

    /// Handles writability: completes the connect (sending the upgrade) or flushes output.
    /// False when the connection failed.
    bool on_writable() {
        if (phase_ == phase::connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0)
                return fail();
            phase_ = phase::upgrading;
            out_ += request_;
        }
        return flush();
    }

    /// Reads once into `buf` and hands frames to `events` (see message_parser::feed).
    /// Returns the bytes read, 0 at EOF or failure (the client is then closed), -1 when
    /// nothing was ready.
    template <class Events>
    long on_readable(std::uint8_t* buf, std::size_t cap, Events& events) {
        const ssize_t n = ::read(fd_, buf, cap);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? -1 : (fail(), 0);
        if (n == 0) {
            reset();
            return 0;
        }
        std::uint8_t* data = buf;
        auto size = static_cast<std::size_t>(n);
        if (phase_ == phase::upgrading) {
            const std::size_t used = take_response_head(data, size);
            if (phase_ != phase::open)
                return phase_ == phase::closed ? 0 : n;
            data += used;
            size -= used;
        }
        if (phase_ == phase::open && size > 0) {
#if defined(WSCHAT_BENCH_DEFLATE)
            if (deflate_) {
                inflating<Events> inflate{*this, events};
                parser_.feed(data, size, inflate);
                return n;
            }
#endif
            parser_.feed(data, size, events);
        }
        return n;
    }

    /// Queues a masked frame and tries to write it at once.
    bool send(ws::opcode op, std::string_view payload) {
        queue(op, payload);
        return flush();
    }

    /// Queues a masked frame; flush() writes it.
    void queue(ws::opcode op, std::string_view payload) {
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 7;
        rng_ ^= rng_ << 17;
        const ws::mask_key key{
            static_cast<std::uint8_t>(rng_), static_cast<std::uint8_t>(rng_ >> 8),
            static_cast<std::uint8_t>(rng_ >> 16), static_cast<std::uint8_t>(rng_ >> 24)};
#if defined(WSCHAT_BENCH_DEFLATE)
        const bool compressed = deflate_ && !ws::is_control(op);
        if (compressed) {
            compressed_.clear();
            deflate_->compress(payload, compressed_);
            payload = compressed_;
        }
#endif
        std::uint8_t header[ws::max_frame_header_size];
        const std::size_t header_size =
            ws::encode_frame_header(header, op, payload.size(), true, &key);
#if defined(WSCHAT_BENCH_DEFLATE)
        if (compressed)
            header[0] |= 0x40; // RSV1: a compressed message
#endif
        const std::size_t at = out_.size();
        out_.append(reinterpret_cast<const char*>(header), header_size);
        out_.append(payload);
        ws::apply_mask(reinterpret_cast<std::uint8_t*>(&out_[at + header_size]), payload.size(),
                       key);
    }

    /// Writes queued output; arms EPOLLOUT while some remains. False when the socket failed.
    bool flush() {
        while (out_pos_ < out_.size()) {
            const ssize_t n =
                ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN)
                    break;
                if (errno == EINTR)
                    continue;
                return fail();
            }
            out_pos_ += static_cast<std::size_t>(n);
        }
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
        const bool want = out_pos_ < out_.size() || phase_ == phase::connecting;
        if (want != want_out_) {
            epoll_event ev{};
            ev.events = EPOLLIN | (want ? EPOLLOUT : 0U);
            ev.data.u64 = token_;
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_, &ev);
            want_out_ = want;
        }
        return true;
    }

    /// Closes the socket at once (no closing handshake) and forgets all state.
    void reset() {
        if (fd_ >= 0)
            ::close(fd_); // also removes it from the epoll set
        fd_ = -1;
        phase_ = phase::idle;
        out_.clear();
        out_pos_ = 0;
        head_.clear();
        parser_ = ws::message_parser{ws::role::client, 1 << 20};
#if defined(WSCHAT_BENCH_DEFLATE)
        deflate_.reset();
#endif
    }

    /// True when the last failure was an upgrade refused by the server (not a socket error).
    bool refused() const noexcept {
        return refused_;
    }

private:
    bool fail() {
        reset();
        phase_ = phase::closed;
        return false;
    }

    std::string upgrade_request(const std::string& host_header) {
        std::uint8_t nonce[16];
        for (std::size_t i = 0; i < sizeof nonce; ++i)
            nonce[i] = static_cast<std::uint8_t>((rng_ >> (i % 8 * 8)) + i * 37);
        key_ = ws::detail::base64_encode(nonce, sizeof nonce);
        std::string request =
            "GET " + target_ + " HTTP/1.1\r\nHost: " + host_header +
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key_ +
            "\r\nSec-WebSocket-Version: 13\r\n";
#if defined(WSCHAT_BENCH_DEFLATE)
        if (deflate_shared_)
            request += "Sec-WebSocket-Extensions: " + ws::deflate_offer(browser_offer()) + "\r\n";
#endif
        return request + "\r\n";
    }

    /// Collects the response head; on its end checks for 101 and the accept key and opens
    /// the connection. Returns the bytes of `data` that belonged to the head.
    std::size_t take_response_head(const std::uint8_t* data, std::size_t size) {
        const std::size_t before = head_.size();
        head_.append(reinterpret_cast<const char*>(data), size);
        const std::size_t end = head_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (head_.size() > 16 * 1024)
                fail();
            return size;
        }
        head_.resize(end + 4);
        std::string lower = head_;
        for (char& c : lower)
            c = ws::detail::ascii_lower(c);
        // Header names are case-insensitive, the base64 accept value is not.
        const std::string_view name = "\r\nsec-websocket-accept:";
        std::size_t at = lower.find(name);
        if (at != std::string::npos)
            at = head_.find_first_not_of(" \t", at + name.size());
        const std::string accept = ws::accept_key(key_);
        const bool ok = head_.compare(0, 12, "HTTP/1.1 101") == 0 && at != std::string::npos &&
                        head_.compare(at, accept.size(), accept) == 0;
        refused_ = !ok;
        if (!ok || !agree_extensions(lower)) {
            fail();
            return size;
        }
        phase_ = phase::open;
        head_.clear();
        return end + 4 - before;
    }

    /// Checks the response's Sec-WebSocket-Extensions (`lower`: the head in lower case): none
    /// unless offered, and an offer's answer acceptable (a browser fails the connection
    /// otherwise). False when the connection must fail.
    bool agree_extensions(const std::string& lower) {
        const bool answered = lower.find("\r\nsec-websocket-extensions:") != std::string::npos;
#if defined(WSCHAT_BENCH_DEFLATE)
        if (!answered || !deflate_shared_)
            return !answered;
        ws::response_parser parser;
        parser.feed(head_.data(), head_.size());
        if (parser.current() != ws::http_parse_state::done)
            return false;
        const std::optional<ws::deflate_params> agreed =
            accept_answer(parser.response().header_list("Sec-WebSocket-Extensions"));
        if (!agreed)
            return false;
        deflate_ = std::make_unique<deflate_link>(*agreed, *deflate_shared_);
        parser_.allow_compressed(true);
        return true;
#else
        return !answered;
#endif
    }

#if defined(WSCHAT_BENCH_DEFLATE)
    /// The parser's handler while compressed: inflates compressed messages for `events`.
    template <class Events>
    struct inflating {
        client& self;
        Events& events;

        void on_message(ws::opcode op, std::string_view payload) { events.on_message(op, payload); }
        void on_compressed_message(ws::opcode op, std::string_view payload) {
            std::string_view text;
            if (const std::error_code ec = self.deflate_->inflate(op, payload, text))
                return events.on_error(ec);
            events.on_message(op, text);
        }
        void on_ping(std::string_view payload) { events.on_ping(payload); }
        void on_pong(std::string_view payload) { events.on_pong(payload); }
        void on_close(std::uint16_t code, std::string_view reason) {
            events.on_close(code, reason);
        }
        void on_error(std::error_code ec) { events.on_error(ec); }
    };

    shared_inflater* deflate_shared_ = nullptr; ///< set: offer permessage-deflate
    std::unique_ptr<deflate_link> deflate_;     ///< what was agreed, when it was
    std::string compressed_;                    ///< the compressed message being queued
#endif
    int epoll_fd_ = -1;
    int fd_ = -1;
    std::uint64_t token_ = 0;
    std::uint64_t rng_ = 1;
    phase phase_ = phase::idle;
    bool want_out_ = false;
    bool refused_ = false;
    std::string target_ = "/";
    std::string request_;
    std::string key_;
    std::string head_;
    std::string out_;
    std::size_t out_pos_ = 0;
    ws::message_parser parser_{ws::role::client, 1 << 20};
};

} // namespace loadgen
