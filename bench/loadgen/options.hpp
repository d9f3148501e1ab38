// loadgen — the command line.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

struct options {
    std::string mode;               ///< w1, w2, w3, w4, w5, storm or rooms
    std::string host = "127.0.0.1"; ///< server address (IPv4)
    std::uint16_t port = 8080;      ///< server port
    /// rooms: the ports of several nodes of one cluster, member i connecting to the
    /// (i mod n)-th; by default {port}
    std::vector<std::uint16_t> ports;
    std::size_t members = 1000; ///< room members (w1-w4, storm; rooms: per room)
    std::size_t rooms = 100;    ///< rooms: lobby rooms, one sender each
    std::size_t senders = 1;    ///< members that send (w2/w3; w1 always has one)
    std::size_t in_flight = 16; ///< w1, rooms: a sender's messages outstanding at once
    double rate = 10;           ///< w2/w3: messages per second per sender
    double warmup = 1;          ///< seconds before the measured window
    double duration = 5;        ///< seconds of the measured window (w5: of the run)
    double grace = 2;           ///< seconds to wait for late deliveries (storm: to settle)
    double hold = -1; ///< seconds the members stay open after the run (w4: 2, else 0 by default)
    std::size_t concurrency = 32;       ///< w5: connect-upgrade-close loops at once
    std::size_t connect_batch = 128;    ///< connections in their handshake at once
    std::size_t source_addresses = 250; ///< w5, storm: loopback addresses (127.0.0.2+)
    double join_timeout = 60;           ///< seconds for every member to join
    std::string payload = "fixed";      ///< w1-w3: "fixed" (64 bytes) or "json" (chat envelopes)
    bool deflate = false;               ///< offer permessage-deflate as a browser does
    long server_pid = 0;                ///< when set, the server's CPU in the window is reported
};

inline const char* usage_text() {
    return "usage: loadgen MODE --port P [options]\n"
           "  MODE: w1 (fan-out, closed loop) | w2 | w3 (open loop) | w4 (idle) | w5 (handshakes)\n"
           "        | storm (N members joining at once and staying)\n"
           "        | rooms (a chat::lobby: R rooms x M members, closed loop per room)\n"
           "  --host A --port P --rooms R --members N --senders S --in-flight K --rate R\n"
           "  --warmup S --duration S --grace S --hold S --concurrency C --connect-batch B\n"
           "  --join-timeout S --source-addresses N --payload fixed|json --deflate on|off\n"
           "  --server-pid PID --ports P1,P2,... (rooms: members spread over the nodes of a "
           "cluster)\n";
}

/// A TCP port from 1 to 65535; throws std::invalid_argument otherwise.
inline std::uint16_t port_number(const std::string& text) {
    const unsigned long port = std::stoul(text);
    if (port == 0 || port > 65535)
        throw std::invalid_argument("not a port: " + text);
    return static_cast<std::uint16_t>(port);
}

/// Parses argv; throws std::invalid_argument with a message on a bad command line.
inline options parse_options(int argc, char** argv) {
    if (argc < 2)
        throw std::invalid_argument("missing MODE");
    options o;
    o.mode = argv[1];
    if (o.mode != "w1" && o.mode != "w2" && o.mode != "w3" && o.mode != "w4" && o.mode != "w5" &&
        o.mode != "storm" && o.mode != "rooms")
        throw std::invalid_argument("unknown mode " + o.mode);
    for (int i = 2; i < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            throw std::invalid_argument("missing value after " + std::string{flag});
        const std::string value = argv[i + 1];
        const auto count = [&] { return static_cast<std::size_t>(std::stoul(value)); };
        if (flag == "--host")
            o.host = value;
        else if (flag == "--port")
            o.port = port_number(value);
        else if (flag == "--ports")
            for (std::size_t at = 0; at <= value.size();) {
                const std::size_t comma = std::min(value.find(',', at), value.size());
                o.ports.push_back(port_number(value.substr(at, comma - at)));
                at = comma + 1;
            }
        else if (flag == "--members")
            o.members = count();
        else if (flag == "--rooms")
            o.rooms = count();
        else if (flag == "--senders")
            o.senders = count();
        else if (flag == "--in-flight")
            o.in_flight = count();
        else if (flag == "--rate")
            o.rate = std::stod(value);
        else if (flag == "--warmup")
            o.warmup = std::stod(value);
        else if (flag == "--duration")
            o.duration = std::stod(value);
        else if (flag == "--grace")
            o.grace = std::stod(value);
        else if (flag == "--hold")
            o.hold = std::stod(value);
        else if (flag == "--concurrency")
            o.concurrency = count();
        else if (flag == "--connect-batch")
            o.connect_batch = count();
        else if (flag == "--source-addresses")
            o.source_addresses = count();
        else if (flag == "--join-timeout")
            o.join_timeout = std::stod(value);
        else if (flag == "--payload")
            o.payload = value;
        else if (flag == "--deflate" && (value == "on" || value == "off"))
            o.deflate = value == "on";
        else if (flag == "--server-pid")
            o.server_pid = std::stol(value);
        else
            throw std::invalid_argument("unknown flag or bad value: " + std::string{flag} + ' ' +
                                        value);
    }
    if (o.mode == "w1" || o.mode == "rooms")
        o.senders = 1;
    if (!o.ports.empty() && o.mode != "rooms")
        throw std::invalid_argument("--ports is for the rooms mode");
    if (o.ports.empty())
        o.ports.push_back(o.port);
    if (o.rooms == 0 || o.rooms > 100000)
        throw std::invalid_argument("--rooms must be 1 to 100000");
    if (o.hold < 0)
        o.hold = o.mode == "w4" ? 2 : 0;
    if (o.payload != "fixed" && o.payload != "json")
        throw std::invalid_argument("--payload takes fixed or json");
#if !defined(WSCHAT_BENCH_DEFLATE)
    if (o.deflate)
        throw std::invalid_argument("--deflate on: this loadgen was built without zlib");
#endif
    if (o.source_addresses == 0 || o.source_addresses > 250)
        throw std::invalid_argument("--source-addresses must be 1 to 250");
    if (o.members == 0 || o.senders == 0 || o.senders > o.members || o.senders > 999999)
        throw std::invalid_argument("need 0 < senders <= members, senders < 10^6");
    if (o.rate <= 0 || o.duration <= 0 || o.concurrency == 0 || o.connect_batch == 0)
        throw std::invalid_argument("rate, duration, concurrency and connect-batch must be > 0");
    return o;
}

} // namespace loadgen
