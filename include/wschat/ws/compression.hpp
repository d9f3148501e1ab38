// wschat — the seam between a connection and a message compression extension: what the core
// calls, with no compression library behind it. permessage-deflate (<wschat/ws/
// permessage_deflate.hpp>, zlib) implements it.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Where `message_compression::send` puts the frames it makes: the connection's send queue.
class frame_sink {
public:
    /// Queues `frame` for the peer.
    virtual void push(shared_frame frame) = 0;

protected:
    ~frame_sink() = default;
};

/// One connection's negotiated compression: inflates what it receives, compresses what it
/// sends. Made by a `compression_negotiator` for each connection that agreed to it.
/// `decompress` is called on the connection's strand only; `send` from any thread.
class message_compression {
public:
    virtual ~message_compression() = default;

    /// Replaces `out` with the decompressed form of a message received compressed (RSV1).
    /// Fails with error::message_too_big as soon as it would exceed `max_size` bytes, and
    /// with error::bad_compressed_data when the payload does not decompress.
    virtual std::error_code decompress(std::string_view payload, std::size_t max_size,
                                       std::string& out) = 0;

    /// Pushes to `queue` what to send for `frame`, a whole text or binary message made by
    /// `make_frame`: a compressed frame (RSV1 set), or `frame` itself when compressing does
    /// not pay (below the extension's size threshold). Thread-safe; when frames depend on
    /// the ones before (a kept compression context), compressing and pushing happen as one
    /// step, so the queue holds them in the order they were compressed. Implementations
    /// compress a frame shared by many connections once for all of them when their
    /// parameters allow it.
    virtual void send(const shared_frame& frame, frame_sink& queue) = 0;
};

/// A server's compression extension: negotiates it in each opening handshake.
///
/// Set one in `server_options::compression` (for permessage-deflate:
/// `ws::permessage_deflate(options)` from <wschat/ws/permessage_deflate.hpp>). Called from
/// any of the server's threads at once: implementations are thread-safe.
class compression_negotiator {
public:
    virtual ~compression_negotiator() = default;

    /// The outcome of one negotiation.
    struct result {
        /// The compression the connection uses; null when the offers were declined (the
        /// connection then goes on uncompressed).
        std::unique_ptr<message_compression> compression;
        /// The element to send in the response's Sec-WebSocket-Extensions (empty when
        /// declined).
        std::string response;
        /// error::bad_extensions when the header does not parse (RFC 6455 §9.1: the
        /// handshake fails, with 400).
        std::error_code error;
    };

    /// Answers the client's Sec-WebSocket-Extensions value `offers` (all its header lines
    /// joined with ", "; empty when it sent none). `frames_may_be_dropped` is true when the
    /// server drops queued frames of slow readers (`overflow_action::drop_oldest`): no frame
    /// may then depend on an earlier one.
    virtual result negotiate(std::string_view offers, bool frames_may_be_dropped) = 0;
};

WSCHAT_END_NAMESPACE
