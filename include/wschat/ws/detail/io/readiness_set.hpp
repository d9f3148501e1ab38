// wschat — the plain sockets of a server in one epoll set of their own, which the
// io_context watches as a single descriptor.
#pragma once

#include <wschat/detail/config.hpp>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {
template <class Target>
class readiness_set;
} // namespace detail
WSCHAT_END_NAMESPACE

#if defined(__linux__)
#define WSCHAT_HAS_READINESS_SET 1

#include <asio/io_context.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <system_error>
#include <utility>

#include <sys/epoll.h>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Asio gives every socket it watches about 170 bytes of reactor state, and every read it
/// waits on an operation of about 160 bytes more: 330 bytes per idle connection, more than
/// the rest of what an idle connection needs. A server's plain sockets therefore leave
/// Asio's reactor once their transport handshake is done and join this set instead: one
/// epoll descriptor, edge-triggered for reading and writing, which costs user space nothing
/// per socket. The io_context watches the set's descriptor alone (while the set has
/// members, so that an io_context with nothing else to do still runs out of work).
///
/// When a socket becomes readable or writable, the set calls `target->ready(events)` (epoll's
/// event bits) on its own strand; the target (a connection) hands the work to its own strand
/// from there, which may run it at once, inside the hand-out.
///
/// Lifetime: a target stays alive while it is in the set, and `remove` keeps it alive
/// until every event harvested before the removal has been handed out. Events are
/// harvested and handed out in one handler on the set's strand, and `remove` posts the
/// target's last reference to that strand after taking the socket out of the set: so
/// the reference is dropped only after any harvest that could still name the target.
template <class Target>
class readiness_set : public std::enable_shared_from_this<readiness_set<Target>> {
public:
    /// Event bits `ready` may see: data to read; the peer's end or an error, which a read
    /// must find next even after a short read.
    static constexpr std::uint32_t readable = EPOLLIN;
    static constexpr std::uint32_t ending = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    /// Room to write.
    static constexpr std::uint32_t writable = EPOLLOUT;

    explicit readiness_set(asio::io_context& io) : strand_(asio::make_strand(io)), watch_(strand_) {
        const int fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
            throw std::system_error(errno, std::system_category(), "wschat: epoll_create1");
        watch_.assign(fd);
    }

    readiness_set(const readiness_set&) = delete;
    readiness_set& operator=(const readiness_set&) = delete;

    /// Adds the non-blocking socket `fd`; `target` is told of every change in its
    /// readiness from now on (and at once, as the socket is writable).
    std::error_code add(int fd, Target& target) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.ptr = &target;
        if (::epoll_ctl(watch_.native_handle(), EPOLL_CTL_ADD, fd, &event) != 0)
            return {errno, std::system_category()};
        if (members_.fetch_add(1, std::memory_order_acq_rel) == 0)
            asio::post(strand_, review{this->shared_from_this(), nullptr});
        return {};
    }

    /// Takes `fd` out of the set; call it before closing `fd`. `last_reference` is the
    /// target's, held until no harvested event can reach the target any more.
    void remove(int fd, std::shared_ptr<Target> last_reference) {
        epoll_event ignored{}; // kernels before 2.6.9 wanted one
        ::epoll_ctl(watch_.native_handle(), EPOLL_CTL_DEL, fd, &ignored);
        members_.fetch_sub(1, std::memory_order_acq_rel);
        asio::post(strand_, review{this->shared_from_this(), std::move(last_reference)});
    }

private:
    /// On the strand, after a member came or went (one handler type for both): watches while
    /// the set has members, and stops when it has none, to let the io_context run out of
    /// work. Holds a leaving target's last reference until then.
    struct review {
        std::shared_ptr<readiness_set> self;
        std::shared_ptr<Target> held;
        void operator()() const {
            if (self->members_.load(std::memory_order_acquire) > 0)
                self->watch();
            else if (self->watching_)
                self->watch_.cancel();
        }
    };

    /// On the strand: waits for the set's descriptor to become readable, unless it already
    /// does or the set is empty.
    void watch() {
        if (watching_ || members_.load(std::memory_order_acquire) == 0)
            return;
        watching_ = true;
        watch_.async_wait(asio::posix::descriptor_base::wait_read,
                          [self = this->shared_from_this()](std::error_code ec) {
                              self->watching_ = false;
                              if (!ec)
                                  self->hand_out();
                              self->watch();
                          });
    }

    /// On the strand: harvests every event pending and tells each target. Edge-triggered
    /// epoll sets report a readiness change once, so the set is emptied each time.
    void hand_out() {
        epoll_event events[256];
        int count = 0;
        do {
            count = ::epoll_wait(watch_.native_handle(), events, std::size(events), 0);
            for (int i = 0; i < count; ++i)
                static_cast<Target*>(events[i].data.ptr)->ready(events[i].events);
        } while (count == static_cast<int>(std::size(events)));
    }

    asio::strand<asio::io_context::executor_type> strand_;
    // Owns the epoll descriptor. On the strand's concrete type, not Asio's type-erased
    // default (see steady_timer_on for why).
    asio::posix::basic_stream_descriptor<asio::strand<asio::io_context::executor_type>> watch_;
    std::atomic<std::size_t> members_{0};
    bool watching_ = false; // an async_wait is pending (strand only)
};

} // namespace detail

WSCHAT_END_NAMESPACE

#endif
