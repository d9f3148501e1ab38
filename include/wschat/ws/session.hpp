// wschat — the WebSocket protocol of one open connection, for either end, without I/O.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/compression.hpp>
#include <wschat/ws/detail/mask_keys.hpp>
#include <wschat/ws/detail/rate_limiter.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/utf8.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Decompresses a message received compressed into this thread's buffer (`message` views
/// it until the next call on this thread) and validates text; the error that fails the
/// connection otherwise. Not a template, so that it is compiled once whatever the sinks.
inline std::error_code decompress_message(message_compression& compression, opcode op,
                                          std::string_view payload, std::size_t max_size,
                                          std::string_view& message) {
    // One buffer per thread, as only one message is inflated at a time; a large message's
    // capacity is given back at the next one, so that it is not held for good.
    constexpr std::size_t kept_capacity = 64 * 1024;
    thread_local std::string inflated;
    if (inflated.capacity() > kept_capacity)
        std::string{}.swap(inflated);
    if (const std::error_code ec = compression.decompress(payload, max_size, inflated))
        return ec;
    if (op == opcode::text && !is_valid_utf8(inflated))
        return error::invalid_utf8;
    message = inflated;
    return {};
}

} // namespace detail

/// What a session enforces on what it receives. One copy serves every session of an
/// endpoint (sessions are given it with each call rather than keeping one).
struct session_limits {
    /// Largest message, in payload bytes over all its frames: past it the session fails
    /// with `error::message_too_big` (1009).
    std::uint64_t max_message_size = 1024 * 1024;
    /// Messages per second accepted with bursts of `message_burst`; 0 or less: no limit.
    double max_messages_per_second = 0;
    /// How many messages may come at once before the rate applies.
    std::size_t message_burst = 1;
    /// Over the rate: true drops the message (the sender stays), false fails the session
    /// with `error::rate_limited` (1008).
    bool drop_over_rate = false;
};

/// The protocol state machine of one open WebSocket connection (RFC 6455 §5–7), for the
/// server's end (`role::server`) or the client's (`role::client`).
///
/// Sans-I/O, after Python `websockets`' Protocol: bytes go in through `receive`, and what
/// they mean comes out as calls on a sink, which the caller (a connection) turns into
/// I/O. It parses and validates frames (masking by role, UTF-8, sizes), reassembles
/// messages, answers pings, enforces the message rate, and runs the closing handshake.
/// It owns no socket, no HTTP and no clock: time comes in with each `receive`.
///
/// A sink provides:
///
/// - `const session_limits& limits() const`: the limits, read when the session needs them.
/// - `void message(opcode op, std::string_view payload)`: a whole text or binary message
///   passed every check (valid during the call).
/// - `void send(shared_frame frame)`: a frame is to be sent (a pong).
/// - `void send_close(shared_frame frame, std::uint16_t code, std::string_view reason,
///   std::error_code why)`: the Close frame is to be sent, the last frame of the connection;
///   `code` and `reason` are those of the handshake (the peer's when it closed first), `why`
///   the error that caused it, if any.
/// - `void limit_hit(std::error_code ec)`: the peer broke a limit or the protocol (for
///   counting; a close follows unless the message was only dropped).
/// - `void closed()`: the closing handshake is complete (the peer answered our Close).
///
/// Not thread-safe: one session is driven by one thread at a time (a connection's strand).
template <role Role>
class session {
public:
    /// A session under `limits` (the message size is taken now, the rest at each call from
    /// the sink).
    explicit session(const session_limits& limits) noexcept
        : parser_(Role, limits.max_message_size) {}

    /// Handles `size` bytes received at `now` (unmasked in place). Ignored once the peer's
    /// Close has been read or the session failed.
    template <class Sink>
    void receive(std::uint8_t* bytes, std::size_t size, std::chrono::steady_clock::time_point now,
                 Sink& sink) {
        if (parser_.done())
            return;
        parser_events<Sink> events{*this, sink, now};
        parser_.feed(bytes, size, events);
    }

    /// Starts the closing handshake with `code` and `reason` (`why`: the error behind it,
    /// if any). Does nothing when a Close was sent already.
    template <class Sink>
    void close(std::uint16_t code, std::string_view reason, std::error_code why, Sink& sink) {
        if (close_sent_)
            return;
        send_close(code, reason, why, sink);
    }

    /// Fails the connection for `ec` (a ws::error): counts it and closes with the code RFC
    /// 6455 gives it (`close_code_for`).
    template <class Sink>
    void fail(std::error_code ec, Sink& sink) {
        if (close_sent_)
            return;
        sink.limit_hit(ec);
        send_close(static_cast<std::uint16_t>(close_code_for(ec)), ec.message(), ec, sink);
    }

    /// True once our Close frame was handed to the sink.
    bool close_sent() const noexcept { return close_sent_; }
    /// True once the peer's Close frame was read.
    bool close_received() const noexcept { return close_received_; }

    /// Frees the parser's reassembly storage unless a message is partial.
    void release_memory() noexcept { parser_.release_memory(); }

    /// Takes the compression extension negotiated in the handshake: the messages the peer
    /// sends compressed (RSV1) are decompressed with it. Without one (the default) RSV1 is a
    /// protocol error. The size limit applies to the decompressed message, enforced while it
    /// is produced (1009); a stream that does not decompress fails with 1007, and so does
    /// compressed text that is not UTF-8.
    void use_compression(std::unique_ptr<message_compression> compression) noexcept {
        compression_ = std::move(compression);
        parser_.allow_compressed(compression_ != nullptr);
    }
    /// The compression extension in use (for what is sent), or null.
    message_compression* compression() const noexcept { return compression_.get(); }

private:
    template <class Sink>
    struct parser_events {
        session& self;
        Sink& sink;
        std::chrono::steady_clock::time_point now;

        void on_message(opcode op, std::string_view payload) {
            if (admit())
                sink.message(op, payload);
        }
        void on_compressed_message(opcode op, std::string_view payload) {
            if (!admit())
                return;
            std::string_view message;
            const auto max_size = static_cast<std::size_t>(sink.limits().max_message_size);
            if (const std::error_code ec =
                    detail::decompress_message(*self.compression_, op, payload, max_size, message))
                return self.fail(ec, sink);
            sink.message(op, message);
        }
        /// Whether a message that arrived now is taken: not after our Close (the peer may
        /// still send data, which RFC 6455 §1.4 lets us discard), and within the rate.
        bool admit() {
            if (self.close_sent_)
                return false;
            const session_limits& limits = sink.limits();
            if (self.rate_.admit(now, limits.max_messages_per_second, limits.message_burst))
                return true;
            if (limits.drop_over_rate)
                sink.limit_hit(error::rate_limited);
            else
                self.fail(error::rate_limited, sink);
            return false;
        }
        void on_ping(std::string_view payload) {
            if (!self.close_sent_)
                sink.send(control_frame(opcode::pong, payload));
        }
        void on_pong(std::string_view) {} // its arrival already counted as a sign of life
        void on_close(std::uint16_t code, std::string_view reason) {
            self.close_received_ = true;
            if (self.close_sent_)
                return sink.closed(); // the answer to our Close: the handshake is complete
            // Echo the code (RFC 6455 §5.5.1); a Close without a code is answered with none.
            self.send_close(code, reason, {}, sink, false);
        }
        void on_error(std::error_code ec) { self.fail(ec, sink); }
    };

    /// Sends the Close frame: with `reason` when we close, without when we echo the peer's
    /// (whose code and reason the sink still learns, as the handshake's).
    template <class Sink>
    void send_close(std::uint16_t code, std::string_view reason, std::error_code why, Sink& sink,
                    bool with_reason = true) {
        close_sent_ = true;
        sink.send_close(
            control_frame(opcode::close, close_payload(code, with_reason ? reason : "")), code,
            reason, why);
    }

    /// A control frame as this end sends it: masked with a fresh key from a client.
    static shared_frame control_frame(opcode op, std::string_view payload) {
        if constexpr (Role == role::server) {
            return make_frame(op, payload);
        } else {
            const std::uint32_t bits = detail::next_mask_key();
            const mask_key key{
                static_cast<std::uint8_t>(bits >> 24), static_cast<std::uint8_t>(bits >> 16),
                static_cast<std::uint8_t>(bits >> 8), static_cast<std::uint8_t>(bits)};
            return shared_frame::copy_of(encode_masked_frame(op, payload, key));
        }
    }

    message_parser parser_;
    detail::rate_limiter rate_;
    std::unique_ptr<message_compression> compression_;
    bool close_sent_ = false;
    bool close_received_ = false;
};

WSCHAT_END_NAMESPACE
