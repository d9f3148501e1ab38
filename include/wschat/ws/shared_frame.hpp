// wschat — an encoded WebSocket frame shared, immutable, by every send queue it sits in.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/frame.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A complete server-to-client frame (header and payload in one allocation) with an
/// atomic reference count.
///
/// A broadcast encodes its frame once; every member's send queue then holds a
/// `shared_frame` pointing at the same bytes, so delivering to N members costs N
/// reference-count increments and no copies. Copying is cheap and thread safe; the bytes
/// never change after `make_frame` returns.
///
/// Thread safety: like `std::shared_ptr`, different `shared_frame` objects that share the
/// same bytes may be copied, read and destroyed from any threads at once; one object must
/// not be assigned in one thread while another thread uses it.
///
/// ```cpp
/// ws::shared_frame frame = ws::make_frame(ws::opcode::text, "hello, everyone");
/// for (const auto& conn : members)
///     conn->send(frame); // one encoding, one allocation, N references
/// ```
class shared_frame {
public:
    /// An empty frame: no bytes, `size() == 0`, false as a bool. Policies return it for
    /// "send nothing".
    shared_frame() noexcept = default;
    /// Shares `other`'s bytes (one atomic increment, no copy).
    shared_frame(const shared_frame& other) noexcept : block_(other.block_) { retain(); }
    /// Takes `other`'s bytes; `other` is left empty.
    shared_frame(shared_frame&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    /// Shares (or, from an rvalue, takes) `other`'s bytes and drops the ones held before.
    shared_frame& operator=(shared_frame other) noexcept {
        std::swap(block_, other.block_);
        return *this;
    }
    /// Drops this reference; the last one frees the bytes.
    ~shared_frame() { release(); }

    /// Encodes `payload` as one unmasked frame with the FIN bit set: a whole message as a
    /// server sends it, or a control frame, whose payload RFC 6455 limits to
    /// max_control_payload bytes (not checked here). `compressed` sets RSV1, for a message
    /// compressed by a negotiated extension. Allocates once; throws `std::bad_alloc` when it
    /// cannot.
    friend shared_frame make_frame(opcode op, std::string_view payload, bool compressed) {
        std::uint8_t header[max_frame_header_size];
        const std::size_t header_size = encode_frame_header(header, op, payload.size());
        if (compressed)
            header[0] |= 0x40;
        shared_frame frame{allocate(header_size + payload.size())};
        frame.block_->message = op == opcode::text || op == opcode::binary;
        std::memcpy(frame.mutable_data(), header, header_size);
        if (!payload.empty())
            std::memcpy(frame.mutable_data() + header_size, payload.data(), payload.size());
        return frame;
    }

    /// Bytes that are already wire-ready (an HTTP response head, a frame encoded elsewhere),
    /// copied into a shared buffer so they can wait in a send queue. Nothing is checked or
    /// encoded: the bytes go to the peer as they are.
    static shared_frame copy_of(std::string_view bytes) {
        shared_frame frame{allocate(bytes.size())};
        if (!bytes.empty())
            std::memcpy(frame.mutable_data(), bytes.data(), bytes.size());
        return frame;
    }

    /// The frame's bytes, ready for the wire; null for an empty frame. Valid as long as some
    /// `shared_frame` shares them.
    const std::uint8_t* data() const noexcept {
        return block_ ? reinterpret_cast<const std::uint8_t*>(block_ + 1) : nullptr;
    }
    /// The number of bytes, header included; 0 for an empty frame.
    std::size_t size() const noexcept { return block_ ? block_->size : 0; }
    /// data() and size() as a string view (empty for an empty frame).
    std::string_view bytes() const noexcept {
        return {reinterpret_cast<const char*>(data()), size()};
    }
    /// True when the frame holds bytes, false for a default-constructed or moved-from one.
    explicit operator bool() const noexcept { return block_ != nullptr; }

    /// True for a whole text or binary message made by `make_frame`: a frame an extension
    /// may transform (compress). False for control frames, `copy_of` bytes and empty frames.
    bool is_message() const noexcept { return block_ && block_->message; }
    /// The opcode of a frame made by `make_frame` (its first byte's low bits).
    opcode message_opcode() const noexcept { return static_cast<opcode>(data()[0] & 0x0F); }
    /// The payload of a frame made by `make_frame`: the bytes after its header.
    std::string_view payload() const noexcept {
        const std::uint8_t length_code = data()[1] & 0x7F;
        const std::size_t header = length_code < 126 ? 2 : length_code == 126 ? 4 : 10;
        return bytes().substr(header);
    }

    /// The frame derived from this one for `key` (for example, its compressed form under
    /// one set of extension parameters): `make(*this)` the first time, kept with these
    /// bytes, and the same frame for every later caller with the same key, from any thread.
    /// One derived frame is kept; a caller with another key gets `make(*this)` each time.
    /// This is how a broadcast is compressed once for all the members that can share it.
    /// The frame must not be empty.
    template <class Make>
    shared_frame derived(const void* key, Make&& make) const {
        block* kept = block_->derived.load(std::memory_order_acquire);
        if (kept == nullptr) {
            shared_frame made = make(*this);
            made.block_->derived_for = key;
            block* expected = nullptr;
            made.retain(); // the reference the slot holds
            if (block_->derived.compare_exchange_strong(expected, made.block_,
                                                        std::memory_order_acq_rel))
                return made;
            made.release(); // another thread was first: use its frame if it suits
            kept = expected;
            if (kept->derived_for != key)
                return made;
        } else if (kept->derived_for != key) {
            return make(*this);
        }
        shared_frame shared{kept};
        shared.retain();
        return shared;
    }

private:
    // The bytes follow this header in the same allocation.
    struct block {
        std::atomic<std::size_t> references;
        std::size_t size;
        std::atomic<block*> derived{nullptr}; // see derived(); holds a reference
        const void* derived_for = nullptr;    // the key this block was derived for
        bool message = false;                 // see is_message()
    };

    explicit shared_frame(block* b) noexcept : block_(b) {}

    static block* allocate(std::size_t size) {
        void* memory = ::operator new(sizeof(block) + size);
        block* b = ::new (memory) block;
        b->references.store(1, std::memory_order_relaxed);
        b->size = size;
        return b;
    }
    std::uint8_t* mutable_data() noexcept { return reinterpret_cast<std::uint8_t*>(block_ + 1); }

    void retain() noexcept {
        if (block_)
            block_->references.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        if (block_ && block_->references.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy(block_);
    }

    /// Frees `b` and drops its derived frame. Out of line: it runs once per frame, while
    /// release() is inlined wherever a frame is dropped.
    static void destroy(block* b) noexcept;

    block* block_ = nullptr;
};

inline void shared_frame::destroy(block* b) noexcept {
    const shared_frame derived{b->derived.load(std::memory_order_acquire)};
    b->~block();
    ::operator delete(b);
}

/// Declared again at namespace scope so that `ws::make_frame(...)` is found by ordinary
/// lookup, not only by argument-dependent lookup.
shared_frame make_frame(opcode op, std::string_view payload, bool compressed);

/// make_frame without RSV1: the frame of an uncompressed message or a control frame.
inline shared_frame make_frame(opcode op, std::string_view payload) {
    return make_frame(op, payload, false);
}

WSCHAT_END_NAMESPACE
