// wschat — the server's options: where it listens and the limits that keep it safe.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/compression.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Everything a `ws::server` can be told, each with a safe default and the reason for it.
///
/// A default that lets one peer exhaust memory or hold a connection forever would be a bug:
/// every size and time here is bounded out of the box.
///
/// ```cpp
/// ws::server_options opts;
/// opts.port = 9000;
/// opts.heartbeat_interval = std::chrono::seconds{10};
/// ```
struct server_options {
    /// Address to listen on. Loopback by default so that nothing is exposed by accident;
    /// use "0.0.0.0" or "::" to accept connections from other hosts.
    std::string address = "127.0.0.1";

    /// TCP port; 0 asks the OS for a free one (read it back with `server::port()`).
    std::uint16_t port = 8080;

    /// Subprotocols this server speaks, most preferred first. The first one the client
    /// offers in Sec-WebSocket-Protocol is selected; none is selected when none match.
    /// `on_upgrade` may override the choice.
    std::vector<std::string> subprotocols;

    /// Largest HTTP request head (request line + headers). 8 KiB holds a browser's request
    /// with its cookies, and matches common proxies' limits; past it: 431.
    std::size_t max_header_bytes = 8 * 1024;

    /// Time a client has, from TCP accept, to complete its upgrade request. Bounds
    /// slowloris-style clients that open sockets and never finish the request.
    std::chrono::milliseconds handshake_timeout{10'000};

    /// Largest message (after reassembly) a peer may send. 1 MiB is far above any chat line
    /// and caps the memory one peer can make the server hold; past it: close 1009, refused
    /// from the frame header, before the payload is buffered.
    std::size_t max_message_size = 1024 * 1024;

    /// Bytes that may wait in one peer's send queue. A peer that reads slower than the room
    /// talks is closed with 1008 past this bound, so it can never grow server memory or
    /// slow the other members down. 4 MiB absorbs bursts of tens of thousands of lines.
    std::size_t max_send_queue_bytes = 4 * 1024 * 1024;

    /// How often every connection is pinged. Pings keep NAT and proxy mappings alive and
    /// detect dead peers; 30 s is under the 60 s idle timeout of nginx's default
    /// proxy_read_timeout. Zero disables heartbeats (not recommended).
    std::chrono::milliseconds heartbeat_interval{30'000};

    /// A peer from which nothing (not even a pong) has arrived for this long is considered
    /// dead: its connection is closed and it leaves its rooms. Two intervals allow one lost
    /// ping before declaring the peer gone.
    std::chrono::milliseconds heartbeat_timeout{60'000};

    /// A connection whose peer has sent no message (pings and pongs do not count) for this
    /// long is closed with 1001 "idle timeout". Zero, the default, keeps silent members: in
    /// a chat a reader who never writes is an ordinary user, and the heartbeat already ends
    /// dead peers. Set it for devices that are expected to report regularly. Checked by the
    /// heartbeat sweep, so a connection ends between one and two timeouts after its last
    /// message (the sweep runs at the shorter of this and `heartbeat_interval`).
    std::chrono::milliseconds idle_timeout{0};

    /// How long to wait for the peer's answer to our Close frame (and for it to close TCP)
    /// before closing the socket anyway.
    std::chrono::milliseconds close_timeout{5'000};

    /// Connections (including those still in their handshake) beyond which new ones are
    /// answered 503 before the upgrade, protecting file descriptors and memory.
    std::size_t max_connections = 10'000;

    /// Connections from one remote address beyond which new ones from it are answered 503.
    /// A NAT can put a whole office behind one address, so the bound is generous; it stops
    /// one host from taking every slot. A trusted proxy's own address is exempt; the
    /// clients it forwards are counted by the address it names for them.
    std::size_t max_connections_per_address = 256;

    /// Messages one connection may send per second, sustained (0: unlimited). The default
    /// is far above any person typing and above a game client's tick rate, yet stops a
    /// single client from turning a room into a firehose. Past it: `rate_limit_action`.
    double max_messages_per_second = 5'000;

    /// Messages a connection may send in a burst above the sustained rate.
    std::size_t message_burst = 5'000;

    /// What happens to a message over the rate limit.
    enum class rate_action {
        close, ///< the sender is closed with 1008 (policy violation)
        drop,  ///< the message is dropped silently; the sender stays
    };
    /// What happens to a message over the rate limit; closing by default, as a client that
    /// floods is rarely an honest one.
    rate_action rate_limit_action = rate_action::close;

    /// What happens when a peer's send queue passes `max_send_queue_bytes`.
    enum class overflow_action {
        close,       ///< the peer is closed with 1008: it cannot keep up with the room
        drop_oldest, ///< the oldest frames not yet being written are dropped until it fits
    };
    /// What happens to a reader that falls behind; closing by default, so that a member
    /// never silently misses messages (drop_oldest suits state updates where only the
    /// latest matters).
    overflow_action slow_reader_action = overflow_action::close;

    /// Browser origins allowed to open a WebSocket, compared exactly with the Origin header
    /// ("https://chat.example.com"); a request from any other origin gets 403, which stops
    /// cross-site WebSocket hijacking. Empty: every origin. Requests without an Origin
    /// header (native clients, not browsers) are not affected.
    std::vector<std::string> allowed_origins;

    /// Addresses of reverse proxies (nginx) whose X-Forwarded-For / X-Real-IP headers are
    /// believed: a connection from one of them reports the client address the proxy names.
    /// From anyone else those headers are ignored, since any client can send them.
    std::vector<std::string> trusted_proxies;

    /// True when `address` is one of `trusted_proxies`.
    bool trusts_proxy(std::string_view address) const {
        return std::find(trusted_proxies.begin(), trusted_proxies.end(), address) !=
               trusted_proxies.end();
    }

    /// Size of each connection's read buffer. Larger reads mean fewer system calls for
    /// big messages; 16 KiB is one TLS record and a few TCP segments.
    std::size_t read_buffer_size = 16 * 1024;

    /// Where the server reads the time. Null (the default): the steady clock, with a timer
    /// that sweeps for deadlines and heartbeats. A `ws::manual_clock` makes time move only
    /// when a test advances it, and the sweep run at each advance, so timeouts are tested
    /// without waiting.
    std::shared_ptr<manual_clock> clock;

    /// Message compression, negotiated with every client that offers it: for
    /// permessage-deflate (RFC 7692), `ws::permessage_deflate()` from
    /// <wschat/ws/permessage_deflate.hpp>, which needs zlib. Null, the default, compresses
    /// nothing: compression costs CPU on every message a client sends and on every broadcast,
    /// and chat lines of a few dozen bytes barely shrink. Turn it on where bandwidth costs
    /// more than CPU (mobile clients, JSON envelopes, large messages).
    std::shared_ptr<compression_negotiator> compression;
};

WSCHAT_END_NAMESPACE
