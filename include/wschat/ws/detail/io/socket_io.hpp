// wschat — the I/O back end of plain sockets: readiness reported by the server's epoll set,
// reads into the thread's buffer, gather writes with sendmsg straight from the send queue.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/frame_queue.hpp>
#include <wschat/ws/detail/io/plain_socket.hpp>
#include <wschat/ws/detail/io/readiness_set.hpp>

#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

template <class Connection>
class socket_io;

#if defined(WSCHAT_HAS_SENDMSG) && defined(WSCHAT_HAS_READINESS_SET)

/// A plain socket's I/O for `Connection` (see stream_io for the interface both back ends
/// share). The stream lives only for the transport's handshake; then its bare descriptor
/// joins the server's readiness set, is read into the thread's buffer (an idle connection
/// holds no read buffer) and written with sendmsg directly from the send queue.
template <class Connection>
class socket_io {
public:
    using stream_type = typename Connection::stream_type;

    socket_io() = default;
    socket_io(const socket_io&) = delete;
    socket_io& operator=(const socket_io&) = delete;
    /// Normally the socket is closed by close(); this is for a connection dropped unfinished
    /// with its io_context.
    ~socket_io() {
        if (fd_ >= 0)
            close_socket(fd_);
    }

    /// Runs the transport's handshake on `stream`, then adopts its descriptor.
    void start(Connection& conn, stream_type stream) {
        handshaking_ = std::make_unique<stream_type>(std::move(stream));
        conn.transport().async_handshake(
            *handshaking_, asio::bind_executor(
                               conn.strand(), [self = conn.shared_from_this()](std::error_code ec) {
                                   self->io_.adopt(*self, ec);
                               }));
    }

    /// From the readiness set's strand: the socket became readable or writable or both
    /// (`events`, epoll's). Schedules one on_ready at a time, which sees every event
    /// reported until it begins. Dispatched: when the connection's strand is free it runs at
    /// once, inside the set's hand-out, as Asio's reactor would run a read; posted, it would
    /// wait behind every handler queued meanwhile (a broadcast's writes).
    void ready(Connection& conn, std::uint32_t events) {
        if (first_report(events))
            asio::dispatch(conn.strand(), on_ready_handler{conn.shared_from_this()});
    }

    /// Writes as much of the queue as the socket takes; when it is full, the rest waits for
    /// the readiness set to report it writable. The frames are gathered under the queue's
    /// lock, as other threads may queue more meanwhile, and written without it.
    void write(Connection& conn) {
        for (;;) {
            gathered_frames batch;
            conn.queue().take([&batch](const frame_queue& frames, std::size_t offset) {
                return batch.gather(frames, offset);
            });
            std::error_code ec;
            const std::size_t size = batch.send(fd_, ec);
            const bool full = ec == asio::error::would_block;
            if (ec && !full)
                return conn.end_at_once(ec);
            const bool again = conn.written(size, full);
            awaiting_writable_ = full;
            if (!again)
                return;
        }
    }

    /// Ends our direction (TCP FIN): the peer reads EOF, we can still read.
    void shutdown_send(Connection&) { detail::shutdown_send(fd_); }

    /// Leaves the readiness set and closes the socket; cancels a handshake under way, whose
    /// handler then drops the stream.
    void close(Connection& conn) {
        if (handshaking_)
            conn.transport().close(*handshaking_);
        if (fd_ < 0)
            return;
        conn.readiness()->remove(fd_, conn.shared_from_this());
        close_socket(fd_);
        fd_ = -1;
    }

private:
    using readiness_type = readiness_set<Connection>;
    // The readiness set's event bits, in 16 so that the whole back end fits in 16 bytes (an
    // idle connection holds little else).
    using event_bits = std::uint16_t;
    static_assert((readiness_type::readable | readiness_type::writable | readiness_type::ending) <=
                      std::numeric_limits<event_bits>::max(),
                  "the readiness set reports bits that event_bits cannot hold");

    /// Runs on_ready on the connection's strand (one handler type for dispatch and post).
    struct on_ready_handler {
        std::shared_ptr<Connection> self;
        void operator()() const { self->io_.on_ready(*self); }
    };

    /// The transport's handshake is done: the descriptor leaves Asio (and the stream, which
    /// then closes nothing) for the readiness set, non-blocking. The set reports it writable
    /// at once, which makes the first read.
    void adopt(Connection& conn, std::error_code ec) {
        // Destroyed on return, now that the handshake no longer uses it.
        const std::unique_ptr<stream_type> stream = std::move(handshaking_);
        if (conn.ended())
            return; // ended during the handshake, whose stream close() closed
        if (!ec)
            stream->non_blocking(true, ec);
        if (!ec)
            fd_ = stream->release(ec);
        if (!ec)
            ec = conn.readiness()->add(fd_, conn);
        if (ec)
            conn.end_at_once(ec);
    }

    /// Records `events` for the next on_ready; true when none was scheduled yet.
    bool first_report(std::uint32_t events) {
        return events_.fetch_or(static_cast<event_bits>(events), std::memory_order_acq_rel) == 0;
    }

    void on_ready(Connection& conn) {
        const std::uint32_t events = events_.exchange(0, std::memory_order_acq_rel);
        if (conn.ended())
            return;
        if (awaiting_writable_) {
            awaiting_writable_ = false;
            write(conn);
        }
        read_available(conn, events);
    }

    /// Reads what has arrived into the thread's read buffer and hands it to the connection
    /// before returning. Edge-triggered readiness is reported once per change, so reading
    /// goes on until the socket is drained, which a short read shows (unless the peer's end
    /// or an error came with the data: that is read next). One buffer per turn on the
    /// strand, so that other connections, and what this one posted (a queue-overflow close),
    /// go in between.
    void read_available(Connection& conn, std::uint32_t events) {
        const std::size_t capacity = conn.options().read_buffer_size;
        std::uint8_t* bytes = thread_read_buffer(capacity);
        std::error_code ec;
        const std::size_t size = read_socket(fd_, bytes, capacity, ec);
        if (ec == asio::error::would_block)
            return;
        if (ec)
            return conn.read_failed(ec);
        conn.received(bytes, size);
        const bool drained = size < capacity && (events & readiness_type::ending) == 0;
        // No new report would announce the rest: read it on a later turn.
        if (!conn.ended() && !drained && first_report(events | readiness_type::readable))
            asio::post(conn.strand(), on_ready_handler{conn.shared_from_this()});
    }

    std::unique_ptr<stream_type> handshaking_; // during the transport handshake
    int fd_ = -1;                              // from the end of the transport handshake
    std::atomic<event_bits> events_{0};        // reported since on_ready last began (0: none)
    bool awaiting_writable_ = false;           // a write waits for room (strand only)
};

#endif

} // namespace detail

WSCHAT_END_NAMESPACE
