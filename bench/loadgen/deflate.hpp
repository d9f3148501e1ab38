// loadgen — permessage-deflate (RFC 7692) on the client side: the offer a browser makes, the
// check of the server's answer, and each connection's compressor and decompressor as agreed.
// Built only when zlib is (WSCHAT_BENCH_DEFLATE, set by CMake with wschat::deflate).
#pragma once

#include <wschat/ws/error.hpp>
#include <wschat/ws/extensions.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/permessage_deflate.hpp>
#include <wschat/ws/utf8.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace loadgen {

/// The largest message a member inflates (as its parser's limit).
constexpr std::size_t max_inflated_size = 1 << 20;

/// What a browser offers (`permessage-deflate; client_max_window_bits`): context takeover on
/// both sides allowed, and a limit on its own window accepted. The server decides the rest.
inline ws::deflate_options browser_offer() {
    ws::deflate_options offer;
    offer.server_context_takeover = true;
    offer.client_context_takeover = true;
    return offer;
}

/// Inflates `payload`, a message of type `op`, into `out`, and checks text as UTF-8 (as the
/// parser checks uncompressed text).
inline std::error_code inflate_message(ws::inflater& with, ws::opcode op, std::string_view payload,
                                       std::string& out) {
    if (const std::error_code ec = with.decompress(payload, max_inflated_size, out))
        return ec;
    if (op == ws::opcode::text && !ws::is_valid_utf8(out))
        return ws::error::invalid_utf8;
    return {};
}

/// The parameters a server's Sec-WebSocket-Extensions answer to browser_offer() agrees on;
/// nullopt when the answer is one a client must fail the connection for (malformed, more
/// than one extension, parameters the offer did not allow).
inline std::optional<ws::deflate_params> accept_answer(std::string_view header) {
    const auto elements = ws::parse_extensions(header);
    if (!elements || elements->size() != 1)
        return std::nullopt;
    return ws::accept_deflate_response(elements->front(), browser_offer());
}

/// Decompresses messages sent without context takeover for every member of the run: one
/// inflater, no state between messages. A broadcast compressed once by the server reaches
/// every member as the same bytes, so the result is remembered by those exact bytes (compared
/// in full, never by hash alone; what is inflated without context depends on nothing else):
/// one member inflates a message, the others reuse the text.
/// Without that the load generator, one core standing in for 1000 browsers, would spend its
/// time inflating and measure itself instead of the server.
class shared_inflater {
public:
    /// Sets `out` to the decompressed `payload` of a message of type `op` (see
    /// inflate_message); valid until the next call.
    std::error_code decompress(ws::opcode op, std::string_view payload, std::string_view& out) {
        entry* const set = &entries_[bucket(payload) * ways];
        for (std::size_t i = 0; i < ways; ++i) {
            if (set[i].valid && set[i].op == op && set[i].compressed == payload) {
                out = set[i].plain;
                return {};
            }
        }
        entry& e = set[next_way_++ % ways];
        e.compressed.assign(payload);
        e.op = op;
        e.valid = false;
        ++inflated_;
        if (const std::error_code ec = inflate_message(inflater_, op, payload, e.plain))
            return ec;
        e.valid = true;
        out = e.plain;
        return {};
    }

    /// Messages actually inflated (the rest came from the memory of the same bytes).
    std::uint64_t inflated() const noexcept { return inflated_; }

private:
    struct entry {
        std::string compressed;
        std::string plain;
        ws::opcode op = ws::opcode::text;
        bool valid = false;
    };

    static constexpr std::size_t buckets = 1024; // a power of two
    static constexpr std::size_t ways = 4;

    /// The set a payload lives in, from its size and last 16 bytes: the compressed messages of
    /// one chat begin alike and end with what differs (the text).
    static std::size_t bucket(std::string_view payload) noexcept {
        std::uint64_t tail[2] = {0, 0};
        const std::size_t n = std::min<std::size_t>(payload.size(), sizeof tail);
        std::memcpy(tail, payload.data() + payload.size() - n, n);
        const std::uint64_t mixed =
            (tail[0] * 0x9E3779B97F4A7C15ULL) ^ (tail[1] * 0xC2B2AE3D27D4EB4FULL) ^ payload.size();
        return static_cast<std::size_t>(mixed >> 40) & (buckets - 1);
    }

    ws::inflater inflater_{false};
    std::array<entry, buckets * ways> entries_;
    std::size_t next_way_ = 0;
    std::uint64_t inflated_ = 0;
};

/// One connection's permessage-deflate as agreed: inflates what it receives (its own inflater
/// when the server keeps its context, else the run's shared one) and compresses what it sends
/// under the client's agreed window and context takeover.
class deflate_link {
public:
    deflate_link(const ws::deflate_params& params, shared_inflater& shared)
        : params_(params), shared_(shared) {
        if (!params.server_no_context_takeover)
            own_ = std::make_unique<ws::inflater>(true, params.server_max_window_bits);
    }

    const ws::deflate_params& params() const noexcept { return params_; }

    /// Sets `out` to the decompressed `payload` of a message of type `op` (see
    /// inflate_message); valid until the next call.
    std::error_code inflate(ws::opcode op, std::string_view payload, std::string_view& out) {
        if (!own_)
            return shared_.decompress(op, payload, out);
        const std::error_code ec = inflate_message(*own_, op, payload, plain_);
        out = plain_;
        return ec;
    }

    /// Appends the compressed `message` to `out` (the payload of a frame with RSV1). The
    /// compressor is made on first use: only senders need one.
    void compress(std::string_view message, std::string& out) {
        if (!deflater_)
            deflater_ = std::make_unique<ws::deflater>(params_.client_max_window_bits,
                                                       !params_.client_no_context_takeover);
        deflater_->compress(message, out);
    }

private:
    ws::deflate_params params_;
    shared_inflater& shared_;
    std::unique_ptr<ws::inflater> own_;
    std::unique_ptr<ws::deflater> deflater_;
    std::string plain_;
};

} // namespace loadgen
