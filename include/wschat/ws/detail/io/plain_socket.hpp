// wschat — system calls on plain sockets: reads of what has arrived into a per-thread buffer,
// and gather writes of any number of queued frames per system call.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/frame_queue.hpp>
#include <wschat/ws/detail/io/readiness_set.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#define WSCHAT_HAS_SENDMSG 1
#endif

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// True for streams that are plain sockets (TCP, Unix domain): once open they leave Asio
/// for the server's readiness set, and are read and written (sendmsg) directly. A TLS
/// stream is not one: its bytes pass through the TLS engine, which buffers on its own.
/// Where there is no readiness set (outside Linux), every stream goes through Asio.
template <class Stream, class = void>
struct is_plain_socket : std::false_type {};
#if defined(WSCHAT_HAS_SENDMSG) && defined(WSCHAT_HAS_READINESS_SET)
template <class Stream>
struct is_plain_socket<Stream, std::void_t<decltype(int{std::declval<Stream&>().native_handle()}),
                                           decltype(std::declval<Stream&>().non_blocking(
                                               true, std::declval<std::error_code&>())),
                                           decltype(int{std::declval<Stream&>().release()})>>
    : std::true_type {};
#endif

/// The read buffer of the calling thread. A plain-socket connection reads into it only
/// what has already arrived and parses it before returning to the event loop, so an idle
/// connection holds no read buffer, and one thread needs one buffer however many
/// connections it serves.
inline std::uint8_t* thread_read_buffer(std::size_t size) {
    thread_local std::unique_ptr<std::uint8_t[]> buffer;
    thread_local std::size_t capacity = 0;
    if (capacity < size) {
        // Not zeroed: a page of it becomes resident only once a read reaches that far.
        buffer.reset(new std::uint8_t[size]);
        capacity = size;
    }
    return buffer.get();
}

#if defined(WSCHAT_HAS_SENDMSG)
/// Ends our direction of the socket `fd` (TCP FIN): the peer reads EOF, we can still read.
inline void shutdown_send(int fd) {
    ::shutdown(fd, SHUT_WR);
}

inline void close_socket(int fd) {
    ::close(fd);
}

/// The error of a failed call on a non-blocking socket, from `errno`: `would_block` when
/// the socket had nothing to give or no room to take, otherwise the system's error.
inline std::error_code socket_error() {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return asio::error::would_block;
    return {errno, std::system_category()};
}

/// Reads what has arrived on the non-blocking socket `fd`, up to `size` bytes. Returns
/// the bytes read; sets `ec` to `would_block` when nothing had arrived, to `eof` when the
/// peer has closed, or to the error.
inline std::size_t read_socket(int fd, std::uint8_t* into, std::size_t size, std::error_code& ec) {
    for (;;) {
        const ssize_t got = ::recv(fd, into, size, 0);
        if (got > 0)
            return static_cast<std::size_t>(got);
        if (got < 0 && errno == EINTR)
            continue;
        ec = got == 0 ? std::error_code{asio::error::eof} : socket_error();
        return 0;
    }
}

/// One gather write of queued frames, by reference: up to 256 of them per system call
/// (Asio's own gather writes stop at 64), so a deep queue leaves in a few calls without
/// being copied.
class gathered_frames {
public:
    /// Points at the frames from the front of `frames`, starting `offset` bytes into the
    /// first. Returns how many frames it took.
    std::size_t gather(const frame_queue& frames, std::size_t offset) {
        count_ = std::min(frames.size(), std::size(iov_));
        bytes_ = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            const std::size_t skip = i == 0 ? offset : 0;
            iov_[i].iov_base = const_cast<std::uint8_t*>(frames[i].data()) + skip;
            iov_[i].iov_len = frames[i].size() - skip;
            bytes_ += iov_[i].iov_len;
        }
        return count_;
    }

    /// Writes as much of them as the non-blocking socket `fd` takes. Returns the bytes
    /// written; sets `ec` to `would_block` when the socket took less than all (it is full),
    /// or to the error.
    std::size_t send(int fd, std::error_code& ec) const {
        if (count_ == 0)
            return 0;
        msghdr message{};
        message.msg_iov = const_cast<iovec*>(iov_);
        message.msg_iovlen = count_;
        for (;;) {
            const ssize_t sent = ::sendmsg(fd, &message, MSG_NOSIGNAL);
            if (sent >= 0) {
                if (static_cast<std::size_t>(sent) < bytes_)
                    ec = asio::error::would_block;
                return static_cast<std::size_t>(sent);
            }
            if (errno == EINTR)
                continue;
            ec = socket_error();
            return 0;
        }
    }

private:
    iovec iov_[256]; // under IOV_MAX (1024); 4 KiB of stack
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;
};
#endif

} // namespace detail

WSCHAT_END_NAMESPACE
