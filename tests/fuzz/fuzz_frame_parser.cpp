// libFuzzer target for ws::message_parser (include/wschat/ws/frame.hpp): RFC 6455 §5 frame
// parsing, unmasking, UTF-8 validation and message reassembly.
//
// Input: [mode] [chunk plan] [frames ...] (chunk plan: see fuzz_common.hpp).
//   mode bit 0     role: 0 = role::server (frames must be masked), 1 = role::client.
//   mode bits 1-3  max_message_size: 0, 1, 125, 126, 1000, 65535, 65536 or 16 MiB.
// The frames are fed in chunks, each copied into an allocation of exactly its size so that
// AddressSanitizer sees any access outside the bytes the parser was given.
//
// Invariants (a broken one calls __builtin_trap()):
//   - feed() returns consumed <= size, and consumed < size only once the parser is done();
//     when it is not done after the last chunk, every byte was consumed.
//   - after done(), feed() returns 0 and calls no handler.
//   - delivered messages are text or binary and at most max_message_size bytes; text
//     messages are valid UTF-8 (ws::is_valid_utf8); ping/pong payloads are at most 125 bytes.
//   - on_close carries 1005 with an empty reason, or a code allowed on the wire with a
//     valid UTF-8 reason of at most 123 bytes; on_error carries a framing ws::error that maps
//     to a close code allowed on the wire; either leaves the parser done() and is the last
//     event.
//   - buffered_bytes() <= max_message_size, inside handlers and after every feed().
//   - chunking does not matter: the events (and, unless the stream ends in invalid_utf8, the
//     bytes consumed) equal those of a second parser given the whole stream in one feed().
#include "fuzz_common.hpp"

#include <wschat/ws/close_code.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using wschat_fuzz::check;

constexpr std::uint64_t size_limits[8] = {0, 1, 125, 126, 1000, 65535, 65536, 16 * 1024 * 1024};

/// One handler call, recorded for the chunked-versus-whole comparison.
struct event {
    enum class kind { message, ping, pong, close, error };
    kind what;
    int number; // the opcode of a message, the code of a close, the value of an error
    std::string payload;

    bool operator==(const event& other) const {
        return what == other.what && number == other.number && payload == other.payload;
    }
};

/// The parser's handler: checks each call against the invariants and records it.
struct recorder {
    const ws::message_parser& parser;
    std::uint64_t max_message_size;
    std::vector<event> events;

    bool ended() const {
        return !events.empty() && (events.back().what == event::kind::close ||
                                   events.back().what == event::kind::error);
    }

    void record(event::kind what, int number, std::string_view payload) {
        check(!ended());
        check(parser.buffered_bytes() <= max_message_size);
        events.push_back({what, number, std::string{payload}});
    }

    void on_message(ws::opcode op, std::string_view payload) {
        check(!parser.done());
        check(op == ws::opcode::text || op == ws::opcode::binary);
        check(payload.size() <= max_message_size);
        if (op == ws::opcode::text)
            check(ws::is_valid_utf8(payload));
        record(event::kind::message, static_cast<int>(op), payload);
    }

    void on_ping(std::string_view payload) {
        check(!parser.done());
        check(payload.size() <= ws::max_control_payload);
        record(event::kind::ping, 0, payload);
    }

    void on_pong(std::string_view payload) {
        check(!parser.done());
        check(payload.size() <= ws::max_control_payload);
        record(event::kind::pong, 0, payload);
    }

    void on_close(std::uint16_t code, std::string_view reason) {
        check(parser.done());
        if (code == static_cast<std::uint16_t>(ws::close_code::no_status))
            check(reason.empty());
        else
            check(ws::is_valid_wire_close_code(code));
        check(reason.size() <= ws::max_control_payload - 2);
        check(ws::is_valid_utf8(reason));
        record(event::kind::close, code, reason);
    }

    void on_error(std::error_code ec) {
        check(parser.done());
        check(ec.category() == ws::error_category());
        check(ec.value() >= static_cast<int>(ws::error::unmasked_frame) &&
              ec.value() <= static_cast<int>(ws::error::invalid_close_reason));
        check(ws::is_valid_wire_close_code(static_cast<std::uint16_t>(ws::close_code_for(ec))));
        record(event::kind::error, ec.value(), {});
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const ws::role role = (data[0] & 1) != 0 ? ws::role::client : ws::role::server;
    const std::uint64_t limit = size_limits[(data[0] >> 1) & 7];
    const wschat_fuzz::chunked_input input = wschat_fuzz::read_chunk_plan(data + 1, size - 1);

    // The stream in chunks.
    ws::message_parser parser{role, limit};
    check(parser.max_message_size() == limit);
    recorder chunked{parser, limit, {}};
    std::size_t consumed = 0;
    bool fed_after_done = false;
    wschat_fuzz::for_each_chunk(input, [&](std::size_t offset, std::size_t length) {
        const bool was_done = parser.done();
        const std::size_t events_before = chunked.events.size();
        wschat_fuzz::exact_buffer chunk{input.stream + offset, length};
        const std::size_t used = parser.feed(chunk.data(), chunk.size(), chunked);
        check(used <= length);
        check(used == length || parser.done());
        check(parser.buffered_bytes() <= limit);
        check(!chunked.ended() || parser.done());
        if (was_done) {
            check(used == 0);
            check(chunked.events.size() == events_before);
            fed_after_done = true;
        }
        consumed += used;
        return !fed_after_done; // one call after done() is enough to check it
    });
    if (parser.done()) {
        // A done parser ignores input, however it is offered.
        std::uint8_t more[2] = {0x81, 0x80};
        check(parser.feed(more, sizeof more, chunked) == 0);
        check(chunked.ended());
    } else {
        check(consumed == input.stream_size);
        check(!chunked.ended());
    }

    // The same stream in one piece.
    ws::message_parser whole_parser{role, limit};
    recorder whole{whole_parser, limit, {}};
    wschat_fuzz::exact_buffer all{input.stream, input.stream_size};
    const std::size_t whole_used = whole_parser.feed(all.data(), all.size(), whole);
    check(whole_used <= input.stream_size);
    check(whole_parser.done() == parser.done());
    check(whole.events == chunked.events);
    const bool ended_in_invalid_utf8 =
        chunked.ended() && chunked.events.back().what == event::kind::error &&
        chunked.events.back().number == static_cast<int>(ws::error::invalid_utf8);
    // An invalid text piece is consumed up to the end of the chunk that held it, so only then
    // may the totals differ.
    if (!ended_in_invalid_utf8)
        check(whole_used == consumed);
    return 0;
}
