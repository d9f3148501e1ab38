// wschat — permessage-deflate (RFC 7692): negotiation, and the compressor and decompressor of
// messages. Needs zlib; the core never includes this header.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/compression.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/extensions.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The extension's name in Sec-WebSocket-Extensions.
inline constexpr std::string_view permessage_deflate_name = "permessage-deflate";

/// What one side wants from permessage-deflate: the parameters of RFC 7692 §7.1 as a server
/// answers them or a client offers them.
///
/// The defaults give the smallest memory per connection that every browser accepts: neither
/// side keeps its compression context between messages, so no zlib state lives in a
/// connection between messages (a server compresses a broadcast once for every member, and
/// decompresses with one inflater per thread). Context takeover compresses small, similar
/// messages better at the cost of a zlib stream per connection and direction (about
/// 2^(window_bits+2) + 2^(mem_level+9) bytes to compress, 2^window_bits + 7 KiB to
/// decompress).
struct deflate_options {
    /// Whether the server keeps its compression context from one message to the next.
    /// Default false: one compressed frame can then go to many members.
    bool server_context_takeover = false;
    /// Whether the client may keep its context. Default false: the server asks for
    /// `client_no_context_takeover`, so it needs no inflater per connection.
    bool client_context_takeover = false;
    /// The LZ77 window the server compresses with, 9 to 15 (2^bits bytes). Default 15. An
    /// offer that limits the server to less than 9 bits is declined: zlib cannot compress
    /// with a 256-byte window.
    std::uint8_t server_max_window_bits = 15;
    /// The window the server asks the client to compress with, when the client says it can
    /// be limited (`client_max_window_bits` in its offer), 8 to 15. Default 15. Matters only
    /// with client context takeover, where it bounds the server's inflater per connection.
    std::uint8_t client_max_window_bits = 15;
    /// zlib's memLevel for compression, 1 to 9: memory against speed. Default 8 (zlib's).
    std::uint8_t mem_level = 8;
    /// zlib's compression level, 1 to 9. Default 6 (zlib's): chat text gains little beyond.
    std::uint8_t level = 6;
    /// Messages with fewer payload bytes than this are sent uncompressed. Default 128: without
    /// a shared context a short chat line barely shrinks, and its frame would cost the
    /// compressor's time for a few bytes.
    std::size_t min_size = 128;
};

/// The parameters both sides agreed on (RFC 7692 §7.1), as the server's response states them.
struct deflate_params {
    /// The server resets its compression context after every message.
    bool server_no_context_takeover = false;
    /// The client resets its compression context after every message.
    bool client_no_context_takeover = false;
    /// The window the server compresses with, 8 to 15 (8 only from a peer's zlib-free
    /// implementation; wschat compresses with 9 or more).
    std::uint8_t server_max_window_bits = 15;
    /// The window the client compresses with, 8 to 15.
    std::uint8_t client_max_window_bits = 15;

    /// Equal parameters: a frame compressed for one such connection suits the other.
    friend bool operator==(const deflate_params& a, const deflate_params& b) noexcept {
        return a.server_no_context_takeover == b.server_no_context_takeover &&
               a.client_no_context_takeover == b.client_no_context_takeover &&
               a.server_max_window_bits == b.server_max_window_bits &&
               a.client_max_window_bits == b.client_max_window_bits;
    }
    /// Not equal.
    friend bool operator!=(const deflate_params& a, const deflate_params& b) noexcept {
        return !(a == b);
    }
};

/// A server's acceptance of one permessage-deflate offer.
struct deflate_agreement {
    /// What was agreed.
    deflate_params params;
    /// The element for the response's Sec-WebSocket-Extensions header.
    std::string response;
};

namespace detail {

/// The parameters an offer or response may carry, each at most once (RFC 7692 §7.1).
struct deflate_param_set {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    std::optional<std::uint8_t> server_max_window_bits;
    bool client_max_window_bits = false; // present, with or without a value
    std::optional<std::uint8_t> client_max_window_bits_value;
};

/// A window-bits value: 8 to 15 in decimal, no leading zero (RFC 7692 §7.1.2).
inline std::optional<std::uint8_t> parse_window_bits(std::string_view text) noexcept {
    if (text.size() == 1 && text[0] >= '8' && text[0] <= '9')
        return static_cast<std::uint8_t>(text[0] - '0');
    if (text.size() == 2 && text[0] == '1' && text[1] >= '0' && text[1] <= '5')
        return static_cast<std::uint8_t>(10 + (text[1] - '0'));
    return std::nullopt;
}

/// The element's parameters, or nullopt when one is unknown, repeated or has a bad value:
/// an offer like that is declined (RFC 7692 §5), a response like that fails the connection.
inline std::optional<deflate_param_set> read_deflate_params(const extension_element& element) {
    deflate_param_set set;
    std::uint32_t seen = 0;
    for (const extension_param& param : element.params) {
        std::uint32_t bit = 0;
        if (param.name == "server_no_context_takeover") {
            bit = 1;
            set.server_no_context_takeover = true;
            if (param.value)
                return std::nullopt;
        } else if (param.name == "client_no_context_takeover") {
            bit = 2;
            set.client_no_context_takeover = true;
            if (param.value)
                return std::nullopt;
        } else if (param.name == "server_max_window_bits") {
            bit = 4;
            if (!param.value || !(set.server_max_window_bits = parse_window_bits(*param.value)))
                return std::nullopt;
        } else if (param.name == "client_max_window_bits") {
            bit = 8;
            set.client_max_window_bits = true;
            if (param.value &&
                !(set.client_max_window_bits_value = parse_window_bits(*param.value)))
                return std::nullopt;
        } else {
            return std::nullopt;
        }
        if ((seen & bit) != 0)
            return std::nullopt;
        seen |= bit;
    }
    return set;
}

/// Limits window bits to what zlib compresses with (9 to 15).
constexpr std::uint8_t deflate_window(std::uint8_t bits) noexcept {
    return bits < 9 ? 9 : bits > 15 ? 15 : bits;
}

} // namespace detail

/// The server's side of the negotiation: the first permessage-deflate offer in `offers` (the
/// parsed request header, in the client's order of preference) that `options` can accept,
/// with the response element; nullopt when there is none (the connection then goes on
/// uncompressed, the RFC's "decline").
///
/// An offer is declined when it has an unknown, repeated or malformed parameter, or limits
/// the server's window to 8 bits. The response always states `server_no_context_takeover`
/// and `client_no_context_takeover` when the options want them, and the windows when they
/// are below 15 or the offer named them.
inline std::optional<deflate_agreement>
negotiate_deflate(const std::vector<extension_element>& offers, const deflate_options& options) {
    for (const extension_element& offer : offers) {
        if (offer.name != permessage_deflate_name)
            continue;
        const std::optional<detail::deflate_param_set> asked = detail::read_deflate_params(offer);
        if (!asked || (asked->server_max_window_bits && *asked->server_max_window_bits < 9))
            continue;
        deflate_params agreed;
        agreed.server_no_context_takeover =
            asked->server_no_context_takeover || !options.server_context_takeover;
        agreed.client_no_context_takeover =
            asked->client_no_context_takeover || !options.client_context_takeover;
        agreed.server_max_window_bits = detail::deflate_window(options.server_max_window_bits);
        if (asked->server_max_window_bits)
            agreed.server_max_window_bits =
                std::min(agreed.server_max_window_bits, *asked->server_max_window_bits);
        agreed.client_max_window_bits = 15;
        if (asked->client_max_window_bits)
            agreed.client_max_window_bits =
                std::min(std::max<std::uint8_t>(options.client_max_window_bits, 8),
                         asked->client_max_window_bits_value.value_or(15));

        deflate_agreement result{agreed, std::string{permessage_deflate_name}};
        if (agreed.server_no_context_takeover)
            result.response += "; server_no_context_takeover";
        if (agreed.client_no_context_takeover)
            result.response += "; client_no_context_takeover";
        if (asked->server_max_window_bits || agreed.server_max_window_bits < 15)
            result.response +=
                "; server_max_window_bits=" + std::to_string(agreed.server_max_window_bits);
        if (asked->client_max_window_bits &&
            (asked->client_max_window_bits_value || agreed.client_max_window_bits < 15))
            result.response +=
                "; client_max_window_bits=" + std::to_string(agreed.client_max_window_bits);
        return result;
    }
    return std::nullopt;
}

/// The client's offer for its Sec-WebSocket-Extensions header, from the client's point of
/// view of `options`: context takeover it gives up, the windows it asks for, and always
/// `client_max_window_bits` (it accepts a limit on its own window).
inline std::string deflate_offer(const deflate_options& options) {
    std::string offer{permessage_deflate_name};
    if (!options.server_context_takeover)
        offer += "; server_no_context_takeover";
    if (!options.client_context_takeover)
        offer += "; client_no_context_takeover";
    if (options.server_max_window_bits < 15)
        offer += "; server_max_window_bits=" +
                 std::to_string(detail::deflate_window(options.server_max_window_bits));
    offer += "; client_max_window_bits";
    if (options.client_max_window_bits < 15)
        offer += "=" + std::to_string(detail::deflate_window(options.client_max_window_bits));
    return offer;
}

/// The client's check of a server's response element to `deflate_offer(offered)`: the
/// agreed parameters, or nullopt when the response is one the client must fail the
/// connection for (RFC 7692 §7.1: an unknown, repeated or malformed parameter, a
/// `client_max_window_bits` larger than offered, a server window larger than asked for).
inline std::optional<deflate_params> accept_deflate_response(const extension_element& response,
                                                             const deflate_options& offered) {
    if (response.name != permessage_deflate_name)
        return std::nullopt;
    const std::optional<detail::deflate_param_set> got = detail::read_deflate_params(response);
    if (!got || (got->client_max_window_bits && !got->client_max_window_bits_value))
        return std::nullopt;
    deflate_params agreed;
    agreed.server_no_context_takeover = got->server_no_context_takeover;
    agreed.client_no_context_takeover = got->client_no_context_takeover;
    agreed.server_max_window_bits = got->server_max_window_bits.value_or(15);
    agreed.client_max_window_bits = got->client_max_window_bits_value.value_or(15);
    // What deflate_offer(offered) asked for: windows below 15 are stated, clamped to 9-15.
    if (agreed.server_max_window_bits > detail::deflate_window(offered.server_max_window_bits) ||
        agreed.client_max_window_bits > detail::deflate_window(offered.client_max_window_bits))
        return std::nullopt;
    if (!offered.server_context_takeover && !agreed.server_no_context_takeover)
        return std::nullopt; // asked for, and the server may not refuse it (§7.1.1.1)
    return agreed;
}

namespace detail {

/// The four bytes a sync flush ends with; RFC 7692 §7.2.1 removes them from every message
/// and §7.2.2 appends them again before decompressing.
inline constexpr std::uint8_t deflate_tail[4] = {0x00, 0x00, 0xFF, 0xFF};

/// Ends a zlib stream with `End` (deflateEnd or inflateEnd) and frees it. Safe on a stream
/// whose initialisation failed: zlib's End functions ignore a stream without state.
template <int (*End)(z_streamp)>
struct z_stream_end {
    void operator()(z_stream* stream) const noexcept {
        End(stream);
        delete stream;
    }
};
/// A zlib stream kept at a fixed address (zlib's state points back at it), ended with it.
template <int (*End)(z_streamp)>
using z_stream_ptr = std::unique_ptr<z_stream, z_stream_end<End>>;

} // namespace detail

/// Compresses messages for one sending side (RFC 7692 §7.2.1): raw deflate, sync-flushed,
/// the flush's empty block removed.
///
/// Without context takeover every message stands alone, so one compressor can serve any
/// number of connections whose parameters match (`deflate_params::server_max_window_bits`):
/// a broadcast is compressed once. Not thread-safe.
class deflater {
public:
    /// A compressor with a 2^`window_bits`-byte window (9 to 15; lower values give 9),
    /// zlib's `mem_level` (1 to 9) and `level` (1 to 9), keeping its context from one
    /// message to the next when `context_takeover`. Throws std::bad_alloc when zlib cannot
    /// get its memory.
    explicit deflater(std::uint8_t window_bits = 15, bool context_takeover = false,
                      std::uint8_t mem_level = 8, std::uint8_t level = 6)
        : stream_(new z_stream{}), context_takeover_(context_takeover) {
        const int bits = detail::deflate_window(window_bits);
        const int memory = std::clamp<int>(mem_level, 1, 9);
        const int effort = std::clamp<int>(level, 1, 9);
        if (deflateInit2(stream_.get(), effort, Z_DEFLATED, -bits, memory, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            throw std::bad_alloc{};
    }

    /// Appends the compressed form of `message` to `out`: the payload of a frame with RSV1.
    void compress(std::string_view message, std::string& out) {
        z_stream& z = *stream_;
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
        z.avail_in = static_cast<uInt>(message.size());
        const std::size_t start = out.size();
        std::size_t room = std::max<std::size_t>(64, message.size() / 2 + 16);
        do {
            const std::size_t used = out.size();
            out.resize(used + room);
            z.next_out = reinterpret_cast<Bytef*>(&out[used]);
            z.avail_out = static_cast<uInt>(room);
            ::deflate(&z, Z_SYNC_FLUSH); // cannot fail with a valid stream and room to write
            out.resize(out.size() - z.avail_out);
            room *= 2;
        } while (z.avail_out == 0 || z.avail_in != 0);
        // A sync flush ends with an empty stored block whose last four bytes, 00 00 FF FF, the
        // receiver appends again. With nothing to flush zlib writes no block at all; the
        // single 00 then stands for the start of one (RFC 7692 §7.2.3.6), so the bytes the
        // receiver appends still complete a block.
        if (out.size() - start >= 4)
            out.resize(out.size() - 4);
        else
            out.push_back('\0');
        if (!context_takeover_)
            deflateReset(&z);
    }

private:
    detail::z_stream_ptr<deflateEnd> stream_;
    bool context_takeover_;
};

/// Decompresses messages for one receiving side (RFC 7692 §7.2.2), with the size of the
/// result bounded while it is produced: a small message that would inflate past the limit
/// (a "decompression bomb") is refused after at most the limit's worth of output.
///
/// Without context takeover one inflater can serve every connection of a thread. Not
/// thread-safe.
class inflater {
public:
    /// A decompressor keeping the peer's context between messages when `context_takeover`,
    /// for a peer that compresses with at most a 2^`window_bits`-byte window (8 to 15; the
    /// window it needs is allocated, at least 512 bytes since zlib's compressors use 9 bits
    /// when asked for 8). Without context the window does not matter. Throws std::bad_alloc
    /// when zlib cannot get its memory.
    explicit inflater(bool context_takeover = false, std::uint8_t window_bits = 15)
        : stream_(new z_stream{}), context_takeover_(context_takeover) {
        const int bits = context_takeover ? detail::deflate_window(window_bits) : 15;
        if (inflateInit2(stream_.get(), -bits) != Z_OK)
            throw std::bad_alloc{};
    }

    /// Replaces `out` with the decompressed form of `payload` (a whole message's payload
    /// from frames with RSV1). Returns error::message_too_big as soon as the result would
    /// exceed `max_size` bytes, error::bad_compressed_data when the data is not a valid
    /// deflate stream; `out` is then unspecified, and without context takeover the inflater
    /// is ready for the next message either way (with it, the connection must end).
    std::error_code decompress(std::string_view payload, std::size_t max_size, std::string& out) {
        out.clear();
        std::error_code ec = run(reinterpret_cast<const std::uint8_t*>(payload.data()),
                                 payload.size(), max_size, out);
        if (!ec)
            ec = run(detail::deflate_tail, sizeof detail::deflate_tail, max_size, out);
        if (!context_takeover_ || ec)
            inflateReset(stream_.get());
        return ec;
    }

private:
    std::error_code run(const std::uint8_t* data, std::size_t size, std::size_t max_size,
                        std::string& out) {
        z_stream& z = *stream_;
        z.next_in = const_cast<Bytef*>(data);
        z.avail_in = static_cast<uInt>(size);
        while (true) {
            // Never more room than one byte past the limit: the bound holds for the memory
            // the output takes, not only for what is delivered.
            const std::size_t used = out.size();
            if (used > max_size)
                return error::message_too_big;
            const std::size_t room =
                std::min<std::size_t>(std::max<std::size_t>(used, 4096), max_size + 1 - used);
            out.resize(used + room);
            z.next_out = reinterpret_cast<Bytef*>(&out[used]);
            z.avail_out = static_cast<uInt>(room);
            const int result = ::inflate(&z, Z_SYNC_FLUSH);
            const bool output_full = z.avail_out == 0;
            out.resize(out.size() - z.avail_out);
            if (result == Z_STREAM_END) {
                // A final block ends one deflate stream; another may follow in the message.
                inflateReset(&z);
            } else if (result != Z_OK && result != Z_BUF_ERROR) {
                return error::bad_compressed_data;
            }
            // Done when every byte went in and the output had room to spare: more output
            // can be pending only when it filled up.
            if (z.avail_in == 0 && !output_full)
                break;
        }
        if (out.size() > max_size)
            return error::message_too_big;
        return {};
    }

    detail::z_stream_ptr<inflateEnd> stream_;
    bool context_takeover_;
};

namespace detail {

/// The permessage-deflate of one connection, as negotiated. Whatever side gave up its context
/// takeover needs no zlib stream of its own: the connection borrows its thread's, and a
/// frame compressed without context is kept with the broadcast it came from (`shared_frame::
/// derived`) for every member with the same parameters.
class deflate_compression final : public message_compression {
public:
    deflate_compression(const deflate_params& params, const deflate_options& options,
                        const void* shared_key)
        : options_(options), params_(params), shared_key_(shared_key) {}

    std::error_code decompress(std::string_view payload, std::size_t max_size,
                               std::string& out) override {
        if (params_.client_no_context_takeover)
            return thread_inflater().decompress(payload, max_size, out);
        if (!inflater_)
            inflater_ = std::make_unique<inflater>(true, params_.client_max_window_bits);
        return inflater_->decompress(payload, max_size, out);
    }

    void send(const shared_frame& frame, frame_sink& queue) override {
        if (!frame.is_message() || frame.payload().size() < options_.min_size)
            return queue.push(frame);
        if (params_.server_no_context_takeover)
            return queue.push(frame.derived(shared_key_, [this](const shared_frame& message) {
                return compressed(message, thread_deflater());
            }));
        // Each frame continues the stream of the one before: compress and queue in one step.
        std::lock_guard<std::mutex> lock{context_mutex_};
        if (!deflater_)
            deflater_ = std::make_unique<deflater>(params_.server_max_window_bits, true,
                                                   options_.mem_level, options_.level);
        queue.push(compressed(frame, *deflater_));
    }

private:
    static shared_frame compressed(const shared_frame& message, deflater& with) {
        thread_local std::string buffer;
        buffer.clear();
        with.compress(message.payload(), buffer);
        return make_frame(message.message_opcode(), buffer, true);
    }

    /// This thread's inflater for peers without context takeover (it holds no state between
    /// messages, so any connection may use it).
    static inflater& thread_inflater() {
        thread_local inflater shared{false};
        return shared;
    }

    /// This thread's context-free compressor for this connection's parameters.
    deflater& thread_deflater() {
        struct cached {
            std::unique_ptr<deflater> compressor;
            std::uint8_t mem_level = 0;
            std::uint8_t level = 0;
        };
        thread_local std::array<cached, 16> by_window_bits;
        cached& slot = by_window_bits[params_.server_max_window_bits];
        if (!slot.compressor || slot.mem_level != options_.mem_level ||
            slot.level != options_.level) {
            slot.compressor = std::make_unique<deflater>(params_.server_max_window_bits, false,
                                                         options_.mem_level, options_.level);
            slot.mem_level = options_.mem_level;
            slot.level = options_.level;
        }
        return *slot.compressor;
    }

    deflate_options options_;
    deflate_params params_;
    const void* shared_key_;
    std::unique_ptr<inflater> inflater_; // only with client context takeover
    std::mutex context_mutex_;           // of deflater_: orders the frames it compresses
    std::unique_ptr<deflater> deflater_; // only with server context takeover
};

/// permessage-deflate as a server's compression extension.
class deflate_negotiator final : public compression_negotiator {
public:
    explicit deflate_negotiator(const deflate_options& options) : options_(options) {}

    result negotiate(std::string_view offers, bool frames_may_be_dropped) override {
        result answer;
        if (offers.empty())
            return answer;
        const auto elements = parse_extensions(offers);
        if (!elements) {
            answer.error = error::bad_extensions;
            return answer;
        }
        deflate_options options = options_;
        // A dropped frame would leave the client's context without what the next refers to.
        if (frames_may_be_dropped)
            options.server_context_takeover = false;
        auto agreement = negotiate_deflate(*elements, options);
        if (!agreement)
            return answer;
        // Frames compressed without context are interchangeable between connections of this
        // negotiator whose server window is the same: one key per window size.
        const void* key = &shared_keys_[agreement->params.server_max_window_bits];
        answer.compression = std::make_unique<deflate_compression>(agreement->params, options, key);
        answer.response = std::move(agreement->response);
        return answer;
    }

private:
    deflate_options options_;
    std::array<char, 16> shared_keys_{};
};

} // namespace detail

/// permessage-deflate for `server_options::compression`: negotiated with every client that
/// offers it, under `options` (the defaults compress each broadcast once for all members and
/// keep no zlib state per connection).
///
/// ```cpp
/// #include <wschat/ws/permessage_deflate.hpp>   // and link zlib (wschat::deflate)
/// ws::server_options opts;
/// opts.compression = ws::permessage_deflate();
/// ```
inline std::shared_ptr<compression_negotiator> permessage_deflate(deflate_options options = {}) {
    return std::make_shared<detail::deflate_negotiator>(options);
}

WSCHAT_END_NAMESPACE
