// libFuzzer target for permessage-deflate (include/wschat/ws/permessage_deflate.hpp): the
// bounded decompressor on arbitrary bytes, the compressor and decompressor as a pair, and the
// Sec-WebSocket-Extensions parser and negotiation on arbitrary header values.
//
// Input: [mode] [chunk plan] [stream ...] (chunk plan: see fuzz_common.hpp). Mode bit 0: the
// peer keeps its compression context (one inflater across chunks, as with context takeover);
// bits 1-3 pick the size limit from size_limits. Each chunk is one message's payload.
//
// Invariants (a broken one calls __builtin_trap()):
//   - decompressing a chunk as received data yields no output beyond the limit (the bound
//     holds while inflating), and fails only with message_too_big or bad_compressed_data;
//     without context takeover the same chunk decompresses to the same result twice;
//   - a chunk compressed by ws::deflater decompresses to itself (context kept or not);
//   - the whole stream read as a header value: when it parses, the server's negotiation either
//     declines or answers one permessage-deflate element that itself parses, that a client
//     offering the same parameters would accept, and whose windows are 9 to 15 bits.
#include "fuzz_common.hpp"

#include <wschat/ws/permessage_deflate.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using wschat_fuzz::check;

constexpr std::size_t size_limits[8] = {0, 1, 125, 1000, 4096, 65536, 1 << 20, 16 << 20};

bool expected_failure(std::error_code ec) {
    return !ec || ec == ws::error::message_too_big || ec == ws::error::bad_compressed_data;
}

void check_negotiation(std::string_view header) {
    const auto offers = ws::parse_extensions(header);
    if (!offers)
        return;
    for (const bool takeover : {false, true}) {
        ws::deflate_options options;
        options.server_context_takeover = takeover;
        options.client_context_takeover = takeover;
        const auto agreement = ws::negotiate_deflate(*offers, options);
        if (!agreement)
            continue;
        const auto answer = ws::parse_extensions(agreement->response);
        check(answer && answer->size() == 1);
        check((*answer)[0].name == ws::permessage_deflate_name);
        check(agreement->params.server_max_window_bits >= 9 &&
              agreement->params.server_max_window_bits <= 15);
        check(agreement->params.client_max_window_bits >= 8 &&
              agreement->params.client_max_window_bits <= 15);
        // A client that offered what was agreed accepts the answer.
        ws::deflate_options offered;
        offered.server_context_takeover = !agreement->params.server_no_context_takeover;
        offered.client_context_takeover = true;
        offered.server_max_window_bits = agreement->params.server_max_window_bits;
        offered.client_max_window_bits = agreement->params.client_max_window_bits;
        const auto accepted = ws::accept_deflate_response((*answer)[0], offered);
        check(accepted.has_value() && *accepted == agreement->params);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const bool takeover = (data[0] & 1) != 0;
    const std::size_t limit = size_limits[(data[0] >> 1) & 7];
    const wschat_fuzz::chunked_input input = wschat_fuzz::read_chunk_plan(data + 1, size - 1);

    ws::inflater receiver{takeover};
    ws::inflater again{false};
    ws::deflater sender{15, takeover};
    ws::inflater sender_peer{takeover};
    std::string out;
    std::string second;
    std::string wire;
    wschat_fuzz::for_each_chunk(input, [&](std::size_t offset, std::size_t length) {
        const std::string_view chunk{reinterpret_cast<const char*>(input.stream + offset), length};

        const std::error_code ec = receiver.decompress(chunk, limit, out);
        check(expected_failure(ec));
        check(out.size() <= limit + 1 && (ec || out.size() <= limit));
        if (!takeover) {
            const std::error_code ec2 = again.decompress(chunk, limit, second);
            check(ec2 == ec && (ec || second == out));
        } else if (ec) {
            receiver = ws::inflater{true}; // a failed context is not used again
        }

        wire.clear();
        sender.compress(chunk, wire);
        check(!sender_peer.decompress(wire, length, out));
        check(out == chunk);
        return true;
    });
    check_negotiation({reinterpret_cast<const char*>(input.stream), input.stream_size});
    return 0;
}
