// wschat — an allocator for Asio operations whose memory should not be recycled.
#pragma once

#include <wschat/detail/config.hpp>

#include <cstddef>
#include <new>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Asio keeps the memory of a completed operation in a small per-thread cache and hands it
/// to the next operation that fits, whatever its size. An accept operation is larger than
/// most (it holds the socket being accepted), and its block would otherwise pass to the
/// next long-lived operation started on the thread: a new TLS connection's pending read,
/// which would hold 56 bytes it does not use for as long as the connection stays idle.
/// (Plain sockets wait in the server's readiness set, with no operation pending in Asio.)
///
/// Bound to a handler (`asio::bind_allocator`), this allocator gives its operation plain
/// `operator new` memory that goes back to the heap when the operation completes.
template <class T>
struct uncached_allocator {
    using value_type = T;

    uncached_allocator() noexcept = default;
    template <class U>
    uncached_allocator(const uncached_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }

    template <class U>
    bool operator==(const uncached_allocator<U>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const uncached_allocator<U>&) const noexcept {
        return false;
    }
};

} // namespace detail

WSCHAT_END_NAMESPACE
