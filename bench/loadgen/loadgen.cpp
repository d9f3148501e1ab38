// loadgen — the load generator of wschat's benchmark (bench/run.py drives it).
//
// Real clients on one thread: HTTP upgrade handshakes, masked 64-byte text frames (or chat
// JSON envelopes) stamped with sender, sequence and send time, wschat's own frame parser for
// what comes back, permessage-deflate when offered (--deflate on). Each run prints one JSON
// line on stdout (W4, and W1-W3 with --hold, print a {"event": "ready"} line first).
//
//     loadgen w1 --port 8080 --members 1000 --in-flight 16
//     loadgen w1 --port 8080 --members 1000 --payload json --deflate on --hold 1
//     loadgen w2 --port 8080 --members 1000 --senders 100 --rate 10
//     loadgen w5 --port 8080 --concurrency 32 --duration 5
//     loadgen storm --port 8080 --members 5000 --connect-batch 256
//     loadgen rooms --port 8080 --rooms 100 --members 10 --in-flight 16 --hold 1
#include "handshake_load.hpp"
#include "lobby_load.hpp"
#include "options.hpp"
#include "room_load.hpp"
#include "storm_load.hpp"

#include <csignal>
#include <cstdio>
#include <exception>
#include <sys/resource.h>

int main(int argc, char** argv) try {
    const loadgen::options opts = loadgen::parse_options(argc, argv);
    // One descriptor per member: raise the soft limit to the hard one.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }
    std::signal(SIGPIPE, SIG_IGN);
    if (opts.mode == "w5")
        return loadgen::handshake_load{opts}.run();
    if (opts.mode == "storm")
        return loadgen::storm_load{opts}.run();
    if (opts.mode == "rooms")
        return loadgen::lobby_load{opts}.run();
    return loadgen::room_load{opts}.run();
} catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "loadgen: %s\n%s", e.what(), loadgen::usage_text());
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
}
