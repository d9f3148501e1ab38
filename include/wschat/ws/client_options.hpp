// wschat — the client's options: where it connects, what it offers, its limits, TLS, proxy
// and reconnection.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/http.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// How a `ws::client` verifies a `wss://` server. Right by default: the server's certificate
/// must chain to a trusted CA (the system store) and name the host connected to (a DNS name,
/// or an IP address in an IP SAN). Only used by `ws::client<ws::asio_tls>`.
struct client_tls_options {
    /// A PEM file of CA certificates to trust instead of the system store (a private CA, a
    /// test CA). Empty (the default): the system store.
    std::string ca_file;
    /// The name sent as SNI and checked against the certificate; empty (the default): the
    /// URL's host. Set it when connecting by address to a server known by name.
    std::string server_name;
    /// Turns certificate and host-name verification OFF: anyone on the path can then read
    /// and change the traffic. For tests against throw-away certificates only. Every
    /// connection attempt made with it reports `client_error::tls_verification_disabled`
    /// through `on_error`, so it never goes unnoticed. Default false.
    bool insecure_skip_verification = false;
};

/// When and how a `ws::client` reconnects after losing its connection (or failing to get
/// one): capped exponential backoff with full jitter (the delay before attempt n is drawn
/// uniformly from [0, min(max_delay, initial_delay × 2^(n-1))]), so that a thousand devices
/// cut off together do not come back together.
struct client_reconnect_options {
    /// Whether to reconnect at all. Default true: devices and bots are expected to stay up.
    bool enabled = true;
    /// The cap of the first delay's range. 500 ms: quick after a blip, not a busy loop.
    std::chrono::milliseconds initial_delay{500};
    /// The largest delay's range. 30 s bounds how long a device stays away once the server
    /// is back, while a thousand of them spread over 30 s are a gentle load.
    std::chrono::milliseconds max_delay{30'000};
    /// A connection that stayed open this long resets the backoff: the next loss starts
    /// again from `initial_delay`. 10 s tells a working connection from one that is closed
    /// right after its handshake (a crash loop, an overloaded server).
    std::chrono::milliseconds stable_after{10'000};
    /// Attempts in a row after which the client gives up; 0 (the default): never.
    unsigned max_attempts = 0;
    /// Close codes that mean "do not come back": the client then stops and says why. 1003
    /// (unsupported data) and 1008 (policy violation: banned, rate limited, not allowed)
    /// by default, as retrying would only be refused again. Add the application's own codes
    /// (4000–4999), such as a lobby's "replaced by a newer connection".
    std::vector<std::uint16_t> no_retry_close_codes{1003, 1008};
    /// Whether a 4xx answer to the handshake stops the client (except 408 and 429, which
    /// ask to come back later). Default true: a refusal (401, 403, 404) will not change by
    /// asking again. 5xx answers (503: the server is full) are retried.
    bool stop_on_4xx = true;
};

/// Everything a `ws::client` can be told, each with a safe default and the reason for it.
///
/// ```cpp
/// ws::client_options opts;
/// opts.url = "wss://chat.example.com/rooms/lobby";
/// opts.reconnect.max_delay = std::chrono::seconds{10};
/// ```
struct client_options {
    /// Where to connect: `ws://host[:port]/path?query`, `wss://host[:port]/path` (needs
    /// `ws::client<ws::asio_tls>`), or `ws+unix:///run/chat.sock:/path` (the socket file,
    /// then `:` and the request target; needs `ws::client<ws::asio_local>`). IPv6 hosts are
    /// bracketed: `ws://[::1]:8080/`. Checked by `client::connect`.
    std::string url;
    /// For a Unix socket: the socket file, when not given in the URL (then the URL's host is
    /// only what the Host header says). Empty (the default): from the URL.
    std::string unix_socket_path;

    /// Subprotocols offered, most preferred first; the one the server chose is in
    /// `client_open::subprotocol`. A server choosing one that was not offered is refused.
    std::vector<std::string> subprotocols;
    /// The Origin header; empty (the default) sends none, as non-browser clients do.
    std::string origin;
    /// Further request headers (Authorization, Cookie, User-Agent), sent in this order.
    std::vector<http_header> headers;

    /// Largest message accepted from the server, over all its frames; past it the client
    /// closes with 1009. 1 MiB, as the server's default: it bounds what a hostile or broken
    /// server can make a device buffer.
    std::size_t max_message_size = 1024 * 1024;
    /// Largest HTTP answer head accepted from the server (and from a proxy).
    std::size_t max_header_bytes = 8 * 1024;
    /// Bytes that may wait to be written while connected. Past it a send is refused with
    /// `send_status::queue_full` instead of growing memory without bound while the network
    /// or the server is slower than the application sends. 4 MiB, as the server's.
    std::size_t max_send_queue_bytes = 4 * 1024 * 1024;
    /// Messages the application may send per second, sustained (0: no limit). A bot in a
    /// loop would otherwise be closed by the server's own rate limit (1008) and stop for
    /// good; a send over the rate is refused here with `send_status::rate_limited` instead.
    /// 1000 is far above a game's tick rate or a device's telemetry.
    double max_sends_per_second = 1000;
    /// Messages that may be sent in a burst above the sustained rate.
    std::size_t send_burst = 1000;

    /// Messages kept while disconnected (between attempts, or before the first open),
    /// sent in order once the connection opens. A bound on both count and bytes: a device
    /// that is offline for hours must not fill its memory. Past either, the new message is
    /// refused (`send_status::dropped`, and `client_error::offline_queue_full` through
    /// `on_error`). 0 messages: sends while disconnected are refused.
    std::size_t max_offline_messages = 1000;
    /// Bytes of payload kept while disconnected (see `max_offline_messages`). 1 MiB.
    std::size_t max_offline_bytes = 1024 * 1024;

    /// Time from the start of an attempt (name resolution, TCP, proxy, TLS) to the server's
    /// answer to the upgrade. Bounds a server that accepts TCP and never answers.
    std::chrono::milliseconds handshake_timeout{10'000};
    /// How often the client pings an open connection. Keeps NAT mappings and proxies (nginx's
    /// 60 s proxy_read_timeout) from dropping a quiet device. Zero: no pings.
    std::chrono::milliseconds ping_interval{20'000};
    /// A connection from which nothing (a pong, a frame) arrives this long after a ping is
    /// dead: it is cut (1006, `error::heartbeat_timeout`) and reconnected. 10 s.
    std::chrono::milliseconds pong_timeout{10'000};
    /// How long to wait for the server's answer to our Close frame.
    std::chrono::milliseconds close_timeout{5'000};
    /// Size of the read buffer. 16 KiB is one TLS record.
    std::size_t read_buffer_size = 16 * 1024;

    /// An HTTP proxy to tunnel through with CONNECT: `http://host:port`, or with basic
    /// authentication `http://user:password@host:port`. Empty (the default): direct.
    /// Not for `ws+unix://`.
    std::string proxy;

    /// How `wss://` servers are verified (see client_tls_options).
    client_tls_options tls;
    /// When and how to reconnect (see client_reconnect_options).
    client_reconnect_options reconnect;

    /// Where the client reads the time. Null (the default): the steady clock, with a timer.
    /// A `ws::manual_clock` makes time (timeouts, pings, backoff delays) move only when a
    /// test advances it, so reconnection is tested without waiting.
    std::shared_ptr<manual_clock> clock;
    /// The source of the backoff's jitter: a number in [0, 1). Null (the default): the
    /// kernel's generator. Tests pass a fixed sequence to know every delay.
    std::function<double()> random;
};

WSCHAT_END_NAMESPACE
