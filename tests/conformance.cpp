// RFC 6455 conformance of the echo_server example, byte for byte over raw sockets, organised
// like the cases WebSocket implementers grade each other with (Autobahn|Testsuite): 1 framing,
// 2 pings and pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 limits.
//
// Each TEST_CASE starts its own echo_server ($WSCHAT_ECHO_SERVER) and runs every case on a
// fresh connection: it writes the case's frames (whole, frame by frame or byte by byte), checks
// the replies in order, then the end of the connection: still open (a Close 1000 is echoed and
// TCP closed within 1 s), or failed with an exact close code (the client answers like a
// browser and the server closes TCP within 2 s), with nothing sent after the Close.
#include "support/conformance.hpp"
#include "support/test_client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_view_literals;

using test::op_binary;
using test::op_close;
using test::op_continuation;
using test::op_ping;
using test::op_pong;
using test::op_text;

// Every case runs over plain TCP and over TLS ("... - tcp", "... - tls"), so that no behaviour
// works only in plain text.
#if WSCHAT_TEST_TLS
#define WSCHAT_CONFORMANCE_TRANSPORTS tcp, tls
#else
#define WSCHAT_CONFORMANCE_TRANSPORTS tcp
#endif

using conformance::tcp;
using conformance::tls;

namespace {

/// A masked client frame.
std::string frame(std::uint8_t opcode, std::string_view payload = {}, bool fin = true,
                  std::uint8_t rsv = 0) {
    return test::encode(opcode, payload, fin, true, rsv);
}

/// A message of `opcode` in one frame per part (the first `opcode`, then continuations).
std::vector<std::string> fragments(std::uint8_t opcode, const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < parts.size(); ++i)
        out.push_back(frame(i == 0 ? opcode : op_continuation, parts[i], i + 1 == parts.size()));
    return out;
}

/// A message of `opcode` cut into fragments of `size` bytes.
std::vector<std::string> fragmented(std::uint8_t opcode, std::string_view payload,
                                    std::size_t size) {
    std::vector<std::string> parts;
    for (std::size_t at = 0; at == 0 || at < payload.size(); at += size)
        parts.emplace_back(payload.substr(at, size));
    return fragments(opcode, parts);
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

/// What the server must send back.
test::frame reply(std::uint8_t opcode, std::string_view payload) {
    return test::frame{opcode, true, std::string{payload}};
}
test::frame text(std::string_view payload) {
    return reply(op_text, payload);
}
test::frame binary(std::string_view payload) {
    return reply(op_binary, payload);
}
test::frame pong(std::string_view payload) {
    return reply(op_pong, payload);
}

std::string opcode_name(std::uint8_t opcode) {
    static const char* const names[16] = {"continuation", "text",     "binary",   "opcode 3",
                                          "opcode 4",     "opcode 5", "opcode 6", "opcode 7",
                                          "close",        "ping",     "pong",     "opcode B",
                                          "opcode C",     "opcode D", "opcode E", "opcode F"};
    return names[opcode & 0x0F];
}

/// Bytes as a C string literal body: printable ASCII as is, the rest as \xNN.
std::string escape(std::string_view bytes) {
    std::ostringstream out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F && c != '"' && c != '\\')
            out << c;
        else
            out << "\\x" << std::hex << std::setw(2) << std::setfill('0') << int{b} << std::dec;
    }
    return out.str();
}

/// A frame as one readable line: opcode, size, then the payload (escaped) or its hash.
std::string describe(const test::frame& f) {
    std::ostringstream out;
    out << opcode_name(f.opcode) << " of " << f.payload.size() << " bytes";
    if (f.payload.size() <= 64) {
        out << " \"" << escape(f.payload) << '"';
    } else {
        std::uint64_t hash = 14695981039346656037ull; // FNV-1a
        for (const char c : f.payload)
            hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        out << " fnv1a " << std::hex << hash;
    }
    return out.str();
}

/// How a step's bytes are written ("chopped", in Autobahn's words).
struct chop {
    bool per_frame = false; ///< one write per frame, 5 ms apart
    std::size_t chunk = 0;  ///< otherwise writes of this many bytes (0: a single write)
};
const chop whole{};
const chop frame_wise{true, 0};
const chop octet_wise{false, 1};
chop chunks_of(std::size_t n) {
    return chop{false, n};
}

/// One step of a case: bytes written, then the replies that must follow, in this order.
struct step {
    std::vector<std::string> send;
    chop how;
    std::vector<test::frame> expect;
};

/// How a case ends.
struct ending {
    enum kind_t { open, fails, echoes_close, refuses_close } kind;
    std::uint16_t code;
};
/// The connection is still open: the client's Close 1000 is echoed, TCP closed within 1 s.
const ending stays_open{ending::open, 1000};
/// The server fails the connection with a Close `code`; the client answers with a Close as a
/// browser does, and the server closes TCP within 2 s.
ending fails(std::uint16_t code) {
    return {ending::fails, code};
}
/// The case sent a valid Close: the server answers with `code` (1005: an empty Close) and
/// closes TCP within 1 s.
ending echoes_close(std::uint16_t code) {
    return {ending::echoes_close, code};
}
/// The case sent an invalid Close: the server fails with `code` and closes TCP within 2 s
/// (the client, having sent its Close, sends no other).
ending refuses_close(std::uint16_t code) {
    return {ending::refuses_close, code};
}

std::chrono::milliseconds read_timeout(std::size_t payload_size) {
    return 5s + std::chrono::seconds{payload_size >> 20}; // debug builds echo 16 MiB slowly
}

void write(test::ws_client& client, const std::vector<std::string>& frames, chop how) {
    auto& socket = client.socket();
    // Send results are not checked: a server may stop reading after failing the connection.
    if (how.per_frame) {
        for (const auto& f : frames) {
            socket.send_raw(f);
            std::this_thread::sleep_for(5ms);
        }
        return;
    }
    std::string bytes;
    for (const auto& f : frames)
        bytes += f;
    if (how.chunk == 0) {
        socket.send_raw(bytes);
        return;
    }
    const std::string_view all{bytes};
    for (std::size_t at = 0; at < all.size(); at += how.chunk) {
        if (!socket.send_raw(all.substr(at, how.chunk)))
            return;
        std::this_thread::sleep_for(how.chunk == 1 ? std::chrono::microseconds{100} : 1ms);
    }
}

/// Checks the end of a case: the Close (exact code), then TCP closed with nothing after it.
void finish(test::ws_client& client, ending end) {
    if (end.kind == ending::open) {
        client.send_close(1000, "done");
        end = echoes_close(1000);
    }
    const auto got = conformance::read_message(client, 5s);
    if (!got) {
        FAIL_CHECK("expected a Close " << end.code << ", got nothing within 5 s"
                                       << (client.socket().eof() ? " (TCP closed)" : ""));
        return;
    }
    if (got->opcode != op_close) {
        FAIL_CHECK("expected a Close " << end.code << ", got " << describe(*got));
        return;
    }
    if (end.code == 1005) {
        INFO("an empty Close must be answered with an empty Close");
        CHECK(describe(*got) == describe(reply(op_close, "")));
    } else {
        CHECK(got->close_code() == end.code);
    }
    if (end.kind == ending::fails)
        client.send(op_close, got->payload.substr(0, 2));
    const auto limit = end.kind == ending::echoes_close ? 1000ms : 2000ms;
    const std::string after = client.socket().read_all(limit);
    INFO("the server must close TCP within " << limit.count() << " ms of the closing handshake");
    CHECK(client.socket().eof());
    INFO("bytes sent after the server's Close: \"" << escape(after.substr(0, 64)) << '"');
    CHECK(after.empty());
}

/// Runs one case on a fresh connection to `server`.
template <class Server>
void run(Server& server, const std::string& name, const std::vector<step>& steps, ending end) {
    INFO("case " << name);
    try {
        test::ws_client client{server.peer()};
        conformance::bound_sends(client.socket(), 10s);
        for (const auto& s : steps) {
            write(client, s.send, s.how);
            for (const auto& want : s.expect) {
                const auto got =
                    conformance::read_message(client, read_timeout(want.payload.size()));
                if (!got) {
                    FAIL_CHECK("expected " << describe(want) << ", got nothing"
                                           << (client.socket().eof() ? " (TCP closed)" : ""));
                    return;
                }
                const std::string observed = describe(*got);
                CHECK(observed == describe(want));
                if (observed != describe(want))
                    return;
            }
        }
        finish(client, end);
    } catch (const std::exception& e) {
        FAIL_CHECK(e.what());
    }
}

template <class Server>
void run(Server& server, const std::string& name, const std::vector<std::string>& send, chop how,
         const std::vector<test::frame>& expect, ending end) {
    run(server, name, {step{send, how, expect}}, end);
}

/// Case numbers within a section: "2.1", "2.2", …
class numbering {
public:
    explicit numbering(std::string section) : section_(std::move(section)) {}
    std::string operator()(const std::string& title) {
        return section_ + "." + std::to_string(++n_) + " " + title;
    }

private:
    std::string section_;
    int n_ = 0;
};

const std::string kosme = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"; // κόσμε

} // namespace

// --- 1 framing ------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("1 framing: text and binary messages at every length boundary are echoed",
                   "[conformance][1.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    for (const std::uint8_t opcode : {op_text, op_binary}) {
        numbering id{opcode == op_text ? "1.1" : "1.2"};
        const std::string kind = opcode == op_text ? "text" : "binary";
        const char fill = opcode == op_text ? '*' : '\xFE';
        for (const std::size_t length : {0, 125, 126, 127, 128, 65535, 65536}) {
            const std::string payload(length, fill);
            run(server, id(kind + " of " + std::to_string(length) + " bytes"),
                {frame(opcode, payload)}, whole, {reply(opcode, payload)}, stays_open);
        }
        // Header, extended length and mask split across reads.
        for (const std::size_t length : {0, 125, 126, 127, 128}) {
            const std::string payload(length, fill);
            run(server, id(kind + " of " + std::to_string(length) + " bytes written octet-wise"),
                {frame(opcode, payload)}, octet_wise, {reply(opcode, payload)}, stays_open);
        }
        for (const std::size_t length : {65535, 65536}) {
            const std::string payload(length, fill);
            run(server,
                id(kind + " of " + std::to_string(length) + " bytes written in 997-byte chunks"),
                {frame(opcode, payload)}, chunks_of(997), {reply(opcode, payload)}, stays_open);
        }
    }
    CHECK(server.stop() == 0);
}

// --- 2 pings and pongs ----------------------------------------------------------------------

TEMPLATE_TEST_CASE("2 pings: answered with their payload and unsolicited pongs ignored",
                   "[conformance][2.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"2"};
    const std::string bytes{"\x00\xFF\xFE\xFD\xFC\xFB\x00\xFF"sv};
    run(server, id("ping without payload"), {frame(op_ping)}, whole, {pong("")}, stays_open);
    run(server, id("ping with a text payload"), {frame(op_ping, "Hello, world!")}, whole,
        {pong("Hello, world!")}, stays_open);
    run(server, id("ping with a binary payload"), {frame(op_ping, bytes)}, whole, {pong(bytes)},
        stays_open);
    const std::string p125(125, '\xFE');
    run(server, id("ping with a 125-byte payload"), {frame(op_ping, p125)}, whole, {pong(p125)},
        stays_open);
    run(server, id("ping with a 126-byte payload"), {frame(op_ping, std::string(126, '\xFE'))},
        whole, {}, fails(1002));
    run(server, id("ping with a 126-byte payload after a valid message"),
        {frame(op_text, "Hello"), frame(op_ping, std::string(126, 'p'))}, whole, {text("Hello")},
        fails(1002));
    run(server, id("ping with a 125-byte payload written octet-wise"), {frame(op_ping, p125)},
        octet_wise, {pong(p125)}, stays_open);
    run(server, id("unsolicited pong without payload is ignored"),
        {frame(op_pong), frame(op_text, "after")}, whole, {text("after")}, stays_open);
    run(server, id("unsolicited pong with payload is ignored"),
        {frame(op_pong, "unsolicited pong payload"), frame(op_text, "after")}, whole,
        {text("after")}, stays_open);
    run(server, id("unsolicited pong then ping: one pong for the ping"),
        {frame(op_pong, "unsolicited pong payload"), frame(op_ping, "ping payload")}, whole,
        {pong("ping payload")}, stays_open);
    std::vector<std::string> pings;
    std::vector<test::frame> pongs;
    for (int i = 0; i < 10; ++i) {
        const std::string payload = "payload-" + std::to_string(i);
        pings.push_back(frame(op_ping, payload));
        pongs.push_back(pong(payload));
    }
    run(server, id("10 pings in one write: 10 pongs in order"), pings, whole, pongs, stays_open);
    run(server, id("10 pings frame-wise: 10 pongs in order"), pings, frame_wise, pongs, stays_open);
    run(server, id("10 pings octet-wise: 10 pongs in order"), pings, octet_wise, pongs, stays_open);
    CHECK(server.stop() == 0);
}

// --- 3 reserved bits ------------------------------------------------------------------------

TEMPLATE_TEST_CASE("3 reserved bits: RSV1 RSV2 RSV3 without an extension fail with 1002",
                   "[conformance][3.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"3"};
    const auto bits = [](std::uint8_t rsv) {
        std::string out;
        for (const auto& [bit, name] : std::initializer_list<std::pair<int, const char*>>{
                 {4, "RSV1"}, {2, "RSV2"}, {1, "RSV3"}})
            if (rsv & bit)
                out += out.empty() ? name : std::string{"+"} + name;
        return out;
    };
    for (const std::uint8_t rsv : {4, 2, 1})
        run(server, id(bits(rsv) + " on a text frame"), {frame(op_text, "Hello", true, rsv)}, whole,
            {}, fails(1002));
    const std::vector<std::pair<std::uint8_t, std::string>> carriers = {
        {op_text, "Hello"},
        {op_binary, std::string{"\x00\xFF\xFE\xFD\xFC\xFB\x00\xFF"sv}},
        {op_ping, "ping"},
        {op_pong, "pong"},
        {op_close, test::close_payload(1000)}};
    for (std::uint8_t rsv = 1; rsv <= 7; ++rsv) {
        for (const auto& [opcode, payload] : carriers) {
            const auto bad = frame(opcode, payload, true, rsv);
            run(server,
                id(bits(rsv) + " on " + opcode_name(opcode) +
                   " after a valid message, then a ping"),
                {frame(op_text, "Hello"), bad, frame(op_ping, "after")}, whole, {text("Hello")},
                fails(1002));
        }
    }
    for (const std::uint8_t rsv : {4, 2, 1}) {
        const std::vector<std::string> sent = {
            frame(op_text, "Hello"), frame(op_text, "Hello", true, rsv), frame(op_ping, "after")};
        run(server, id(bits(rsv) + " on text after a valid message, frame-wise"), sent, frame_wise,
            {text("Hello")}, fails(1002));
        run(server, id(bits(rsv) + " on text after a valid message, octet-wise"), sent, octet_wise,
            {text("Hello")}, fails(1002));
    }
    run(server, id("RSV1 on a continuation frame"),
        {frame(op_text, "frag1", false), frame(op_continuation, "frag2", true, 4)}, whole, {},
        fails(1002));
    CHECK(server.stop() == 0);
}

// --- 4 opcodes ------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("4 opcodes: reserved opcodes fail with 1002", "[conformance][4.x]",
                   WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering data_id{"4.1"}, control_id{"4.2"};
    for (const std::uint8_t opcode : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        auto& id = opcode < 8 ? data_id : control_id;
        const std::string name = "reserved opcode " + std::to_string(opcode);
        run(server, id(name + " without payload"), {frame(opcode)}, whole, {}, fails(1002));
        const std::vector<std::string> sent = {
            frame(op_text, "Hello"), frame(opcode, "reserved opcode"), frame(op_ping, "after")};
        run(server, id(name + " after a valid message, then a ping"), sent, whole, {text("Hello")},
            fails(1002));
        run(server, id(name + " after a valid message, frame-wise"), sent, frame_wise,
            {text("Hello")}, fails(1002));
        run(server, id(name + " after a valid message, octet-wise"), sent, octet_wise,
            {text("Hello")}, fails(1002));
    }
    CHECK(server.stop() == 0);
}

// --- 5 fragmentation ------------------------------------------------------------------------

TEMPLATE_TEST_CASE("5 fragmentation: fragments are reassembled and misuse fails with 1002",
                   "[conformance][5.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"5"};
    run(server, id("ping in 2 fragments"),
        {frame(op_ping, "fragment1", false), frame(op_continuation, "fragment2")}, whole, {},
        fails(1002));
    run(server, id("pong in 2 fragments"),
        {frame(op_pong, "fragment1", false), frame(op_continuation, "fragment2")}, whole, {},
        fails(1002));
    run(server, id("close in 2 fragments"),
        {frame(op_close, test::close_payload(1000), false), frame(op_continuation, "")}, whole, {},
        fails(1002));

    const auto two = fragments(op_text, {"fragment1", "fragment2"});
    for (const auto& [how, name] : std::initializer_list<std::pair<chop, const char*>>{
             {whole, "in one write"}, {frame_wise, "frame-wise"}, {octet_wise, "octet-wise"}}) {
        const std::string suffix = std::string{", "} + name;
        run(server, id("text in 2 fragments" + suffix), two, how, {text("fragment1fragment2")},
            stays_open);
        run(server, id("text in 2 fragments with a ping between" + suffix),
            {frame(op_text, "fragment1", false), frame(op_ping, "pongme!"),
             frame(op_continuation, "fragment2")},
            how, {pong("pongme!"), text("fragment1fragment2")}, stays_open);
        run(server, id("continuation with FIN and nothing to continue" + suffix),
            {frame(op_continuation, "non-continuation payload"), frame(op_text, "Hello, world!")},
            how, {}, fails(1002));
        run(server, id("continuation without FIN and nothing to continue" + suffix),
            {frame(op_continuation, "non-continuation payload", false),
             frame(op_text, "Hello, world!")},
            how, {}, fails(1002));
    }
    run(server, id("2-fragment text then a stray continuation then text"),
        two + std::vector<std::string>{frame(op_continuation, "fragment3", false),
                                       frame(op_text, "fragment4")},
        whole, {text("fragment1fragment2")}, fails(1002));
    run(server, id("twice: stray continuation without FIN then a 2-fragment text"),
        std::vector<std::string>{frame(op_continuation, "fragment1", false)} + two +
            std::vector<std::string>{frame(op_continuation, "fragment1", false)} + two,
        whole, {}, fails(1002));
    run(server, id("twice: stray continuation with FIN then a 2-fragment text"),
        std::vector<std::string>{frame(op_continuation, "fragment1")} + two +
            std::vector<std::string>{frame(op_continuation, "fragment1")} + two,
        whole, {}, fails(1002));
    run(server, id("new text message before the end of a text message"),
        {frame(op_text, "fragment1", false), frame(op_text, "fragment2")}, whole, {}, fails(1002));
    run(server, id("new binary message before the end of a text message"),
        {frame(op_text, "fragment1", false), frame(op_binary, "fragment2")}, whole, {},
        fails(1002));
    run(server, id("new text message before the end of a binary message"),
        {frame(op_binary, "fragment1", false), frame(op_text, "fragment2", false)}, whole, {},
        fails(1002));
    const std::vector<std::string> five_with_pings = {frame(op_text, "fragment1", false),
                                                      frame(op_continuation, "fragment2", false),
                                                      frame(op_ping, "pongme 1!"),
                                                      frame(op_continuation, "fragment3", false),
                                                      frame(op_continuation, "fragment4", false),
                                                      frame(op_ping, "pongme 2!"),
                                                      frame(op_continuation, "fragment5")};
    const std::vector<test::frame> five_replies = {
        pong("pongme 1!"), pong("pongme 2!"),
        text("fragment1fragment2fragment3fragment4fragment5")};
    run(server, id("text in 5 fragments with 2 pings between"), five_with_pings, whole,
        five_replies, stays_open);
    run(server, id("text in 5 fragments with 2 pings between, frame-wise"), five_with_pings,
        frame_wise, five_replies, stays_open);
    run(server, id("a ping between fragments is answered before the message ends"),
        {step{{frame(op_text, "fragment1", false), frame(op_ping, "now")}, whole, {pong("now")}},
         step{{frame(op_continuation, "fragment2")}, whole, {text("fragment1fragment2")}}},
        stays_open);
    const std::string bytes{"\x00\xFF\xFE\xFD\xFC\xFB\x00\xFF"sv};
    run(server, id("binary in 3 fragments"),
        fragments(op_binary, {bytes, std::string(300, '\x01'), bytes}), whole,
        {binary(bytes + std::string(300, '\x01') + bytes)}, stays_open);
    run(server, id("text in 1-byte fragments"), fragmented(op_text, "Hello, world!", 1), whole,
        {text("Hello, world!")}, stays_open);
    run(server, id("binary in 1-byte fragments"), fragmented(op_binary, bytes, 1), whole,
        {binary(bytes)}, stays_open);
    run(server, id("text in 3 empty fragments"), fragments(op_text, {"", "", ""}), whole,
        {text("")}, stays_open);
    run(server, id("text with empty first and last fragments"),
        fragments(op_text, {"", "middle", ""}), whole, {text("middle")}, stays_open);
    run(server, id("binary in 2 empty fragments"), fragments(op_binary, {"", ""}), whole,
        {binary("")}, stays_open);
    run(server, id("a fragmented message then an unfragmented one"),
        two + std::vector<std::string>{frame(op_text, "single")}, whole,
        {text("fragment1fragment2"), text("single")}, stays_open);
    CHECK(server.stop() == 0);
}

// --- 6 UTF-8 --------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("6 UTF-8: valid text is echoed whatever the fragment boundaries",
                   "[conformance][6.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"6.1"};
    const std::vector<std::pair<std::string, std::string>> valid = {
        {"Hello-U+00B5@...-UTF-8!!",
         "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!"},
        {"kosme in Greek", kosme},
        {"U+0000", std::string{"\x00"sv}},
        {"U+007F", "\x7F"},
        {"U+0080", "\xC2\x80"},
        {"U+07FF", "\xDF\xBF"},
        {"U+0800", "\xE0\xA0\x80"},
        {"U+D7FF", "\xED\x9F\xBF"},
        {"U+E000", "\xEE\x80\x80"},
        {"U+FDD0 (noncharacter)", "\xEF\xB7\x90"},
        {"U+FFFD", "\xEF\xBF\xBD"},
        {"U+FFFE (noncharacter)", "\xEF\xBF\xBE"},
        {"U+FFFF (noncharacter)", "\xEF\xBF\xBF"},
        {"U+10000", "\xF0\x90\x80\x80"},
        {"U+1F600", "\xF0\x9F\x98\x80"},
        {"U+1FFFE (noncharacter)", "\xF0\x9F\xBF\xBE"},
        {"U+10FFFF", "\xF4\x8F\xBF\xBF"},
    };
    for (const auto& [name, payload] : valid) {
        run(server, id(name + " in one frame"), {frame(op_text, payload)}, whole, {text(payload)},
            stays_open);
        run(server, id(name + " in 1-byte fragments"), fragmented(op_text, payload, 1), whole,
            {text(payload)}, stays_open);
        run(server, id(name + " written octet-wise"), {frame(op_text, payload)}, octet_wise,
            {text(payload)}, stays_open);
    }
    // A 4-byte character between two ASCII bytes, cut at every position into 2 and 3 fragments.
    const std::string m = "<\xF0\x9F\x98\x80>";
    for (std::size_t i = 1; i < m.size(); ++i) {
        run(server, id("U+1F600 split in 2 at byte " + std::to_string(i)),
            fragments(op_text, {m.substr(0, i), m.substr(i)}), whole, {text(m)}, stays_open);
        for (std::size_t j = i + 1; j < m.size(); ++j)
            run(server,
                id("U+1F600 split in 3 at bytes " + std::to_string(i) + " and " +
                   std::to_string(j)),
                fragments(op_text, {m.substr(0, i), m.substr(i, j - i), m.substr(j)}), whole,
                {text(m)}, stays_open);
    }
    CHECK(server.stop() == 0);
}

TEMPLATE_TEST_CASE("6 UTF-8: invalid text fails with 1007", "[conformance][6.x]",
                   WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"6.2"};
    const std::vector<std::pair<std::string, std::string>> invalid = {
        {"kosme with the surrogate U+D800 inside", kosme + "\xED\xA0\x80" + "edited"},
        {"lone continuation 0x80", "\x80"},
        {"lone continuation 0xBF", "\xBF"},
        {"continuations 0x80 0xBF", "\x80\xBF"},
        {"lead byte 0xC2 then a space", "\xC2 "},
        {"lead byte 0xE0 then a space", "\xE0 "},
        {"lead byte 0xF0 then a space", "\xF0 "},
        {"overlong slash in 2 bytes", "\xC0\xAF"},
        {"overlong slash in 3 bytes", "\xE0\x80\xAF"},
        {"overlong slash in 4 bytes", "\xF0\x80\x80\xAF"},
        {"overlong U+0000", "\xC0\x80"},
        {"largest overlong in 2 bytes", "\xC1\xBF"},
        {"largest overlong in 3 bytes", "\xE0\x9F\xBF"},
        {"largest overlong in 4 bytes", "\xF0\x8F\xBF\xBF"},
        {"U+110000", "\xF4\x90\x80\x80"},
        {"lead byte 0xF5", "\xF5\x80\x80\x80"},
        {"lead byte 0xF7", "\xF7\xBF\xBF\xBF"},
        {"5-byte sequence", "\xF8\x88\x80\x80\x80"},
        {"6-byte sequence", "\xFC\x84\x80\x80\x80\x80"},
        {"byte 0xFE", "\xFE"},
        {"byte 0xFF", "\xFF"},
        {"bytes 0xFE 0xFE 0xFF 0xFF", "\xFE\xFE\xFF\xFF"},
        {"surrogate U+D800", "\xED\xA0\x80"},
        {"surrogate U+DBFF", "\xED\xAF\xBF"},
        {"surrogate U+DC00", "\xED\xB0\x80"},
        {"surrogate U+DFFF", "\xED\xBF\xBF"},
        {"surrogate pair U+D800 U+DC00", "\xED\xA0\x80\xED\xB0\x80"},
        {"2-byte character cut at the end", "ab\xC2"},
        {"3-byte character cut at the end", "ab\xE2\x82"},
        {"4-byte character cut at the end", "ab\xF0\x9F\x98"},
        {"3-byte character cut by ASCII", "\xE2\x82"
                                          "a"},
        {"valid text then 0xFF", "Hello\xFF"},
    };
    for (const auto& [name, payload] : invalid) {
        run(server, id(name + " in one frame"), {frame(op_text, payload)}, whole, {}, fails(1007));
        run(server, id(name + " in 1-byte fragments"), fragmented(op_text, payload, 1), whole, {},
            fails(1007));
    }
    run(server, id("a valid message then 0xFF"), {frame(op_text, "Hello"), frame(op_text, "\xFF")},
        whole, {text("Hello")}, fails(1007));
    run(server, id("a 4-byte character cut by the end of a fragmented message"),
        fragments(op_text, {"\xF0\x9F", "\x98"}), whole, {}, fails(1007));
    run(server, id("a 4-byte character cut by the end of a message then completed"),
        {frame(op_text, "\xF0\x9F\x98"), frame(op_text, "\x80")}, whole, {}, fails(1007));
    CHECK(server.stop() == 0);
}

TEMPLATE_TEST_CASE("6 UTF-8: invalid text fails fast before the message ends", "[conformance][6.x]",
                   WSCHAT_CONFORMANCE_TRANSPORTS) {
    // Only the first fragments are sent: the rest never is, so the Close must come from them.
    conformance::echo_server<TestType> server;
    numbering id{"6.3"};
    run(server, id("U+110000 in the first fragment"),
        {frame(op_text, kosme + "\xF4\x90\x80\x80", false)}, whole, {}, fails(1007));
    run(server, id("0xF4 ends the first fragment and 0x90 starts the second"),
        {frame(op_text, kosme + "\xF4", false), frame(op_continuation, "\x90", false)}, frame_wise,
        {}, fails(1007));
    run(server, id("overlong slash in the first fragment"), {frame(op_text, "\xC0\xAF", false)},
        whole, {}, fails(1007));
    run(server, id("0xFF in the first fragment"), {frame(op_text, "Hello\xFF", false)}, whole, {},
        fails(1007));
    run(server, id("surrogate in the second fragment"),
        {frame(op_text, "ok", false), frame(op_continuation, "\xED\xA0\x80", false)}, whole, {},
        fails(1007));
    // Prefixes no continuation can make valid.
    for (const auto& [name, prefix] : std::initializer_list<std::pair<const char*, const char*>>{
             {"0xE0 0x80 (overlong)", "\xE0\x80"},
             {"0xED 0xA0 (surrogate)", "\xED\xA0"},
             {"0xF4 0x90 (above U+10FFFF)", "\xF4\x90"},
             {"0xF0 0x8F (overlong)", "\xF0\x8F"}})
        run(server, id(std::string{name} + " ending the first fragment"),
            {frame(op_text, prefix, false)}, whole, {}, fails(1007));
    CHECK(server.stop() == 0);
}

// --- 7 close --------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("7 close: the closing handshake and its codes and reasons", "[conformance][7.x]",
                   WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"7.1"};
    const std::string close1000 = frame(op_close, test::close_payload(1000));
    run(server, id("a message then Close 1000"), {frame(op_text, "Hello World!"), close1000}, whole,
        {text("Hello World!")}, echoes_close(1000));
    run(server, id("Close 1000 twice"), {close1000, close1000}, whole, {}, echoes_close(1000));
    run(server, id("a ping after Close is not answered"), {close1000, frame(op_ping, "after")},
        whole, {}, echoes_close(1000));
    run(server, id("text after Close is not echoed"), {close1000, frame(op_text, "after")}, whole,
        {}, echoes_close(1000));
    run(server, id("text after Close frame-wise is not echoed"),
        {close1000, frame(op_text, "after")}, frame_wise, {}, echoes_close(1000));
    run(server, id("Close between two fragments: the message is dropped"),
        {frame(op_text, "fragment1", false), close1000, frame(op_continuation, "fragment2")}, whole,
        {}, echoes_close(1000));
    std::string big(256 * 1024, '\0');
    std::mt19937 random{61455};
    for (char& c : big)
        c = static_cast<char>(random());
    run(server, id("a 256 KiB message then Close then a ping"),
        {frame(op_binary, big), close1000, frame(op_ping, "after")}, whole, {binary(big)},
        echoes_close(1000));

    numbering payload_id{"7.3"};
    run(server, payload_id("empty Close: answered with an empty Close"), {frame(op_close)}, whole,
        {}, echoes_close(1005));
    run(server, payload_id("Close with a 1-byte payload"), {frame(op_close, "\x03")}, whole, {},
        refuses_close(1002));
    run(server, payload_id("Close 1000 without reason"), {close1000}, whole, {},
        echoes_close(1000));
    run(server, payload_id("Close 1000 with a reason"),
        {frame(op_close, test::close_payload(1000, "Hello World!"))}, whole, {},
        echoes_close(1000));
    run(server, payload_id("Close 1000 with a 123-byte reason"),
        {frame(op_close, test::close_payload(1000, std::string(123, 'r')))}, whole, {},
        echoes_close(1000));
    run(server, payload_id("Close 1000 with a 124-byte reason (126-byte payload)"),
        {frame(op_close, test::close_payload(1000, std::string(124, 'r')))}, whole, {},
        refuses_close(1002));
    run(server, payload_id("Close 1000 with a multi-byte UTF-8 reason"),
        {frame(op_close, test::close_payload(1000, kosme))}, whole, {}, echoes_close(1000));
    run(server, payload_id("Close 1000 with a reason holding a surrogate"),
        {frame(op_close, test::close_payload(1000, kosme + "\xED\xA0\x80" + "edited"))}, whole, {},
        refuses_close(1007));
    run(server, payload_id("Close 1000 with a reason cut inside a character"),
        {frame(op_close, test::close_payload(1000, "ab\xCE"))}, whole, {}, refuses_close(1007));

    numbering code_id{"7.7"};
    for (const std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                     1013, 1014, 3000, 3999, 4000, 4999})
        run(server, code_id("Close " + std::to_string(code) + " is echoed"),
            {frame(op_close, test::close_payload(code, "reason"))}, whole, {}, echoes_close(code));
    numbering bad_id{"7.9"};
    for (const std::uint16_t code :
         {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
        run(server, bad_id("Close " + std::to_string(code) + " is refused"),
            {frame(op_close, test::close_payload(code))}, whole, {}, refuses_close(1002));
    CHECK(server.stop() == 0);
}

// --- 9 limits -------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("9 limits: large messages are echoed intact up to the 16 MiB limit",
                   "[conformance][9.x]", WSCHAT_CONFORMANCE_TRANSPORTS) {
    conformance::echo_server<TestType> server;
    numbering id{"9"};
    constexpr std::size_t mib = 1024 * 1024;
    const auto text_of = [](std::size_t size) {
        const std::string unit = kosme + " wschat conformance ";
        std::string out;
        out.reserve(size);
        while (out.size() + unit.size() <= size)
            out += unit;
        out.resize(size, '.');
        return out;
    };
    const auto bytes_of = [](std::size_t size) {
        std::string out(size, '\0');
        std::mt19937 random{6455};
        for (char& c : out)
            c = static_cast<char>(random());
        return out;
    };
    const std::string text_1m = text_of(mib);
    const std::string bytes_1m = bytes_of(mib);
    run(server, id("text of 1 MiB"), {frame(op_text, text_1m)}, whole, {text(text_1m)}, stays_open);
    run(server, id("binary of 1 MiB"), {frame(op_binary, bytes_1m)}, whole, {binary(bytes_1m)},
        stays_open);
    run(server, id("text of 1 MiB in 64 KiB fragments"), fragmented(op_text, text_1m, 64 * 1024),
        whole, {text(text_1m)}, stays_open);
    run(server, id("binary of 1 MiB written in 4093-byte chunks"), {frame(op_binary, bytes_1m)},
        chunks_of(4093), {binary(bytes_1m)}, stays_open);

    const std::string bytes_16m = bytes_of(16 * mib);
    run(server, id("binary of exactly 16 MiB (the limit)"), {frame(op_binary, bytes_16m)}, whole,
        {binary(bytes_16m)}, stays_open);
    // Refused from the header: only the header and 64 KiB of the payload are ever sent.
    const std::string over = frame(op_binary, bytes_16m + "x");
    run(server, id("binary of 16 MiB + 1 refused from its header"),
        {over.substr(0, 2 + 8 + 4 + 64 * 1024)}, whole, {}, fails(1009));
    const std::string text_16m = text_of(16 * mib);
    run(server, id("text of 16 MiB + 1 in two fragments"), fragments(op_text, {text_16m, "x"}),
        whole, {}, fails(1009));
    CHECK(server.stop() == 0);
}
