// ws::client against independent servers: Python's `websockets` and Node's `ws`
// (tests/interop/client_peer.py and .mjs). Text and binary messages of 0 B to 1 MiB echoed,
// a fragmented message, the server's ping answered, the client's pings answered (on a manual
// clock, so a missing pong would cut the connection), and close codes both ways. A peer that
// is not installed is skipped with a warning.
#include "support/client_loop.hpp"
#include "support/conformance.hpp"

#include <wschat/ws/client.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// The repository root, from this file's path (CMake and meson compile it by absolute path).
std::string repo_root() {
    std::string file = __FILE__;
    for (int up = 0; up < 3; ++up)
        file = file.substr(0, file.find_last_of('/'));
    return file;
}

struct peer {
    std::string name;
    std::string program;
    std::string script;
    std::string probe; // a shell command that succeeds when the peer can run
};

std::vector<peer> peers() {
    const std::string root = repo_root();
    return {{"python websockets", "/usr/bin/python3", root + "/tests/interop/client_peer.py",
             "/usr/bin/python3 -c 'import websockets' 2>/dev/null"},
            {"node ws", "/usr/bin/env", root + "/tests/interop/client_peer.mjs",
             "cd '" + root + "' && node -e \"require('ws')\" 2>/dev/null"}};
}

} // namespace

TEST_CASE("client: interop with Python websockets and Node ws servers",
          "[integration][client][interop]") {
    for (const peer& p : peers()) {
        DYNAMIC_SECTION(p.name) {
            if (std::system(p.probe.c_str()) != 0) {
                WARN(p.name << " is not installed (python3-websockets; npm ci for ws): skipped");
                continue;
            }
            std::vector<std::string> args{p.script};
            if (p.program == "/usr/bin/env")
                args.insert(args.begin(), "node");
            conformance::child_process server{p.program, args};
            const auto port = server.read_line(20s);
            REQUIRE(port);

            asio::io_context io;
            auto clock = std::make_shared<ws::manual_clock>();
            ws::client_options opts;
            opts.url = "ws://127.0.0.1:" + *port + "/interop";
            opts.clock = clock;
            opts.max_message_size = 2 * 1024 * 1024;
            opts.reconnect.enabled = false;
            ws::client<> client{io, opts};
            test::client_record record;
            record.watch(client);
            client.connect();
            REQUIRE(test::run_until(io, [&] { return client.is_open(); }));

            // Echo of every size, text and binary, in order.
            std::vector<std::string> expected;
            for (const std::size_t size : {0, 1, 125, 126, 127, 65535, 65536, 65537, 1048576}) {
                std::string text(size, 'x');
                for (std::size_t i = 0; i < size; ++i)
                    text[i] = static_cast<char>('a' + i % 26);
                REQUIRE(client.send_text(text) == ws::send_status::sent);
                expected.push_back(text);
                std::string bytes(size, '\0');
                for (std::size_t i = 0; i < size; ++i)
                    bytes[i] = static_cast<char>(i * 31 + 7);
                REQUIRE(client.send_binary(bytes) == ws::send_status::sent);
                expected.push_back("bin:" + bytes);
            }
            REQUIRE(test::run_until(io, [&] { return record.messages.size() == expected.size(); }));
            CHECK(record.messages == expected);
            record.messages.clear();

            // A fragmented message, and the server's ping answered.
            client.send_text("fragment");
            client.send_text("ping-me");
            REQUIRE(test::run_until(io, [&] { return record.messages.size() == 2; }));
            CHECK(record.messages == std::vector<std::string>{"fragmented", "pong:probe"});

            // The client's own ping: answered, so the pong timeout does not cut the connection.
            clock->advance(opts.ping_interval);
            test::run_for(io, 100ms);
            clock->advance(opts.pong_timeout);
            test::run_for(io, 50ms);
            CHECK(client.is_open());
            CHECK(record.closes.empty());

            SECTION("the server closes with a code and a reason") {
                client.send_text("close:4321:going for lunch");
                REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
                CHECK(record.closes[0].code == 4321);
                CHECK(record.closes[0].reason == "going for lunch");
                CHECK(record.closes[0].closed_by_peer);
                CHECK_FALSE(record.closes[0].error);
            }
            SECTION("the client closes with a code and a reason") {
                client.close(ws::close_code::going_away, "bye");
                REQUIRE(test::run_until(io, [&] { return !record.closes.empty(); }));
                CHECK(record.closes[0].code == 1001);
                CHECK_FALSE(record.closes[0].closed_by_peer);
                CHECK_FALSE(record.closes[0].error); // the server answered our Close
            }
        }
    }
}
