// libFuzzer target for UTF-8 validation (include/wschat/ws/utf8.hpp): ws::utf8_validator fed
// in chunks, ws::is_valid_utf8, and the parser's fused unmask-and-validate pass
// (ws::detail::unmask_and_validate in frame.hpp).
//
// Input: [chunk plan] [text ...] (chunk plan: see fuzz_common.hpp). Each chunk is copied
// into an allocation of exactly its size.
//
// The oracle is an independent reference written here from RFC 3629 §3-4 (it decodes code
// points arithmetically; it shares no table with the library). For every prefix of the text
// it knows whether the prefix is complete valid UTF-8, and whether it can still be extended
// to valid UTF-8 (a truncated sequence can be completed iff the range of code points its
// possible completions span meets the valid range for its length).
//
// Invariants (a broken one calls __builtin_trap()):
//   - after each chunk, feed() returns true exactly when the text so far can still be
//     completed (fail-fast, sticky), failed() is its negation, and complete() is true
//     exactly when the text so far is valid UTF-8;
//   - is_valid_utf8(text) equals the reference on the whole text;
//   - unmask_and_validate over a masked copy, fed in the same chunks with the matching key
//     offsets, gives the same answers and, when the text is valid, restores the text.
#include "fuzz_common.hpp"

#include <wschat/ws/frame.hpp>
#include <wschat/ws/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

using wschat_fuzz::check;

/// What the reference knows about a prefix.
enum class prefix_status : std::uint8_t {
    complete,   ///< valid UTF-8 that ends on a code point boundary
    incomplete, ///< valid so far, ends inside a code point that can still be completed
    invalid,    ///< no continuation can make it valid
};

/// The number of bytes of the sequence a lead byte starts (RFC 3629 §3), or 0 for a byte
/// that cannot start one (a continuation byte 10xxxxxx, or 11111xxx).
std::size_t sequence_length(std::uint8_t lead) {
    if (lead < 0x80)
        return 1;
    if ((lead & 0xE0) == 0xC0)
        return 2;
    if ((lead & 0xF0) == 0xE0)
        return 3;
    if ((lead & 0xF8) == 0xF0)
        return 4;
    return 0;
}

/// Whether the first `have` bytes of a `length`-byte sequence can be completed to the
/// encoding of a Unicode scalar value in its shortest form.
bool can_complete(const std::uint8_t* bytes, std::size_t have, std::size_t length) {
    static constexpr std::uint32_t lead_bits[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    static constexpr std::uint32_t shortest[5] = {0, 0, 0x80, 0x800, 0x10000};
    std::uint32_t low = bytes[0] & lead_bits[length];
    std::uint32_t high = low;
    for (std::size_t k = 1; k < length; ++k) {
        if (k < have) {
            if ((bytes[k] & 0xC0) != 0x80)
                return false;
            low = low << 6 | (bytes[k] & 0x3Fu);
            high = high << 6 | (bytes[k] & 0x3Fu);
        } else {
            low = low << 6;           // completed with 0x80 bytes
            high = high << 6 | 0x3Fu; // completed with 0xBF bytes
        }
    }
    // Every code point in [low, high] has a completion; keep those in the valid range.
    if (low < shortest[length])
        low = shortest[length];
    if (high > 0x10FFFF)
        high = 0x10FFFF;
    if (low > high)
        return false;
    const bool all_surrogates = low >= 0xD800 && high <= 0xDFFF;
    return !all_surrogates;
}

/// The status of every prefix: status[p] describes the first p bytes.
std::vector<prefix_status> reference_statuses(const std::uint8_t* text, std::size_t size) {
    std::vector<prefix_status> status(size + 1, prefix_status::invalid);
    status[0] = prefix_status::complete;
    std::size_t i = 0;
    while (i < size) {
        const std::size_t length = sequence_length(text[i]);
        if (length == 0)
            return status; // this prefix and all longer ones are invalid
        for (std::size_t have = 1; have <= length; ++have) {
            if (i + have > size)
                return status;
            if (!can_complete(text + i, have, length))
                return status;
            status[i + have] = have == length ? prefix_status::complete : prefix_status::incomplete;
        }
        i += length;
    }
    return status;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const wschat_fuzz::chunked_input input = wschat_fuzz::read_chunk_plan(data, size);
    const std::uint8_t* text = input.stream;
    const std::size_t text_size = input.stream_size;
    const std::vector<prefix_status> status = reference_statuses(text, text_size);

    // The RFC 6455 §5.7 masking key, so that unmasking the masked copy restores the text.
    const ws::mask_key key{0x37, 0xFA, 0x21, 0x3D};
    std::vector<std::uint8_t> masked(text, text + text_size);
    if (!masked.empty())
        ws::apply_mask(masked.data(), masked.size(), key);

    ws::utf8_validator validator;
    ws::utf8_validator fused_validator;
    check(validator.complete() && !validator.failed());
    wschat_fuzz::for_each_chunk(input, [&](std::size_t offset, std::size_t length) {
        const prefix_status expected = status[offset + length];
        const bool can_continue = expected != prefix_status::invalid;

        wschat_fuzz::exact_buffer chunk{text + offset, length};
        check(validator.feed(chunk.data(), chunk.size()) == can_continue);
        check(validator.failed() == !can_continue);
        check(validator.complete() == (expected == prefix_status::complete));
        check(length == 0 || std::memcmp(chunk.data(), text + offset, length) == 0);

        wschat_fuzz::exact_buffer masked_chunk{masked.data() + offset, length};
        const bool fused = ws::detail::unmask_and_validate(masked_chunk.data(), length, key, offset,
                                                           fused_validator);
        check(fused == can_continue);
        check(fused_validator.complete() == (expected == prefix_status::complete));
        if (fused && length != 0)
            check(std::memcmp(masked_chunk.data(), text + offset, length) == 0);
        return true;
    });

    const std::string_view whole{reinterpret_cast<const char*>(text), text_size};
    check(ws::is_valid_utf8(whole) == (status[text_size] == prefix_status::complete));
    validator.reset();
    check(validator.complete() && !validator.failed());
    return 0;
}
