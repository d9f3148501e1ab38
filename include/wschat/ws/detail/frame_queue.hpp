// wschat — a connection's send queue: the frames waiting for the socket, the first two
// held in the queue itself.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A vector of frames, as small as `std::vector` (24 bytes), that keeps up to
/// `inline_capacity` frames without allocating. A peer answered with the 101 and greeted,
/// then sent one message per turn of the event loop (or none: an idle member), never
/// needs storage of its own; a std::vector would keep a heap block for each. A queue
/// that grows past them keeps the storage it grew, so a steady broadcast allocates nothing
/// per delivery either.
///
/// Contiguous: the frames are `begin()[0]` to `begin()[size() - 1]`, and pointers into it
/// stay valid until the next `push_back`.
class frame_queue {
public:
    static constexpr std::uint32_t inline_capacity = 2;

    frame_queue() noexcept {}
    frame_queue(const frame_queue&) = delete;
    frame_queue& operator=(const frame_queue&) = delete;
    ~frame_queue() {
        clear();
        if (on_heap())
            ::operator delete(heap_);
    }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    /// Frames it holds without allocating again.
    std::size_t capacity() const noexcept { return capacity_; }

    shared_frame* begin() noexcept { return on_heap() ? heap_ : inline_frames(); }
    const shared_frame* begin() const noexcept { return on_heap() ? heap_ : inline_frames(); }
    shared_frame* end() noexcept { return begin() + size_; }
    const shared_frame* end() const noexcept { return begin() + size_; }
    shared_frame& operator[](std::size_t i) noexcept { return begin()[i]; }
    const shared_frame& operator[](std::size_t i) const noexcept { return begin()[i]; }

    void push_back(shared_frame&& frame) {
        if (size_ == capacity_)
            grow();
        ::new (static_cast<void*>(end())) shared_frame(std::move(frame));
        ++size_;
    }

    /// Removes the frames in [first, last); those behind them move up.
    void erase(shared_frame* first, shared_frame* last) noexcept {
        shared_frame* const old_end = end();
        std::destroy(std::move(last, old_end, first), old_end);
        size_ -= static_cast<std::uint32_t>(last - first);
    }

    /// Removes every frame; the storage stays.
    void clear() noexcept {
        std::destroy(begin(), end());
        size_ = 0;
    }

private:
    bool on_heap() const noexcept { return capacity_ > inline_capacity; }

    shared_frame* inline_frames() noexcept {
        return std::launder(reinterpret_cast<shared_frame*>(inline_));
    }
    const shared_frame* inline_frames() const noexcept {
        return std::launder(reinterpret_cast<const shared_frame*>(inline_));
    }

    /// Doubles the storage. Cold: it runs a few times in a queue's life, and inlined it would
    /// keep push_back's callers from being inlined on the path of every delivery.
    [[gnu::cold]] void grow() {
        if (capacity_ > std::numeric_limits<std::uint32_t>::max() / 2)
            throw std::length_error("wschat: send queue of over 2^31 frames");
        const std::uint32_t capacity = capacity_ * 2;
        auto* const bigger =
            static_cast<shared_frame*>(::operator new(capacity * sizeof(shared_frame)));
        shared_frame* const old = begin();
        std::uninitialized_move(old, old + size_, bigger);
        std::destroy(old, old + size_);
        if (on_heap())
            ::operator delete(heap_);
        heap_ = bigger;
        capacity_ = capacity;
    }

    union {
        shared_frame* heap_; // when on_heap()
        alignas(shared_frame) unsigned char inline_[inline_capacity * sizeof(shared_frame)];
    };
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = inline_capacity; // more: the frames are in heap_
};

} // namespace detail

WSCHAT_END_NAMESPACE
