// wschat — direct I/O on plain sockets: reads of what has arrived into a per-thread buffer,
// and gather writes of any number of queued frames per system call.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/readiness_set.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

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
        buffer = std::make_unique<std::uint8_t[]>(size);
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

/// Reads what has arrived on the non-blocking socket `fd`, up to `size` bytes. Returns
/// the bytes read; sets `ec` to `would_block` when nothing had arrived, to `eof` when the
/// peer has closed, or to the error.
inline std::size_t read_socket(int fd, std::uint8_t* into, std::size_t size, std::error_code& ec) {
    for (;;) {
        const ssize_t got = ::recv(fd, into, size, 0);
        if (got > 0)
            return static_cast<std::size_t>(got);
        if (got == 0)
            ec = asio::error::eof;
        else if (errno == EINTR)
            continue;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            ec = asio::error::would_block;
        else
            ec = std::error_code{errno, std::system_category()};
        return 0;
    }
}

/// Writes as much as the socket takes of `frames`, starting `offset` bytes into the first.
/// Each system call gathers up to 256 frames by reference (Asio's own gather writes stop
/// at 64), so a deep queue leaves in a few calls without being copied. Returns the bytes
/// written; sets `ec` to `would_block` when the socket is full, or to the error.
inline std::size_t write_frames(int fd, const std::vector<shared_frame>& frames, std::size_t offset,
                                std::error_code& ec) {
    iovec iov[256]; // under IOV_MAX (1024), and refilled per call so the stack stays small
    const std::size_t batch = std::size(iov);
    std::size_t total = 0;
    std::size_t next = 0;
    while (next < frames.size()) {
        std::size_t count = 0;
        std::size_t asked = 0;
        for (std::size_t i = next; i < frames.size() && count < batch; ++i, ++count) {
            const std::size_t skip = i == next ? offset : 0;
            iov[count].iov_base = const_cast<std::uint8_t*>(frames[i].data()) + skip;
            iov[count].iov_len = frames[i].size() - skip;
            asked += iov[count].iov_len;
        }
        msghdr message{};
        message.msg_iov = iov;
        message.msg_iovlen = count;
        const ssize_t sent = ::sendmsg(fd, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            ec = errno == EAGAIN || errno == EWOULDBLOCK
                     ? std::error_code{asio::error::would_block}
                     : std::error_code{errno, std::system_category()};
            return total;
        }
        total += static_cast<std::size_t>(sent);
        if (static_cast<std::size_t>(sent) < asked) {
            ec = asio::error::would_block; // the socket buffer is full
            return total;
        }
        next += count;
        offset = 0;
    }
    return total;
}
#endif

} // namespace detail

WSCHAT_END_NAMESPACE
