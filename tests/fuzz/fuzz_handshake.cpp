// libFuzzer target for the opening handshake (include/wschat/ws/handshake.hpp):
// ws::request_parser, validate_upgrade, make_upgrade_response, make_error_response and
// http_response::serialize, plus the strict base64 of Sec-WebSocket-Key.
//
// Input: [limit] [chunk plan] [request bytes ...] (chunk plan: see fuzz_common.hpp).
//   limit  max_header_bytes = 8 * limit (0..2040), small so the bound is reached often.
// The request is fed in chunks, each copied into an allocation of exactly its size.
//
// Invariants (a broken one calls __builtin_trap()):
//   - feed() returns consumed <= size; while incomplete it consumes everything; once done
//     or failed it returns 0 and the state no longer changes; the head consumed never
//     exceeds max_header_bytes and, when done, ends with a line feed.
//   - failed() carries bad_request or header_too_large; a done request has a tchar method,
//     a target without control characters, tchar header names, values without surrounding
//     whitespace or control characters other than HTAB, and at most max_header_count headers.
//   - chunking does not matter: a second parser given the whole input in one feed() reaches
//     the same state, error and request (and consumes as much, unless header_too_large).
//   - validate_upgrade() accepting implies GET, HTTP/1.1+, Host, and a key that is the
//     canonical base64 of 16 bytes; its Sec-WebSocket-Accept is 28 base64 characters.
//   - any strict-base64 header value decodes to base64_decoded_size() bytes and re-encodes
//     to itself.
//   - serialize() never lets header values, names, reasons or subprotocols (parsed from the
//     request, or raw input bytes holding CR/LF) inject lines: the head is exactly one status
//     line, one line per header (+ Content-Length when due) and a blank line, with no bare CR
//     or LF, and the body follows it unchanged.
#include "fuzz_common.hpp"

#include <wschat/ws/detail/base64.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/handshake.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using wschat_fuzz::check;

bool same_request(const ws::http_request& a, const ws::http_request& b) {
    if (a.method != b.method || a.target != b.target || a.version_major != b.version_major ||
        a.version_minor != b.version_minor || a.headers.size() != b.headers.size())
        return false;
    for (std::size_t i = 0; i < a.headers.size(); ++i)
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
            return false;
    return true;
}

bool is_tchar_string(std::string_view text) {
    if (text.empty())
        return false;
    for (char c : text)
        if (!ws::detail::is_token_char(c))
            return false;
    return true;
}

/// The postconditions of a successfully parsed request head.
void check_parsed_request(const ws::http_request& req) {
    check(is_tchar_string(req.method));
    check(!req.target.empty());
    for (char c : req.target)
        check(!ws::detail::is_control_char(c) && c != ' ');
    check(req.version_major >= 0 && req.version_major <= 9);
    check(req.version_minor >= 0 && req.version_minor <= 9);
    check(req.headers.size() <= ws::request_parser::max_header_count);
    for (const ws::http_header& h : req.headers) {
        check(is_tchar_string(h.name));
        if (!h.value.empty()) {
            check(!ws::detail::is_ows(h.value.front()) && !ws::detail::is_ows(h.value.back()));
        }
        for (char c : h.value)
            check(c == '\t' || !ws::detail::is_control_char(c));
        check(req.header(h.name).has_value());
    }
}

/// Strict base64 is a bijection: what base64_decoded_size accepts decodes and re-encodes to
/// exactly the same text.
void check_base64_round_trip(std::string_view text) {
    const std::optional<std::size_t> size = ws::detail::base64_decoded_size(text);
    const std::optional<std::string> bytes = ws::detail::base64_decode(text);
    check(size.has_value() == bytes.has_value());
    if (!bytes)
        return;
    check(bytes->size() == *size);
    check(ws::detail::base64_encode(bytes->data(), bytes->size()) == text);
}

/// Checks that `response.serialize()` has exactly the lines the response asks for.
void check_serialized(const ws::http_response& response) {
    const std::string out = response.serialize();
    const std::size_t head_end = out.find("\r\n\r\n");
    check(head_end != std::string::npos);
    const std::string_view head{out.data(), head_end + 4};
    check(head.substr(0, 9) == "HTTP/1.1 ");

    std::size_t lines = 0;
    for (std::size_t i = 0; i < head.size(); ++i) {
        if (head[i] == '\r') {
            check(i + 1 < head.size() && head[i + 1] == '\n');
            ++lines;
        } else if (head[i] == '\n') {
            check(i > 0 && head[i - 1] == '\r');
        }
    }
    bool has_content_length = false;
    for (const ws::http_header& h : response.headers)
        has_content_length = has_content_length || ws::detail::iequals(h.name, "Content-Length");
    const bool adds_content_length = response.status >= 200 && response.status != 204 &&
                                     response.status != 304 && !has_content_length;
    // Status line + headers + the added Content-Length + the blank line.
    check(lines == 1 + response.headers.size() + (adds_content_length ? 1 : 0) + 1);
    check(std::string_view{out}.substr(head.size()) == response.body);
}

/// Takes the next `count` raw input bytes (which may hold CR, LF, NUL, anything).
std::string_view take(std::string_view& raw, std::size_t count) {
    const std::string_view piece = raw.substr(0, count);
    raw.remove_prefix(piece.size());
    return piece;
}

/// Responses that carry request data back (as an application's on_http handler might) and
/// raw input bytes in every field serialize() writes.
void check_echo_responses(const ws::http_request& req, std::string_view raw) {
    ws::http_response echo;
    echo.status = raw.empty() ? 200 : 100 + static_cast<unsigned char>(raw[0]) * 2;
    echo.reason = req.target;
    for (const ws::http_header& h : req.headers)
        echo.set_header(h.name, h.value);
    echo.headers.push_back({"X-Target", req.target});
    echo.body = req.method;
    check_serialized(echo);

    ws::http_response hostile;
    const std::size_t n = raw.empty() ? 0 : static_cast<unsigned char>(raw[0]) % 8;
    raw = raw.empty() ? raw : raw.substr(1);
    hostile.status = n == 0 ? 204 : 404;
    hostile.reason = std::string{take(raw, 7)};
    for (std::size_t i = 0; i < n && !raw.empty(); ++i)
        hostile.headers.push_back({std::string{take(raw, 5)}, std::string{take(raw, 11)}});
    hostile.body = std::string{raw};
    check_serialized(hostile);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::size_t limit = std::size_t{data[0]} * 8;
    const wschat_fuzz::chunked_input input = wschat_fuzz::read_chunk_plan(data + 1, size - 1);
    const std::string_view raw{reinterpret_cast<const char*>(input.stream), input.stream_size};

    // The request in chunks.
    ws::request_parser parser{limit};
    std::size_t consumed = 0;
    bool fed_after_end = false;
    wschat_fuzz::for_each_chunk(input, [&](std::size_t offset, std::size_t length) {
        const auto before = parser.current();
        wschat_fuzz::exact_buffer chunk{input.stream + offset, length};
        const std::size_t used =
            parser.feed(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        check(used <= length);
        if (parser.current() == ws::request_parser::state::incomplete)
            check(used == length);
        if (before != ws::request_parser::state::incomplete) {
            check(used == 0 && parser.current() == before);
            fed_after_end = true;
        }
        consumed += used;
        return !fed_after_end; // one call after the end is enough to check it
    });
    check(consumed <= limit);

    // The request in one piece.
    ws::request_parser whole{limit};
    wschat_fuzz::exact_buffer all{input.stream, input.stream_size};
    const std::size_t whole_used =
        whole.feed(reinterpret_cast<const char*>(all.data()), all.size());
    check(whole.current() == parser.current());
    check(whole.error() == parser.error());
    check(same_request(whole.request(), parser.request()));
    if (parser.error() != ws::error::header_too_large)
        check(whole_used == consumed);

    switch (parser.current()) {
    case ws::request_parser::state::incomplete:
        check(!parser.error());
        return 0;
    case ws::request_parser::state::failed: {
        const std::error_code ec = parser.error();
        check(ec == ws::error::bad_request || ec == ws::error::header_too_large);
        check(ws::http_status_for(ec) == (ec == ws::error::bad_request ? 400 : 431));
        check_serialized(ws::make_error_response(ws::http_status_for(ec), ec.message()));
        check_echo_responses(parser.request(), raw.substr(consumed));
        return 0;
    }
    case ws::request_parser::state::done:
        break;
    }

    check(!parser.error());
    check(consumed >= 1 && raw[consumed - 1] == '\n');
    const ws::http_request& req = parser.request();
    check_parsed_request(req);
    for (const ws::http_header& h : req.headers)
        check_base64_round_trip(h.value);

    const std::error_code invalid = ws::validate_upgrade(req);
    if (invalid) {
        check(invalid.category() == ws::error_category());
        check(invalid.value() >= static_cast<int>(ws::error::not_get) &&
              invalid.value() <= static_cast<int>(ws::error::bad_version));
        check_serialized(ws::make_error_response(ws::http_status_for(invalid), invalid.message()));
    } else {
        check(req.method == "GET");
        check(req.version_major > 1 || (req.version_major == 1 && req.version_minor >= 1));
        check(req.header("Host").has_value());
        check(ws::is_websocket_request(req));
        const std::optional<std::string_view> key = req.header("Sec-WebSocket-Key");
        check(key.has_value());
        const std::optional<std::string> key_bytes = ws::detail::base64_decode(*key);
        check(key_bytes.has_value() && key_bytes->size() == 16);
        check(ws::detail::base64_encode(key_bytes->data(), key_bytes->size()) == *key);
        check(req.header("Sec-WebSocket-Version") == std::optional<std::string_view>{"13"});
    }

    // Answer with every offered subprotocol in turn (and none), as on_upgrade may choose.
    std::vector<std::string_view> offered = ws::requested_subprotocols(req);
    offered.emplace_back();
    for (std::string_view subprotocol : offered) {
        const ws::http_response response = ws::make_upgrade_response(req, subprotocol);
        check(response.status == 101);
        const std::optional<std::string_view> accept = [&]() -> std::optional<std::string_view> {
            for (const ws::http_header& h : response.headers)
                if (h.name == "Sec-WebSocket-Accept")
                    return std::string_view{h.value};
            return std::nullopt;
        }();
        check(accept.has_value() && accept->size() == 28);
        check(ws::detail::base64_decoded_size(*accept) == std::optional<std::size_t>{20});
        check_serialized(response);
    }
    check_echo_responses(req, raw.substr(consumed));
    return 0;
}
