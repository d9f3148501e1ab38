// Micro-benchmark of the sans-I/O hot paths: frame parsing (unmask + UTF-8 validation) against
// memcpy of the same bytes, and opening-handshake request parsing.
//
// Build: g++ -std=c++17 -O2 -Iinclude bench/micro/parser_bench.cpp -o parser_bench
// Every figure is the median of 7 runs; each run times many passes over a ~1 MiB buffer that
// is restored (untimed) before each pass, because the parser unmasks in place.
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

constexpr int runs = 7;

/// Keeps results observable so the optimiser cannot drop the measured work.
volatile std::uint64_t sink = 0;

/// Counts what the parser delivers; touching the payload keeps delivery honest.
struct counting_handler {
    std::uint64_t messages = 0;
    std::uint64_t payload_bytes = 0;
    std::uint64_t errors = 0;

    void on_message(ws::opcode, std::string_view payload) {
        ++messages;
        payload_bytes += payload.size();
        if (!payload.empty())
            payload_bytes += static_cast<unsigned char>(payload.back()) & 1U;
    }
    void on_ping(std::string_view) {}
    void on_pong(std::string_view) {}
    void on_close(std::uint16_t, std::string_view) {}
    void on_error(std::error_code) { ++errors; }
};

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

/// Seconds spent in `work` over `passes` passes, each preceded by the untimed `prepare`.
double timed_passes(int passes, const std::function<void()>& prepare,
                    const std::function<void()>& work) {
    bench_clock::duration total{};
    for (int pass = 0; pass < passes; ++pass) {
        prepare();
        const auto start = bench_clock::now();
        work();
        total += bench_clock::now() - start;
    }
    return std::chrono::duration<double>(total).count();
}

/// Text of `size` bytes: chat-like ASCII, or with about one non-ASCII code point in seven
/// characters (accented letters, euro signs, CJK, emoji) when `mixed`.
std::string sample_text(std::size_t size, bool mixed) {
    static const char* const words[] = {"hello ", "world ", "chat ", "message ", "room ", "ok "};
    static const char* const others[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xE4\xBD\xA0",
                                         "\xF0\x9F\x98\x80"};
    std::string text;
    for (std::size_t i = 0; text.size() < size; ++i) {
        text += words[i % 6];
        if (mixed)
            text += others[i % 4];
    }
    // Cut back to `size` at a code point boundary, then pad with ASCII.
    std::size_t cut = size;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
        --cut;
    text.resize(cut);
    text.resize(size, '.');
    return text;
}

/// A stream of `count` masked frames carrying `payload`.
std::string masked_stream(ws::opcode op, const std::string& payload, std::size_t count) {
    const ws::mask_key key{0x12, 0x9A, 0x5C, 0xE3};
    std::string stream;
    for (std::size_t i = 0; i < count; ++i)
        stream += ws::encode_masked_frame(op, payload, key);
    return stream;
}

/// Prints parse throughput for `stream` (of `count` frames) next to memcpy of its bytes.
void bench_frames(const char* name, const std::string& stream, std::size_t count, int passes) {
    std::string work = stream;
    std::string copy(stream.size(), '\0');
    const auto restore = [&] { std::memcpy(&work[0], stream.data(), stream.size()); };

    std::vector<double> parse_seconds;
    std::vector<double> memcpy_seconds;
    for (int run = 0; run < runs; ++run) {
        counting_handler handler;
        parse_seconds.push_back(timed_passes(passes, restore, [&] {
            ws::message_parser parser;
            parser.feed(reinterpret_cast<std::uint8_t*>(&work[0]), work.size(), handler);
        }));
        if (handler.errors != 0 || handler.messages != count * static_cast<unsigned>(passes)) {
            std::printf("%s: parser reported %llu errors\n", name,
                        static_cast<unsigned long long>(handler.errors));
            return;
        }
        sink = sink + handler.payload_bytes;
        memcpy_seconds.push_back(timed_passes(passes, restore, [&] {
            std::memcpy(&copy[0], work.data(), work.size());
            sink = sink + static_cast<unsigned char>(copy[copy.size() / 2]);
        }));
    }
    const double bytes = static_cast<double>(stream.size()) * passes;
    const double parse_gbps = bytes / median(parse_seconds) / 1e9;
    const double memcpy_gbps = bytes / median(memcpy_seconds) / 1e9;
    const double messages_per_second = static_cast<double>(count) * passes / median(parse_seconds);
    std::printf("%-44s %7.2f GB/s %9.2f Mmsg/s | memcpy %7.2f GB/s | parse/memcpy time %5.2fx\n",
                name, parse_gbps, messages_per_second / 1e6, memcpy_gbps, memcpy_gbps / parse_gbps);
}

/// Prints how many handshake requests per second are parsed (and answered, when `respond`).
void bench_handshake(bool respond) {
    const std::string request =
        "GET /chat?room=lobby HTTP/1.1\r\n"
        "Host: chat.example.com:8080\r\n"
        "Connection: Upgrade\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36\r\n"
        "Upgrade: websocket\r\n"
        "Origin: https://chat.example.com\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "\r\n";
    constexpr int requests_per_run = 50000;
    std::vector<double> seconds;
    for (int run = 0; run < runs; ++run) {
        const auto start = bench_clock::now();
        for (int i = 0; i < requests_per_run; ++i) {
            ws::request_parser parser;
            sink = sink + parser.feed(request.data(), request.size());
            const std::error_code ec = ws::validate_upgrade(parser.request());
            sink = sink + static_cast<unsigned>(ec.value());
            if (respond)
                sink = sink + ws::make_upgrade_response(parser.request()).serialize().size();
        }
        seconds.push_back(std::chrono::duration<double>(bench_clock::now() - start).count());
    }
    const double per_second = requests_per_run / median(seconds);
    std::printf("%-44s %7.0f k requests/s (%.2f us each, %zu-byte request)\n",
                respond ? "handshake parse+validate+101" : "handshake parse+validate",
                per_second / 1e3, 1e6 / per_second, request.size());
}

} // namespace

int main() {
    constexpr std::size_t big = 64 * 1024;
    constexpr std::size_t big_count = 16; // 1 MiB per pass: fits in L2/L3 like a read buffer
    bench_frames("64 KiB masked text, ASCII",
                 masked_stream(ws::opcode::text, sample_text(big, false), big_count), big_count,
                 200);
    bench_frames("64 KiB masked text, 1 in 7 chars non-ASCII",
                 masked_stream(ws::opcode::text, sample_text(big, true), big_count), big_count,
                 200);
    bench_frames("64 KiB masked binary",
                 masked_stream(ws::opcode::binary, std::string(big, 'b'), big_count), big_count,
                 200);

    constexpr std::size_t small = 64;
    constexpr std::size_t small_count = 16384;
    bench_frames("64 B masked text, ASCII",
                 masked_stream(ws::opcode::text, sample_text(small, false), small_count),
                 small_count, 100);
    bench_frames("64 B masked text, 1 in 7 chars non-ASCII",
                 masked_stream(ws::opcode::text, sample_text(small, true), small_count),
                 small_count, 100);

    bench_handshake(false);
    bench_handshake(true);
    return sink == 42 ? 1 : 0;
}
