// wschat — RFC 6455 §5 framing: header encoding, masking, and the incremental message parser.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/utf8.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The frame opcodes of RFC 6455 §5.2 (the ones a peer may send; others are protocol errors).
enum class opcode : std::uint8_t {
    continuation = 0x0, ///< the next fragment of the message in progress
    text = 0x1,         ///< the first frame of a UTF-8 text message
    binary = 0x2,       ///< the first frame of a binary message
    close = 0x8,        ///< starts or answers the closing handshake
    ping = 0x9,         ///< asks the peer for a pong with the same payload
    pong = 0xA,         ///< answers a ping (or is a unidirectional heartbeat)
};

/// True for close, ping and pong: frames that may not be fragmented, carry at most 125
/// bytes, and may arrive between the fragments of a message.
constexpr bool is_control(opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

/// The 4-byte masking key a client puts in each frame header (RFC 6455 §5.3).
using mask_key = std::array<std::uint8_t, 4>;

/// The longest frame header: 2 bytes + 8-byte length + 4-byte masking key.
constexpr std::size_t max_frame_header_size = 14;

/// The largest payload of a close, ping or pong frame.
constexpr std::size_t max_control_payload = 125;

namespace detail {

/// True on a little-endian target; a constant the compiler folds away.
inline bool little_endian() noexcept {
    const std::uint16_t one = 1;
    std::uint8_t first_byte = 0;
    std::memcpy(&first_byte, &one, 1);
    return first_byte == 1;
}

/// The masking key repeated over 8 bytes, starting at key byte `key_offset % 4`, laid out
/// in memory order so that XOR with a word loaded from the payload masks 8 bytes at once.
inline std::uint64_t mask_word(const mask_key& key, std::size_t key_offset) noexcept {
    std::uint32_t key_bits = 0;
    std::memcpy(&key_bits, key.data(), sizeof key_bits);
    const std::uint64_t word = std::uint64_t{key_bits} << 32 | key_bits;
    // Starting `rotation` key bytes later is a rotation of the word towards the byte that
    // comes first in memory: the low end on little-endian targets, the high end otherwise.
    const auto rotation = static_cast<unsigned>(8 * (key_offset % 4));
    if (rotation == 0)
        return word;
    if (little_endian())
        return word >> rotation | word << (64 - rotation);
    return word << rotation | word >> (64 - rotation);
}

/// Stores 8 bytes to any address (memcpy compiles to one unaligned store).
inline void store_word(std::uint8_t* bytes, std::uint64_t word) noexcept {
    std::memcpy(bytes, &word, sizeof word);
}

/// XORs `size` bytes with `key_word` (from mask_word) repeated.
inline void xor_words(std::uint8_t* data, std::size_t size, std::uint64_t key_word) noexcept {
    std::size_t i = 0;
    // Four independent words per step: compilers turn this into vector or unrolled code,
    // where a one-word loop runs at a fraction of memory bandwidth with g++.
    for (; i + 32 <= size; i += 32)
        for (std::size_t w = 0; w < 32; w += 8)
            store_word(data + i + w, load_word(data + i + w) ^ key_word);
    for (; i + 8 <= size; i += 8)
        store_word(data + i, load_word(data + i) ^ key_word);
    // 8 is a multiple of 4, so the tail starts at the same key position as every word did.
    std::array<std::uint8_t, 8> key_bytes{};
    std::memcpy(key_bytes.data(), &key_word, sizeof key_word);
    for (std::size_t j = 0; i < size; ++i, ++j)
        data[i] ^= key_bytes[j];
}

} // namespace detail

/// XORs `size` bytes at `data` with the masking key, 8 bytes at a time.
///
/// `key_offset` is how many payload bytes of this frame preceded `data`, so a payload
/// received in pieces can be unmasked piece by piece. Masking and unmasking are the same
/// operation.
inline void apply_mask(std::uint8_t* data, std::size_t size, const mask_key& key,
                       std::size_t key_offset = 0) noexcept {
    detail::xor_words(data, size, detail::mask_word(key, key_offset));
}

/// Writes a frame header into `out`, which must have room for max_frame_header_size bytes,
/// and returns its length (2 to 14).
///
/// The payload length takes its shortest encoding (7, 16 or 64 bits), as RFC 6455 §5.2
/// requires. With a `key` the MASK bit is set and the key appended; the caller masks the
/// payload. `payload_size` must be below 2^63.
inline std::size_t encode_frame_header(std::uint8_t* out, opcode op, std::uint64_t payload_size,
                                       bool fin = true, const mask_key* key = nullptr) noexcept {
    out[0] = static_cast<std::uint8_t>((fin ? 0x80U : 0U) | static_cast<std::uint8_t>(op));
    const std::uint8_t mask_bit = key != nullptr ? 0x80 : 0x00;
    std::size_t length = 2;
    if (payload_size < 126) {
        out[1] = static_cast<std::uint8_t>(mask_bit | payload_size);
    } else if (payload_size <= 0xFFFF) {
        out[1] = static_cast<std::uint8_t>(mask_bit | 126U);
        out[2] = static_cast<std::uint8_t>(payload_size >> 8);
        out[3] = static_cast<std::uint8_t>(payload_size);
        length = 4;
    } else {
        out[1] = static_cast<std::uint8_t>(mask_bit | 127U);
        for (std::size_t i = 0; i < 8; ++i)
            out[2 + i] = static_cast<std::uint8_t>(payload_size >> (8 * (7 - i)));
        length = 10;
    }
    if (key != nullptr) {
        std::memcpy(out + length, key->data(), key->size());
        length += key->size();
    }
    return length;
}

/// A whole unmasked frame (server → client): header + payload in one string.
inline std::string encode_frame(opcode op, std::string_view payload, bool fin = true) {
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = encode_frame_header(header.data(), op, payload.size(), fin);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size);
    frame.append(payload);
    return frame;
}

/// A whole masked frame (client → server), for clients and tests.
inline std::string encode_masked_frame(opcode op, std::string_view payload, const mask_key& key,
                                       bool fin = true) {
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size =
        encode_frame_header(header.data(), op, payload.size(), fin, &key);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size);
    frame.append(payload);
    apply_mask(reinterpret_cast<std::uint8_t*>(&frame[header_size]), payload.size(), key);
    return frame;
}

/// The payload of a Close frame: `code` big-endian, then `reason`.
///
/// The reason is cut to 123 bytes (the 125-byte control limit minus the code) at a UTF-8
/// code point boundary, so a valid reason stays valid. close_code::no_status (1005), which
/// means "no code", gives an empty payload.
inline std::string close_payload(std::uint16_t code, std::string_view reason) {
    if (code == static_cast<std::uint16_t>(close_code::no_status))
        return {};
    constexpr std::size_t max_reason = max_control_payload - 2;
    if (reason.size() > max_reason) {
        std::size_t cut = max_reason;
        // Back off over continuation bytes (10xxxxxx) to the start of the cut code point.
        while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80)
            --cut;
        reason = reason.substr(0, cut);
    }
    std::string payload;
    payload.reserve(2 + reason.size());
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xFF);
    payload.append(reason);
    return payload;
}

/// Which end of the connection a message_parser reads for: a server requires every
/// incoming frame to be masked, a client requires that none is (RFC 6455 §5.1).
enum class role : std::uint8_t {
    server, ///< reads a client's frames: each must be masked
    client, ///< reads a server's frames: none may be masked
};

namespace detail {

/// Unmasks the 64 bytes at `block` in place; true when they are all ASCII.
inline bool unmask_ascii_block(std::uint8_t* block, std::uint64_t key_word) noexcept {
#if defined(__GNUC__)
    // Four 16-byte vectors (SSE2 on x86-64, NEON on ARM) through GCC's and Clang's vector
    // extension: without it g++ -O2 keeps this loop in 8-byte words, at half the speed of
    // the binary unmasking beside it (and of -O3's code for the same loop).
    using vector = std::uint64_t __attribute__((vector_size(16)));
    constexpr std::size_t lane = sizeof(vector);
    const vector key = {key_word, key_word};
    vector a, b, c, d;
    std::memcpy(&a, block, lane);
    std::memcpy(&b, block + lane, lane);
    std::memcpy(&c, block + 2 * lane, lane);
    std::memcpy(&d, block + 3 * lane, lane);
    a ^= key;
    b ^= key;
    c ^= key;
    d ^= key;
    std::memcpy(block, &a, lane);
    std::memcpy(block + lane, &b, lane);
    std::memcpy(block + 2 * lane, &c, lane);
    std::memcpy(block + 3 * lane, &d, lane);
    const vector any = (a | b) | (c | d);
    return ((any[0] | any[1]) & ascii_high_bits) == 0;
#else
    std::uint64_t any = 0;
    for (std::size_t w = 0; w < 64; w += 8) {
        const std::uint64_t word = load_word(block + w) ^ key_word;
        store_word(block + w, word);
        any |= word;
    }
    return (any & ascii_high_bits) == 0;
#endif
}

/// Unmasks `size` bytes in place and validates them as UTF-8 in the same pass, while each
/// 64-byte block is still in registers or L1. Blocks that are pure ASCII and start between
/// code points skip the validator entirely. False as soon as the text is invalid.
inline bool unmask_and_validate(std::uint8_t* data, std::size_t size, const mask_key& key,
                                std::size_t key_offset, utf8_validator& validator) noexcept {
    constexpr std::size_t block = 64;
    const std::uint64_t key_word = mask_word(key, key_offset);
    bool between_code_points = validator.complete();
    std::size_t i = 0;
    for (; i + block <= size; i += block) {
        if (unmask_ascii_block(data + i, key_word) && between_code_points)
            continue;
        if (!validator.feed(data + i, block))
            return false;
        between_code_points = validator.complete();
    }
    // Whole blocks are a multiple of 4 bytes, so key_word still lines up for the tail.
    xor_words(data + i, size - i, key_word);
    return validator.feed(data + i, size - i);
}

} // namespace detail

namespace detail {

/// Whether a message_parser handler takes compressed messages (`on_compressed_message`).
template <class Handler, class = void>
struct takes_compressed : std::false_type {};
template <class Handler>
struct takes_compressed<Handler,
                        std::void_t<decltype(std::declval<Handler&>().on_compressed_message(
                            opcode::text, std::string_view{}))>> : std::true_type {};

} // namespace detail

/// Incremental frame parser and message reassembler (RFC 6455 §5): bytes in, events out.
///
/// feed() takes whatever the socket delivered — any number of frames, or any piece of one —
/// unmasks payloads in place, enforces every framing rule, validates text as UTF-8 as the
/// bytes arrive, reassembles fragmented messages, and calls the handler once per message or
/// control frame. A message that arrives unfragmented and whole inside one feed() is passed
/// as a view into the caller's buffer (no copy); any other message is collected in an
/// internal buffer that keeps its capacity between messages, so a connection does not
/// allocate in steady state. That buffer never holds more than max_message_size() bytes.
///
/// Once a close frame or an error has been seen the parser is done() and ignores input.
/// Not thread-safe: one parser per connection, used by its reading strand.
///
/// ```
/// struct handler {
///     void on_message(ws::opcode op, std::string_view payload);
///     void on_ping(std::string_view payload);
///     void on_pong(std::string_view payload);
///     void on_close(std::uint16_t code, std::string_view reason);
///     void on_error(std::error_code ec);
/// } h;
/// ws::message_parser parser{ws::role::server, 1 << 20};
/// std::size_t used = parser.feed(buffer, bytes_read, h);
/// ```
class message_parser {
public:
    /// A parser for the given `r`ole that fails messages larger than `max_message_size`
    /// bytes (default 16 MiB) with error::message_too_big.
    explicit message_parser(role r = role::server,
                            std::uint64_t max_message_size = 16 * 1024 * 1024) noexcept
        : max_message_size_{max_message_size}, role_{r} {}

    /// Changes the message size limit; applies from the next frame header on.
    void set_max_message_size(std::uint64_t size) noexcept { max_message_size_ = size; }

    /// The largest message, in payload bytes over all its frames, that is accepted.
    std::uint64_t max_message_size() const noexcept { return max_message_size_; }

    /// Lets the first frame of a data message set RSV1, as permessage-deflate (RFC 7692)
    /// does once negotiated; off by default, when RSV1 fails the connection like the other
    /// reserved bits. RSV1 on a control or continuation frame fails it either way.
    ///
    /// A message whose first frame had RSV1 goes to the handler's
    /// `on_compressed_message(opcode op, std::string_view payload)` still compressed and
    /// unvalidated: the receiver inflates it with the size limit and validates text after.
    /// Its compressed size may exceed max_message_size() by deflate's worst-case overhead
    /// on incompressible data (1/1024 of it, plus 64 bytes). A handler without that member
    /// gets no compressed message: the connection fails with error::reserved_bits instead.
    void allow_compressed(bool allowed) noexcept { compression_allowed_ = allowed; }

    /// Parses `size` bytes at `data`, unmasking them in place, and calls on `handler`:
    ///
    ///   void on_message(opcode op, std::string_view payload);
    ///       op is text or binary; the whole reassembled message; valid during the call only.
    ///   void on_ping(std::string_view payload);
    ///   void on_pong(std::string_view payload);
    ///   void on_compressed_message(opcode op, std::string_view payload);
    ///       optional; only after allow_compressed(true), for messages sent with RSV1.
    ///   void on_close(std::uint16_t code, std::string_view reason);
    ///       code 1005 when the frame had no payload; the parser is done() afterwards.
    ///   void on_error(std::error_code ec);
    ///       a ws::error; the connection must be failed with close_code_for(ec); done().
    ///
    /// Control frames may arrive between fragments and are delivered at once. Returns the
    /// bytes consumed: all of them, unless a close frame or an error ends the stream; then
    /// the bytes after the close frame (or after the offending header or payload piece) are
    /// not consumed, and later calls return 0. The handler must not call feed() itself.
    template <class Handler>
    std::size_t feed(std::uint8_t* data, std::size_t size, Handler& handler);

    /// True once a close frame or an error has been seen.
    bool done() const noexcept { return done_; }

    /// The payload bytes held in the internal buffer for a message not yet complete.
    std::size_t buffered_bytes() const noexcept { return carry_ ? carry_->message.size() : 0; }

    /// Frees the reassembly buffer, and what else a split frame needed, unless a message,
    /// frame header or control frame is partial (for example when a connection goes idle
    /// after a large message).
    void release_memory() noexcept {
        const bool partial = header_received_ > 0 ||
                             (stage_ == stage::payload && is_control(frame_opcode_)) ||
                             (carry_ && !carry_->message.empty());
        if (!partial)
            carry_.reset();
    }

private:
    enum class stage : std::uint8_t { header, payload };

    /// What a frame or message split across feeds leaves for the next ones. Allocated only
    /// then, as most frames arrive whole, so that a parser between messages is small:
    /// every connection holds one.
    struct carry_over {
        std::string message; // the data message's bytes, unless it is delivered in place
        std::array<std::uint8_t, max_control_payload> control;
        std::array<std::uint8_t, max_frame_header_size> header;
    };
    carry_over& carried() {
        if (!carry_)
            carry_ = std::make_unique<carry_over>();
        return *carry_;
    }

    /// The smallest capacity the reassembly buffer grows to, so a message arriving in many
    /// small pieces does not reallocate for each one.
    static constexpr std::size_t min_buffer_growth = 256;

    template <class Handler>
    bool read_header(const std::uint8_t* data, std::size_t size, std::size_t& pos,
                     Handler& handler);
    template <class Handler>
    bool read_payload(std::uint8_t* data, std::size_t size, std::size_t& pos, Handler& handler);
    template <class Handler>
    bool read_data_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                           Handler& handler);
    template <class Handler>
    bool read_control_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                              Handler& handler);
    template <class Handler>
    bool deliver_control(std::string_view payload, Handler& handler);
    template <class Handler>
    bool deliver_message(opcode op, std::string_view payload, Handler& handler);
    template <class Handler>
    bool fail(std::error_code ec, Handler& handler);

    std::error_code check_first_header_bytes(std::uint8_t first,
                                             std::uint8_t second) const noexcept;
    std::error_code decode_header(const std::uint8_t* header) noexcept;
    bool unmask_data(std::uint8_t* data, std::size_t size) noexcept;
    void reserve_for(std::size_t extra);
    void end_message() noexcept;
    std::uint64_t message_limit() const noexcept;

    /// Header length (2, 4, 10, + 4 when masked) announced by the second header byte.
    static std::size_t header_length(std::uint8_t second_byte) noexcept {
        const auto length_code = static_cast<std::uint8_t>(second_byte & 0x7F);
        const std::size_t length_bytes = length_code == 126 ? 2 : length_code == 127 ? 8 : 0;
        return 2 + length_bytes + ((second_byte & 0x80) != 0 ? 4 : 0);
    }

    // Eight-byte members first, then the small ones, so that no padding separates them:
    // every connection holds a parser.
    std::uint64_t max_message_size_;

    // The frame whose payload is being received.
    std::uint64_t frame_length_ = 0;
    std::uint64_t frame_received_ = 0;
    // The data message being received (over one or several frames): payload bytes of its
    // completed frames.
    std::uint64_t message_length_ = 0;
    std::unique_ptr<carry_over> carry_; // see carried()

    mask_key frame_key_{};
    std::uint8_t header_received_ = 0; // bytes of a header split across feeds, in carry_
    opcode frame_opcode_ = opcode::continuation;
    bool frame_fin_ = false;
    bool frame_masked_ = false;
    opcode message_opcode_ = opcode::text;
    bool message_open_ = false;       // a fragmented message awaits continuation frames
    bool message_compressed_ = false; // its first frame had RSV1 (permessage-deflate)
    bool compression_allowed_ = false;
    utf8_validator message_utf8_;
    role role_;
    stage stage_ = stage::header;
    bool done_ = false;
};

template <class Handler>
std::size_t message_parser::feed(std::uint8_t* data, std::size_t size, Handler& handler) {
    std::size_t pos = 0;
    while (!done_) {
        if (stage_ == stage::header && !read_header(data, size, pos, handler))
            break;
        if (!read_payload(data, size, pos, handler))
            break;
    }
    return pos;
}

/// Collects header bytes; true once the whole header is in and valid (stage_ is then
/// payload), false when more bytes are needed or the header broke a rule.
template <class Handler>
bool message_parser::read_header(const std::uint8_t* data, std::size_t size, std::size_t& pos,
                                 Handler& handler) {
    // Fast path: a header wholly inside `data` is decoded where it lies.
    const std::size_t available = size - pos;
    if (header_received_ == 0 && available >= 2 && available >= header_length(data[pos + 1])) {
        const std::uint8_t* header = data + pos;
        if (const std::error_code ec = check_first_header_bytes(header[0], header[1])) {
            pos += 2;
            return fail(ec, handler);
        }
        pos += header_length(header[1]);
        if (const std::error_code ec = decode_header(header))
            return fail(ec, handler);
        stage_ = stage::payload;
        return true;
    }

    // The first two bytes carry every rule but the length ones and say how long the header
    // is; check them as soon as they are in, so a bad frame fails before its length arrives.
    std::uint8_t* header = carried().header.data();
    if (header_received_ < 2) {
        const std::size_t take = std::min<std::size_t>(2 - header_received_, available);
        if (take > 0)
            std::memcpy(header + header_received_, data + pos, take);
        header_received_ = static_cast<std::uint8_t>(header_received_ + take);
        pos += take;
        if (header_received_ < 2)
            return false;
        if (const std::error_code ec = check_first_header_bytes(header[0], header[1]))
            return fail(ec, handler);
    }
    const std::size_t length = header_length(header[1]);
    const std::size_t take = std::min(length - header_received_, size - pos);
    if (take > 0)
        std::memcpy(header + header_received_, data + pos, take);
    header_received_ = static_cast<std::uint8_t>(header_received_ + take);
    pos += take;
    if (header_received_ < length)
        return false;
    header_received_ = 0;
    if (const std::error_code ec = decode_header(header))
        return fail(ec, handler);
    stage_ = stage::payload;
    return true;
}

/// Consumes payload bytes of the current frame; true when the frame is complete and the
/// parser may read the next header.
template <class Handler>
bool message_parser::read_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                  Handler& handler) {
    if (is_control(frame_opcode_))
        return read_control_payload(data, size, pos, handler);
    return read_data_payload(data, size, pos, handler);
}

template <class Handler>
bool message_parser::read_data_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                       Handler& handler) {
    const std::size_t available = size - pos;
    const std::uint64_t remaining = frame_length_ - frame_received_;

    // Fast path: an unfragmented message wholly in the caller's buffer is delivered in place.
    const bool whole_message_here = frame_fin_ && frame_opcode_ != opcode::continuation &&
                                    frame_received_ == 0 && remaining <= available;
    if (whole_message_here) {
        std::uint8_t* payload = data + pos;
        const auto payload_size = static_cast<std::size_t>(remaining);
        const bool valid = unmask_data(payload, payload_size);
        pos += payload_size;
        if (!valid || (frame_opcode_ == opcode::text && !message_utf8_.complete()))
            return fail(error::invalid_utf8, handler);
        stage_ = stage::header;
        message_utf8_.reset();
        const bool delivered = deliver_message(
            frame_opcode_, {reinterpret_cast<const char*>(payload), payload_size}, handler);
        message_compressed_ = false;
        return delivered;
    }

    const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, available));
    if (piece > 0) {
        const bool valid = unmask_data(data + pos, piece);
        if (!valid) {
            pos += piece;
            return fail(error::invalid_utf8, handler);
        }
        reserve_for(piece);
        carry_->message.append(reinterpret_cast<const char*>(data + pos), piece);
        pos += piece;
        frame_received_ += piece;
    }
    if (frame_received_ < frame_length_)
        return false;

    stage_ = stage::header;
    message_length_ += frame_length_;
    if (!frame_fin_)
        return true;
    if (message_opcode_ == opcode::text && !message_utf8_.complete())
        return fail(error::invalid_utf8, handler);
    // No carry-over when every fragment was empty.
    const bool delivered = deliver_message(
        message_opcode_, carry_ ? std::string_view{carry_->message} : std::string_view{}, handler);
    end_message();
    return delivered;
}

template <class Handler>
bool message_parser::read_control_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                          Handler& handler) {
    // A control payload is at most 125 bytes, so these casts cannot truncate.
    const auto remaining = static_cast<std::size_t>(frame_length_ - frame_received_);
    const std::size_t piece = std::min(remaining, size - pos);
    std::uint8_t* bytes = data + pos;
    if (frame_masked_)
        apply_mask(bytes, piece, frame_key_, static_cast<std::size_t>(frame_received_));
    pos += piece;

    if (frame_received_ == 0 && piece == remaining) {
        // The whole payload is in the caller's buffer: deliver it from there.
        stage_ = stage::header;
        return deliver_control({reinterpret_cast<const char*>(bytes), piece}, handler);
    }
    std::uint8_t* payload = carried().control.data();
    if (piece > 0)
        std::memcpy(payload + frame_received_, bytes, piece);
    frame_received_ += piece;
    if (frame_received_ < frame_length_)
        return false;
    stage_ = stage::header;
    return deliver_control(
        {reinterpret_cast<const char*>(payload), static_cast<std::size_t>(frame_length_)}, handler);
}

/// Dispatches a complete control frame; false when it ends the stream.
template <class Handler>
bool message_parser::deliver_control(std::string_view payload, Handler& handler) {
    switch (frame_opcode_) {
    case opcode::ping:
        handler.on_ping(payload);
        return true;
    case opcode::pong:
        handler.on_pong(payload);
        return true;
    default:
        break;
    }
    // A close frame: empty, or a 2-byte code followed by a UTF-8 reason (RFC 6455 §5.5.1).
    if (payload.size() == 1)
        return fail(error::bad_close_payload, handler);
    std::uint16_t code = static_cast<std::uint16_t>(close_code::no_status);
    std::string_view reason;
    if (!payload.empty()) {
        code = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                          static_cast<unsigned char>(payload[1]));
        if (!is_valid_wire_close_code(code))
            return fail(error::bad_close_code, handler);
        reason = payload.substr(2);
        if (!is_valid_utf8(reason))
            return fail(error::invalid_close_reason, handler);
    }
    done_ = true;
    handler.on_close(code, reason);
    return false;
}

/// Hands a complete data message to the handler, compressed or not; false when the handler
/// cannot take a compressed one and the stream ended.
template <class Handler>
bool message_parser::deliver_message(opcode op, std::string_view payload, Handler& handler) {
    if constexpr (detail::takes_compressed<Handler>::value) {
        if (message_compressed_) {
            handler.on_compressed_message(op, payload);
            return true;
        }
    } else if (message_compressed_) {
        return fail(error::reserved_bits, handler);
    }
    handler.on_message(op, payload);
    return true;
}

/// Ends the stream with `ec`; always false, so callers can `return fail(...)`.
template <class Handler>
bool message_parser::fail(std::error_code ec, Handler& handler) {
    done_ = true;
    handler.on_error(ec);
    return false;
}

/// The checks that need only the first two header bytes (RFC 6455 §5.2, §5.4, §5.5).
inline std::error_code
message_parser::check_first_header_bytes(std::uint8_t first, std::uint8_t second) const noexcept {
    const auto op = static_cast<opcode>(first & 0x0F);
    const auto reserved = static_cast<std::uint8_t>(first & 0x70);
    // RSV1 is permessage-deflate's "compressed" bit, which only a message's first frame
    // carries (RFC 7692 §6.1).
    const bool compressed_start =
        reserved == 0x40 && compression_allowed_ && (op == opcode::text || op == opcode::binary);
    if (reserved != 0 && !compressed_start)
        return error::reserved_bits;
    switch (op) {
    case opcode::continuation:
    case opcode::text:
    case opcode::binary:
    case opcode::close:
    case opcode::ping:
    case opcode::pong:
        break;
    default:
        return error::unknown_opcode;
    }
    const bool masked = (second & 0x80) != 0;
    if (role_ == role::server && !masked)
        return error::unmasked_frame;
    if (role_ == role::client && masked)
        return error::masked_frame;
    const bool fin = (first & 0x80) != 0;
    if (is_control(op)) {
        if (!fin)
            return error::fragmented_control;
        if (static_cast<std::size_t>(second & 0x7F) > max_control_payload)
            return error::control_too_long;
    } else if (op == opcode::continuation) {
        if (!message_open_)
            return error::unexpected_continuation;
    } else if (message_open_) {
        return error::expected_continuation;
    }
    return {};
}

/// Decodes a complete, first-bytes-checked header into the frame_ fields and starts the message
/// for a text or binary frame. Length rules and the size limit are checked here, before
/// any payload byte is accepted.
inline std::error_code message_parser::decode_header(const std::uint8_t* header) noexcept {
    frame_fin_ = (header[0] & 0x80) != 0;
    frame_opcode_ = static_cast<opcode>(header[0] & 0x0F);
    frame_masked_ = (header[1] & 0x80) != 0;
    const auto length_code = static_cast<std::uint8_t>(header[1] & 0x7F);
    std::size_t next = 2;
    std::uint64_t length = length_code;
    if (length_code == 126) {
        length = std::uint64_t{header[2]} << 8 | header[3];
        next = 4;
        if (length < 126)
            return error::non_minimal_length;
    } else if (length_code == 127) {
        length = 0;
        for (std::size_t i = 2; i < 10; ++i)
            length = length << 8 | header[i];
        next = 10;
        if ((length >> 63) != 0)
            return error::length_msb_set;
        if (length <= 0xFFFF)
            return error::non_minimal_length;
    }
    if (frame_masked_)
        std::memcpy(frame_key_.data(), header + next, frame_key_.size());
    frame_length_ = length;
    frame_received_ = 0;

    if (is_control(frame_opcode_))
        return {};
    if (frame_opcode_ != opcode::continuation) {
        message_opcode_ = frame_opcode_;
        message_compressed_ = (header[0] & 0x40) != 0;
    }
    // Written so that no sum can overflow, even if the limit was lowered mid-message.
    const std::uint64_t limit = message_limit();
    if (message_length_ > limit || length > limit - message_length_)
        return error::message_too_big;
    message_open_ = !frame_fin_;
    return {};
}

/// Unmasks a piece of the current data frame's payload in place and, for text, validates
/// it; false when the text is not valid UTF-8.
inline bool message_parser::unmask_data(std::uint8_t* data, std::size_t size) noexcept {
    const auto key_offset = static_cast<std::size_t>(frame_received_ % 4);
    // Compressed text is validated once inflated.
    if (message_opcode_ == opcode::text && !message_compressed_) {
        if (frame_masked_)
            return detail::unmask_and_validate(data, size, frame_key_, key_offset, message_utf8_);
        return message_utf8_.feed(data, size);
    }
    if (frame_masked_)
        apply_mask(data, size, frame_key_, key_offset);
    return true;
}

/// Makes room for `extra` more bytes in the reassembly buffer, growing geometrically but
/// never past what the message can still legally reach, so the buffer's capacity stays
/// within max_message_size() (std::string::reserve alone may double past it).
inline void message_parser::reserve_for(std::size_t extra) {
    std::string& message = carried().message;
    const std::size_t needed = message.size() + extra;
    if (needed <= message.capacity())
        return;
    // The header check guarantees message_length_ + frame_length_ <= max_message_size_.
    const std::uint64_t reachable =
        frame_fin_ ? message_length_ + frame_length_ : max_message_size_;
    std::uint64_t target = std::max<std::uint64_t>(needed, 2 * message.capacity());
    target = std::max<std::uint64_t>(target, min_buffer_growth);
    target = std::max<std::uint64_t>(std::min(target, reachable), needed);
    std::string grown;
    grown.reserve(static_cast<std::size_t>(target));
    grown.append(message);
    message.swap(grown);
}

/// Forgets the delivered message, keeping the buffer's capacity for the next one.
inline void message_parser::end_message() noexcept {
    if (carry_)
        carry_->message.clear();
    message_length_ = 0;
    message_open_ = false;
    message_compressed_ = false;
    message_utf8_.reset();
}

/// The most payload bytes the message in progress may have on the wire: the size limit,
/// plus deflate's worst-case growth of incompressible data when it is compressed (the limit
/// on its inflated size is the receiver's to enforce).
inline std::uint64_t message_parser::message_limit() const noexcept {
    if (!message_compressed_)
        return max_message_size_;
    const std::uint64_t overhead = (max_message_size_ >> 10) + 64;
    return max_message_size_ > UINT64_MAX - overhead ? UINT64_MAX : max_message_size_ + overhead;
}

WSCHAT_END_NAMESPACE
