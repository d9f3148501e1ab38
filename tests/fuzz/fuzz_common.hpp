// Shared by the libFuzzer targets in tests/fuzz/: how an input is split into a chunk plan
// and the byte stream the target parses, so every target feeds its parser in pieces whose
// sizes the fuzzer controls.
//
// Input layout after the target's own leading byte(s):
//
//   [n] [size_1] ... [size_k] [stream ...]      k = n & 0x0F (0..15)
//
// The stream is fed in chunks of size_1, size_2, ..., size_k, size_1, ... bytes (the last
// chunk is cut at the end of the stream). A size of 0 means "everything that is left", and
// an empty plan (k = 0) feeds the whole stream at once. tests/fuzz/make_corpus.py writes
// seeds in this layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace wschat_fuzz {

/// Stops the fuzzer on a broken invariant; libFuzzer reports SIGILL with the input.
[[noreturn]] inline void fail() {
    __builtin_trap();
}

/// Traps unless `condition` holds.
inline void check(bool condition) {
    if (!condition)
        fail();
}

/// A chunk plan and the stream it applies to (a view into the fuzzer's input).
struct chunked_input {
    std::vector<std::size_t> plan; ///< chunk sizes, cycled; 0 = the rest; empty = all at once
    const std::uint8_t* stream = nullptr;
    std::size_t stream_size = 0;
};

/// Reads the chunk plan at the front of `data`; a truncated plan gives an empty stream.
inline chunked_input read_chunk_plan(const std::uint8_t* data, std::size_t size) {
    chunked_input input;
    if (size == 0)
        return input;
    const std::size_t count = data[0] & 0x0F;
    std::size_t pos = 1;
    for (std::size_t i = 0; i < count && pos < size; ++i, ++pos)
        input.plan.push_back(data[pos]);
    input.stream = data + pos;
    input.stream_size = size - pos;
    return input;
}

/// Calls `feed(offset, length)` for consecutive chunks covering the stream; stops early when
/// `feed` returns false. An empty stream still gets one call with length 0.
template <class Feed>
void for_each_chunk(const chunked_input& input, Feed&& feed) {
    std::size_t offset = 0;
    std::size_t step = 0;
    do {
        std::size_t length = input.stream_size - offset;
        if (!input.plan.empty()) {
            const std::size_t planned = input.plan[step++ % input.plan.size()];
            if (planned != 0 && planned < length)
                length = planned;
        }
        if (!feed(offset, length))
            return;
        offset += length;
    } while (offset < input.stream_size);
}

/// A heap copy of `size` bytes in an allocation of exactly that size, so AddressSanitizer
/// reports any read or write past the chunk the parser was given.
class exact_buffer {
public:
    exact_buffer(const std::uint8_t* data, std::size_t size)
        : data_{static_cast<std::uint8_t*>(std::malloc(size))}, size_{size} {
        check(size == 0 || data_ != nullptr);
        if (size != 0)
            std::memcpy(data_, data, size);
    }
    exact_buffer(const exact_buffer&) = delete;
    exact_buffer& operator=(const exact_buffer&) = delete;
    ~exact_buffer() { std::free(data_); }

    std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

private:
    std::uint8_t* data_;
    std::size_t size_;
};

} // namespace wschat_fuzz
