// wschat — the I/O back end of other streams (TLS, memory, a user's transport): Asio's
// asynchronous reads and composed gather writes.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/frame_queue.hpp>

#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/write.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A generic stream's I/O for `Connection`: one asynchronous read at a time into a buffer of
/// its own, one composed gather write at a time of everything queued.
///
/// The interface both back ends share (socket_io is the other), called on the strand:
/// `start(conn, stream)` runs the transport's handshake, then reads; `write(conn)` writes
/// what is queued; `shutdown_send(conn)` ends our direction once the last frame is out;
/// `close(conn)` closes the stream. They call back the connection's `received`,
/// `read_failed`, `end_at_once`, `queue` and `written`.
template <class Connection>
class stream_io {
public:
    using stream_type = typename Connection::stream_type;

    /// Runs the transport's handshake on `stream`, then reads.
    void start(Connection& conn, stream_type stream) {
        stream_.emplace(std::move(stream));
        conn.transport().async_handshake(
            *stream_, asio::bind_executor(conn.strand(),
                                          [self = conn.shared_from_this()](std::error_code ec) {
                                              if (ec)
                                                  return self->end_at_once(ec);
                                              self->io_.read_some(*self);
                                          }));
    }

    /// One composed gather write of everything queued.
    void write(Connection& conn) {
        conn.queue().take([this](const frame_queue& frames, std::size_t) {
            lay_out(frames);
            return frames.size();
        });
        asio::async_write(
            *stream_, gather_,
            asio::bind_executor(conn.strand(), [self = conn.shared_from_this()](std::error_code ec,
                                                                                std::size_t size) {
                self->io_.on_written(*self, ec, size);
            }));
    }

    /// Ends our direction: the peer reads EOF, we can still read.
    void shutdown_send(Connection& conn) { conn.transport().shutdown_send(*stream_); }

    /// Closes the stream, which cancels what is under way on it.
    void close(Connection& conn) {
        if (stream_)
            conn.transport().close(*stream_);
    }

private:
    void read_some(Connection& conn) {
        const std::size_t capacity = conn.options().read_buffer_size;
        if (!read_buffer_)
            read_buffer_.reset(new std::uint8_t[capacity]); // not zeroed
        stream_->async_read_some(
            asio::buffer(read_buffer_.get(), capacity),
            asio::bind_executor(conn.strand(), [self = conn.shared_from_this()](std::error_code ec,
                                                                                std::size_t size) {
                self->io_.on_read(*self, ec, size);
            }));
    }

    void on_read(Connection& conn, std::error_code ec, std::size_t size) {
        if (conn.ended())
            return;
        if (ec)
            return conn.read_failed(ec);
        conn.received(read_buffer_.get(), size);
        if (!conn.ended())
            read_some(conn);
    }

    /// Lays out the queued frames for one gather write. A TLS stream encrypts each buffer
    /// of a sequence as its own record (and system call), so small frames are copied back to
    /// back into one contiguous run that leaves as few large records; large frames still go
    /// by reference (frames taken are not dropped until written). Called under the queue's
    /// lock.
    void lay_out(const frame_queue& frames) {
        std::size_t small_bytes = 0;
        for (const shared_frame& frame : frames)
            if (frame.size() <= coalesce_limit)
                small_bytes += frame.size();
        coalesced_.clear();
        coalesced_.reserve(small_bytes); // no reallocation below: buffers point into it
        gather_.clear();
        bool extending_run = false;
        for (const shared_frame& frame : frames) {
            if (frame.size() > coalesce_limit) {
                gather_.emplace_back(frame.data(), frame.size());
                extending_run = false;
                continue;
            }
            const std::size_t at = coalesced_.size();
            coalesced_.insert(coalesced_.end(), frame.data(), frame.data() + frame.size());
            if (extending_run)
                gather_.back() =
                    asio::const_buffer{gather_.back().data(), gather_.back().size() + frame.size()};
            else
                gather_.emplace_back(coalesced_.data() + at, frame.size());
            extending_run = true;
        }
    }

    void on_written(Connection& conn, std::error_code ec, std::size_t size) {
        if (coalesced_.capacity() > idle_coalesce_capacity)
            std::vector<std::uint8_t>{}.swap(coalesced_); // an idle connection keeps no backlog
        if (ec)
            return conn.end_at_once(ec);
        if (conn.written(size, false))
            write(conn);
    }

    static constexpr std::size_t coalesce_limit = 1024;
    static constexpr std::size_t idle_coalesce_capacity = 64 * 1024;

    std::optional<stream_type> stream_; // from start()
    std::unique_ptr<std::uint8_t[]> read_buffer_;
    // The write in flight: its buffers, and its small frames copied back to back.
    std::vector<asio::const_buffer> gather_;
    std::vector<std::uint8_t> coalesced_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
