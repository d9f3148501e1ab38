// wschat v0.1.0 — single-header edition.
//
// GENERATED FILE, DO NOT EDIT. It is produced by tools/amalgamate.py from
// include/wschat/wschat.hpp; edit the headers under include/ and run
//     python3 tools/amalgamate.py
// CI fails when this file is stale. Needs standalone Asio: compile with -DASIO_STANDALONE
// and link the threads library.
#pragma once
// ---- begin wschat/wschat.hpp ----
// wschat — the umbrella header: the WebSocket server and the chat room, nothing optional.
//
//     #include <wschat/wschat.hpp>
//
// works the same with include/ (split headers) or single_include/ (one generated file) on
// the include path. Standalone Asio must be on the include path, with ASIO_STANDALONE.

// ---- begin wschat/detail/config.hpp ----
// wschat — configuration macros shared by every header.

// Included before the Asio headers wschat includes: Asio decides how it allocates handler
// memory (aligned_alloc and free, or operator new and delete) from macros the standard
// library's configuration defines. A translation unit whose first include was a wschat
// header would otherwise see Asio's configuration before the standard library's and pick
// the other pair, and memory allocated by one unit's inline code could be freed by
// another's (an ODR violation AddressSanitizer reports as alloc-dealloc-mismatch).
#include <cstddef>

/// \file
/// The version of wschat and the macros that put every name in its versioned namespace.
///
/// Every wschat header includes this one first; an application may test the version:
///
/// ```cpp
/// #if WSCHAT_VERSION_MAJOR == 0 && WSCHAT_VERSION_MINOR < 2
/// // ... code for wschat 0.1
/// #endif
/// ```

/// The major part of wschat's version. While it is 0, a new minor version may change the
/// API (the installed CMake package accepts the same minor version only).
#define WSCHAT_VERSION_MAJOR 0
/// The minor part of wschat's version.
#define WSCHAT_VERSION_MINOR 1
/// The patch part of wschat's version.
#define WSCHAT_VERSION_PATCH 0

/// The inline namespace that holds every wschat name: `ws::server` is really
/// `ws::v0_1::server`. Two copies of wschat of different versions linked into one program
/// then have different names, instead of silently violating the ODR. User code never
/// spells it.
#define WSCHAT_ABI_NAMESPACE v0_1

/// Opens namespace `ns` and the versioned inline namespace inside it; every wschat header
/// uses it (`tools/check_hygiene.py` refuses a plain `namespace ws {`). For wschat's own
/// headers, not for applications.
#define WSCHAT_BEGIN_NAMESPACE(ns)                                                                 \
    namespace ns {                                                                                 \
    inline namespace WSCHAT_ABI_NAMESPACE {
/// Closes what WSCHAT_BEGIN_NAMESPACE opened.
#define WSCHAT_END_NAMESPACE                                                                       \
    }                                                                                              \
    }
// ---- end wschat/detail/config.hpp ----

// ---- begin wschat/ws/close_code.hpp ----
// wschat — WebSocket close status codes (RFC 6455 §7.4 and the IANA registry).


#include <cstdint>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A close status code as carried in the first two bytes of a Close frame.
///
/// Codes marked "never on the wire" are reserved for reporting locally (RFC 6455 §7.4.1):
/// an endpoint must not send them and must treat a peer that does as a protocol error.
enum class close_code : std::uint16_t {
    normal = 1000,              ///< the purpose of the connection is fulfilled
    going_away = 1001,          ///< server shutting down or browser leaving the page
    protocol_error = 1002,      ///< the peer broke RFC 6455
    unsupported_data = 1003,    ///< a message type this endpoint does not accept
    no_status = 1005,           ///< never on the wire: the Close frame carried no code
    abnormal = 1006,            ///< never on the wire: the TCP connection ended without a Close
    invalid_payload = 1007,     ///< message data inconsistent with its type (bad UTF-8)
    policy_violation = 1008,    ///< a generic policy refusal (rate, slow reader, origin)
    message_too_big = 1009,     ///< a message larger than this endpoint accepts
    mandatory_extension = 1010, ///< client only: the server did not negotiate an extension
    internal_error = 1011,      ///< an unexpected condition prevented fulfilling the request
    service_restart = 1012,     ///< the service is restarting
    try_again_later = 1013,     ///< temporary overload
    bad_gateway = 1014,         ///< a gateway got an invalid response upstream
    tls_handshake = 1015,       ///< never on the wire: the TLS handshake failed
};

/// True when `code` may legally appear in a Close frame: 1000–1003, 1007–1014 (the
/// registered codes an endpoint may send) and 3000–4999 (libraries and applications).
///
/// A Close frame from a peer with any other code is a protocol error
/// (`error::bad_close_code`).
constexpr bool is_valid_wire_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999)
        return true;
    if (code >= 1000 && code <= 1003)
        return true;
    return code >= 1007 && code <= 1014;
}

/// A short English name for a close code, for logs: "normal closure" for 1000, "application
/// defined" for an unregistered code in 3000–4999, "unknown" for any other. The view refers
/// to a string literal, valid for the whole program.
constexpr std::string_view close_code_name(std::uint16_t code) noexcept {
    switch (static_cast<close_code>(code)) {
    case close_code::normal:
        return "normal closure";
    case close_code::going_away:
        return "going away";
    case close_code::protocol_error:
        return "protocol error";
    case close_code::unsupported_data:
        return "unsupported data";
    case close_code::no_status:
        return "no status received";
    case close_code::abnormal:
        return "abnormal closure";
    case close_code::invalid_payload:
        return "invalid frame payload data";
    case close_code::policy_violation:
        return "policy violation";
    case close_code::message_too_big:
        return "message too big";
    case close_code::mandatory_extension:
        return "mandatory extension";
    case close_code::internal_error:
        return "internal error";
    case close_code::service_restart:
        return "service restart";
    case close_code::try_again_later:
        return "try again later";
    case close_code::bad_gateway:
        return "bad gateway";
    case close_code::tls_handshake:
        return "TLS handshake failure";
    }
    return code >= 3000 && code <= 4999 ? "application defined" : "unknown";
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/close_code.hpp ----
// ---- begin wschat/ws/connection.hpp ----
// wschat — one peer of a server: the HTTP handshake, then the session, over its I/O back end,
// fed by its send queue, watched by the sweep, and ended one way.

// ---- begin wschat/ws/clock.hpp ----
// wschat — the time a server keeps: the steady clock, or a manual clock that tests move.


#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A clock that moves only when told to, for tests of heartbeats, idle timeouts, handshake
/// and close deadlines and rate limits that run without waiting in real time.
///
/// A server given one in `server_options::clock` reads the time from it instead of the
/// steady clock, and runs its sweep (deadlines, heartbeats) whenever the clock is advanced
/// rather than on a timer:
///
/// ```cpp
/// auto clock = std::make_shared<ws::manual_clock>();
/// ws::server_options opts;
/// opts.clock = clock;
/// ws::server<ws::memory_transport> server{io, opts};
/// ...
/// clock->advance(opts.heartbeat_interval); // every open connection is pinged
/// io.poll();
/// ```
///
/// It starts at the steady clock's current time. Thread safety: `now` and `advance` may be
/// called from any thread.
class manual_clock {
public:
    /// The steady clock's time points, so that the two are interchangeable.
    using time_point = std::chrono::steady_clock::time_point;

    /// The current time of this clock.
    time_point now() const noexcept {
        return time_point{
            std::chrono::steady_clock::duration{ticks_.load(std::memory_order_acquire)}};
    }

    /// Moves the clock forward by `by`, then tells every server that uses it to sweep (each
    /// posts its sweep to its io_context, so run or poll the io_context afterwards).
    void advance(std::chrono::steady_clock::duration by) {
        ticks_.fetch_add(by.count(), std::memory_order_acq_rel);
        std::lock_guard<std::mutex> lock{mutex_}; // listeners only post: they never call back
        listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                        [](const std::function<bool()>& told) { return !told(); }),
                         listeners_.end());
    }

    /// Calls `listener` after each advance for as long as it returns true (a server returns
    /// false once it is gone). Used by the server.
    void on_advance(std::function<bool()> listener) {
        std::lock_guard<std::mutex> lock{mutex_};
        listeners_.push_back(std::move(listener));
    }

private:
    std::atomic<std::chrono::steady_clock::rep> ticks_{
        std::chrono::steady_clock::now().time_since_epoch().count()};
    std::mutex mutex_; // of listeners_
    std::vector<std::function<bool()>> listeners_;
};

namespace detail {

/// Where a server and its connections read the time: its manual clock when the options
/// give one, the steady clock otherwise.
class time_source {
public:
    using clock = std::chrono::steady_clock;

    explicit time_source(std::shared_ptr<manual_clock> manual) : manual_(std::move(manual)) {}

    clock::time_point now() const noexcept { return manual_ ? manual_->now() : clock::now(); }

    /// The manual clock, or null.
    const std::shared_ptr<manual_clock>& manual() const noexcept { return manual_; }

    /// A time point as a number of ticks, for atomics.
    static clock::rep ticks_at(clock::time_point t) noexcept {
        return t.time_since_epoch().count();
    }

    /// A duration as a number of ticks.
    template <class Duration>
    static clock::rep ticks_of(Duration duration) noexcept {
        return std::chrono::duration_cast<clock::duration>(duration).count();
    }

private:
    std::shared_ptr<manual_clock> manual_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/clock.hpp ----
// ---- begin wschat/ws/cork.hpp ----
// wschat — corking: the flushes a handler causes are made together, in the order their
// first frames were queued, by one handler posted when it ends.


#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A cork batches the flushes of the sends made while it lives on the calling thread.
///
/// While a `cork` lives on a thread, a connection that queues its first frame asks the
/// cork to flush it, rather than posting a flush of its own to the event loop. When the
/// outermost cork ends it posts one handler that flushes them all, in the order their
/// first frames were queued.
///
/// Handlers already run corked (the server corks every read and its heartbeat sweep); cork
/// your own code that sends to many connections from elsewhere, a timer or another thread:
///
/// ```cpp
/// {
///     ws::cork batch{server.get_executor()};
///     for (const auto& conn : players)
///         conn->send(state_frame); // flushed together when `batch` ends
/// }
/// ```
///
/// One message broadcast to N members then costs one trip through the scheduler's queue
/// instead of N, and the members are written in room order, the sender's own copy first,
/// so a sender waiting for it can send again while the rest are written.
///
/// The batch waits for the event loop to poll for I/O once more before it flushes: the
/// messages every sender's read brings in that turn then join it, one gather write per
/// member carries them all, and none of them waits behind a whole pass of writes for the
/// batch after.
///
/// A large batch is flushed `flushes_per_turn` members at a time, the event loop polling
/// for I/O in between. A message read meanwhile joins the queues of the members not yet
/// written, so they carry it in this pass rather than the next: under a load that keeps
/// the server busy, a message waits for at most one pass of writes, not for the rest of
/// the current pass and then the next.
///
/// Thread safety: a cork belongs to the thread that made it and must end on that thread
/// (make it a local variable); corks on different threads are independent.
///
/// `cork` posts to an io_context's executor (`io.get_executor()`, `server.get_executor()`);
/// `basic_cork<Executor>` to any other (a user transport's), and corks of both kinds nest.
template <class Executor>
class basic_cork;

/// What every cork shares, whatever its executor: the thread's batch of deferred flushes.
class cork_batch {
public:
    /// Flushes `target` (a connection, type-erased): what `defer` is given.
    using flush_function = void (*)(const std::shared_ptr<void>& target);

    /// Defers a flush to the end of the outermost cork on this thread; false when the
    /// thread has no cork (the caller then flushes some other way). Connections call it
    /// when they queue a frame; applications need not.
    static bool defer(std::shared_ptr<void> target, flush_function flush) {
        thread_state& here = state();
        if (!here.innermost)
            return false;
        if (here.deferred.empty()) // sized like the last batch: broadcasts grow it at most once
            here.deferred.reserve(here.last_batch_size);
        here.deferred.push_back({std::move(target), flush});
        return true;
    }

private:
    template <class Executor>
    friend class basic_cork;

    cork_batch() : outer_(std::exchange(state().innermost, this)) {}
    cork_batch(const cork_batch&) = delete;
    cork_batch& operator=(const cork_batch&) = delete;
    ~cork_batch() = default;

    struct deferred_flush {
        std::shared_ptr<void> target;
        flush_function flush;
    };
    using batch_type = std::vector<deferred_flush>;

    struct thread_state {
        cork_batch* innermost = nullptr;
        batch_type deferred;
        // A small flushed batch's storage, reused; a large one's is freed, so that a room
        // of N members does not hold N flushes' worth for good after each broadcast.
        batch_type spare;
        std::size_t last_batch_size = 0;
    };

    /// The largest batch whose storage is kept for the next (entries; 1.5 KiB).
    static constexpr std::size_t kept_batch_capacity = 64;

    /// Members written between two polls for I/O while a batch is flushed.
    static constexpr std::size_t flushes_per_turn = 16;

    static thread_state& state() {
        thread_local thread_state here;
        return here;
    }

    /// Ends this cork; the batch to post when it was the outermost and something was
    /// deferred, else an empty one.
    batch_type end() {
        thread_state& here = state();
        here.innermost = outer_;
        if (outer_ || here.deferred.empty())
            return {};
        here.last_batch_size = here.deferred.size();
        batch_type batch = std::move(here.deferred);
        here.deferred = std::move(here.spare);
        here.deferred.clear();
        return batch;
    }

    /// Flushes the batch's members from `next`, `flushes_per_turn` of them, under a cork of
    /// the caller's (so flushes that queue more frames, a closing member leaving its room,
    /// say, are batched again).
    static void flush_some(batch_type& batch, std::size_t& next) {
        struct on_exit {
            batch_type& batch;
            std::size_t& next;
            bool part_done = false;
            ~on_exit() {
                // A flush that threw (an application handler, on_close) must not strand the
                // rest: they go to the next batch, which the caller's cork posts.
                for (; !part_done && next < batch.size(); ++next)
                    state().deferred.push_back(std::move(batch[next]));
                if (next == batch.size() && batch.capacity() <= kept_batch_capacity) {
                    batch.clear();
                    state().spare = std::move(batch);
                }
            }
        } progress{batch, next};
        const std::size_t end = std::min(batch.size(), next + flushes_per_turn);
        while (next < end) {
            const deferred_flush& current = batch[next++];
            current.flush(current.target);
        }
        progress.part_done = true;
    }

    cork_batch* outer_;
};

template <class Executor>
class basic_cork : public cork_batch {
public:
    /// Starts a batch; the flushes will be posted to `executor` (the outermost cork's is
    /// used when corks nest).
    explicit basic_cork(Executor executor) : executor_(std::move(executor)) {}
    ~basic_cork() {
        if (batch_type batch = end(); !batch.empty())
            asio::post(executor_, batch_handler{std::move(batch), executor_});
    }

private:
    /// Posted by the outermost cork: the first run only goes to the back of the queue again,
    /// behind the reads the next poll brings; later runs flush the batch a part at a time.
    struct batch_handler {
        batch_type batch;
        Executor executor;
        std::size_t next = 0; // the first member not yet flushed
        bool polled = false;

        void operator()() {
            if (std::exchange(polled, true)) {
                basic_cork nested{executor};
                flush_some(batch, next);
            }
            if (next < batch.size()) {
                Executor to = executor;
                asio::post(to, std::move(*this));
            }
        }
    };

    Executor executor_;
};

/// The cork of an io_context's executor: `ws::cork batch{server.get_executor()};`.
using cork = basic_cork<asio::io_context::executor_type>;

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/cork.hpp ----
// ---- begin wschat/ws/detail/io/backend.hpp ----
// wschat — the choice of a connection's I/O back end, made once from its stream's type.

// ---- begin wschat/ws/detail/io/plain_socket.hpp ----
// wschat — system calls on plain sockets: reads of what has arrived into a per-thread buffer,
// and gather writes of any number of queued frames per system call.

// ---- begin wschat/ws/detail/frame_queue.hpp ----
// wschat — a connection's send queue: the frames waiting for the socket, the first two
// held in the queue itself.

// ---- begin wschat/ws/shared_frame.hpp ----
// wschat — an encoded WebSocket frame shared, immutable, by every send queue it sits in.

// ---- begin wschat/ws/frame.hpp ----
// wschat — RFC 6455 §5 framing: header encoding, masking, and the incremental message parser.

// ---- begin wschat/ws/error.hpp ----
// wschat — the error codes of the library and their std::error_category.


#include <string>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Every failure wschat reports. Each maps to the close code sent to the peer
/// (`close_code_for`) and, for handshake failures, to an HTTP status (`http_status_for`).
///
/// A `ws::error` converts implicitly to a `std::error_code` of error_category(), so it
/// compares directly with the codes handlers receive:
///
/// ```cpp
/// if (info.error == ws::error::send_queue_full) { ... } // the peer read too slowly
/// ```
enum class error {
    // Framing (RFC 6455 §5): the connection is failed with the mapped close code.
    unmasked_frame = 1,      ///< a client frame without the MASK bit (1002)
    masked_frame,            ///< a server frame with the MASK bit, seen by a client (1002)
    reserved_bits,           ///< RSV1-3 set with no extension negotiated (1002)
    unknown_opcode,          ///< opcode 0x3-0x7 or 0xB-0xF (1002)
    non_minimal_length,      ///< a payload length not in its shortest encoding (1002)
    length_msb_set,          ///< a 64-bit payload length with its top bit set (1002)
    control_too_long,        ///< a control frame payload over 125 bytes (1002)
    fragmented_control,      ///< a control frame without FIN (1002)
    unexpected_continuation, ///< a continuation frame with no message in progress (1002)
    expected_continuation,   ///< a new data frame while a fragmented message is open (1002)
    invalid_utf8,            ///< a text message that is not valid UTF-8 (1007)
    message_too_big,         ///< a message over the configured maximum (1009)
    bad_close_payload,       ///< a close frame with a 1-byte payload (1002)
    bad_close_code,          ///< a close code that may not appear on the wire (1002)
    invalid_close_reason,    ///< a close reason that is not valid UTF-8 (1007)
    unsupported_data,        ///< a message type the application does not accept (1003)

    // Handshake (RFC 6455 §4.2.1): the request is answered with the mapped HTTP status.
    bad_request,                ///< malformed request line or header (400)
    header_too_large,           ///< a head exceeds its size or header-count bound (431)
    not_get,                    ///< an upgrade request whose method is not GET (400)
    bad_http_version,           ///< an upgrade request older than HTTP/1.1 (400)
    missing_host,               ///< no Host header (400)
    missing_upgrade,            ///< no `Upgrade: websocket` (400; also in a server's 101)
    missing_connection_upgrade, ///< no `upgrade` token in Connection (400; also in a 101)
    bad_key,                    ///< Sec-WebSocket-Key absent or not 16 base64-encoded bytes (400)
    bad_version,                ///< Sec-WebSocket-Version is not 13 (426)

    // Connection life.
    handshake_timeout,  ///< the peer did not finish its handshake in time
    heartbeat_timeout,  ///< the peer stopped answering pings
    idle_timeout,       ///< the peer sent no message within `idle_timeout` (1001)
    close_timeout,      ///< the peer did not answer our Close frame in time
    send_queue_full,    ///< the peer reads too slowly; its queue passed the bound (1008)
    rate_limited,       ///< the peer sends more messages per second than allowed (1008)
    origin_not_allowed, ///< a browser Origin outside `allowed_origins` (403)
    server_busy,        ///< a connection limit (total or per address) is reached (503)
    server_stopping,    ///< the server is shutting down (1001)
    connection_closed,  ///< an operation on a connection that is already closed

    // Client handshake (RFC 6455 §4.1, §4.2.2): what a client refuses in its own offer (before
    // sending) or in the server's answer (the connection is then dropped: it never opened).
    // Appended here so that the values above keep their numbers.
    bad_response,           ///< malformed HTTP status line or header in the server's answer
    unexpected_status,      ///< the server answered with a status other than 101
    bad_accept_key,         ///< Sec-WebSocket-Accept absent or not the one the key calls for
    duplicate_header,       ///< a header the handshake allows once appears several times
    unexpected_subprotocol, ///< a Sec-WebSocket-Protocol that was not offered, or several
    unexpected_extension,   ///< a Sec-WebSocket-Extensions element that was not offered
    invalid_host,           ///< the host to connect to cannot go into a Host header
    invalid_target,         ///< the request target is not `/path[?query]` in visible ASCII
    invalid_header,         ///< an offered header with a bad name or value, or one the
                            ///< handshake sets itself
    invalid_subprotocol,    ///< an offered subprotocol that is not a token, or offered twice

    // Extensions (RFC 6455 §9, RFC 7692).
    bad_extensions,      ///< a Sec-WebSocket-Extensions value that is malformed (400)
    bad_compressed_data, ///< a compressed message that does not inflate (1007)
};

/// The std::error_category of `ws::error`: named "wschat", with an English message for
/// each value. One instance per program (a function-local static), safe to use from any
/// thread.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "wschat"; }
        std::string message(int value) const override {
            switch (static_cast<error>(value)) {
            case error::unmasked_frame:
                return "client frame is not masked";
            case error::masked_frame:
                return "server frame is masked";
            case error::reserved_bits:
                return "reserved bits set without an extension";
            case error::unknown_opcode:
                return "unknown opcode";
            case error::non_minimal_length:
                return "payload length not minimally encoded";
            case error::length_msb_set:
                return "64-bit payload length has its top bit set";
            case error::control_too_long:
                return "control frame payload longer than 125 bytes";
            case error::fragmented_control:
                return "fragmented control frame";
            case error::unexpected_continuation:
                return "continuation frame without a message";
            case error::expected_continuation:
                return "new message inside a fragmented message";
            case error::invalid_utf8:
                return "text message is not valid UTF-8";
            case error::message_too_big:
                return "message exceeds the size limit";
            case error::bad_close_payload:
                return "close frame payload of one byte";
            case error::bad_close_code:
                return "close code not allowed on the wire";
            case error::invalid_close_reason:
                return "close reason is not valid UTF-8";
            case error::unsupported_data:
                return "message type not accepted";
            case error::bad_compressed_data:
                return "compressed message does not inflate";
            case error::bad_extensions:
                return "malformed Sec-WebSocket-Extensions header";
            case error::bad_request:
                return "malformed HTTP request";
            case error::header_too_large:
                return "HTTP header section too large";
            case error::not_get:
                return "WebSocket upgrade must use GET";
            case error::bad_http_version:
                return "WebSocket upgrade needs HTTP/1.1";
            case error::missing_host:
                return "missing Host header";
            case error::missing_upgrade:
                return "missing 'Upgrade: websocket' header";
            case error::missing_connection_upgrade:
                return "Connection header lacks 'upgrade'";
            case error::bad_key:
                return "missing or malformed Sec-WebSocket-Key";
            case error::bad_version:
                return "unsupported Sec-WebSocket-Version (need 13)";
            case error::handshake_timeout:
                return "handshake not completed in time";
            case error::heartbeat_timeout:
                return "peer stopped answering pings";
            case error::idle_timeout:
                return "idle timeout";
            case error::close_timeout:
                return "peer did not complete the close handshake";
            case error::send_queue_full:
                return "send queue limit exceeded (slow reader)";
            case error::rate_limited:
                return "message rate limit exceeded";
            case error::origin_not_allowed:
                return "origin not allowed";
            case error::server_busy:
                return "connection limit reached";
            case error::server_stopping:
                return "server is stopping";
            case error::connection_closed:
                return "connection is closed";
            case error::bad_response:
                return "malformed HTTP response";
            case error::unexpected_status:
                return "server did not answer the upgrade with 101";
            case error::bad_accept_key:
                return "missing or wrong Sec-WebSocket-Accept";
            case error::duplicate_header:
                return "handshake header sent more than once";
            case error::unexpected_subprotocol:
                return "server chose a subprotocol that was not offered";
            case error::unexpected_extension:
                return "server accepted an extension that was not offered";
            case error::invalid_host:
                return "host cannot be sent in a Host header";
            case error::invalid_target:
                return "request target is not /path[?query] in visible ASCII";
            case error::invalid_header:
                return "invalid or reserved header in the handshake request";
            case error::invalid_subprotocol:
                return "subprotocol is not a token or is offered twice";
            }
            return "unknown wschat error";
        }
    };
    static const category instance;
    return instance;
}

/// `e` as a std::error_code of error_category(); found by argument-dependent lookup, which is
/// what lets a `ws::error` convert to a `std::error_code` implicitly.
inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The close code sent to the peer when the connection fails with `ec`.
///
/// The codes in the comments of `ws::error`: 1007 for bad UTF-8 or compressed data, 1009
/// for a message too big, 1003 for unsupported data, 1008 for a slow reader or a rate
/// limit, 1001 when the server stops or the peer idles, 1006 (the connection ends without a
/// Close frame) for the timeouts and an already closed connection, and 1002 for the other
/// wschat errors. An error of any other category (a socket error) gives 1011, internal
/// error.
inline close_code close_code_for(std::error_code ec) noexcept {
    if (ec.category() != error_category())
        return close_code::internal_error;
    switch (static_cast<error>(ec.value())) {
    case error::invalid_utf8:
    case error::invalid_close_reason:
    case error::bad_compressed_data:
        return close_code::invalid_payload;
    case error::message_too_big:
        return close_code::message_too_big;
    case error::unsupported_data:
        return close_code::unsupported_data;
    case error::send_queue_full:
    case error::rate_limited:
        return close_code::policy_violation;
    case error::server_stopping:
    case error::idle_timeout:
        return close_code::going_away;
    case error::handshake_timeout:
    case error::heartbeat_timeout:
    case error::close_timeout:
    case error::connection_closed:
        return close_code::abnormal;
    default:
        return close_code::protocol_error;
    }
}

/// The HTTP status that answers a handshake failing with `ec`: 426 for a wrong
/// Sec-WebSocket-Version, 431 for a header section too large, 403 for an origin not
/// allowed, 503 when the server is busy, and 400 for anything else.
inline int http_status_for(std::error_code ec) noexcept {
    if (ec == make_error_code(error::bad_version))
        return 426;
    if (ec == make_error_code(error::header_too_large))
        return 431;
    if (ec == make_error_code(error::origin_not_allowed))
        return 403;
    if (ec == make_error_code(error::server_busy))
        return 503;
    return 400;
}

WSCHAT_END_NAMESPACE

namespace std {
/// Makes `ws::error` an error code enum: it converts to `std::error_code` implicitly.
template <>
struct is_error_code_enum<ws::error> : true_type {};
} // namespace std
// ---- end wschat/ws/error.hpp ----
// ---- begin wschat/ws/utf8.hpp ----
// wschat — incremental, fail-fast UTF-8 validation for text messages and close reasons.


#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// The byte classes of the validating automaton: bytes in one class behave alike in every
/// state. Continuation bytes are split three ways because the second byte of E0, ED, F0 and
/// F4 sequences is restricted to a sub-range (to exclude overlongs, surrogates and code
/// points past U+10FFFF).
enum utf8_class : std::uint8_t {
    utf8_ascii,     ///< 00..7F
    utf8_cont_low,  ///< 80..8F
    utf8_cont_mid,  ///< 90..9F
    utf8_cont_high, ///< A0..BF
    utf8_never,     ///< C0, C1, F5..FF: cannot appear anywhere
    utf8_lead2,     ///< C2..DF: starts a 2-byte sequence
    utf8_lead3_e0,  ///< E0: next byte A0..BF (else overlong)
    utf8_lead3,     ///< E1..EC, EE, EF
    utf8_lead3_ed,  ///< ED: next byte 80..9F (else a surrogate)
    utf8_lead4_f0,  ///< F0: next byte 90..BF (else overlong)
    utf8_lead4,     ///< F1..F3
    utf8_lead4_f4,  ///< F4: next byte 80..8F (else past U+10FFFF)
};
/// The number of utf8_class values.
inline constexpr std::size_t utf8_class_count = utf8_lead4_f4 + 1;

/// The states of the automaton: how many continuation bytes are still due, and which
/// sub-range the next one must fall in.
enum utf8_state : std::uint8_t {
    utf8_accept,      ///< between code points
    utf8_reject,      ///< invalid; absorbing
    utf8_need1,       ///< one more continuation byte (80..BF)
    utf8_need2,       ///< two more, next one 80..BF
    utf8_need2_a0_bf, ///< after E0
    utf8_need2_80_9f, ///< after ED
    utf8_need3,       ///< three more, next one 80..BF
    utf8_need3_90_bf, ///< after F0
    utf8_need3_80_8f, ///< after F4
};
/// The number of utf8_state values.
inline constexpr std::size_t utf8_state_count = utf8_need3_80_8f + 1;

/// Builds the byte → class table (RFC 3629 §4 syntax).
constexpr std::array<std::uint8_t, 256> make_utf8_classes() noexcept {
    std::array<std::uint8_t, 256> classes{};
    for (std::size_t byte = 0; byte < 256; ++byte) {
        utf8_class c = utf8_never;
        if (byte <= 0x7F)
            c = utf8_ascii;
        else if (byte <= 0x8F)
            c = utf8_cont_low;
        else if (byte <= 0x9F)
            c = utf8_cont_mid;
        else if (byte <= 0xBF)
            c = utf8_cont_high;
        else if (byte >= 0xC2 && byte <= 0xDF)
            c = utf8_lead2;
        else if (byte == 0xE0)
            c = utf8_lead3_e0;
        else if (byte == 0xED)
            c = utf8_lead3_ed;
        else if (byte >= 0xE1 && byte <= 0xEF)
            c = utf8_lead3;
        else if (byte == 0xF0)
            c = utf8_lead4_f0;
        else if (byte >= 0xF1 && byte <= 0xF3)
            c = utf8_lead4;
        else if (byte == 0xF4)
            c = utf8_lead4_f4;
        classes[byte] = c;
    }
    return classes;
}

/// Builds the transition table, indexed by `state * utf8_class_count + class`. Every
/// transition not listed leads to utf8_reject, which is what makes the validator fail at
/// the first byte that cannot continue a valid sequence.
constexpr std::array<std::uint8_t, utf8_state_count * utf8_class_count>
make_utf8_transitions() noexcept {
    std::array<std::uint8_t, utf8_state_count * utf8_class_count> next{};
    for (auto& entry : next)
        entry = utf8_reject;
    auto allow = [&next](utf8_state from, utf8_class byte_class, utf8_state to) {
        next[std::size_t{from} * utf8_class_count + byte_class] = to;
    };
    allow(utf8_accept, utf8_ascii, utf8_accept);
    allow(utf8_accept, utf8_lead2, utf8_need1);
    allow(utf8_accept, utf8_lead3_e0, utf8_need2_a0_bf);
    allow(utf8_accept, utf8_lead3, utf8_need2);
    allow(utf8_accept, utf8_lead3_ed, utf8_need2_80_9f);
    allow(utf8_accept, utf8_lead4_f0, utf8_need3_90_bf);
    allow(utf8_accept, utf8_lead4, utf8_need3);
    allow(utf8_accept, utf8_lead4_f4, utf8_need3_80_8f);
    for (utf8_class cont : {utf8_cont_low, utf8_cont_mid, utf8_cont_high}) {
        allow(utf8_need1, cont, utf8_accept);
        allow(utf8_need2, cont, utf8_need1);
        allow(utf8_need3, cont, utf8_need2);
    }
    allow(utf8_need2_a0_bf, utf8_cont_high, utf8_need1);
    allow(utf8_need2_80_9f, utf8_cont_low, utf8_need1);
    allow(utf8_need2_80_9f, utf8_cont_mid, utf8_need1);
    allow(utf8_need3_90_bf, utf8_cont_mid, utf8_need2);
    allow(utf8_need3_90_bf, utf8_cont_high, utf8_need2);
    allow(utf8_need3_80_8f, utf8_cont_low, utf8_need2);
    return next;
}

/// The width of a state in a shift-DFA row (9 states x 6 bits fit in 64).
inline constexpr unsigned utf8_state_bits = 6;

/// A state as the validator stores it: its bit offset within a shift-DFA row.
constexpr std::uint8_t utf8_offset(utf8_state state) noexcept {
    return static_cast<std::uint8_t>(state * utf8_state_bits);
}

/// Recasts the automaton as a "shift DFA": for each byte, one 64-bit row holding, at bits
/// [offset(s), offset(s) + 6), the offset of the state that follows state s. The step is
/// then `row[byte] >> state`. Unlike a (state, class) table lookup, the row load does not
/// depend on the previous state, so the only serial work per byte is one shift and
/// consecutive bytes overlap in the pipeline.
constexpr std::array<std::uint64_t, 256> make_utf8_shift_rows() noexcept {
    const auto classes = make_utf8_classes();
    const auto transitions = make_utf8_transitions();
    std::array<std::uint64_t, 256> rows{};
    for (std::size_t byte = 0; byte < rows.size(); ++byte) {
        for (std::size_t state = 0; state < utf8_state_count; ++state) {
            const auto next =
                static_cast<utf8_state>(transitions[state * utf8_class_count + classes[byte]]);
            rows[byte] |= std::uint64_t{utf8_offset(next)} << (state * utf8_state_bits);
        }
    }
    return rows;
}

/// Byte → shift-DFA row (see make_utf8_shift_rows).
inline constexpr std::array<std::uint64_t, 256> utf8_shift_rows = make_utf8_shift_rows();

/// The high bit of each byte of a 64-bit word: a word of ASCII has none of them set.
inline constexpr std::uint64_t ascii_high_bits = 0x8080808080808080ULL;

/// Loads 8 bytes from any address (memcpy compiles to one unaligned load).
inline std::uint64_t load_word(const std::uint8_t* bytes) noexcept {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes, sizeof word);
    return word;
}

} // namespace detail

/// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
///
/// Feed it the bytes of one text in as many pieces as they arrive; code points may be split
/// anywhere. It fails fast: feed() returns false as soon as the bytes seen so far cannot be
/// a prefix of valid UTF-8 (0xF4 0x90 fails at the second byte, not at the end), and stays
/// failed until reset(). At the end of the text, check complete(): a text that stops in the
/// middle of a code point is invalid too. Runs of ASCII are checked 8 bytes at a time.
///
/// ```
/// ws::utf8_validator v;
/// bool ok = v.feed("caf\xC3") && v.feed("\xA9") && v.complete(); // "café" in two pieces
/// ```
/// Not thread-safe; one validator per text being checked. Cheap to copy.
class utf8_validator {
public:
    /// Validates the next `size` bytes; false once the text seen so far is invalid (sticky).
    bool feed(const std::uint8_t* data, std::size_t size) noexcept {
        constexpr std::uint64_t accept = detail::utf8_offset(detail::utf8_accept);
        constexpr std::uint64_t reject = detail::utf8_offset(detail::utf8_reject);
        constexpr std::uint64_t state_mask = 63; // the low bits of a row shifted into place
        std::uint64_t state = state_;
        std::size_t i = 0;
        while (i < size) {
            if (state == accept) {
                // Between code points a whole word of ASCII bytes leaves the state unchanged.
                while (i + 8 <= size &&
                       (detail::load_word(data + i) & detail::ascii_high_bits) == 0)
                    i += 8;
            }
            // Step through 8 bytes (fewer at the end) without looking at the state: reject is
            // absorbing, so checking once per run still reports the failure in this call.
            // The fixed count lets the compiler unroll the run into straight-line shifts.
            const auto step = [&state, data](std::size_t at) {
                state = detail::utf8_shift_rows[data[at]] >> (state & state_mask);
            };
            if (size - i >= 8) {
                for (std::size_t k = 0; k < 8; ++k)
                    step(i + k);
                i += 8;
            } else {
                for (; i < size; ++i)
                    step(i);
            }
            state &= state_mask;
            if (state == reject)
                break;
        }
        state_ = static_cast<std::uint8_t>(state);
        return state != reject;
    }

    /// Validates the next bytes of the text, given as characters.
    bool feed(std::string_view text) noexcept {
        return feed(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    }

    /// True when the bytes so far are valid and end on a code point boundary, i.e. the text
    /// may end here.
    bool complete() const noexcept { return state_ == detail::utf8_offset(detail::utf8_accept); }

    /// True once the bytes fed cannot be valid UTF-8, whatever follows.
    bool failed() const noexcept { return state_ == detail::utf8_offset(detail::utf8_reject); }

    /// Forgets everything fed, to validate a new text.
    void reset() noexcept { state_ = detail::utf8_offset(detail::utf8_accept); }

private:
    std::uint8_t state_ = detail::utf8_offset(detail::utf8_accept); // a shift-DFA offset
};

/// True when `text` is, as a whole, valid UTF-8.
inline bool is_valid_utf8(std::string_view text) noexcept {
    utf8_validator validator;
    return validator.feed(text) && validator.complete();
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/utf8.hpp ----

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The frame opcodes of RFC 6455 §5.2 (the ones a peer may send; others are protocol errors).
enum class opcode : std::uint8_t {
    continuation = 0x0, ///< the next fragment of the message in progress
    text = 0x1,         ///< the first frame of a UTF-8 text message
    binary = 0x2,       ///< the first frame of a binary message
    close = 0x8,        ///< starts or answers the closing handshake
    ping = 0x9,         ///< asks the peer for a pong with the same payload
    pong = 0xA,         ///< answers a ping (or is a unidirectional heartbeat)
};

/// True for close, ping and pong: frames that may not be fragmented, carry at most 125
/// bytes, and may arrive between the fragments of a message.
constexpr bool is_control(opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

/// The 4-byte masking key a client puts in each frame header (RFC 6455 §5.3).
using mask_key = std::array<std::uint8_t, 4>;

/// The longest frame header: 2 bytes + 8-byte length + 4-byte masking key.
constexpr std::size_t max_frame_header_size = 14;

/// The largest payload of a close, ping or pong frame.
constexpr std::size_t max_control_payload = 125;

namespace detail {

/// True on a little-endian target; a constant the compiler folds away.
inline bool little_endian() noexcept {
    const std::uint16_t one = 1;
    std::uint8_t first_byte = 0;
    std::memcpy(&first_byte, &one, 1);
    return first_byte == 1;
}

/// The masking key repeated over 8 bytes, starting at key byte `key_offset % 4`, laid out
/// in memory order so that XOR with a word loaded from the payload masks 8 bytes at once.
inline std::uint64_t mask_word(const mask_key& key, std::size_t key_offset) noexcept {
    std::uint32_t key_bits = 0;
    std::memcpy(&key_bits, key.data(), sizeof key_bits);
    const std::uint64_t word = std::uint64_t{key_bits} << 32 | key_bits;
    // Starting `rotation` key bytes later is a rotation of the word towards the byte that
    // comes first in memory: the low end on little-endian targets, the high end otherwise.
    const auto rotation = static_cast<unsigned>(8 * (key_offset % 4));
    if (rotation == 0)
        return word;
    if (little_endian())
        return word >> rotation | word << (64 - rotation);
    return word << rotation | word >> (64 - rotation);
}

/// Stores 8 bytes to any address (memcpy compiles to one unaligned store).
inline void store_word(std::uint8_t* bytes, std::uint64_t word) noexcept {
    std::memcpy(bytes, &word, sizeof word);
}

/// XORs `size` bytes with `key_word` (from mask_word) repeated.
inline void xor_words(std::uint8_t* data, std::size_t size, std::uint64_t key_word) noexcept {
    std::size_t i = 0;
    // Four independent words per step: compilers turn this into vector or unrolled code,
    // where a one-word loop runs at a fraction of memory bandwidth with g++.
    for (; i + 32 <= size; i += 32)
        for (std::size_t w = 0; w < 32; w += 8)
            store_word(data + i + w, load_word(data + i + w) ^ key_word);
    for (; i + 8 <= size; i += 8)
        store_word(data + i, load_word(data + i) ^ key_word);
    // 8 is a multiple of 4, so the tail starts at the same key position as every word did.
    std::array<std::uint8_t, 8> key_bytes{};
    std::memcpy(key_bytes.data(), &key_word, sizeof key_word);
    for (std::size_t j = 0; i < size; ++i, ++j)
        data[i] ^= key_bytes[j];
}

} // namespace detail

/// XORs `size` bytes at `data` with the masking key, 8 bytes at a time.
///
/// `key_offset` is how many payload bytes of this frame preceded `data`, so a payload
/// received in pieces can be unmasked piece by piece. Masking and unmasking are the same
/// operation.
inline void apply_mask(std::uint8_t* data, std::size_t size, const mask_key& key,
                       std::size_t key_offset = 0) noexcept {
    detail::xor_words(data, size, detail::mask_word(key, key_offset));
}

/// Writes a frame header into `out`, which must have room for max_frame_header_size bytes,
/// and returns its length (2 to 14).
///
/// The payload length takes its shortest encoding (7, 16 or 64 bits), as RFC 6455 §5.2
/// requires. With a `key` the MASK bit is set and the key appended; the caller masks the
/// payload. `payload_size` must be below 2^63.
inline std::size_t encode_frame_header(std::uint8_t* out, opcode op, std::uint64_t payload_size,
                                       bool fin = true, const mask_key* key = nullptr) noexcept {
    out[0] = static_cast<std::uint8_t>((fin ? 0x80U : 0U) | static_cast<std::uint8_t>(op));
    const std::uint8_t mask_bit = key != nullptr ? 0x80 : 0x00;
    std::size_t length = 2;
    if (payload_size < 126) {
        out[1] = static_cast<std::uint8_t>(mask_bit | payload_size);
    } else if (payload_size <= 0xFFFF) {
        out[1] = static_cast<std::uint8_t>(mask_bit | 126U);
        out[2] = static_cast<std::uint8_t>(payload_size >> 8);
        out[3] = static_cast<std::uint8_t>(payload_size);
        length = 4;
    } else {
        out[1] = static_cast<std::uint8_t>(mask_bit | 127U);
        for (std::size_t i = 0; i < 8; ++i)
            out[2 + i] = static_cast<std::uint8_t>(payload_size >> (8 * (7 - i)));
        length = 10;
    }
    if (key != nullptr) {
        std::memcpy(out + length, key->data(), key->size());
        length += key->size();
    }
    return length;
}

/// A whole unmasked frame (server → client): header + payload in one string.
inline std::string encode_frame(opcode op, std::string_view payload, bool fin = true) {
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = encode_frame_header(header.data(), op, payload.size(), fin);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size);
    frame.append(payload);
    return frame;
}

/// A whole masked frame (client → server), for clients and tests.
inline std::string encode_masked_frame(opcode op, std::string_view payload, const mask_key& key,
                                       bool fin = true) {
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size =
        encode_frame_header(header.data(), op, payload.size(), fin, &key);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size);
    frame.append(payload);
    apply_mask(reinterpret_cast<std::uint8_t*>(&frame[header_size]), payload.size(), key);
    return frame;
}

/// The payload of a Close frame: `code` big-endian, then `reason`.
///
/// The reason is cut to 123 bytes (the 125-byte control limit minus the code) at a UTF-8
/// code point boundary, so a valid reason stays valid. close_code::no_status (1005), which
/// means "no code", gives an empty payload.
inline std::string close_payload(std::uint16_t code, std::string_view reason) {
    if (code == static_cast<std::uint16_t>(close_code::no_status))
        return {};
    constexpr std::size_t max_reason = max_control_payload - 2;
    if (reason.size() > max_reason) {
        std::size_t cut = max_reason;
        // Back off over continuation bytes (10xxxxxx) to the start of the cut code point.
        while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80)
            --cut;
        reason = reason.substr(0, cut);
    }
    std::string payload;
    payload.reserve(2 + reason.size());
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xFF);
    payload.append(reason);
    return payload;
}

/// Which end of the connection a message_parser reads for: a server requires every
/// incoming frame to be masked, a client requires that none is (RFC 6455 §5.1).
enum class role : std::uint8_t {
    server, ///< reads a client's frames: each must be masked
    client, ///< reads a server's frames: none may be masked
};

namespace detail {

/// Unmasks the 64 bytes at `block` in place; true when they are all ASCII.
inline bool unmask_ascii_block(std::uint8_t* block, std::uint64_t key_word) noexcept {
#if defined(__GNUC__)
    // Four 16-byte vectors (SSE2 on x86-64, NEON on ARM) through GCC's and Clang's vector
    // extension: without it g++ -O2 keeps this loop in 8-byte words, at half the speed of
    // the binary unmasking beside it (and of -O3's code for the same loop).
    using vector = std::uint64_t __attribute__((vector_size(16)));
    constexpr std::size_t lane = sizeof(vector);
    const vector key = {key_word, key_word};
    vector a, b, c, d;
    std::memcpy(&a, block, lane);
    std::memcpy(&b, block + lane, lane);
    std::memcpy(&c, block + 2 * lane, lane);
    std::memcpy(&d, block + 3 * lane, lane);
    a ^= key;
    b ^= key;
    c ^= key;
    d ^= key;
    std::memcpy(block, &a, lane);
    std::memcpy(block + lane, &b, lane);
    std::memcpy(block + 2 * lane, &c, lane);
    std::memcpy(block + 3 * lane, &d, lane);
    const vector any = (a | b) | (c | d);
    return ((any[0] | any[1]) & ascii_high_bits) == 0;
#else
    std::uint64_t any = 0;
    for (std::size_t w = 0; w < 64; w += 8) {
        const std::uint64_t word = load_word(block + w) ^ key_word;
        store_word(block + w, word);
        any |= word;
    }
    return (any & ascii_high_bits) == 0;
#endif
}

/// Unmasks `size` bytes in place and validates them as UTF-8 in the same pass, while each
/// 64-byte block is still in registers or L1. Blocks that are pure ASCII and start between
/// code points skip the validator entirely. False as soon as the text is invalid.
inline bool unmask_and_validate(std::uint8_t* data, std::size_t size, const mask_key& key,
                                std::size_t key_offset, utf8_validator& validator) noexcept {
    constexpr std::size_t block = 64;
    const std::uint64_t key_word = mask_word(key, key_offset);
    bool between_code_points = validator.complete();
    std::size_t i = 0;
    for (; i + block <= size; i += block) {
        if (unmask_ascii_block(data + i, key_word) && between_code_points)
            continue;
        if (!validator.feed(data + i, block))
            return false;
        between_code_points = validator.complete();
    }
    // Whole blocks are a multiple of 4 bytes, so key_word still lines up for the tail.
    xor_words(data + i, size - i, key_word);
    return validator.feed(data + i, size - i);
}

} // namespace detail

namespace detail {

/// Whether a message_parser handler takes compressed messages (`on_compressed_message`).
template <class Handler, class = void>
struct takes_compressed : std::false_type {};
template <class Handler>
struct takes_compressed<Handler,
                        std::void_t<decltype(std::declval<Handler&>().on_compressed_message(
                            opcode::text, std::string_view{}))>> : std::true_type {};

} // namespace detail

/// Incremental frame parser and message reassembler (RFC 6455 §5): bytes in, events out.
///
/// feed() takes whatever the socket delivered — any number of frames, or any piece of one —
/// unmasks payloads in place, enforces every framing rule, validates text as UTF-8 as the
/// bytes arrive, reassembles fragmented messages, and calls the handler once per message or
/// control frame. A message that arrives unfragmented and whole inside one feed() is passed
/// as a view into the caller's buffer (no copy); any other message is collected in an
/// internal buffer that keeps its capacity between messages, so a connection does not
/// allocate in steady state. That buffer never holds more than max_message_size() bytes.
///
/// Once a close frame or an error has been seen the parser is done() and ignores input.
/// Not thread-safe: one parser per connection, used by its reading strand.
///
/// ```
/// struct handler {
///     void on_message(ws::opcode op, std::string_view payload);
///     void on_ping(std::string_view payload);
///     void on_pong(std::string_view payload);
///     void on_close(std::uint16_t code, std::string_view reason);
///     void on_error(std::error_code ec);
/// } h;
/// ws::message_parser parser{ws::role::server, 1 << 20};
/// std::size_t used = parser.feed(buffer, bytes_read, h);
/// ```
class message_parser {
public:
    /// A parser for the given `r`ole that fails messages larger than `max_message_size`
    /// bytes (default 16 MiB) with error::message_too_big.
    explicit message_parser(role r = role::server,
                            std::uint64_t max_message_size = 16 * 1024 * 1024) noexcept
        : max_message_size_{max_message_size}, role_{r} {}

    /// Changes the message size limit; applies from the next frame header on.
    void set_max_message_size(std::uint64_t size) noexcept { max_message_size_ = size; }

    /// The largest message, in payload bytes over all its frames, that is accepted.
    std::uint64_t max_message_size() const noexcept { return max_message_size_; }

    /// Lets the first frame of a data message set RSV1, as permessage-deflate (RFC 7692)
    /// does once negotiated; off by default, when RSV1 fails the connection like the other
    /// reserved bits. RSV1 on a control or continuation frame fails it either way.
    ///
    /// A message whose first frame had RSV1 goes to the handler's
    /// `on_compressed_message(opcode op, std::string_view payload)` still compressed and
    /// unvalidated: the receiver inflates it with the size limit and validates text after.
    /// Its compressed size may exceed max_message_size() by deflate's worst-case overhead
    /// on incompressible data (1/1024 of it, plus 64 bytes). A handler without that member
    /// gets no compressed message: the connection fails with error::reserved_bits instead.
    void allow_compressed(bool allowed) noexcept { compression_allowed_ = allowed; }

    /// Parses `size` bytes at `data`, unmasking them in place, and calls on `handler`:
    ///
    ///   void on_message(opcode op, std::string_view payload);
    ///       op is text or binary; the whole reassembled message; valid during the call only.
    ///   void on_ping(std::string_view payload);
    ///   void on_pong(std::string_view payload);
    ///   void on_compressed_message(opcode op, std::string_view payload);
    ///       optional; only after allow_compressed(true), for messages sent with RSV1.
    ///   void on_close(std::uint16_t code, std::string_view reason);
    ///       code 1005 when the frame had no payload; the parser is done() afterwards.
    ///   void on_error(std::error_code ec);
    ///       a ws::error; the connection must be failed with close_code_for(ec); done().
    ///
    /// Control frames may arrive between fragments and are delivered at once. Returns the
    /// bytes consumed: all of them, unless a close frame or an error ends the stream; then
    /// the bytes after the close frame (or after the offending header or payload piece) are
    /// not consumed, and later calls return 0. The handler must not call feed() itself.
    template <class Handler>
    std::size_t feed(std::uint8_t* data, std::size_t size, Handler& handler);

    /// True once a close frame or an error has been seen.
    bool done() const noexcept { return done_; }

    /// The payload bytes held in the internal buffer for a message not yet complete.
    std::size_t buffered_bytes() const noexcept { return carry_ ? carry_->message.size() : 0; }

    /// Frees the reassembly buffer, and what else a split frame needed, unless a message,
    /// frame header or control frame is partial (for example when a connection goes idle
    /// after a large message).
    void release_memory() noexcept {
        const bool partial = header_received_ > 0 ||
                             (stage_ == stage::payload && is_control(frame_opcode_)) ||
                             (carry_ && !carry_->message.empty());
        if (!partial)
            carry_.reset();
    }

private:
    enum class stage : std::uint8_t { header, payload };

    /// What a frame or message split across feeds leaves for the next ones. Allocated only
    /// then, as most frames arrive whole, so that a parser between messages is small:
    /// every connection holds one.
    struct carry_over {
        std::string message; // the data message's bytes, unless it is delivered in place
        std::array<std::uint8_t, max_control_payload> control;
        std::array<std::uint8_t, max_frame_header_size> header;
    };
    carry_over& carried() {
        if (!carry_)
            carry_ = std::make_unique<carry_over>();
        return *carry_;
    }

    /// The smallest capacity the reassembly buffer grows to, so a message arriving in many
    /// small pieces does not reallocate for each one.
    static constexpr std::size_t min_buffer_growth = 256;

    template <class Handler>
    bool read_header(const std::uint8_t* data, std::size_t size, std::size_t& pos,
                     Handler& handler);
    template <class Handler>
    bool read_payload(std::uint8_t* data, std::size_t size, std::size_t& pos, Handler& handler);
    template <class Handler>
    bool read_data_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                           Handler& handler);
    template <class Handler>
    bool read_control_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                              Handler& handler);
    template <class Handler>
    bool deliver_control(std::string_view payload, Handler& handler);
    template <class Handler>
    bool deliver_message(opcode op, std::string_view payload, Handler& handler);
    template <class Handler>
    bool fail(std::error_code ec, Handler& handler);

    std::error_code check_first_header_bytes(std::uint8_t first,
                                             std::uint8_t second) const noexcept;
    std::error_code decode_header(const std::uint8_t* header) noexcept;
    bool unmask_data(std::uint8_t* data, std::size_t size) noexcept;
    void reserve_for(std::size_t extra);
    void end_message() noexcept;
    std::uint64_t message_limit() const noexcept;

    /// Header length (2, 4, 10, + 4 when masked) announced by the second header byte.
    static std::size_t header_length(std::uint8_t second_byte) noexcept {
        const auto length_code = static_cast<std::uint8_t>(second_byte & 0x7F);
        const std::size_t length_bytes = length_code == 126 ? 2 : length_code == 127 ? 8 : 0;
        return 2 + length_bytes + ((second_byte & 0x80) != 0 ? 4 : 0);
    }

    // Eight-byte members first, then the small ones, so that no padding separates them:
    // every connection holds a parser.
    std::uint64_t max_message_size_;

    // The frame whose payload is being received.
    std::uint64_t frame_length_ = 0;
    std::uint64_t frame_received_ = 0;
    // The data message being received (over one or several frames): payload bytes of its
    // completed frames.
    std::uint64_t message_length_ = 0;
    std::unique_ptr<carry_over> carry_; // see carried()

    mask_key frame_key_{};
    std::uint8_t header_received_ = 0; // bytes of a header split across feeds, in carry_
    opcode frame_opcode_ = opcode::continuation;
    bool frame_fin_ = false;
    bool frame_masked_ = false;
    opcode message_opcode_ = opcode::text;
    bool message_open_ = false;       // a fragmented message awaits continuation frames
    bool message_compressed_ = false; // its first frame had RSV1 (permessage-deflate)
    bool compression_allowed_ = false;
    utf8_validator message_utf8_;
    role role_;
    stage stage_ = stage::header;
    bool done_ = false;
};

template <class Handler>
std::size_t message_parser::feed(std::uint8_t* data, std::size_t size, Handler& handler) {
    std::size_t pos = 0;
    while (!done_) {
        if (stage_ == stage::header && !read_header(data, size, pos, handler))
            break;
        if (!read_payload(data, size, pos, handler))
            break;
    }
    return pos;
}

/// Collects header bytes; true once the whole header is in and valid (stage_ is then
/// payload), false when more bytes are needed or the header broke a rule.
template <class Handler>
bool message_parser::read_header(const std::uint8_t* data, std::size_t size, std::size_t& pos,
                                 Handler& handler) {
    // Fast path: a header wholly inside `data` is decoded where it lies.
    const std::size_t available = size - pos;
    if (header_received_ == 0 && available >= 2 && available >= header_length(data[pos + 1])) {
        const std::uint8_t* header = data + pos;
        if (const std::error_code ec = check_first_header_bytes(header[0], header[1])) {
            pos += 2;
            return fail(ec, handler);
        }
        pos += header_length(header[1]);
        if (const std::error_code ec = decode_header(header))
            return fail(ec, handler);
        stage_ = stage::payload;
        return true;
    }

    // The first two bytes carry every rule but the length ones and say how long the header
    // is; check them as soon as they are in, so a bad frame fails before its length arrives.
    std::uint8_t* header = carried().header.data();
    if (header_received_ < 2) {
        const std::size_t take = std::min<std::size_t>(2 - header_received_, available);
        if (take > 0)
            std::memcpy(header + header_received_, data + pos, take);
        header_received_ = static_cast<std::uint8_t>(header_received_ + take);
        pos += take;
        if (header_received_ < 2)
            return false;
        if (const std::error_code ec = check_first_header_bytes(header[0], header[1]))
            return fail(ec, handler);
    }
    const std::size_t length = header_length(header[1]);
    const std::size_t take = std::min(length - header_received_, size - pos);
    if (take > 0)
        std::memcpy(header + header_received_, data + pos, take);
    header_received_ = static_cast<std::uint8_t>(header_received_ + take);
    pos += take;
    if (header_received_ < length)
        return false;
    header_received_ = 0;
    if (const std::error_code ec = decode_header(header))
        return fail(ec, handler);
    stage_ = stage::payload;
    return true;
}

/// Consumes payload bytes of the current frame; true when the frame is complete and the
/// parser may read the next header.
template <class Handler>
bool message_parser::read_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                  Handler& handler) {
    if (is_control(frame_opcode_))
        return read_control_payload(data, size, pos, handler);
    return read_data_payload(data, size, pos, handler);
}

template <class Handler>
bool message_parser::read_data_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                       Handler& handler) {
    const std::size_t available = size - pos;
    const std::uint64_t remaining = frame_length_ - frame_received_;

    // Fast path: an unfragmented message wholly in the caller's buffer is delivered in place.
    const bool whole_message_here = frame_fin_ && frame_opcode_ != opcode::continuation &&
                                    frame_received_ == 0 && remaining <= available;
    if (whole_message_here) {
        std::uint8_t* payload = data + pos;
        const auto payload_size = static_cast<std::size_t>(remaining);
        const bool valid = unmask_data(payload, payload_size);
        pos += payload_size;
        if (!valid || (frame_opcode_ == opcode::text && !message_utf8_.complete()))
            return fail(error::invalid_utf8, handler);
        stage_ = stage::header;
        message_utf8_.reset();
        const bool delivered = deliver_message(
            frame_opcode_, {reinterpret_cast<const char*>(payload), payload_size}, handler);
        message_compressed_ = false;
        return delivered;
    }

    const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, available));
    if (piece > 0) {
        const bool valid = unmask_data(data + pos, piece);
        if (!valid) {
            pos += piece;
            return fail(error::invalid_utf8, handler);
        }
        reserve_for(piece);
        carry_->message.append(reinterpret_cast<const char*>(data + pos), piece);
        pos += piece;
        frame_received_ += piece;
    }
    if (frame_received_ < frame_length_)
        return false;

    stage_ = stage::header;
    message_length_ += frame_length_;
    if (!frame_fin_)
        return true;
    if (message_opcode_ == opcode::text && !message_utf8_.complete())
        return fail(error::invalid_utf8, handler);
    // No carry-over when every fragment was empty.
    const bool delivered = deliver_message(
        message_opcode_, carry_ ? std::string_view{carry_->message} : std::string_view{}, handler);
    end_message();
    return delivered;
}

template <class Handler>
bool message_parser::read_control_payload(std::uint8_t* data, std::size_t size, std::size_t& pos,
                                          Handler& handler) {
    // A control payload is at most 125 bytes, so these casts cannot truncate.
    const auto remaining = static_cast<std::size_t>(frame_length_ - frame_received_);
    const std::size_t piece = std::min(remaining, size - pos);
    std::uint8_t* bytes = data + pos;
    if (frame_masked_)
        apply_mask(bytes, piece, frame_key_, static_cast<std::size_t>(frame_received_));
    pos += piece;

    if (frame_received_ == 0 && piece == remaining) {
        // The whole payload is in the caller's buffer: deliver it from there.
        stage_ = stage::header;
        return deliver_control({reinterpret_cast<const char*>(bytes), piece}, handler);
    }
    std::uint8_t* payload = carried().control.data();
    if (piece > 0)
        std::memcpy(payload + frame_received_, bytes, piece);
    frame_received_ += piece;
    if (frame_received_ < frame_length_)
        return false;
    stage_ = stage::header;
    return deliver_control(
        {reinterpret_cast<const char*>(payload), static_cast<std::size_t>(frame_length_)}, handler);
}

/// Dispatches a complete control frame; false when it ends the stream.
template <class Handler>
bool message_parser::deliver_control(std::string_view payload, Handler& handler) {
    switch (frame_opcode_) {
    case opcode::ping:
        handler.on_ping(payload);
        return true;
    case opcode::pong:
        handler.on_pong(payload);
        return true;
    default:
        break;
    }
    // A close frame: empty, or a 2-byte code followed by a UTF-8 reason (RFC 6455 §5.5.1).
    if (payload.size() == 1)
        return fail(error::bad_close_payload, handler);
    std::uint16_t code = static_cast<std::uint16_t>(close_code::no_status);
    std::string_view reason;
    if (!payload.empty()) {
        code = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                          static_cast<unsigned char>(payload[1]));
        if (!is_valid_wire_close_code(code))
            return fail(error::bad_close_code, handler);
        reason = payload.substr(2);
        if (!is_valid_utf8(reason))
            return fail(error::invalid_close_reason, handler);
    }
    done_ = true;
    handler.on_close(code, reason);
    return false;
}

/// Hands a complete data message to the handler, compressed or not; false when the handler
/// cannot take a compressed one and the stream ended.
template <class Handler>
bool message_parser::deliver_message(opcode op, std::string_view payload, Handler& handler) {
    if constexpr (detail::takes_compressed<Handler>::value) {
        if (message_compressed_) {
            handler.on_compressed_message(op, payload);
            return true;
        }
    } else if (message_compressed_) {
        return fail(error::reserved_bits, handler);
    }
    handler.on_message(op, payload);
    return true;
}

/// Ends the stream with `ec`; always false, so callers can `return fail(...)`.
template <class Handler>
bool message_parser::fail(std::error_code ec, Handler& handler) {
    done_ = true;
    handler.on_error(ec);
    return false;
}

/// The checks that need only the first two header bytes (RFC 6455 §5.2, §5.4, §5.5).
inline std::error_code
message_parser::check_first_header_bytes(std::uint8_t first, std::uint8_t second) const noexcept {
    const auto op = static_cast<opcode>(first & 0x0F);
    const auto reserved = static_cast<std::uint8_t>(first & 0x70);
    // RSV1 is permessage-deflate's "compressed" bit, which only a message's first frame
    // carries (RFC 7692 §6.1).
    const bool compressed_start =
        reserved == 0x40 && compression_allowed_ && (op == opcode::text || op == opcode::binary);
    if (reserved != 0 && !compressed_start)
        return error::reserved_bits;
    switch (op) {
    case opcode::continuation:
    case opcode::text:
    case opcode::binary:
    case opcode::close:
    case opcode::ping:
    case opcode::pong:
        break;
    default:
        return error::unknown_opcode;
    }
    const bool masked = (second & 0x80) != 0;
    if (role_ == role::server && !masked)
        return error::unmasked_frame;
    if (role_ == role::client && masked)
        return error::masked_frame;
    const bool fin = (first & 0x80) != 0;
    if (is_control(op)) {
        if (!fin)
            return error::fragmented_control;
        if (static_cast<std::size_t>(second & 0x7F) > max_control_payload)
            return error::control_too_long;
    } else if (op == opcode::continuation) {
        if (!message_open_)
            return error::unexpected_continuation;
    } else if (message_open_) {
        return error::expected_continuation;
    }
    return {};
}

/// Decodes a complete, first-bytes-checked header into the frame_ fields and starts the message
/// for a text or binary frame. Length rules and the size limit are checked here, before
/// any payload byte is accepted.
inline std::error_code message_parser::decode_header(const std::uint8_t* header) noexcept {
    frame_fin_ = (header[0] & 0x80) != 0;
    frame_opcode_ = static_cast<opcode>(header[0] & 0x0F);
    frame_masked_ = (header[1] & 0x80) != 0;
    const auto length_code = static_cast<std::uint8_t>(header[1] & 0x7F);
    std::size_t next = 2;
    std::uint64_t length = length_code;
    if (length_code == 126) {
        length = std::uint64_t{header[2]} << 8 | header[3];
        next = 4;
        if (length < 126)
            return error::non_minimal_length;
    } else if (length_code == 127) {
        length = 0;
        for (std::size_t i = 2; i < 10; ++i)
            length = length << 8 | header[i];
        next = 10;
        if ((length >> 63) != 0)
            return error::length_msb_set;
        if (length <= 0xFFFF)
            return error::non_minimal_length;
    }
    if (frame_masked_)
        std::memcpy(frame_key_.data(), header + next, frame_key_.size());
    frame_length_ = length;
    frame_received_ = 0;

    if (is_control(frame_opcode_))
        return {};
    if (frame_opcode_ != opcode::continuation) {
        message_opcode_ = frame_opcode_;
        message_compressed_ = (header[0] & 0x40) != 0;
    }
    // Written so that no sum can overflow, even if the limit was lowered mid-message.
    const std::uint64_t limit = message_limit();
    if (message_length_ > limit || length > limit - message_length_)
        return error::message_too_big;
    message_open_ = !frame_fin_;
    return {};
}

/// Unmasks a piece of the current data frame's payload in place and, for text, validates
/// it; false when the text is not valid UTF-8.
inline bool message_parser::unmask_data(std::uint8_t* data, std::size_t size) noexcept {
    const auto key_offset = static_cast<std::size_t>(frame_received_ % 4);
    // Compressed text is validated once inflated.
    if (message_opcode_ == opcode::text && !message_compressed_) {
        if (frame_masked_)
            return detail::unmask_and_validate(data, size, frame_key_, key_offset, message_utf8_);
        return message_utf8_.feed(data, size);
    }
    if (frame_masked_)
        apply_mask(data, size, frame_key_, key_offset);
    return true;
}

/// Makes room for `extra` more bytes in the reassembly buffer, growing geometrically but
/// never past what the message can still legally reach, so the buffer's capacity stays
/// within max_message_size() (std::string::reserve alone may double past it).
inline void message_parser::reserve_for(std::size_t extra) {
    std::string& message = carried().message;
    const std::size_t needed = message.size() + extra;
    if (needed <= message.capacity())
        return;
    // The header check guarantees message_length_ + frame_length_ <= max_message_size_.
    const std::uint64_t reachable =
        frame_fin_ ? message_length_ + frame_length_ : max_message_size_;
    std::uint64_t target = std::max<std::uint64_t>(needed, 2 * message.capacity());
    target = std::max<std::uint64_t>(target, min_buffer_growth);
    target = std::max<std::uint64_t>(std::min(target, reachable), needed);
    std::string grown;
    grown.reserve(static_cast<std::size_t>(target));
    grown.append(message);
    message.swap(grown);
}

/// Forgets the delivered message, keeping the buffer's capacity for the next one.
inline void message_parser::end_message() noexcept {
    if (carry_)
        carry_->message.clear();
    message_length_ = 0;
    message_open_ = false;
    message_compressed_ = false;
    message_utf8_.reset();
}

/// The most payload bytes the message in progress may have on the wire: the size limit,
/// plus deflate's worst-case growth of incompressible data when it is compressed (the limit
/// on its inflated size is the receiver's to enforce).
inline std::uint64_t message_parser::message_limit() const noexcept {
    if (!message_compressed_)
        return max_message_size_;
    const std::uint64_t overhead = (max_message_size_ >> 10) + 64;
    return max_message_size_ > UINT64_MAX - overhead ? UINT64_MAX : max_message_size_ + overhead;
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/frame.hpp ----

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A complete server-to-client frame (header and payload in one allocation) with an
/// atomic reference count.
///
/// A broadcast encodes its frame once; every member's send queue then holds a
/// `shared_frame` pointing at the same bytes, so delivering to N members costs N
/// reference-count increments and no copies. Copying is cheap and thread safe; the bytes
/// never change after `make_frame` returns.
///
/// Thread safety: like `std::shared_ptr`, different `shared_frame` objects that share the
/// same bytes may be copied, read and destroyed from any threads at once; one object must
/// not be assigned in one thread while another thread uses it.
///
/// ```cpp
/// ws::shared_frame frame = ws::make_frame(ws::opcode::text, "hello, everyone");
/// for (const auto& conn : members)
///     conn->send(frame); // one encoding, one allocation, N references
/// ```
class shared_frame {
public:
    /// An empty frame: no bytes, `size() == 0`, false as a bool. Policies return it for
    /// "send nothing".
    shared_frame() noexcept = default;
    /// Shares `other`'s bytes (one atomic increment, no copy).
    shared_frame(const shared_frame& other) noexcept : block_(other.block_) { retain(); }
    /// Takes `other`'s bytes; `other` is left empty.
    shared_frame(shared_frame&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    /// Shares (or, from an rvalue, takes) `other`'s bytes and drops the ones held before.
    shared_frame& operator=(shared_frame other) noexcept {
        std::swap(block_, other.block_);
        return *this;
    }
    /// Drops this reference; the last one frees the bytes.
    ~shared_frame() { release(); }

    /// Encodes `payload` as one unmasked frame with the FIN bit set: a whole message as a
    /// server sends it, or a control frame, whose payload RFC 6455 limits to
    /// max_control_payload bytes (not checked here). `compressed` sets RSV1, for a message
    /// compressed by a negotiated extension. Allocates once; throws `std::bad_alloc` when it
    /// cannot.
    friend shared_frame make_frame(opcode op, std::string_view payload, bool compressed) {
        std::uint8_t header[max_frame_header_size];
        const std::size_t header_size = encode_frame_header(header, op, payload.size());
        if (compressed)
            header[0] |= 0x40;
        shared_frame frame{allocate(header_size + payload.size())};
        frame.block_->message = op == opcode::text || op == opcode::binary;
        std::memcpy(frame.mutable_data(), header, header_size);
        if (!payload.empty())
            std::memcpy(frame.mutable_data() + header_size, payload.data(), payload.size());
        return frame;
    }

    /// Bytes that are already wire-ready (an HTTP response head, a frame encoded elsewhere),
    /// copied into a shared buffer so they can wait in a send queue. Nothing is checked or
    /// encoded: the bytes go to the peer as they are.
    static shared_frame copy_of(std::string_view bytes) {
        shared_frame frame{allocate(bytes.size())};
        if (!bytes.empty())
            std::memcpy(frame.mutable_data(), bytes.data(), bytes.size());
        return frame;
    }

    /// The frame's bytes, ready for the wire; null for an empty frame. Valid as long as some
    /// `shared_frame` shares them.
    const std::uint8_t* data() const noexcept {
        return block_ ? reinterpret_cast<const std::uint8_t*>(block_ + 1) : nullptr;
    }
    /// The number of bytes, header included; 0 for an empty frame.
    std::size_t size() const noexcept { return block_ ? block_->size : 0; }
    /// data() and size() as a string view (empty for an empty frame).
    std::string_view bytes() const noexcept {
        return {reinterpret_cast<const char*>(data()), size()};
    }
    /// True when the frame holds bytes, false for a default-constructed or moved-from one.
    explicit operator bool() const noexcept { return block_ != nullptr; }

    /// True for a whole text or binary message made by `make_frame`: a frame an extension
    /// may transform (compress). False for control frames, `copy_of` bytes and empty frames.
    bool is_message() const noexcept { return block_ && block_->message; }
    /// The opcode of a frame made by `make_frame` (its first byte's low bits).
    opcode message_opcode() const noexcept { return static_cast<opcode>(data()[0] & 0x0F); }
    /// The payload of a frame made by `make_frame`: the bytes after its header.
    std::string_view payload() const noexcept {
        const std::uint8_t length_code = data()[1] & 0x7F;
        const std::size_t header = length_code < 126 ? 2 : length_code == 126 ? 4 : 10;
        return bytes().substr(header);
    }

    /// The frame derived from this one for `key` (for example, its compressed form under
    /// one set of extension parameters): `make(*this)` the first time, kept with these
    /// bytes, and the same frame for every later caller with the same key, from any thread.
    /// One derived frame is kept; a caller with another key gets `make(*this)` each time.
    /// This is how a broadcast is compressed once for all the members that can share it.
    /// The frame must not be empty.
    template <class Make>
    shared_frame derived(const void* key, Make&& make) const {
        block* kept = block_->derived.load(std::memory_order_acquire);
        if (kept == nullptr) {
            shared_frame made = make(*this);
            made.block_->derived_for = key;
            block* expected = nullptr;
            made.retain(); // the reference the slot holds
            if (block_->derived.compare_exchange_strong(expected, made.block_,
                                                        std::memory_order_acq_rel))
                return made;
            made.release(); // another thread was first: use its frame if it suits
            kept = expected;
            if (kept->derived_for != key)
                return made;
        } else if (kept->derived_for != key) {
            return make(*this);
        }
        shared_frame shared{kept};
        shared.retain();
        return shared;
    }

private:
    // The bytes follow this header in the same allocation.
    struct block {
        std::atomic<std::size_t> references;
        std::size_t size;
        std::atomic<block*> derived{nullptr}; // see derived(); holds a reference
        const void* derived_for = nullptr;    // the key this block was derived for
        bool message = false;                 // see is_message()
    };

    explicit shared_frame(block* b) noexcept : block_(b) {}

    static block* allocate(std::size_t size) {
        void* memory = ::operator new(sizeof(block) + size);
        block* b = ::new (memory) block;
        b->references.store(1, std::memory_order_relaxed);
        b->size = size;
        return b;
    }
    std::uint8_t* mutable_data() noexcept { return reinterpret_cast<std::uint8_t*>(block_ + 1); }

    void retain() noexcept {
        if (block_)
            block_->references.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        if (block_ && block_->references.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy(block_);
    }

    /// Frees `b` and drops its derived frame. Out of line: it runs once per frame, while
    /// release() is inlined wherever a frame is dropped.
    static void destroy(block* b) noexcept;

    block* block_ = nullptr;
};

inline void shared_frame::destroy(block* b) noexcept {
    const shared_frame derived{b->derived.load(std::memory_order_acquire)};
    b->~block();
    ::operator delete(b);
}

/// Declared again at namespace scope so that `ws::make_frame(...)` is found by ordinary
/// lookup, not only by argument-dependent lookup.
shared_frame make_frame(opcode op, std::string_view payload, bool compressed);

/// make_frame without RSV1: the frame of an uncompressed message or a control frame.
inline shared_frame make_frame(opcode op, std::string_view payload) {
    return make_frame(op, payload, false);
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/shared_frame.hpp ----

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A vector of frames, as small as `std::vector` (24 bytes), that keeps up to
/// `inline_capacity` frames without allocating. A peer answered with the 101 and greeted,
/// then sent one message per turn of the event loop (or none: an idle member), never
/// needs storage of its own; a std::vector would keep a heap block for each. A queue
/// that grows past them keeps the storage it grew, so a steady broadcast allocates nothing
/// per delivery either.
///
/// Contiguous: the frames are `begin()[0]` to `begin()[size() - 1]`, and pointers into it
/// stay valid until the next `push_back`.
class frame_queue {
public:
    static constexpr std::uint32_t inline_capacity = 2;

    frame_queue() noexcept {}
    frame_queue(const frame_queue&) = delete;
    frame_queue& operator=(const frame_queue&) = delete;
    ~frame_queue() {
        clear();
        if (on_heap())
            ::operator delete(heap_);
    }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    /// Frames it holds without allocating again.
    std::size_t capacity() const noexcept { return capacity_; }

    shared_frame* begin() noexcept { return on_heap() ? heap_ : inline_frames(); }
    const shared_frame* begin() const noexcept { return on_heap() ? heap_ : inline_frames(); }
    shared_frame* end() noexcept { return begin() + size_; }
    const shared_frame* end() const noexcept { return begin() + size_; }
    shared_frame& operator[](std::size_t i) noexcept { return begin()[i]; }
    const shared_frame& operator[](std::size_t i) const noexcept { return begin()[i]; }

    void push_back(shared_frame&& frame) {
        if (size_ == capacity_)
            grow();
        ::new (static_cast<void*>(end())) shared_frame(std::move(frame));
        ++size_;
    }

    /// Removes the frames in [first, last); those behind them move up.
    void erase(shared_frame* first, shared_frame* last) noexcept {
        shared_frame* const old_end = end();
        std::destroy(std::move(last, old_end, first), old_end);
        size_ -= static_cast<std::uint32_t>(last - first);
    }

    /// Removes every frame; the storage stays.
    void clear() noexcept {
        std::destroy(begin(), end());
        size_ = 0;
    }

private:
    bool on_heap() const noexcept { return capacity_ > inline_capacity; }

    shared_frame* inline_frames() noexcept {
        return std::launder(reinterpret_cast<shared_frame*>(inline_));
    }
    const shared_frame* inline_frames() const noexcept {
        return std::launder(reinterpret_cast<const shared_frame*>(inline_));
    }

    /// Doubles the storage. Cold: it runs a few times in a queue's life, and inlined it would
    /// keep push_back's callers from being inlined on the path of every delivery.
    [[gnu::cold]] void grow() {
        if (capacity_ > std::numeric_limits<std::uint32_t>::max() / 2)
            throw std::length_error("wschat: send queue of over 2^31 frames");
        const std::uint32_t capacity = capacity_ * 2;
        auto* const bigger =
            static_cast<shared_frame*>(::operator new(capacity * sizeof(shared_frame)));
        shared_frame* const old = begin();
        std::uninitialized_move(old, old + size_, bigger);
        std::destroy(old, old + size_);
        if (on_heap())
            ::operator delete(heap_);
        heap_ = bigger;
        capacity_ = capacity;
    }

    union {
        shared_frame* heap_; // when on_heap()
        alignas(shared_frame) unsigned char inline_[inline_capacity * sizeof(shared_frame)];
    };
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = inline_capacity; // more: the frames are in heap_
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/frame_queue.hpp ----
// ---- begin wschat/ws/detail/io/readiness_set.hpp ----
// wschat — the plain sockets of a server in one epoll set of their own, which the
// io_context watches as a single descriptor.


WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {
template <class Target>
class readiness_set;
} // namespace detail
WSCHAT_END_NAMESPACE

#if defined(__linux__)
#define WSCHAT_HAS_READINESS_SET 1

#include <asio/io_context.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <system_error>
#include <utility>

#include <sys/epoll.h>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Asio gives every socket it watches about 170 bytes of reactor state, and every read it
/// waits on an operation of about 160 bytes more: 330 bytes per idle connection, more than
/// the rest of what an idle connection needs. A server's plain sockets therefore leave
/// Asio's reactor once their transport handshake is done and join this set instead: one
/// epoll descriptor, edge-triggered for reading and writing, which costs user space nothing
/// per socket. The io_context watches the set's descriptor alone (while the set has
/// members, so that an io_context with nothing else to do still runs out of work).
///
/// When a socket becomes readable or writable, the set calls `target->ready(events)` (epoll's
/// event bits) on its own strand; the target (a connection) hands the work to its own strand
/// from there, which may run it at once, inside the hand-out.
///
/// Lifetime: a target stays alive while it is in the set, and `remove` keeps it alive
/// until every event harvested before the removal has been handed out. Events are
/// harvested and handed out in one handler on the set's strand, and `remove` posts the
/// target's last reference to that strand after taking the socket out of the set: so
/// the reference is dropped only after any harvest that could still name the target.
template <class Target>
class readiness_set : public std::enable_shared_from_this<readiness_set<Target>> {
public:
    /// Event bits `ready` may see: data to read; the peer's end or an error, which a read
    /// must find next even after a short read.
    static constexpr std::uint32_t readable = EPOLLIN;
    static constexpr std::uint32_t ending = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    /// Room to write.
    static constexpr std::uint32_t writable = EPOLLOUT;

    explicit readiness_set(asio::io_context& io) : strand_(asio::make_strand(io)), watch_(strand_) {
        const int fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
            throw std::system_error(errno, std::system_category(), "wschat: epoll_create1");
        watch_.assign(fd);
    }

    readiness_set(const readiness_set&) = delete;
    readiness_set& operator=(const readiness_set&) = delete;

    /// Adds the non-blocking socket `fd`; `target` is told of every change in its
    /// readiness from now on (and at once, as the socket is writable).
    std::error_code add(int fd, Target& target) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.ptr = &target;
        if (::epoll_ctl(watch_.native_handle(), EPOLL_CTL_ADD, fd, &event) != 0)
            return {errno, std::system_category()};
        if (members_.fetch_add(1, std::memory_order_acq_rel) == 0)
            asio::post(strand_, review{this->shared_from_this(), nullptr});
        return {};
    }

    /// Takes `fd` out of the set; call it before closing `fd`. `last_reference` is the
    /// target's, held until no harvested event can reach the target any more.
    void remove(int fd, std::shared_ptr<Target> last_reference) {
        epoll_event ignored{}; // kernels before 2.6.9 wanted one
        ::epoll_ctl(watch_.native_handle(), EPOLL_CTL_DEL, fd, &ignored);
        members_.fetch_sub(1, std::memory_order_acq_rel);
        asio::post(strand_, review{this->shared_from_this(), std::move(last_reference)});
    }

private:
    /// On the strand, after a member came or went (one handler type for both): watches while
    /// the set has members, and stops when it has none, to let the io_context run out of
    /// work. Holds a leaving target's last reference until then.
    struct review {
        std::shared_ptr<readiness_set> self;
        std::shared_ptr<Target> held;
        void operator()() const {
            if (self->members_.load(std::memory_order_acquire) > 0)
                self->watch();
            else if (self->watching_)
                self->watch_.cancel();
        }
    };

    /// On the strand: waits for the set's descriptor to become readable, unless it already
    /// does or the set is empty.
    void watch() {
        if (watching_ || members_.load(std::memory_order_acquire) == 0)
            return;
        watching_ = true;
        watch_.async_wait(asio::posix::descriptor_base::wait_read,
                          [self = this->shared_from_this()](std::error_code ec) {
                              self->watching_ = false;
                              if (!ec)
                                  self->hand_out();
                              self->watch();
                          });
    }

    /// On the strand: harvests every event pending and tells each target. Edge-triggered
    /// epoll sets report a readiness change once, so the set is emptied each time.
    void hand_out() {
        epoll_event events[256];
        int count = 0;
        do {
            count = ::epoll_wait(watch_.native_handle(), events, std::size(events), 0);
            for (int i = 0; i < count; ++i)
                static_cast<Target*>(events[i].data.ptr)->ready(events[i].events);
        } while (count == static_cast<int>(std::size(events)));
    }

    asio::strand<asio::io_context::executor_type> strand_;
    // Owns the epoll descriptor. On the strand's concrete type, not Asio's type-erased
    // default (see steady_timer_on for why).
    asio::posix::basic_stream_descriptor<asio::strand<asio::io_context::executor_type>> watch_;
    std::atomic<std::size_t> members_{0};
    bool watching_ = false; // an async_wait is pending (strand only)
};

} // namespace detail

WSCHAT_END_NAMESPACE

#endif
// ---- end wschat/ws/detail/io/readiness_set.hpp ----

#include <asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#define WSCHAT_HAS_SENDMSG 1
#endif

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// True for streams that are plain sockets (TCP, Unix domain): once open they leave Asio
/// for the server's readiness set, and are read and written (sendmsg) directly. A TLS
/// stream is not one: its bytes pass through the TLS engine, which buffers on its own.
/// Where there is no readiness set (outside Linux), every stream goes through Asio.
template <class Stream, class = void>
struct is_plain_socket : std::false_type {};
#if defined(WSCHAT_HAS_SENDMSG) && defined(WSCHAT_HAS_READINESS_SET)
template <class Stream>
struct is_plain_socket<Stream, std::void_t<decltype(int{std::declval<Stream&>().native_handle()}),
                                           decltype(std::declval<Stream&>().non_blocking(
                                               true, std::declval<std::error_code&>())),
                                           decltype(int{std::declval<Stream&>().release()})>>
    : std::true_type {};
#endif

/// The read buffer of the calling thread. A plain-socket connection reads into it only
/// what has already arrived and parses it before returning to the event loop, so an idle
/// connection holds no read buffer, and one thread needs one buffer however many
/// connections it serves.
inline std::uint8_t* thread_read_buffer(std::size_t size) {
    thread_local std::unique_ptr<std::uint8_t[]> buffer;
    thread_local std::size_t capacity = 0;
    if (capacity < size) {
        // Not zeroed: a page of it becomes resident only once a read reaches that far.
        buffer.reset(new std::uint8_t[size]);
        capacity = size;
    }
    return buffer.get();
}

#if defined(WSCHAT_HAS_SENDMSG)
/// Ends our direction of the socket `fd` (TCP FIN): the peer reads EOF, we can still read.
inline void shutdown_send(int fd) {
    ::shutdown(fd, SHUT_WR);
}

inline void close_socket(int fd) {
    ::close(fd);
}

/// The error of a failed call on a non-blocking socket, from `errno`: `would_block` when
/// the socket had nothing to give or no room to take, otherwise the system's error.
inline std::error_code socket_error() {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return asio::error::would_block;
    return {errno, std::system_category()};
}

/// Reads what has arrived on the non-blocking socket `fd`, up to `size` bytes. Returns
/// the bytes read; sets `ec` to `would_block` when nothing had arrived, to `eof` when the
/// peer has closed, or to the error.
inline std::size_t read_socket(int fd, std::uint8_t* into, std::size_t size, std::error_code& ec) {
    for (;;) {
        const ssize_t got = ::recv(fd, into, size, 0);
        if (got > 0)
            return static_cast<std::size_t>(got);
        if (got < 0 && errno == EINTR)
            continue;
        ec = got == 0 ? std::error_code{asio::error::eof} : socket_error();
        return 0;
    }
}

/// One gather write of queued frames, by reference: up to 256 of them per system call
/// (Asio's own gather writes stop at 64), so a deep queue leaves in a few calls without
/// being copied.
class gathered_frames {
public:
    /// Points at the frames from the front of `frames`, starting `offset` bytes into the
    /// first. Returns how many frames it took.
    std::size_t gather(const frame_queue& frames, std::size_t offset) {
        count_ = std::min(frames.size(), std::size(iov_));
        bytes_ = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            const std::size_t skip = i == 0 ? offset : 0;
            iov_[i].iov_base = const_cast<std::uint8_t*>(frames[i].data()) + skip;
            iov_[i].iov_len = frames[i].size() - skip;
            bytes_ += iov_[i].iov_len;
        }
        return count_;
    }

    /// Writes as much of them as the non-blocking socket `fd` takes. Returns the bytes
    /// written; sets `ec` to `would_block` when the socket took less than all (it is full),
    /// or to the error.
    std::size_t send(int fd, std::error_code& ec) const {
        if (count_ == 0)
            return 0;
        msghdr message{};
        message.msg_iov = const_cast<iovec*>(iov_);
        message.msg_iovlen = count_;
        for (;;) {
            const ssize_t sent = ::sendmsg(fd, &message, MSG_NOSIGNAL);
            if (sent >= 0) {
                if (static_cast<std::size_t>(sent) < bytes_)
                    ec = asio::error::would_block;
                return static_cast<std::size_t>(sent);
            }
            if (errno == EINTR)
                continue;
            ec = socket_error();
            return 0;
        }
    }

private:
    iovec iov_[256]; // under IOV_MAX (1024); 4 KiB of stack
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;
};
#endif

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/io/plain_socket.hpp ----
// ---- begin wschat/ws/detail/io/socket_io.hpp ----
// wschat — the I/O back end of plain sockets: readiness reported by the server's epoll set,
// reads into the thread's buffer, gather writes with sendmsg straight from the send queue.


#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

template <class Connection>
class socket_io;

#if defined(WSCHAT_HAS_SENDMSG) && defined(WSCHAT_HAS_READINESS_SET)

/// A plain socket's I/O for `Connection` (see stream_io for the interface both back ends
/// share). The stream lives only for the transport's handshake; then its bare descriptor
/// joins the server's readiness set, is read into the thread's buffer (an idle connection
/// holds no read buffer) and written with sendmsg directly from the send queue.
template <class Connection>
class socket_io {
public:
    using stream_type = typename Connection::stream_type; ///< until its handshake is done

    socket_io() = default;
    socket_io(const socket_io&) = delete;
    socket_io& operator=(const socket_io&) = delete;
    /// Normally the socket is closed by close(); this is for a connection dropped unfinished
    /// with its io_context.
    ~socket_io() {
        if (fd_ >= 0)
            close_socket(fd_);
    }

    /// Runs the transport's handshake on `stream`, then adopts its descriptor.
    void start(Connection& conn, stream_type stream) {
        handshaking_ = std::make_unique<stream_type>(std::move(stream));
        conn.transport().async_handshake(
            *handshaking_, asio::bind_executor(
                               conn.strand(), [self = conn.shared_from_this()](std::error_code ec) {
                                   self->io_.adopt(*self, ec);
                               }));
    }

    /// From the readiness set's strand: the socket became readable or writable or both
    /// (`events`, epoll's). Schedules one on_ready at a time, which sees every event
    /// reported until it begins. Dispatched: when the connection's strand is free it runs at
    /// once, inside the set's hand-out, as Asio's reactor would run a read; posted, it would
    /// wait behind every handler queued meanwhile (a broadcast's writes).
    void ready(Connection& conn, std::uint32_t events) {
        if (first_report(events))
            asio::dispatch(conn.strand(), on_ready_handler{conn.shared_from_this()});
    }

    /// Writes as much of the queue as the socket takes; when it is full, the rest waits for
    /// the readiness set to report it writable. The frames are gathered under the queue's
    /// lock, as other threads may queue more meanwhile, and written without it.
    void write(Connection& conn) {
        for (;;) {
            gathered_frames batch;
            conn.queue().take([&batch](const frame_queue& frames, std::size_t offset) {
                return batch.gather(frames, offset);
            });
            std::error_code ec;
            const std::size_t size = batch.send(fd_, ec);
            const bool full = ec == asio::error::would_block;
            if (ec && !full)
                return conn.end_at_once(ec);
            const bool again = conn.written(size, full);
            awaiting_writable_ = full;
            if (!again)
                return;
        }
    }

    /// Ends our direction (TCP FIN): the peer reads EOF, we can still read.
    void shutdown_send(Connection&) { detail::shutdown_send(fd_); }

    /// Leaves the readiness set and closes the socket; cancels a handshake under way, whose
    /// handler then drops the stream.
    void close(Connection& conn) {
        if (handshaking_)
            conn.transport().close(*handshaking_);
        if (fd_ < 0)
            return;
        conn.readiness()->remove(fd_, conn.shared_from_this());
        close_socket(fd_);
        fd_ = -1;
    }

private:
    using readiness_type = readiness_set<Connection>;
    // The readiness set's event bits, in 16 so that the whole back end fits in 16 bytes (an
    // idle connection holds little else).
    using event_bits = std::uint16_t;
    static_assert((readiness_type::readable | readiness_type::writable | readiness_type::ending) <=
                      std::numeric_limits<event_bits>::max(),
                  "the readiness set reports bits that event_bits cannot hold");

    /// Runs on_ready on the connection's strand (one handler type for dispatch and post).
    struct on_ready_handler {
        std::shared_ptr<Connection> self;
        void operator()() const { self->io_.on_ready(*self); }
    };

    /// The transport's handshake is done: the descriptor leaves Asio (and the stream, which
    /// then closes nothing) for the readiness set, non-blocking. The set reports it writable
    /// at once, which makes the first read.
    void adopt(Connection& conn, std::error_code ec) {
        // Destroyed on return, now that the handshake no longer uses it.
        const std::unique_ptr<stream_type> stream = std::move(handshaking_);
        if (conn.ended())
            return; // ended during the handshake, whose stream close() closed
        if (!ec)
            stream->non_blocking(true, ec);
        if (!ec)
            fd_ = stream->release(ec);
        if (!ec)
            ec = conn.readiness()->add(fd_, conn);
        if (ec)
            conn.end_at_once(ec);
    }

    /// Records `events` for the next on_ready; true when none was scheduled yet.
    bool first_report(std::uint32_t events) {
        return events_.fetch_or(static_cast<event_bits>(events), std::memory_order_acq_rel) == 0;
    }

    void on_ready(Connection& conn) {
        const std::uint32_t events = events_.exchange(0, std::memory_order_acq_rel);
        if (conn.ended())
            return;
        if (awaiting_writable_) {
            awaiting_writable_ = false;
            write(conn);
        }
        read_available(conn, events);
    }

    /// Reads what has arrived into the thread's read buffer and hands it to the connection
    /// before returning. Edge-triggered readiness is reported once per change, so reading
    /// goes on until the socket is drained, which a short read shows (unless the peer's end
    /// or an error came with the data: that is read next). One buffer per turn on the
    /// strand, so that other connections, and what this one posted (a queue-overflow close),
    /// go in between.
    void read_available(Connection& conn, std::uint32_t events) {
        const std::size_t capacity = conn.options().read_buffer_size;
        std::uint8_t* bytes = thread_read_buffer(capacity);
        std::error_code ec;
        const std::size_t size = read_socket(fd_, bytes, capacity, ec);
        if (ec == asio::error::would_block)
            return;
        if (ec)
            return conn.read_failed(ec);
        conn.received(bytes, size);
        const bool drained = size < capacity && (events & readiness_type::ending) == 0;
        // No new report would announce the rest: read it on a later turn.
        if (!conn.ended() && !drained && first_report(events | readiness_type::readable))
            asio::post(conn.strand(), on_ready_handler{conn.shared_from_this()});
    }

    std::unique_ptr<stream_type> handshaking_; // during the transport handshake
    int fd_ = -1;                              // from the end of the transport handshake
    std::atomic<event_bits> events_{0};        // reported since on_ready last began (0: none)
    bool awaiting_writable_ = false;           // a write waits for room (strand only)
};

#endif

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/io/socket_io.hpp ----
// ---- begin wschat/ws/detail/io/stream_io.hpp ----
// wschat — the I/O back end of other streams (TLS, memory, a user's transport): Asio's
// asynchronous reads and composed gather writes.


#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/write.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A generic stream's I/O for `Connection`: one asynchronous read at a time into a buffer of
/// its own, one composed gather write at a time of everything queued.
///
/// The interface both back ends share (socket_io is the other), called on the strand:
/// `start(conn, stream)` runs the transport's handshake, then reads; `write(conn)` writes
/// what is queued; `shutdown_send(conn)` ends our direction once the last frame is out;
/// `close(conn)` closes the stream. They call back the connection's `received`,
/// `read_failed`, `end_at_once`, `queue` and `written`.
template <class Connection>
class stream_io {
public:
    using stream_type = typename Connection::stream_type; ///< the stream it reads and writes

    /// Runs the transport's handshake on `stream`, then reads.
    void start(Connection& conn, stream_type stream) {
        stream_.emplace(std::move(stream));
        conn.transport().async_handshake(
            *stream_, asio::bind_executor(conn.strand(),
                                          [self = conn.shared_from_this()](std::error_code ec) {
                                              if (ec)
                                                  return self->end_at_once(ec);
                                              self->io_.read_some(*self);
                                          }));
    }

    /// One composed gather write of everything queued.
    void write(Connection& conn) {
        conn.queue().take([this](const frame_queue& frames, std::size_t) {
            lay_out(frames);
            return frames.size();
        });
        asio::async_write(
            *stream_, gather_,
            asio::bind_executor(conn.strand(), [self = conn.shared_from_this()](std::error_code ec,
                                                                                std::size_t size) {
                self->io_.on_written(*self, ec, size);
            }));
    }

    /// Ends our direction: the peer reads EOF, we can still read.
    void shutdown_send(Connection& conn) { conn.transport().shutdown_send(*stream_); }

    /// Closes the stream, which cancels what is under way on it.
    void close(Connection& conn) {
        if (stream_)
            conn.transport().close(*stream_);
    }

private:
    void read_some(Connection& conn) {
        const std::size_t capacity = conn.options().read_buffer_size;
        if (!read_buffer_)
            read_buffer_.reset(new std::uint8_t[capacity]); // not zeroed
        stream_->async_read_some(
            asio::buffer(read_buffer_.get(), capacity),
            asio::bind_executor(conn.strand(), [self = conn.shared_from_this()](std::error_code ec,
                                                                                std::size_t size) {
                self->io_.on_read(*self, ec, size);
            }));
    }

    void on_read(Connection& conn, std::error_code ec, std::size_t size) {
        if (conn.ended())
            return;
        if (ec)
            return conn.read_failed(ec);
        conn.received(read_buffer_.get(), size);
        if (!conn.ended())
            read_some(conn);
    }

    /// Lays out the queued frames for one gather write. A TLS stream encrypts each buffer
    /// of a sequence as its own record (and system call), so small frames are copied back to
    /// back into one contiguous run that leaves as few large records; large frames still go
    /// by reference (frames taken are not dropped until written). Called under the queue's
    /// lock.
    void lay_out(const frame_queue& frames) {
        std::size_t small_bytes = 0;
        for (const shared_frame& frame : frames)
            if (frame.size() <= coalesce_limit)
                small_bytes += frame.size();
        coalesced_.clear();
        coalesced_.reserve(small_bytes); // no reallocation below: buffers point into it
        gather_.clear();
        bool extending_run = false;
        for (const shared_frame& frame : frames) {
            if (frame.size() > coalesce_limit) {
                gather_.emplace_back(frame.data(), frame.size());
                extending_run = false;
                continue;
            }
            const std::size_t at = coalesced_.size();
            coalesced_.insert(coalesced_.end(), frame.data(), frame.data() + frame.size());
            if (extending_run)
                gather_.back() =
                    asio::const_buffer{gather_.back().data(), gather_.back().size() + frame.size()};
            else
                gather_.emplace_back(coalesced_.data() + at, frame.size());
            extending_run = true;
        }
    }

    void on_written(Connection& conn, std::error_code ec, std::size_t size) {
        if (coalesced_.capacity() > idle_coalesce_capacity)
            std::vector<std::uint8_t>{}.swap(coalesced_); // an idle connection keeps no backlog
        if (ec)
            return conn.end_at_once(ec);
        if (conn.written(size, false))
            write(conn);
    }

    static constexpr std::size_t coalesce_limit = 1024;
    static constexpr std::size_t idle_coalesce_capacity = 64 * 1024;

    std::optional<stream_type> stream_; // from start()
    std::unique_ptr<std::uint8_t[]> read_buffer_;
    // The write in flight: its buffers, and its small frames copied back to back.
    std::vector<asio::const_buffer> gather_;
    std::vector<std::uint8_t> coalesced_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/io/stream_io.hpp ----

#include <type_traits>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The I/O back end of `Connection` over `Stream`: socket_io for plain sockets (see
/// is_plain_socket), stream_io for every other stream.
template <class Connection, class Stream>
using io_backend = std::conditional_t<is_plain_socket<Stream>::value, socket_io<Connection>,
                                      stream_io<Connection>>;

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/io/backend.hpp ----
// ---- begin wschat/ws/detail/send_queue.hpp ----
// wschat — a connection's send queue: frames queued from any thread, taken and written on the
// connection's strand, bounded against readers too slow for what they are sent.

// ---- begin wschat/ws/detail/spin_lock.hpp ----
// wschat — a lock of one byte, for a connection's send queue.


#include <atomic>
#include <thread>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Guards critical sections a few instructions long (a push onto a vector, a swap of two),
/// where a `std::mutex` would cost more than the section: 40 bytes in every connection,
/// most of an idle connection's send state. A waiter spins briefly, then yields its time
/// slice, so a holder preempted in the section is not spun against for a whole slice.
/// BasicLockable: use it with `std::lock_guard`.
class spin_lock {
public:
    void lock() noexcept {
        while (locked_.exchange(true, std::memory_order_acquire))
            for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins)
                if (spins >= spins_before_yield)
                    std::this_thread::yield();
    }

    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    static constexpr int spins_before_yield = 64;
    std::atomic<bool> locked_{false};
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/spin_lock.hpp ----
// ---- begin wschat/ws/options.hpp ----
// wschat — the server's options: where it listens and the limits that keep it safe.

// ---- begin wschat/ws/compression.hpp ----
// wschat — the seam between a connection and a message compression extension: what the core
// calls, with no compression library behind it. permessage-deflate (<wschat/ws/
// permessage_deflate.hpp>, zlib) implements it.


#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Where `message_compression::send` puts the frames it makes: the connection's send queue.
class frame_sink {
public:
    /// Queues `frame` for the peer.
    virtual void push(shared_frame frame) = 0;

protected:
    ~frame_sink() = default;
};

/// One connection's negotiated compression: inflates what it receives, compresses what it
/// sends. Made by a `compression_negotiator` for each connection that agreed to it.
/// `decompress` is called on the connection's strand only; `send` from any thread.
class message_compression {
public:
    virtual ~message_compression() = default;

    /// Replaces `out` with the decompressed form of a message received compressed (RSV1).
    /// Fails with error::message_too_big as soon as it would exceed `max_size` bytes, and
    /// with error::bad_compressed_data when the payload does not decompress.
    virtual std::error_code decompress(std::string_view payload, std::size_t max_size,
                                       std::string& out) = 0;

    /// Pushes to `queue` what to send for `frame`, a whole text or binary message made by
    /// `make_frame`: a compressed frame (RSV1 set), or `frame` itself when compressing does
    /// not pay (below the extension's size threshold). Thread-safe; when frames depend on
    /// the ones before (a kept compression context), compressing and pushing happen as one
    /// step, so the queue holds them in the order they were compressed. Implementations
    /// compress a frame shared by many connections once for all of them when their
    /// parameters allow it.
    virtual void send(const shared_frame& frame, frame_sink& queue) = 0;
};

/// A server's compression extension: negotiates it in each opening handshake.
///
/// Set one in `server_options::compression` (for permessage-deflate:
/// `ws::permessage_deflate(options)` from <wschat/ws/permessage_deflate.hpp>). Called from
/// any of the server's threads at once: implementations are thread-safe.
class compression_negotiator {
public:
    virtual ~compression_negotiator() = default;

    /// The outcome of one negotiation.
    struct result {
        /// The compression the connection uses; null when the offers were declined (the
        /// connection then goes on uncompressed).
        std::unique_ptr<message_compression> compression;
        /// The element to send in the response's Sec-WebSocket-Extensions (empty when
        /// declined).
        std::string response;
        /// error::bad_extensions when the header does not parse (RFC 6455 §9.1: the
        /// handshake fails, with 400).
        std::error_code error;
    };

    /// Answers the client's Sec-WebSocket-Extensions value `offers` (all its header lines
    /// joined with ", "; empty when it sent none). `frames_may_be_dropped` is true when the
    /// server drops queued frames of slow readers (`overflow_action::drop_oldest`): no frame
    /// may then depend on an earlier one.
    virtual result negotiate(std::string_view offers, bool frames_may_be_dropped) = 0;
};

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/compression.hpp ----

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
// ---- end wschat/ws/options.hpp ----

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The frames waiting for one peer's socket, filled from any thread under a spin lock (see
/// frame_queue for why it allocates neither for an idle peer nor per delivery). Its first
/// `taken_` frames are in the write under way (the socket may hold part of the first); the
/// strand writes them without the lock, so they are never dropped, only written.
///
/// Bounded by `server_options::max_send_queue_bytes`: past it, `overflow_action::close`
/// asks the caller to close the peer (1008) and `drop_oldest` drops the oldest frames not
/// yet taken until it fits.
class send_queue {
public:
    /// What push() did, for the caller to act on outside the lock.
    /// Bit-fields, so that the result travels in one register: three separate flags went
    /// through the stack, and reading them back stalled every delivery.
    struct pushed {
        bool start_flush : 1; ///< the queue was idle: schedule a flush
        bool overflow : 1;    ///< over the bound, to be closed (`overflow_action::close`)
        bool dropped : 1;     ///< over the bound, old frames dropped (a limit hit)
    };

    /// Adds `frame`. `last` (a Close frame or an HTTP answer) closes the queue behind it and
    /// is exempt from the bound, so a close always goes out. Everything else counts, pongs
    /// included: a peer that floods pings and never reads must hit the bound too.
    pushed push(shared_frame&& frame, bool last, const server_options& options) {
        pushed result{false, false, false};
        std::lock_guard<spin_lock> lock{lock_};
        if (closed_)
            return result;
        queued_bytes_ += frame.size();
        frames_.push_back(std::move(frame));
        closed_ = last;
        if (!last && queued_bytes_ > options.max_send_queue_bytes)
            exceed_bound(result, options);
        if (!flushing_)
            flushing_ = result.start_flush = true;
        return result;
    }

    /// Forgets every frame not taken for writing: the peer is being closed as too slow.
    void drop_untaken() {
        std::lock_guard<spin_lock> lock{lock_};
        const auto untaken = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        for (auto frame = untaken; frame != frames_.end(); ++frame)
            queued_bytes_ -= frame->size();
        frames_.erase(untaken, frames_.end());
    }

    /// Takes frames for a write: `take(frames, written_of_front)`, called under the lock,
    /// lays out a write of the frames from the front, the first `written_of_front` bytes
    /// of the first already written, and returns how many it took.
    template <class Take>
    void take(Take&& take) {
        std::lock_guard<spin_lock> lock{lock_};
        taken_ = static_cast<std::uint32_t>(take(std::as_const(frames_), written_of_front_));
    }

    /// What written() found.
    struct progress {
        bool write_again = false;        ///< more is queued and the socket was not full
        bool drained_after_last = false; ///< everything up to the last frame is written
    };

    /// `size` bytes of the taken frames went out (`full`: the socket took no more). Drops
    /// the frames they completed; the rest of the taken ones stay taken while the socket is
    /// full. Unless it says to write again, flushing stops until the next push.
    progress written(std::size_t size, bool full) {
        progress result;
        std::lock_guard<spin_lock> lock{lock_};
        queued_bytes_ -= size;
        written_of_front_ += size;
        std::size_t done = 0;
        while (done < taken_ && written_of_front_ >= frames_[done].size())
            written_of_front_ -= frames_[done++].size();
        frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(done));
        taken_ = full ? taken_ - static_cast<std::uint32_t>(done) : 0;
        const bool more = !frames_.empty();
        flushing_ = more;
        result.write_again = more && !full;
        result.drained_after_last = !more && closed_;
        return result;
    }

    /// The connection has ended: empties the queue, which takes nothing more.
    void close() {
        std::lock_guard<spin_lock> lock{lock_};
        closed_ = true;
        frames_.clear();
        taken_ = 0;
        queued_bytes_ = 0;
    }

    /// Bytes queued and not yet written.
    std::size_t queued_bytes() const {
        std::lock_guard<spin_lock> lock{lock_};
        return queued_bytes_;
    }

private:
    /// Past the bound: drops the oldest frames or asks for the close. Kept out of push(), the
    /// path of every delivery, so that push() stays small enough to be inlined.
    [[gnu::cold]] void exceed_bound(pushed& result, const server_options& options) {
        if (options.slow_reader_action == server_options::overflow_action::drop_oldest) {
            drop_oldest_untaken(options.max_send_queue_bytes);
            result.dropped = true;
        } else {
            result.overflow = true;
        }
    }

    /// Drops the oldest frames not yet taken until the queue fits `max_bytes` again. Called
    /// with the lock held.
    void drop_oldest_untaken(std::size_t max_bytes) {
        const auto first = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        auto last = first;
        while (last != frames_.end() && queued_bytes_ > max_bytes)
            queued_bytes_ -= (last++)->size();
        frames_.erase(first, last);
    }

    frame_queue frames_;
    std::size_t queued_bytes_ = 0;     // of frames_, less what was written of the first
    std::size_t written_of_front_ = 0; // bytes of frames_[0] already written
    std::uint32_t taken_ = 0;          // frames in the write under way
    mutable spin_lock lock_;           // of everything here
    bool flushing_ = false;            // a flush is posted or a write is in flight
    bool closed_ = false; // a Close frame or HTTP answer was queued, or the socket closed
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/send_queue.hpp ----
// ---- begin wschat/ws/detail/strand_pool.hpp ----
// wschat — the strands a server's connections share: a fixed set, each connection bound to
// one of them for its whole life.


#include <asio/strand.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A connection's handlers must never run at the same time, which a strand guarantees;
/// the strand need not be its own. A strand of its own costs every connection an
/// allocation of about 80 bytes (Asio's strand state) and a cache line more to touch on
/// every write: at 10 000 idle connections, 0.8 MB for nothing.
///
/// Connections therefore share `size` strands, the n-th connection taking strand n mod
/// `size`. Handlers of two connections on one strand run one after the other instead of
/// side by side; with many more strands than threads, threads still find work on other
/// strands, as with Asio's own `io_context::strand`, which shares 193.
///
/// Not thread-safe: the server picks strands from its accepting handler only.
template <class Executor>
class strand_pool {
public:
    using strand_type = asio::strand<Executor>;
    static constexpr std::size_t size = 64;

    /// The strand of connection number `n`, made on `executor` the first time it is used.
    /// The reference stays valid as long as the pool.
    strand_type& pick(std::uint64_t n, const Executor& executor) {
        std::optional<strand_type>& slot = strands_[n % size];
        if (!slot)
            slot.emplace(executor);
        return *slot;
    }

    /// The strand `pick(n, …)` returned earlier. Safe from any thread: slots are only ever
    /// added, and the one read was made before whatever asks for it.
    strand_type& at(std::uint64_t n) noexcept { return *strands_[n % size]; }

private:
    std::array<std::optional<strand_type>, size> strands_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/strand_pool.hpp ----
// ---- begin wschat/ws/detail/timekeeping.hpp ----
// wschat — what a server keeps of time: each connection's deadline and signs of life, what is
// due at a sweep, how often the sweep runs and when the next heartbeat goes out.


#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// What a sweep finds due for a connection.
enum class due : std::uint8_t {
    nothing,
    deadline, ///< its handshake or close deadline passed
    silent,   ///< the peer was silent past the heartbeat timeout
    idle,     ///< no message past the idle timeout
};

/// A connection's times: written on its strand, read by the server's sweep (a connection
/// has no timer of its own). An open connection has no deadline and the others no idle
/// timeout, so one number serves as the handshake or close deadline (0: none) until open,
/// and while open as when the peer last sent a message. Beside it: when the peer was last
/// heard from at all. Both are steady-clock ticks, in atomics.
class connection_times {
public:
    using clock = time_source::clock;

    explicit connection_times(clock::time_point now) noexcept
        : last_seen_(time_source::ticks_at(now)) {}

    /// The handshake deadline, then the close deadline: `after` from `now`.
    void set_deadline(clock::time_point now, std::chrono::milliseconds after) noexcept {
        deadline_or_last_message_.store(time_source::ticks_at(now + after),
                                        std::memory_order_relaxed);
    }

    /// The connection opened at `now`: the handshake deadline is over, the idle timeout
    /// counts from here.
    void opened(clock::time_point now) noexcept {
        deadline_or_last_message_.store(time_source::ticks_at(now), std::memory_order_relaxed);
    }

    /// Bytes arrived at `now`: a sign of life.
    void heard(clock::time_point now) noexcept {
        last_seen_.store(time_source::ticks_at(now), std::memory_order_relaxed);
    }

    /// When bytes last arrived.
    clock::time_point last_heard() const noexcept {
        return clock::time_point{clock::duration{last_seen_.load(std::memory_order_relaxed)}};
    }

    /// A message arrived with the bytes last heard: it counts against the idle timeout.
    void message_received() noexcept {
        deadline_or_last_message_.store(last_seen_.load(std::memory_order_relaxed),
                                        std::memory_order_relaxed);
    }

    /// What is due at `now` for a connection that is `open` or not, the first of: the
    /// deadline passed, the peer silent past the heartbeat timeout, no message past the idle
    /// timeout. Reads only atomics.
    due due_at(clock::time_point now, bool open, const server_options& options) const noexcept {
        const clock::rep ticks = time_source::ticks_at(now);
        // A sweep that reads the state before a change and the mark after it may find
        // something due that is not: the connection asks again on its strand, where both are
        // current, so that costs a post and nothing more.
        const clock::rep mark = deadline_or_last_message_.load(std::memory_order_relaxed);
        if (!open)
            return mark != 0 && ticks >= mark ? due::deadline : due::nothing;
        if (options.heartbeat_interval.count() > 0 &&
            ticks - last_seen_.load(std::memory_order_relaxed) >=
                time_source::ticks_of(options.heartbeat_timeout))
            return due::silent;
        if (options.idle_timeout.count() > 0 &&
            ticks - mark >= time_source::ticks_of(options.idle_timeout))
            return due::idle;
        return due::nothing;
    }

private:
    std::atomic<clock::rep> deadline_or_last_message_{0};
    std::atomic<clock::rep> last_seen_;
};

/// How often the server sweeps its connections: as often as the shortest of the heartbeat
/// interval, the idle timeout and a quarter of the handshake and close timeouts (so those
/// deadlines are kept to within a quarter of their length); zero when all are off.
inline std::chrono::milliseconds sweep_period(const server_options& options) {
    std::chrono::milliseconds period{0};
    for (const auto enabled : {options.heartbeat_interval, options.idle_timeout,
                               options.handshake_timeout / 4, options.close_timeout / 4})
        if (enabled.count() > 0 && (period.count() == 0 || enabled < period))
            period = enabled;
    return period;
}

/// When the server pings every open connection next: every `heartbeat_interval` from its
/// start (never when the interval is zero).
class heartbeat_schedule {
public:
    using clock = time_source::clock;

    heartbeat_schedule(clock::time_point start, std::chrono::milliseconds interval) noexcept
        : interval_(interval), next_(start + interval) {}

    /// True when a ping is due at `now`; the next is then due an interval later.
    bool due_at(clock::time_point now) noexcept {
        if (interval_.count() <= 0 || now < next_)
            return false;
        next_ = now + interval_;
        return true;
    }

private:
    std::chrono::milliseconds interval_;
    clock::time_point next_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/timekeeping.hpp ----
// ---- begin wschat/ws/detail/upgrade.hpp ----
// wschat — the server's side of the opening handshake, without I/O: a parsed request, the
// options and the application's decision in; the HTTP answer (a 101 or a refusal) out.

// ---- begin wschat/ws/handshake.hpp ----
// wschat — the WebSocket opening handshake (RFC 6455 §4): what makes a request an upgrade, and
// the server's answer.

// ---- begin wschat/ws/detail/base64.hpp ----
// wschat — base64 (RFC 4648 §4) for the Sec-WebSocket-Key / Sec-WebSocket-Accept headers.


#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// The RFC 4648 §4 alphabet, indexed by 6-bit value.
inline constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks a byte that is not in the alphabet in `base64_values`.
inline constexpr std::uint8_t base64_invalid = 0xFF;

/// Builds the reverse of `base64_alphabet`: byte → 6-bit value, or base64_invalid.
constexpr std::array<std::uint8_t, 256> make_base64_values() noexcept {
    std::array<std::uint8_t, 256> values{};
    for (auto& value : values)
        value = base64_invalid;
    for (std::size_t i = 0; i < base64_alphabet.size(); ++i)
        values[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::uint8_t>(i);
    return values;
}

/// Byte → 6-bit value, or base64_invalid (including for the padding character '=').
inline constexpr std::array<std::uint8_t, 256> base64_values = make_base64_values();

/// Encodes `size` bytes at `data` as padded base64.
inline std::string base64_encode(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    std::string text;
    text.reserve((size + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const std::uint32_t group = std::uint32_t{bytes[i]} << 16 |
                                    std::uint32_t{bytes[i + 1]} << 8 | std::uint32_t{bytes[i + 2]};
        text += base64_alphabet[group >> 18];
        text += base64_alphabet[(group >> 12) & 0x3F];
        text += base64_alphabet[(group >> 6) & 0x3F];
        text += base64_alphabet[group & 0x3F];
    }
    const std::size_t leftover = size - i;
    if (leftover > 0) {
        const std::uint32_t group =
            std::uint32_t{bytes[i]} << 16 | (leftover == 2 ? std::uint32_t{bytes[i + 1]} << 8 : 0U);
        text += base64_alphabet[group >> 18];
        text += base64_alphabet[(group >> 12) & 0x3F];
        text += leftover == 2 ? base64_alphabet[(group >> 6) & 0x3F] : '=';
        text += '=';
    }
    return text;
}

/// The number of bytes `text` decodes to, or std::nullopt when it is not strict base64:
/// the length must be a multiple of 4, '=' may only pad the last group, no whitespace or
/// line breaks, and the unused bits before the padding must be zero (so each byte string
/// has exactly one accepted encoding). Checks without allocating.
inline std::optional<std::size_t> base64_decoded_size(std::string_view text) noexcept {
    if (text.size() % 4 != 0)
        return std::nullopt;
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=')
        padding = text[text.size() - 2] == '=' ? 2 : 1;
    const std::size_t data_chars = text.size() - padding;
    for (std::size_t i = 0; i < data_chars; ++i)
        if (base64_values[static_cast<unsigned char>(text[i])] == base64_invalid)
            return std::nullopt;
    if (padding > 0) {
        // The last data character contributes 4 (one '=') or 2 (two '=') bits that would
        // belong to a missing byte: they must be zero, so "Zg==" is "f" and "Zh==" is invalid.
        const std::uint8_t last = base64_values[static_cast<unsigned char>(text[data_chars - 1])];
        const std::uint8_t unused_bits_mask = padding == 2 ? 0x0F : 0x03;
        if ((last & unused_bits_mask) != 0)
            return std::nullopt;
    }
    return text.size() / 4 * 3 - padding;
}

/// Strict RFC 4648 decode (rules as for base64_decoded_size); std::nullopt when malformed.
inline std::optional<std::string> base64_decode(std::string_view text) {
    const std::optional<std::size_t> size = base64_decoded_size(text);
    if (!size)
        return std::nullopt;
    std::string bytes;
    bytes.reserve(*size);
    std::uint32_t bits = 0;
    unsigned bit_count = 0;
    for (std::size_t i = 0; bytes.size() < *size; ++i) {
        bits = bits << 6 | base64_values[static_cast<unsigned char>(text[i])];
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            bytes += static_cast<char>((bits >> bit_count) & 0xFF);
        }
    }
    return bytes;
}

} // namespace detail
WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/base64.hpp ----
// ---- begin wschat/ws/detail/sha1.hpp ----
// wschat — SHA-1 (FIPS 180-4), used only to compute Sec-WebSocket-Accept.


#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// Rotates a 32-bit word left by `bits` (0 < bits < 32).
constexpr std::uint32_t sha1_rotate_left(std::uint32_t value, unsigned bits) noexcept {
    return (value << bits) | (value >> (32U - bits));
}

/// Runs the SHA-1 compression function on one 64-byte block, updating `state`.
inline void sha1_compress(std::array<std::uint32_t, 5>& state, const std::uint8_t* block) noexcept {
    std::array<std::uint32_t, 80> schedule{};
    for (std::size_t i = 0; i < 16; ++i) {
        const std::uint8_t* word = block + 4 * i;
        schedule[i] = std::uint32_t{word[0]} << 24 | std::uint32_t{word[1]} << 16 |
                      std::uint32_t{word[2]} << 8 | std::uint32_t{word[3]};
    }
    for (std::size_t i = 16; i < 80; ++i)
        schedule[i] = sha1_rotate_left(
            schedule[i - 3] ^ schedule[i - 8] ^ schedule[i - 14] ^ schedule[i - 16], 1);

    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (std::size_t i = 0; i < 80; ++i) {
        std::uint32_t mixed = 0;
        std::uint32_t constant = 0;
        if (i < 20) {
            mixed = (b & c) | (~b & d);
            constant = 0x5A827999;
        } else if (i < 40) {
            mixed = b ^ c ^ d;
            constant = 0x6ED9EBA1;
        } else if (i < 60) {
            mixed = (b & c) | (b & d) | (c & d);
            constant = 0x8F1BBCDC;
        } else {
            mixed = b ^ c ^ d;
            constant = 0xCA62C1D6;
        }
        const std::uint32_t next = sha1_rotate_left(a, 5) + mixed + e + constant + schedule[i];
        e = d;
        d = c;
        c = sha1_rotate_left(b, 30);
        b = a;
        a = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

/// The SHA-1 digest of `size` bytes at `data`.
///
/// SHA-1 is broken for collision resistance; RFC 6455 uses it only to prove that the
/// server understood the handshake, which is the only use wschat makes of it.
inline std::array<std::uint8_t, 20> sha1(const void* data, std::size_t size) noexcept {
    std::array<std::uint32_t, 5> state{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const auto* bytes = static_cast<const std::uint8_t*>(data);

    const std::size_t whole_blocks_size = size - size % 64;
    for (std::size_t offset = 0; offset < whole_blocks_size; offset += 64)
        sha1_compress(state, bytes + offset);

    // The padding (0x80, zeros, 64-bit big-endian bit length) takes one or two final blocks,
    // depending on whether the leftover bytes leave room for the 9 mandatory padding bytes.
    std::array<std::uint8_t, 128> tail{};
    const std::size_t leftover = size - whole_blocks_size;
    if (leftover > 0)
        std::memcpy(tail.data(), bytes + whole_blocks_size, leftover);
    tail[leftover] = 0x80;
    const std::size_t tail_size = leftover + 9 <= 64 ? 64 : 128;
    const std::uint64_t bit_length = static_cast<std::uint64_t>(size) * 8U;
    for (std::size_t i = 0; i < 8; ++i)
        tail[tail_size - 1 - i] = static_cast<std::uint8_t>(bit_length >> (8 * i));
    for (std::size_t offset = 0; offset < tail_size; offset += 64)
        sha1_compress(state, tail.data() + offset);

    std::array<std::uint8_t, 20> digest{};
    for (std::size_t i = 0; i < 5; ++i) {
        digest[4 * i] = static_cast<std::uint8_t>(state[i] >> 24);
        digest[4 * i + 1] = static_cast<std::uint8_t>(state[i] >> 16);
        digest[4 * i + 2] = static_cast<std::uint8_t>(state[i] >> 8);
        digest[4 * i + 3] = static_cast<std::uint8_t>(state[i]);
    }
    return digest;
}

/// The SHA-1 digest of the bytes of `text`.
inline std::array<std::uint8_t, 20> sha1(std::string_view text) noexcept {
    return sha1(text.data(), text.size());
}

} // namespace detail
WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/sha1.hpp ----
// ---- begin wschat/ws/http.hpp ----
// wschat — HTTP/1.1 for the opening handshake and plain requests: request and response heads
// parsed incrementally by one core, responses serialized.


#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// ASCII-only lower-casing: header names and tokens are ASCII, and the C locale must
/// not influence protocol decisions.
constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII comparison, as HTTP header names and tokens require.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/// Builds the RFC 7230 §3.2.6 tchar set: the characters of methods and header names.
constexpr std::array<bool, 256> make_token_chars() noexcept {
    std::array<bool, 256> table{};
    for (unsigned char c = '0'; c <= '9'; ++c)
        table[c] = true;
    for (unsigned char c = 'a'; c <= 'z'; ++c) {
        table[c] = true;
        table[static_cast<unsigned char>(c - 'a' + 'A')] = true;
    }
    for (char c : std::string_view{"!#$%&'*+-.^_`|~"})
        table[static_cast<unsigned char>(c)] = true;
    return table;
}

/// Byte → whether it is a tchar; a table because every header name byte is checked.
inline constexpr std::array<bool, 256> token_chars = make_token_chars();

/// True for a RFC 7230 §3.2.6 tchar.
constexpr bool is_token_char(char c) noexcept {
    return token_chars[static_cast<unsigned char>(c)];
}

/// True for a control character (C0 or DEL); header values may contain none but HTAB.
constexpr bool is_control_char(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7F;
}

/// True for the optional whitespace (OWS) of RFC 7230: space or horizontal tab.
constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

/// `text` without leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back()))
        text.remove_suffix(1);
    return text;
}

/// Calls `visit(element)` for each non-empty element of a comma-separated header value,
/// trimmed of OWS, until `visit` returns true; returns whether it did.
template <class Visitor>
constexpr bool any_list_element(std::string_view list, Visitor&& visit) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && visit(element))
            return true;
        if (comma == std::string_view::npos)
            return false;
        list.remove_prefix(comma + 1);
    }
}

} // namespace detail

/// Decodes `%XX` escapes and `+` (a space in a query string): "a%20b+c" is "a b c";
/// nullopt when an escape is malformed. The result may be any bytes: check it is UTF-8
/// before treating it as text.
inline std::optional<std::string> percent_decode(std::string_view in) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out += ' ';
        } else if (in[i] != '%') {
            out += in[i];
        } else {
            if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0)
                return std::nullopt;
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        }
    }
    return out;
}

namespace detail {
/// The value of `key` in a `k=v<sep>k=v` list (a query string with '&', cookies with ';').
inline std::optional<std::string_view> find_pair(std::string_view list, std::string_view key,
                                                 char separator) {
    while (!list.empty()) {
        const std::size_t end = list.find(separator);
        std::string_view pair = list.substr(0, end);
        list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
        while (!pair.empty() && pair.front() == ' ')
            pair.remove_prefix(1);
        const std::size_t eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == key)
            return pair.substr(eq + 1);
    }
    return std::nullopt;
}

} // namespace detail

/// One HTTP header field, as received or to be sent.
struct http_header {
    std::string name;  ///< the field name, in the case it was sent
    std::string value; ///< the field value without surrounding whitespace
};

/// True when the header value (a comma-separated list) contains `token`, compared
/// case-insensitively, ignoring optional whitespace around elements. An empty token is
/// never found.
inline bool header_has_token(std::string_view value, std::string_view token) noexcept {
    return !token.empty() && detail::any_list_element(value, [token](std::string_view element) {
        return detail::iequals(element, token);
    });
}

namespace detail {

// Header lookups shared by http_request and http_response (and the handshake checks of
// both roles): names compare case-insensitively, as RFC 9110 §5.1 requires.

/// Value of the first header named `name`, or nullopt; the view points into `headers`.
inline std::optional<std::string_view> find_header(const std::vector<http_header>& headers,
                                                   std::string_view name) noexcept {
    for (const http_header& h : headers)
        if (iequals(h.name, name))
            return std::string_view{h.value};
    return std::nullopt;
}

/// How many headers are named `name`.
inline std::size_t header_count(const std::vector<http_header>& headers,
                                std::string_view name) noexcept {
    std::size_t count = 0;
    for (const http_header& h : headers)
        count += iequals(h.name, name) ? 1 : 0;
    return count;
}

/// The values of every header named `name` joined by ", " (see http_request::header_list).
inline std::string join_headers(const std::vector<http_header>& headers, std::string_view name) {
    std::string joined;
    for (const http_header& h : headers) {
        if (!iequals(h.name, name))
            continue;
        if (!joined.empty())
            joined += ", ";
        joined += h.value;
    }
    return joined;
}

/// True when any header named `name` lists `token` (see header_has_token).
inline bool any_header_has_token(const std::vector<http_header>& headers, std::string_view name,
                                 std::string_view token) noexcept {
    for (const http_header& h : headers)
        if (iequals(h.name, name) && header_has_token(h.value, token))
            return true;
    return false;
}

} // namespace detail

/// A parsed HTTP/1.x request head (the opening handshake or a plain HTTP request).
struct http_request {
    std::string method;               ///< e.g. "GET"
    std::string target;               ///< the request-target as sent, e.g. "/chat?room=1"
    int version_major = 1;            ///< the 1 of HTTP/1.1
    int version_minor = 1;            ///< the second 1 of HTTP/1.1
    std::vector<http_header> headers; ///< in arrival order, names as sent

    /// Value of the first header with this name (case-insensitive), or nullopt. The view
    /// stays valid as long as the request is not modified.
    std::optional<std::string_view> header(std::string_view name) const {
        return detail::find_header(headers, name);
    }

    /// All values of headers with this name joined by ", " (list headers may be sent
    /// several times; RFC 7230 §3.2.2 makes that equivalent to one comma-joined header).
    std::string header_list(std::string_view name) const {
        return detail::join_headers(headers, name);
    }

    /// The target before '?': "/chat" for "/chat?room=1".
    std::string_view path() const {
        const std::string_view whole{target};
        return whole.substr(0, whole.find('?'));
    }

    /// The target after the first '?': "room=1" for "/chat?room=1"; empty when none.
    std::string_view query() const {
        const std::string_view whole{target};
        const std::size_t mark = whole.find('?');
        return mark == std::string_view::npos ? std::string_view{} : whole.substr(mark + 1);
    }

    /// The value of query parameter `key`, percent-decoded: "Bob Li" for `name` in
    /// "/chat?name=Bob%20Li"; nullopt when absent or malformed. The first one counts.
    std::optional<std::string> query_param(std::string_view key) const {
        const auto raw = detail::find_pair(query(), key, '&');
        return raw ? percent_decode(*raw) : std::nullopt;
    }

    /// The value of cookie `name` as sent (not decoded), from the first Cookie header that
    /// has it; nullopt when none has. The view stays valid as long as the request is not
    /// modified.
    std::optional<std::string_view> cookie(std::string_view name) const {
        for (const http_header& h : headers)
            if (detail::iequals(h.name, "Cookie"))
                if (const auto value = detail::find_pair(h.value, name, ';'))
                    return value;
        return std::nullopt;
    }
};

/// Where an incremental HTTP head parser (request_parser, response_parser) stands.
enum class http_parse_state {
    incomplete, ///< more bytes are needed
    done,       ///< the head is complete
    failed,     ///< the bytes are not an acceptable head; the parser's error() says why
};

namespace detail {

/// Parses `HTTP/x.y` (one digit each, RFC 9112 §2.3) into `major` and `minor`.
constexpr bool parse_http_version(std::string_view text, int& major, int& minor) noexcept {
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || !is_digit(text[5]) || text[6] != '.' ||
        !is_digit(text[7]))
        return false;
    major = text[5] - '0';
    minor = text[7] - '0';
    return true;
}

/// The machinery shared by request_parser and response_parser: it splits bytes fed in any
/// pieces into lines (CRLF or a bare LF), bounds the head's size and header count, parses
/// the header lines, and hands the first line to the caller's start-line parser. Keeps at
/// most one partial line. Not thread-safe.
class head_reader {
public:
    /// The most header fields accepted in one head; more is error::header_too_large.
    static constexpr std::size_t max_header_count = 100;

    /// A reader failing with error::header_too_large past `max_header_bytes` (start line,
    /// header lines, blank line and line endings counted) and with `malformed` on a line
    /// that does not parse.
    head_reader(std::size_t max_header_bytes, ws::error malformed) noexcept
        : max_header_bytes_{max_header_bytes}, malformed_{malformed} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed; 0 once done or failed. Header lines are appended to `headers`; the
    /// first line goes to `parse_start_line(std::string_view) -> bool` (false: malformed).
    template <class StartLineParser>
    std::size_t feed(const char* data, std::size_t size, std::vector<http_header>& headers,
                     StartLineParser&& parse_start_line) {
        std::size_t pos = 0;
        while (current_ == http_parse_state::incomplete && pos < size) {
            const auto* newline =
                static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
            const std::size_t line_end =
                newline != nullptr ? static_cast<std::size_t>(newline - data) : size;
            const std::size_t taken = line_end - pos + (newline != nullptr ? 1 : 0);
            if (taken > max_header_bytes_ - head_bytes_) {
                fail(ws::error::header_too_large);
                return pos;
            }
            head_bytes_ += taken;
            const std::string_view piece{data + pos, line_end - pos};
            pos += taken;
            if (newline == nullptr) {
                partial_line_.append(piece);
                break;
            }
            // A line wholly inside this feed is parsed where it lies, without a copy.
            std::string_view line = piece;
            if (!partial_line_.empty()) {
                partial_line_.append(piece);
                line = partial_line_;
            }
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            parse_line(line, headers, parse_start_line);
            partial_line_.clear();
        }
        if (current_ != http_parse_state::incomplete)
            std::string{}.swap(partial_line_);
        return pos;
    }

    /// Whether the head is complete, incomplete or rejected.
    http_parse_state current() const noexcept { return current_; }

    /// Why the head was rejected, or an empty error_code.
    std::error_code error() const noexcept { return error_; }

    /// Starts over, for the next head (the caller clears what it parsed).
    void reset() noexcept {
        current_ = http_parse_state::incomplete;
        error_ = {};
        started_ = false;
        partial_line_.clear();
        head_bytes_ = 0;
    }

private:
    /// Marks the parse failed with `e`.
    void fail(ws::error e) noexcept {
        current_ = http_parse_state::failed;
        error_ = make_error_code(e);
    }

    /// Handles one complete line, its line ending removed.
    template <class StartLineParser>
    void parse_line(std::string_view line, std::vector<http_header>& headers,
                    StartLineParser& parse_start_line) {
        if (!started_) {
            // RFC 9112 §2.2 lets a recipient skip blank lines before the start line; a peer
            // that sends one is broken enough to refuse, which keeps the parser simpler.
            started_ = true;
            if (!parse_start_line(line))
                fail(malformed_);
        } else if (line.empty()) {
            current_ = http_parse_state::done;
            // A server keeps the request as long as the connection: no spare capacity.
            headers.shrink_to_fit();
        } else if (headers.size() == max_header_count) {
            fail(ws::error::header_too_large);
        } else if (!parse_header_line(line, headers)) {
            fail(malformed_);
        }
    }

    /// Parses `name ":" OWS value OWS` (RFC 7230 §3.2) and appends it to `headers`.
    static bool parse_header_line(std::string_view line, std::vector<http_header>& headers) {
        // A leading space or tab is obs-fold (a continuation of the previous header), which
        // RFC 7230 §3.2.4 lets a server reject; name/value smuggling hides in it. A client
        // refuses it too: no WebSocket server folds its handshake headers.
        const std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos)
            return false;
        const std::string_view name = line.substr(0, colon);
        for (char c : name)
            if (!is_token_char(c))
                return false;
        const std::string_view value = trim_ows(line.substr(colon + 1));
        for (char c : value)
            if (is_control_char(c) && c != '\t')
                return false;
        if (headers.empty())
            headers.reserve(typical_header_count);
        headers.push_back({std::string{name}, std::string{value}});
        return true;
    }

    /// Room reserved for headers up front: browsers send about a dozen.
    static constexpr std::size_t typical_header_count = 16;

    std::size_t max_header_bytes_;
    ws::error malformed_;        // the error of a line that does not parse
    std::size_t head_bytes_ = 0; // bytes of the head consumed so far
    bool started_ = false;       // whether the start line has been seen
    http_parse_state current_ = http_parse_state::incomplete;
    std::error_code error_;
    std::string partial_line_; // a line split across feeds, without its line feed yet
};

} // namespace detail

/// Incremental HTTP/1.x request-head parser with a hard size bound.
///
/// Feed it bytes as they arrive; it parses each line as soon as its line feed is in (so a
/// malformed request fails early), keeps at most one partial line, and fails with
/// error::header_too_large once the head exceeds `max_header_bytes` or holds more than
/// max_header_count headers, and with error::bad_request on a malformed line. Lines end in
/// CRLF or a bare LF. Not thread-safe.
///
/// ```
/// ws::request_parser parser;
/// std::size_t used = parser.feed(buffer, n);
/// if (parser.current() == ws::request_parser::state::done)
///     handle(parser.request()); // buffer + used .. buffer + n: bytes sent after the head
/// ```
class request_parser {
public:
    /// Where the parser stands; done means request() holds the whole head.
    using state = http_parse_state;

    /// The most header fields accepted in one request; more is error::header_too_large.
    static constexpr std::size_t max_header_count = detail::head_reader::max_header_count;

    /// A parser accepting request heads of at most `max_header_bytes` bytes, counting the
    /// request line, every header line, the blank line and the line endings.
    explicit request_parser(std::size_t max_header_bytes = 8192) noexcept
        : reader_{max_header_bytes, ws::error::bad_request} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed: bytes after the head (such as a first WebSocket frame sent right
    /// behind the request) are left for the caller. Returns 0 once done or failed.
    std::size_t feed(const char* data, std::size_t size) {
        return reader_.feed(data, size, request_.headers,
                            [this](std::string_view line) { return parse_request_line(line); });
    }

    /// Whether the head is complete, incomplete or rejected.
    state current() const noexcept { return reader_.current(); }

    /// error::bad_request or error::header_too_large when failed, else an empty error_code.
    std::error_code error() const noexcept { return reader_.error(); }

    /// The request parsed so far (complete once current() is done).
    const http_request& request() const noexcept { return request_; }

    /// The request parsed so far, for moving its parts out.
    http_request& request() noexcept { return request_; }

    /// Forgets the request, to parse the next one on a keep-alive connection.
    void reset() noexcept {
        reader_.reset();
        request_.method.clear();
        request_.target.clear();
        request_.version_major = 1;
        request_.version_minor = 1;
        request_.headers.clear();
    }

private:
    /// Parses `METHOD SP target SP HTTP/x.y` (RFC 7230 §3.1.1) into request_.
    bool parse_request_line(std::string_view line) {
        const std::size_t method_end = line.find(' ');
        if (method_end == 0 || method_end == std::string_view::npos)
            return false;
        const std::string_view method = line.substr(0, method_end);
        for (char c : method)
            if (!detail::is_token_char(c))
                return false;
        line.remove_prefix(method_end + 1);

        const std::size_t target_end = line.find(' ');
        if (target_end == 0 || target_end == std::string_view::npos)
            return false;
        const std::string_view target = line.substr(0, target_end);
        for (char c : target)
            if (detail::is_control_char(c))
                return false;
        line.remove_prefix(target_end + 1);

        if (!detail::parse_http_version(line, request_.version_major, request_.version_minor))
            return false;
        request_.method.assign(method);
        request_.target.assign(target);
        return true;
    }

    detail::head_reader reader_;
    http_request request_;
};

namespace detail {
/// True for text that can be an IPv4 or IPv6 address (digits, hex, dots, colons): enough
/// to refuse a forwarded "address" that is really an injection attempt.
constexpr bool looks_like_ip_address(std::string_view text) noexcept {
    if (text.empty() || text.size() > 45)
        return false;
    for (const char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != '.' && c != ':')
            return false;
    }
    return true;
}
} // namespace detail

/// The client address a reverse proxy reports for `req`: X-Real-IP, else the last entry of
/// X-Forwarded-For (the one the nearest proxy appended; entries before it came from the
/// client and prove nothing). Believe it only when the request came from a trusted proxy.
inline std::optional<std::string> forwarded_client_address(const http_request& req) {
    if (const auto real_ip = req.header("X-Real-IP")) {
        const std::string_view address = detail::trim_ows(*real_ip);
        if (detail::looks_like_ip_address(address))
            return std::string{address};
    }
    const std::string chain = req.header_list("X-Forwarded-For");
    // rfind gives npos without a comma, and npos + 1 is 0: the whole value.
    const std::string_view nearest =
        detail::trim_ows(std::string_view{chain}.substr(chain.rfind(',') + 1));
    if (detail::looks_like_ip_address(nearest))
        return std::string{nearest};
    return std::nullopt;
}

/// The standard reason phrase for an HTTP status (RFC 9110 §15), or "" when unknown.
inline std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/// An HTTP/1.1 response: status, headers and body; built by a server to send, or parsed by
/// response_parser from what a server sent (the body then stays empty).
struct http_response {
    int status = 200;                 ///< the status code, 100..599
    std::string reason;               ///< empty: reason_phrase(status)
    std::vector<http_header> headers; ///< sent in this order
    std::string body;                 ///< sent after the head

    /// Value of the first header with this name (case-insensitive), or nullopt. The view
    /// stays valid as long as the response is not modified.
    std::optional<std::string_view> header(std::string_view name) const {
        return detail::find_header(headers, name);
    }

    /// All values of headers with this name joined by ", " (see http_request::header_list).
    std::string header_list(std::string_view name) const {
        return detail::join_headers(headers, name);
    }

    /// Replaces the value of the first header with this name (case-insensitive), or adds it.
    void set_header(std::string_view name, std::string_view value) {
        for (http_header& h : headers) {
            if (detail::iequals(h.name, name)) {
                h.value.assign(value);
                return;
            }
        }
        headers.push_back({std::string{name}, std::string{value}});
    }

    /// The status line, the headers, a Content-Length for the body, a blank line and the
    /// body. Content-Length is left out for 1xx, 204 and 304 (RFC 9110 §8.6) and when the
    /// headers already hold one. CR and LF inside names, values and the reason become
    /// spaces, so a value copied from a request cannot inject headers.
    std::string serialize() const {
        std::string out;
        out.reserve(128 + body.size());
        out += "HTTP/1.1 ";
        out += std::to_string(status);
        out += ' ';
        append_safe(out, reason.empty() ? reason_phrase(status) : std::string_view{reason});
        out += "\r\n";
        bool has_content_length = false;
        for (const http_header& h : headers) {
            has_content_length = has_content_length || detail::iequals(h.name, "Content-Length");
            append_safe(out, h.name);
            out += ": ";
            append_safe(out, h.value);
            out += "\r\n";
        }
        const bool body_allowed = status >= 200 && status != 204 && status != 304;
        if (body_allowed && !has_content_length) {
            out += "Content-Length: ";
            out += std::to_string(body.size());
            out += "\r\n";
        }
        out += "\r\n";
        out += body;
        return out;
    }

private:
    /// Appends `text` with CR and LF replaced by spaces.
    static void append_safe(std::string& out, std::string_view text) {
        for (char c : text)
            out += c == '\r' || c == '\n' ? ' ' : c;
    }
};

/// Incremental HTTP/1.x response-head parser with a hard size bound: what a client reads
/// after sending its opening handshake.
///
/// The same machinery as request_parser: each line is parsed as soon as its line feed is
/// in, at most one partial line is kept, lines end in CRLF or a bare LF, and the head fails
/// with error::header_too_large past `max_header_bytes` or max_header_count headers, and
/// with error::bad_response on a malformed status line (anything but
/// `HTTP/1.x SP 3-digit-status [SP reason]`, a status outside 100..599) or header line.
/// The body is not read: feed() stops after the head, because a 101 is followed by frames,
/// and an error body is the caller's to read or not. Not thread-safe.
///
/// ```
/// ws::response_parser parser;
/// std::size_t used = parser.feed(buffer, n);
/// if (parser.current() == ws::response_parser::state::done)
///     check(parser.response()); // buffer + used .. buffer + n: frames already sent
/// ```
class response_parser {
public:
    /// Where the parser stands; done means response() holds the whole head.
    using state = http_parse_state;

    /// The most header fields accepted in one response; more is error::header_too_large.
    static constexpr std::size_t max_header_count = detail::head_reader::max_header_count;

    /// A parser accepting response heads of at most `max_header_bytes` bytes, counting the
    /// status line, every header line, the blank line and the line endings. The default
    /// leaves a server's handshake answer ample room while bounding what a hostile one
    /// can make the client buffer.
    explicit response_parser(std::size_t max_header_bytes = 8192) noexcept
        : reader_{max_header_bytes, ws::error::bad_response} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed: bytes after the head (WebSocket frames the server sent right
    /// behind its 101, or an error body) are left for the caller. Returns 0 once done or
    /// failed.
    std::size_t feed(const char* data, std::size_t size) {
        return reader_.feed(data, size, response_.headers,
                            [this](std::string_view line) { return parse_status_line(line); });
    }

    /// Whether the head is complete, incomplete or rejected.
    state current() const noexcept { return reader_.current(); }

    /// error::bad_response or error::header_too_large when failed, else an empty error_code.
    std::error_code error() const noexcept { return reader_.error(); }

    /// The response parsed so far (complete once current() is done): status, the reason
    /// as sent, headers in arrival order with names as sent; the body stays empty.
    const http_response& response() const noexcept { return response_; }

    /// The response parsed so far, for moving its parts out.
    http_response& response() noexcept { return response_; }

    /// Forgets the response, to parse another one (after an interim 1xx response, or on a
    /// new connection).
    void reset() noexcept {
        reader_.reset();
        response_.status = 200;
        response_.reason.clear();
        response_.headers.clear();
        response_.body.clear();
    }

private:
    /// Parses `HTTP/1.x SP status SP reason` (RFC 9112 §4) into response_. The reason (and
    /// the space before it, which real servers sometimes leave out) is optional.
    bool parse_status_line(std::string_view line) {
        int major = 0;
        int minor = 0;
        if (line.size() < 12 || !detail::parse_http_version(line.substr(0, 8), major, minor) ||
            major != 1 || line[8] != ' ')
            return false;
        int status = 0;
        for (char c : line.substr(9, 3)) {
            if (c < '0' || c > '9')
                return false;
            status = status * 10 + (c - '0');
        }
        if (status < 100 || status > 599)
            return false;
        std::string_view reason = line.substr(12);
        if (!reason.empty()) {
            if (reason.front() != ' ')
                return false;
            reason.remove_prefix(1);
        }
        for (char c : reason)
            if (detail::is_control_char(c) && c != '\t')
                return false;
        response_.status = status;
        response_.reason.assign(reason);
        return true;
    }

    detail::head_reader reader_;
    http_response response_;
};

/// A failure response with `message` as a text/plain body and `Connection: close`. For 426
/// it adds `Sec-WebSocket-Version: 13` (RFC 6455 §4.4) and `Upgrade: websocket`, and the
/// Connection header also lists `Upgrade`, as RFC 9110 §7.8 requires next to Upgrade.
inline http_response make_error_response(int status, std::string_view message) {
    http_response response;
    response.status = status;
    response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    if (status == 426) {
        response.headers.push_back({"Connection", "Upgrade, close"});
        response.headers.push_back({"Upgrade", "websocket"});
        response.headers.push_back({"Sec-WebSocket-Version", "13"});
    } else {
        response.headers.push_back({"Connection", "close"});
    }
    response.body.assign(message);
    return response;
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/http.hpp ----

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {
/// The GUID that RFC 6455 §1.3 appends to the client key before hashing.
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
} // namespace detail

/// True when the request asks for a WebSocket (an Upgrade header containing the token
/// "websocket"). A request for which this is false is plain HTTP and goes to the on_http
/// handler; one for which it is true goes through validate_upgrade().
inline bool is_websocket_request(const http_request& req) noexcept {
    return detail::any_header_has_token(req.headers, "Upgrade", "websocket");
}

/// Checks RFC 6455 §4.2.1: GET, HTTP/1.1 or later, Host, `Upgrade: websocket`, Connection
/// containing `upgrade`, exactly one Sec-WebSocket-Key that is the strict base64 of 16
/// bytes, and `Sec-WebSocket-Version: 13`. Returns the first failure (error::not_get,
/// bad_http_version, missing_host, missing_upgrade, missing_connection_upgrade, bad_key,
/// bad_version; answer it with http_status_for()) or an empty error_code.
inline std::error_code validate_upgrade(const http_request& req) noexcept {
    if (req.method != "GET")
        return error::not_get;
    if (req.version_major < 1 || (req.version_major == 1 && req.version_minor < 1))
        return error::bad_http_version;
    if (!req.header("Host"))
        return error::missing_host;
    if (!is_websocket_request(req))
        return error::missing_upgrade;
    if (!detail::any_header_has_token(req.headers, "Connection", "upgrade"))
        return error::missing_connection_upgrade;

    const std::optional<std::string_view> key = req.header("Sec-WebSocket-Key");
    if (detail::header_count(req.headers, "Sec-WebSocket-Key") != 1 ||
        detail::base64_decoded_size(*key) != std::optional<std::size_t>{16})
        return error::bad_key;

    if (req.header("Sec-WebSocket-Version") != std::optional<std::string_view>{"13"})
        return error::bad_version;
    return {};
}

/// The Sec-WebSocket-Accept value for a client key: base64(SHA-1(key + GUID)).
///
/// accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (RFC 6455 §1.3).
inline std::string accept_key(std::string_view client_key) {
    std::string keyed{client_key};
    keyed += detail::websocket_guid;
    const auto digest = detail::sha1(keyed);
    return detail::base64_encode(digest.data(), digest.size());
}

/// The Sec-WebSocket-Protocol tokens the client offered, in order (empty when none). The
/// views point into `req`.
inline std::vector<std::string_view> requested_subprotocols(const http_request& req) {
    std::vector<std::string_view> protocols;
    for (const http_header& h : req.headers) {
        if (!detail::iequals(h.name, "Sec-WebSocket-Protocol"))
            continue;
        detail::any_list_element(h.value, [&protocols](std::string_view element) {
            protocols.push_back(element);
            return false;
        });
    }
    return protocols;
}

/// The 101 Switching Protocols answer to a request that passed validate_upgrade(): Upgrade,
/// Connection, Sec-WebSocket-Accept, and Sec-WebSocket-Protocol when `subprotocol` is not
/// empty (it should be one of requested_subprotocols(req)).
inline http_response make_upgrade_response(const http_request& req,
                                           std::string_view subprotocol = {}) {
    http_response response;
    response.status = 101;
    response.headers.push_back({"Upgrade", "websocket"});
    response.headers.push_back({"Connection", "Upgrade"});
    response.headers.push_back(
        {"Sec-WebSocket-Accept", accept_key(req.header("Sec-WebSocket-Key").value_or(""))});
    if (!subprotocol.empty())
        response.headers.push_back({"Sec-WebSocket-Protocol", std::string{subprotocol}});
    return response;
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/handshake.hpp ----
// ---- begin wschat/ws/upgrade_decision.hpp ----
// wschat — what an application answers to an upgrade request (`server::on_upgrade`).


#include <any>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// What the application decides about an upgrade request in `on_upgrade`.
struct upgrade_decision {
    /// Accept (the default), optionally selecting one of the client's subprotocols.
    void accept(std::string_view chosen_subprotocol = {}) {
        status = 101;
        subprotocol = std::string{chosen_subprotocol};
    }
    /// Refuse with an HTTP status (401, 403, 503, …) and a short human-readable reason.
    void reject(int http_status, std::string_view why) {
        status = http_status;
        reason = std::string{why};
    }
    /// True while the decision is to accept (status 101).
    bool accepted() const noexcept { return status == 101; }

    /// The client's address, filled in by the server before `on_upgrade` runs: the peer's
    /// own or, behind a proxy listed in `server_options::trusted_proxies`, the client address
    /// the proxy names. Lets an application refuse or rate addresses of its own choosing.
    std::string remote_address;

    /// The HTTP status of the answer: 101 to accept, anything else refuses (see `reject`).
    int status = 101;
    std::string subprotocol; ///< pre-filled with the server's choice from its options
    /// The reason sent with a refusal, as the response's body.
    std::string reason;
    /// Anything the application wants to keep with the connection (a user name, an id, a
    /// session): it becomes `connection::user_data()` when the upgrade is accepted.
    std::any user_data;
};

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/upgrade_decision.hpp ----

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The application's part in the negotiation (the server implements it with its handlers).
class upgrade_decider {
public:
    /// Answers a plain HTTP request (one that asks for no upgrade).
    virtual void answer_http(const http_request& request, http_response& response) = 0;
    /// Accepts or refuses a valid upgrade request, and may choose the subprotocol.
    virtual void decide_upgrade(const http_request& request, upgrade_decision& decision) = 0;

protected:
    ~upgrade_decider() = default;
};

/// What the server answers to one request: the result of negotiate_upgrade().
struct upgrade_answer {
    /// True when the connection opens: `response` is the 101, and `decision` holds the
    /// subprotocol and the user data. Otherwise `response` is sent and the connection closes.
    bool opens = false;
    http_response response;
    /// A refusal by a check or a limit: why (a limit hit, and the connection's
    /// `close_info::error`). Empty for a 101, a plain HTTP answer or the application's refusal.
    std::error_code refused_for;
    upgrade_decision decision;
    /// The compression extension agreed on (`server_options::compression`), or null.
    std::unique_ptr<message_compression> compression;
};

/// The refusal of a request that fails a check or a limit (`why`): its HTTP status
/// (`http_status_for`) with the error's message as the body.
inline upgrade_answer refusal(std::error_code why) {
    upgrade_answer answer;
    answer.response = make_error_response(http_status_for(why), why.message());
    answer.refused_for = why;
    return answer;
}

/// The first of `ours` (the server's subprotocols, in its order of preference) that the
/// client offers, or empty.
inline std::string select_subprotocol(const http_request& req,
                                      const std::vector<std::string>& ours) {
    const auto wanted = requested_subprotocols(req);
    for (const std::string& mine : ours)
        for (std::string_view theirs : wanted)
            if (theirs == mine)
                return mine;
    return {};
}

/// True when the client offered `subprotocol`.
inline bool offered(const http_request& req, std::string_view subprotocol) {
    for (std::string_view theirs : requested_subprotocols(req))
        if (theirs == subprotocol)
            return true;
    return false;
}

/// The server's answer to the complete request `req` from `remote_address` (the client's,
/// after any trusted proxy). In order: a peer over a connection limit (`over_limit`) gets
/// 503 whatever it asked; a plain HTTP request gets the decider's answer, with `Connection:
/// close`; an invalid upgrade its check's status, as does a malformed Sec-WebSocket-Extensions
/// when the server negotiates compression (RFC 6455 §9.1); a valid one the decider's refusal,
/// or a 500 when the decider chose a subprotocol the client did not offer, or the 101 (with
/// the agreed extension, if any).
inline upgrade_answer negotiate_upgrade(const http_request& req, std::string_view remote_address,
                                        bool over_limit, const server_options& options,
                                        upgrade_decider& decider) {
    if (over_limit)
        return refusal(error::server_busy);
    upgrade_answer answer;
    if (!is_websocket_request(req)) {
        decider.answer_http(req, answer.response);
        answer.response.set_header("Connection", "close");
        return answer;
    }
    if (const std::error_code invalid = validate_upgrade(req))
        return refusal(invalid);
    compression_negotiator::result extension;
    if (options.compression) {
        extension = options.compression->negotiate(
            req.header_list("Sec-WebSocket-Extensions"),
            options.slow_reader_action == server_options::overflow_action::drop_oldest);
        if (extension.error)
            return refusal(extension.error);
    }
    upgrade_decision& decision = answer.decision;
    decision.remote_address = std::string{remote_address};
    decision.subprotocol = select_subprotocol(req, options.subprotocols);
    decider.decide_upgrade(req, decision);
    if (!decision.accepted())
        answer.response = make_error_response(decision.status, decision.reason);
    else if (!decision.subprotocol.empty() && !offered(req, decision.subprotocol))
        answer.response = make_error_response(500, "server chose a subprotocol not offered");
    else {
        answer.response = make_upgrade_response(req, decision.subprotocol);
        if (extension.compression) {
            answer.response.set_header("Sec-WebSocket-Extensions", extension.response);
            answer.compression = std::move(extension.compression);
        }
        answer.opens = true;
    }
    return answer;
}

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/upgrade.hpp ----
// ---- begin wschat/ws/limits.hpp ----
// wschat — the limits a server enforces, and counters of how often each was hit.


#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Each limit of `server_options` that a peer can run into, with what the server does to a
/// peer that hits it (an HTTP status, a close code, or "dropped": the connection ends
/// without a Close frame).
enum class limit : std::uint8_t {
    header_size,    ///< `max_header_bytes`: 431
    handshake_time, ///< `handshake_timeout`: dropped
    message_size,   ///< `max_message_size`: close 1009
    send_queue,     ///< `max_send_queue_bytes`: close 1008, or oldest frames dropped
    message_rate,   ///< `max_messages_per_second`: close 1008, or message dropped
    heartbeat,      ///< `heartbeat_timeout`: dropped
    idle,           ///< `idle_timeout`: close 1001
    connections,    ///< `max_connections` or `max_connections_per_address`: 503
    origin,         ///< `allowed_origins`: 403 (keep last: it sizes the counters)
};

/// The limit an error stands for, if it stands for one: `limit::message_size` for
/// `error::message_too_big`; nullopt for a protocol error, which no option bounds.
constexpr std::optional<limit> limit_for(error e) noexcept {
    switch (e) {
    case error::header_too_large:
        return limit::header_size;
    case error::handshake_timeout:
        return limit::handshake_time;
    case error::message_too_big:
        return limit::message_size;
    case error::send_queue_full:
        return limit::send_queue;
    case error::rate_limited:
        return limit::message_rate;
    case error::heartbeat_timeout:
        return limit::heartbeat;
    case error::idle_timeout:
        return limit::idle;
    case error::server_busy:
        return limit::connections;
    case error::origin_not_allowed:
        return limit::origin;
    default:
        return std::nullopt;
    }
}

/// How many times each limit was hit since the server started.
///
/// Thread safety: every member may be called from any thread at any time. Each count is an
/// atomic updated and read with relaxed ordering: a read is a recent value, and counts read
/// one after the other are not a consistent snapshot.
///
/// A server keeps one and counts in it the limits its peers run into; read it with
/// `server::limit_hits(limit)`.
///
/// ```cpp
/// ws::limit_counters hits;
/// hits.add(ws::error::send_queue_full);       // counted as limit::send_queue
/// hits.add(ws::error::unmasked_frame);        // a protocol error: not counted
/// std::uint64_t n = hits[ws::limit::send_queue]; // 1
/// ```
class limit_counters {
public:
    /// Counts one hit of `which`.
    void add(limit which) noexcept {
        counts_[static_cast<std::size_t>(which)].fetch_add(1, std::memory_order_relaxed);
    }
    /// Counts `ec` when it is a wschat error that stands for a limit (see limit_for); other
    /// errors are ignored.
    void add(std::error_code ec) noexcept {
        if (ec.category() != error_category())
            return;
        if (const auto which = limit_for(static_cast<error>(ec.value())))
            add(*which);
    }
    /// How many times `which` was hit so far; 0 until it is.
    std::uint64_t operator[](limit which) const noexcept {
        return counts_[static_cast<std::size_t>(which)].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(limit::origin) + 1> counts_{};
};

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/limits.hpp ----
// ---- begin wschat/ws/message.hpp ----
// wschat — a message received from a peer.


#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A message received from a peer: its type and its whole (reassembled) payload.
///
/// `data` points into the connection's buffers and is valid only during the handler call
/// that receives it; copy it to keep it.
///
/// ```cpp
/// server.on_message([](const auto& conn, const ws::message& msg) {
///     if (msg.is_text())
///         log(std::string{msg.data}); // a copy outlives the handler call
/// });
/// ```
struct message {
    /// opcode::text or opcode::binary; a text message's data is valid UTF-8 (checked before
    /// delivery).
    opcode type = opcode::text;
    /// The payload of every frame of the message, unmasked, in order; may be empty.
    std::string_view data;

    /// True for a text message.
    bool is_text() const noexcept { return type == opcode::text; }
    /// True for a binary message.
    bool is_binary() const noexcept { return type == opcode::binary; }
};

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/message.hpp ----
// ---- begin wschat/ws/session.hpp ----
// wschat — the WebSocket protocol of one open connection, for either end, without I/O.

// ---- begin wschat/ws/detail/mask_keys.hpp ----
// wschat — the masking keys of a client's frames, from the operating system's generator.

// ---- begin wschat/ws/random.hpp ----
// wschat — random bytes from the operating system's generator, for keys, nonces and tokens.


#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

#include <sys/random.h>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Fills `size` bytes at `out` from the kernel's generator (getrandom), which is
/// unpredictable: what a masking key, a resume token or an epoch needs, and what a seeded
/// engine such as std::mt19937 is not (its state can be rebuilt from a few hundred outputs).
/// Blocks only before the kernel's generator is first seeded, early at boot. Throws
/// std::system_error if the kernel refuses. Safe to call from any thread.
inline void random_bytes(void* out, std::size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t filled = 0;
    while (filled < size) {
        const ssize_t got = ::getrandom(bytes + filled, size - filled, 0);
        if (got < 0 && errno != EINTR)
            throw std::system_error{errno, std::system_category(), "getrandom"};
        if (got > 0)
            filled += static_cast<std::size_t>(got);
    }
}

/// `size` random bytes (see random_bytes) written as 2 × `size` lowercase hex digits: a
/// token or an identifier that is safe in JSON, URLs and logs.
inline std::string random_hex(std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string bytes(size, '\0');
    random_bytes(bytes.data(), size);
    std::string hex;
    hex.reserve(2 * size);
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        hex += digits[b >> 4];
        hex += digits[b & 0xF];
    }
    return hex;
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/random.hpp ----

#include <array>
#include <cstddef>
#include <cstdint>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A fresh 32-bit masking key. RFC 6455 §10.3 asks that a script in a browser cannot predict
/// the keys of the frames its client sends, lest it choose the bytes a proxy in between
/// reads; the kernel's generator (ws::random_bytes) gives that, and drawing 64 keys per call keeps
/// it off the path of most frames. Per thread: safe to call from any thread.
inline std::uint32_t next_mask_key() {
    struct pool {
        std::array<std::uint32_t, 64> keys;
        std::size_t next = 64; // all used: fill on the next call
    };
    thread_local pool here;
    if (here.next == here.keys.size()) {
        random_bytes(here.keys.data(), sizeof here.keys);
        here.next = 0;
    }
    return here.keys[here.next++];
}

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/mask_keys.hpp ----
// ---- begin wschat/ws/detail/rate_limiter.hpp ----
// wschat — a message rate limit kept in one number.


#include <algorithm>
#include <chrono>
#include <cstddef>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A token bucket of `rate` messages per second with bursts of up to `burst`, kept as one
/// time stamp (the generic cell rate algorithm): each message moves the time at which the
/// bucket would be full again one interval later; a message that would move it more than
/// a burst's worth ahead of now is refused. 8 bytes per connection, no timer.
class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    /// True when a message arriving at `now` is within the limit (and counts it); always
    /// true when `rate` is 0 or less.
    bool admit(clock::time_point now, double rate, std::size_t burst) noexcept {
        if (rate <= 0)
            return true;
        const auto interval = static_cast<clock::rep>(
            static_cast<double>(clock::duration{std::chrono::seconds{1}}.count()) / rate);
        const auto allowance = static_cast<clock::rep>(std::max<std::size_t>(burst, 1) - 1);
        const clock::rep ticks = now.time_since_epoch().count();
        const clock::rep full_at = std::max(full_at_, ticks);
        if (full_at - ticks > allowance * interval)
            return false;
        full_at_ = full_at + interval;
        return true;
    }

private:
    clock::rep full_at_ = 0; // when the bucket would be full again, in ticks
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/rate_limiter.hpp ----

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Decompresses a message received compressed into this thread's buffer (`message` views
/// it until the next call on this thread) and validates text; the error that fails the
/// connection otherwise. Not a template, so that it is compiled once whatever the sinks.
inline std::error_code decompress_message(message_compression& compression, opcode op,
                                          std::string_view payload, std::size_t max_size,
                                          std::string_view& message) {
    // One buffer per thread, as only one message is inflated at a time; a large message's
    // capacity is given back at the next one, so that it is not held for good.
    constexpr std::size_t kept_capacity = 64 * 1024;
    thread_local std::string inflated;
    if (inflated.capacity() > kept_capacity)
        std::string{}.swap(inflated);
    if (const std::error_code ec = compression.decompress(payload, max_size, inflated))
        return ec;
    if (op == opcode::text && !is_valid_utf8(inflated))
        return error::invalid_utf8;
    message = inflated;
    return {};
}

} // namespace detail

/// What a session enforces on what it receives. One copy serves every session of an
/// endpoint (sessions are given it with each call rather than keeping one).
struct session_limits {
    /// Largest message, in payload bytes over all its frames: past it the session fails
    /// with `error::message_too_big` (1009).
    std::uint64_t max_message_size = 1024 * 1024;
    /// Messages per second accepted with bursts of `message_burst`; 0 or less: no limit.
    double max_messages_per_second = 0;
    /// How many messages may come at once before the rate applies.
    std::size_t message_burst = 1;
    /// Over the rate: true drops the message (the sender stays), false fails the session
    /// with `error::rate_limited` (1008).
    bool drop_over_rate = false;
};

/// The protocol state machine of one open WebSocket connection (RFC 6455 §5–7), for the
/// server's end (`role::server`) or the client's (`role::client`).
///
/// Sans-I/O, after Python `websockets`' Protocol: bytes go in through `receive`, and what
/// they mean comes out as calls on a sink, which the caller (a connection) turns into
/// I/O. It parses and validates frames (masking by role, UTF-8, sizes), reassembles
/// messages, answers pings, enforces the message rate, and runs the closing handshake.
/// It owns no socket, no HTTP and no clock: time comes in with each `receive`.
///
/// A sink provides:
///
/// - `const session_limits& limits() const`: the limits, read when the session needs them.
/// - `void message(opcode op, std::string_view payload)`: a whole text or binary message
///   passed every check (valid during the call).
/// - `void send(shared_frame frame)`: a frame is to be sent (a pong).
/// - `void send_close(shared_frame frame, std::uint16_t code, std::string_view reason,
///   std::error_code why)`: the Close frame is to be sent, the last frame of the connection;
///   `code` and `reason` are those of the handshake (the peer's when it closed first), `why`
///   the error that caused it, if any.
/// - `void limit_hit(std::error_code ec)`: the peer broke a limit or the protocol (for
///   counting; a close follows unless the message was only dropped).
/// - `void closed()`: the closing handshake is complete (the peer answered our Close).
///
/// Not thread-safe: one session is driven by one thread at a time (a connection's strand).
template <role Role>
class session {
public:
    /// A session under `limits` (the message size is taken now, the rest at each call from
    /// the sink).
    explicit session(const session_limits& limits) noexcept
        : parser_(Role, limits.max_message_size) {}

    /// Handles `size` bytes received at `now` (unmasked in place). Ignored once the peer's
    /// Close has been read or the session failed.
    template <class Sink>
    void receive(std::uint8_t* bytes, std::size_t size, std::chrono::steady_clock::time_point now,
                 Sink& sink) {
        if (parser_.done())
            return;
        parser_events<Sink> events{*this, sink, now};
        parser_.feed(bytes, size, events);
    }

    /// Starts the closing handshake with `code` and `reason` (`why`: the error behind it,
    /// if any). Does nothing when a Close was sent already.
    template <class Sink>
    void close(std::uint16_t code, std::string_view reason, std::error_code why, Sink& sink) {
        if (close_sent_)
            return;
        send_close(code, reason, why, sink);
    }

    /// Fails the connection for `ec` (a ws::error): counts it and closes with the code RFC
    /// 6455 gives it (`close_code_for`).
    template <class Sink>
    void fail(std::error_code ec, Sink& sink) {
        if (close_sent_)
            return;
        sink.limit_hit(ec);
        send_close(static_cast<std::uint16_t>(close_code_for(ec)), ec.message(), ec, sink);
    }

    /// True once our Close frame was handed to the sink.
    bool close_sent() const noexcept { return close_sent_; }
    /// True once the peer's Close frame was read.
    bool close_received() const noexcept { return close_received_; }

    /// Frees the parser's reassembly storage unless a message is partial.
    void release_memory() noexcept { parser_.release_memory(); }

    /// Takes the compression extension negotiated in the handshake: the messages the peer
    /// sends compressed (RSV1) are decompressed with it. Without one (the default) RSV1 is a
    /// protocol error. The size limit applies to the decompressed message, enforced while it
    /// is produced (1009); a stream that does not decompress fails with 1007, and so does
    /// compressed text that is not UTF-8.
    void use_compression(std::unique_ptr<message_compression> compression) noexcept {
        compression_ = std::move(compression);
        parser_.allow_compressed(compression_ != nullptr);
    }
    /// The compression extension in use (for what is sent), or null.
    message_compression* compression() const noexcept { return compression_.get(); }

private:
    template <class Sink>
    struct parser_events {
        session& self;
        Sink& sink;
        std::chrono::steady_clock::time_point now;

        void on_message(opcode op, std::string_view payload) {
            if (admit())
                sink.message(op, payload);
        }
        void on_compressed_message(opcode op, std::string_view payload) {
            if (!admit())
                return;
            std::string_view message;
            const auto max_size = static_cast<std::size_t>(sink.limits().max_message_size);
            if (const std::error_code ec =
                    detail::decompress_message(*self.compression_, op, payload, max_size, message))
                return self.fail(ec, sink);
            sink.message(op, message);
        }
        /// Whether a message that arrived now is taken: not after our Close (the peer may
        /// still send data, which RFC 6455 §1.4 lets us discard), and within the rate.
        bool admit() {
            if (self.close_sent_)
                return false;
            const session_limits& limits = sink.limits();
            if (self.rate_.admit(now, limits.max_messages_per_second, limits.message_burst))
                return true;
            if (limits.drop_over_rate)
                sink.limit_hit(error::rate_limited);
            else
                self.fail(error::rate_limited, sink);
            return false;
        }
        void on_ping(std::string_view payload) {
            if (!self.close_sent_)
                sink.send(control_frame(opcode::pong, payload));
        }
        void on_pong(std::string_view) {} // its arrival already counted as a sign of life
        void on_close(std::uint16_t code, std::string_view reason) {
            self.close_received_ = true;
            if (self.close_sent_)
                return sink.closed(); // the answer to our Close: the handshake is complete
            // Echo the code (RFC 6455 §5.5.1); a Close without a code is answered with none.
            self.send_close(code, reason, {}, sink, false);
        }
        void on_error(std::error_code ec) { self.fail(ec, sink); }
    };

    /// Sends the Close frame: with `reason` when we close, without when we echo the peer's
    /// (whose code and reason the sink still learns, as the handshake's).
    template <class Sink>
    void send_close(std::uint16_t code, std::string_view reason, std::error_code why, Sink& sink,
                    bool with_reason = true) {
        close_sent_ = true;
        sink.send_close(
            control_frame(opcode::close, close_payload(code, with_reason ? reason : "")), code,
            reason, why);
    }

    /// A control frame as this end sends it: masked with a fresh key from a client.
    static shared_frame control_frame(opcode op, std::string_view payload) {
        if constexpr (Role == role::server) {
            return make_frame(op, payload);
        } else {
            const std::uint32_t bits = detail::next_mask_key();
            const mask_key key{
                static_cast<std::uint8_t>(bits >> 24), static_cast<std::uint8_t>(bits >> 16),
                static_cast<std::uint8_t>(bits >> 8), static_cast<std::uint8_t>(bits)};
            return shared_frame::copy_of(encode_masked_frame(op, payload, key));
        }
    }

    message_parser parser_;
    detail::rate_limiter rate_;
    std::unique_ptr<message_compression> compression_;
    bool close_sent_ = false;
    bool close_received_ = false;
};

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/session.hpp ----

#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// How a connection ended, as reported to `on_close`.
struct close_info {
    /// The close code of the handshake: the peer's when it closed first, ours when we did;
    /// 1006 (abnormal) when the connection ended without a Close frame.
    std::uint16_t code = static_cast<std::uint16_t>(close_code::abnormal);
    /// The reason text that went with `code` (may be empty).
    std::string reason;
    /// Why the connection ended when it was not a clean close handshake: a protocol error,
    /// `error::heartbeat_timeout`, `error::send_queue_full`, a network error, …
    std::error_code error;
};

template <class Transport>
class connection;

namespace detail {
struct connection_access;

/// The server registry's bookkeeping of a connection, kept in it (under the registry's lock).
struct registry_entry {
    std::uint32_t slot = 0; // its place in the registry
    // Counted under its remote address for `max_connections_per_address` (a trusted proxy's
    // own connection is not: its clients are).
    bool counted_per_address = false;
};

/// What a connection reports to its owner (the server). An interface rather than a
/// template parameter so that this layer does not depend on the one above it.
template <class Transport>
class connection_owner : public upgrade_decider {
public:
    using connection_ptr = std::shared_ptr<connection<Transport>>;
    virtual void opened(const connection_ptr& conn) = 0;
    virtual void received(const connection_ptr& conn, const message& msg) = 0;
    /// Called once per connection when its socket is closed; `was_open` tells whether
    /// `opened` was called for it (only then is the application's on_close due).
    virtual void finished(const connection_ptr& conn, const close_info& info, bool was_open) = 0;
    /// A peer ran into one of the server's limits (`ws::limit_for(ec)` names which).
    virtual void limit_hit(std::error_code ec) = 0;
    /// A connection through a trusted proxy has named its client (now its remote address):
    /// counts it against the per-address limit under that address; false when that address
    /// is over the limit.
    virtual bool admit_forwarded_client(const connection_ptr& conn) = 0;

    // What connections read of their owner, which outlives them.
    const Transport& transport() const noexcept { return transport_; }
    const server_options& options() const noexcept { return options_; }
    /// What the sessions of the owner's connections enforce.
    const session_limits& limits() const noexcept { return limits_; }
    /// Where the owner and its connections read the time.
    const time_source& time() const noexcept { return time_; }
    /// Where the owner's plain sockets wait to be readable or writable (null for others).
    readiness_set<connection<Transport>>* readiness() const noexcept { return readiness_.get(); }
    /// The strand of connection number `id`, which the owner picked before making it.
    auto& strand_of(std::uint64_t id) noexcept { return strands_.at(id); }

protected:
    /// `transport` and `options` must live as long as the owner (the derived class's own
    /// members do).
    connection_owner(const Transport& transport, const server_options& options,
                     std::shared_ptr<readiness_set<connection<Transport>>> readiness,
                     std::shared_ptr<manual_clock> clock, const session_limits& limits)
        : transport_(transport), options_(options), readiness_(std::move(readiness)),
          time_(std::move(clock)), limits_(limits) {}
    ~connection_owner() = default;

    // Here so that a connection finds its strand by its id instead of keeping a pointer.
    strand_pool<typename Transport::stream_type::executor_type> strands_;

private:
    // Here rather than in each connection: one copy instead of a reference per peer.
    const Transport& transport_;
    const server_options& options_;
    const std::shared_ptr<readiness_set<connection<Transport>>> readiness_;
    const time_source time_;
    const session_limits limits_; // what the options say of received messages
};
} // namespace detail

/// One WebSocket peer.
///
/// Created by `ws::server` for each accepted stream and handed to the handlers as a
/// `std::shared_ptr`. All of its I/O runs on a strand (shared with other connections, see
/// `detail::strand_pool`), so a server may run its io_context on several threads. `send_*`, `send`
/// and `close` may be called from any thread at any time, also after the connection has ended (they
/// then do nothing).
///
/// Outgoing frames wait in a queue of shared, immutable buffers; everything queued during
/// one turn of the event loop leaves in a single gather write (corking). The queue is
/// bounded by `server_options::max_send_queue_bytes`: a peer that reads too slowly is
/// closed with 1008 instead of growing server memory.
template <class Transport>
class connection : public std::enable_shared_from_this<connection<Transport>> {
public:
    /// The transport's stream (a socket, a TLS stream).
    using stream_type = typename Transport::stream_type;
    /// What made the connection and hears its events: the server (internal).
    using owner_type = detail::connection_owner<Transport>;
    /// Plain sockets join the server's readiness set once their transport handshake is done,
    /// and are read into a per-thread buffer and written with sendmsg directly; other
    /// streams (TLS) go through Asio's composed operations.
    static constexpr bool plain_socket = detail::is_plain_socket<stream_type>::value;
    /// The strand the connection's handlers and I/O run on.
    using strand_type = asio::strand<typename stream_type::executor_type>;
    /// The server's set of plain sockets waiting to be readable or writable (internal).
    using readiness_type = detail::readiness_set<connection>;

    /// Used by the server, which has picked strand `id` of `owner`'s pool for it;
    /// applications get connections from the handlers.
    connection(std::shared_ptr<owner_type> owner, std::uint64_t id, std::string_view remote_address)
        : owner_(std::move(owner)), session_(owner_->limits()), times_(now()), id_(id) {
        set_remote_address(remote_address);
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Queues a text message. `text` must be valid UTF-8 (the peer will close otherwise).
    void send_text(std::string_view text) { send(make_frame(opcode::text, text)); }
    /// Queues a binary message.
    void send_binary(std::string_view bytes) { send(make_frame(opcode::binary, bytes)); }
    /// Queues a frame encoded beforehand with `ws::make_frame`, typically one broadcast
    /// frame shared by many connections.
    void send(shared_frame frame);

    /// Starts the close handshake: sends a Close frame with `code` and `reason` after what
    /// is already queued, then waits up to `close_timeout` for the peer's answer.
    void close(close_code code = close_code::normal, std::string_view reason = {});

    /// True between the successful handshake and the start of the close handshake.
    bool is_open() const noexcept { return state_.load(std::memory_order_acquire) == state::open; }
    /// The peer's address: as the transport reports it or, for a connection through a proxy
    /// listed in `server_options::trusted_proxies`, the client address the proxy names.
    /// Stable once the connection is open, and valid as long as the connection.
    std::string_view remote_address() const noexcept {
        return std::string_view{labels_}.substr(0, address_size_);
    }
    /// What `on_upgrade` put in `upgrade_decision::user_data` (a name, an id, a session).
    /// Read and written on the connection's handlers' strand, like the rest of its state.
    std::any& user_data() noexcept { return user_data_; }
    /// The user data as a `T`, or null when it holds something else (or nothing).
    template <class T>
    T* user_data_as() noexcept {
        return std::any_cast<T>(&user_data_);
    }
    /// The HTTP request that opened the connection. Its headers (cookies included) are kept
    /// until the `on_open` handlers return, then released, as an open connection has no
    /// more use for them: keep what you need in `user_data`. The method, version, target,
    /// path and query stay. Call it from the connection's handlers (as with `user_data`).
    const http_request& request() const {
        if (request_parser_)
            return request_parser_->request();
        if (state_ == state::handshake) {
            static const http_request nothing_yet;
            return nothing_yet;
        }
        std::optional<http_request>& opened_by = seldom().opened_by;
        if (!opened_by) // only the target is kept: a WebSocket upgrade is always a GET
            opened_by.emplace(http_request{
                "GET", std::string{target()}, opened_version_.major, opened_version_.minor, {}});
        return *opened_by;
    }
    /// The subprotocol selected in the handshake, or empty. Call it from the connection's
    /// handlers (as with `user_data`).
    const std::string& subprotocol() const noexcept {
        static const std::string none;
        return seldom_ ? seldom_->subprotocol : none;
    }
    /// A number unique within the server, for logs and maps.
    std::uint64_t id() const noexcept { return id_; }
    /// Bytes queued for this peer and not yet written.
    std::size_t queued_bytes() const { return queue_.queued_bytes(); }

private:
    friend struct detail::connection_access;
    friend readiness_type;
    /// The I/O back end, chosen once by the kind of stream (see detail::io_backend).
    using io_type = detail::io_backend<connection, stream_type>;
    friend io_type;

    enum class state : std::uint8_t { handshake, open, closing, closed };

    // What few open connections need, behind one pointer: a request rebuilt by request(),
    // a subprotocol (most peers ask for none) and how the connection ended.
    struct seldom_state {
        std::optional<http_request> opened_by; // made from target() by request()
        std::string subprotocol;
        close_info end;
    };

    using clock = detail::time_source::clock;
    clock::time_point now() const noexcept { return owner_->time().now(); }

    // --- what the I/O back end calls, on the strand -------------------------------------

    // What the owner keeps for its connections, and the connection's own queue and state.
    const server_options& options() const noexcept { return owner_->options(); }
    const Transport& transport() const noexcept { return owner_->transport(); }
    strand_type& strand() const noexcept { return owner_->strand_of(id_); }
    readiness_type* readiness() const noexcept { return owner_->readiness(); }
    detail::send_queue& queue() noexcept { return queue_; }
    bool ended() const noexcept { return state_ == state::closed; }

    /// From the server's readiness set (plain sockets only): the socket became readable or
    /// writable (`events`, epoll's); the back end takes it to the strand.
    void ready(std::uint32_t events) { io_.ready(*this, events); }

    /// Bytes arrived: the request while in the handshake, frames once open.
    void received(std::uint8_t* bytes, std::size_t size) {
        // Whatever the messages read here make the server send (a broadcast to every member,
        // a pong, a close) leaves when the parsing is done, not through the event loop.
        basic_cork corked{strand().get_inner_executor()};
        times_.heard(now());
        if (state_ == state::handshake)
            consume_request(bytes, size);
        else
            receive(bytes, size);
        session_.release_memory(); // frees the reassembly buffer unless a message is partial
    }

    // After our Close (or an HTTP answer) both kinds of stream keep reading, and discarding,
    // until the peer closes: closing a socket with unread data would reset the connection
    // and could destroy the Close frame or response still in flight to the peer.

    /// The peer closed TCP or the network failed: expected after our Close or answer.
    void read_failed(std::error_code ec) {
        const bool expected = state_ == state::closing || reply_sent_;
        end_at_once(expected ? std::error_code{} : ec);
    }

    /// The stream failed (handshake, write): the connection ends at once.
    void end_at_once(std::error_code why) { end({ending::at_once, why}); }

    /// `size` bytes of the taken frames went out (`full`: the socket took no more). True
    /// when the back end should write again. A queue that ended with a Close frame or HTTP
    /// answer, now written, ends the connection or our direction.
    bool written(std::size_t size, bool full) {
        const detail::send_queue::progress progress = queue_.written(size, full);
        if (progress.drained_after_last && state_ != state::closed)
            last_write_done();
        return progress.write_again;
    }

    // --- ending: one way, with a reason ---------------------------------------------------

    /// How end() ends the connection.
    enum class ending : std::uint8_t {
        /// Open: the close handshake, with the reason's code, or 1001 when the server stops,
        /// or the code of its error. Still in the HTTP handshake: at once, when for an error.
        /// Closing already: nothing more.
        close,
        /// In the HTTP handshake: the reason's answer, then our direction shuts down.
        reply,
        /// The socket closes now (a network error, a deadline, a silent peer, the server
        /// destroyed, or both Close frames exchanged).
        at_once,
    };

    /// Why a connection ends, and so how: what end() is given.
    struct end_reason {
        ending how;
        std::error_code error{}; // the error behind it (none: a clean end)
        std::uint16_t code = 0;  // close: the code to send, 0 for the error's
        std::string_view text{}; // close: the reason sent with `code`
        const detail::upgrade_answer* answer = nullptr; // reply: what to answer
    };

    /// The one way a connection ends, whatever ends it: the application (close), the
    /// protocol or a limit (a session error, a slow reader, an idle peer), the server
    /// (stopping, destroyed), the handshake (a refusal), time (a deadline, a silent peer) or
    /// the network. `on_close` follows exactly once, when the socket is closed (finish).
    void end(const end_reason& why) {
        session_sink sink{*this};
        switch (why.how) {
        case ending::close:
            if (state_ == state::open) {
                if (why.code != 0)
                    session_.close(why.code, why.text, why.error, sink);
                else if (why.error == error::server_stopping)
                    session_.close(static_cast<std::uint16_t>(close_code::going_away),
                                   "server shutting down", why.error, sink);
                else
                    session_.fail(why.error, sink);
            } else if (state_ == state::handshake && why.error) {
                finish(why.error);
            }
            return;
        case ending::reply:
            if (state_ == state::handshake)
                reply(*why.answer);
            return;
        case ending::at_once:
            return finish(why.error);
        }
    }

    // The session's sink: what the protocol decides, turned into queueing and closing.
    // Keeps the session's callbacks out of the public interface.
    struct session_sink {
        connection& self;
        const session_limits& limits() const noexcept { return self.owner_->limits(); }
        void message(opcode op, std::string_view payload) { self.deliver(op, payload); }
        void send(shared_frame frame) { self.enqueue(std::move(frame)); }
        void send_close(shared_frame frame, std::uint16_t code, std::string_view reason,
                        std::error_code why) {
            self.closing(std::move(frame), code, reason, why);
        }
        void limit_hit(std::error_code ec) { self.owner_->limit_hit(ec); }
        void closed() { self.end({ending::at_once}); } // the peer answered our Close
    };

    // Where a compression extension puts what it makes of a frame sent.
    struct compressed_sink final : frame_sink {
        explicit compressed_sink(connection& c) noexcept : self(c) {}
        void push(shared_frame frame) override { self.enqueue(std::move(frame)); }
        connection& self;
    };

    // --- what the server calls (through detail::connection_access) ------------------------

    /// On the strand: runs the transport's handshake on `stream`, then reads.
    void start(stream_type stream) {
        set_deadline(options().handshake_timeout);
        io_.start(*this, std::move(stream));
    }

    /// The server's sweep, from the server's strand: a connection with something due (its
    /// handshake or close deadline passed, silent past the heartbeat timeout, idle past the
    /// idle timeout) is ended on its strand; the living get `ping` when it is set (a
    /// heartbeat is due). Reads only atomics here, so a sweep posts nothing for the many
    /// connections that have nothing due.
    void sweep(clock::time_point now, const shared_frame& ping) {
        const state current = state_.load(std::memory_order_acquire);
        if (current == state::closed)
            return;
        if (times_.due_at(now, current == state::open, options()) != detail::due::nothing)
            return asio::post(strand(), call{this->shared_from_this(), &connection::expire});
        if (ping && current == state::open)
            enqueue(ping);
    }

    /// On the strand: ends the connection for what the sweep found due, if it still is (the
    /// clock is read again: what happened since the sweep counts).
    void expire() {
        const state current = state_;
        if (current == state::closed)
            return;
        switch (times_.due_at(now(), current == state::open, options())) {
        case detail::due::nothing:
            return;
        case detail::due::deadline:
            return end({ending::at_once, deadline_error()});
        case detail::due::silent:
            return end({ending::at_once, error::heartbeat_timeout});
        case detail::due::idle:
            return end({ending::close, error::idle_timeout});
        }
    }

    /// What a passed deadline means: the handshake's until the connection opens or answers,
    /// then the close handshake's.
    error deadline_error() const noexcept {
        return state_ == state::handshake && !reply_sent_ ? error::handshake_timeout
                                                          : error::close_timeout;
    }

    /// The server is stopping: open connections get a Close frame with 1001, those still
    /// in their handshake are dropped.
    void go_away() { end({ending::close, error::server_stopping}); }

    /// Ends the connection at once, without a close handshake (server destruction).
    void abort() { asio::post(strand(), call{this->shared_from_this(), &connection::abort_now}); }
    void abort_now() { end({ending::at_once, error::server_stopping}); } // on the strand

    /// The handler type of the connection's seldom posts (each distinct handler type
    /// instantiates an operation of its own): calls `what` on the connection.
    struct call {
        std::shared_ptr<connection> self;
        void (connection::*what)();
        void operator()() const { ((*self).*what)(); }
    };

    // --- the HTTP handshake ----------------------------------------------------------------

    void consume_request(std::uint8_t* bytes, std::size_t size) {
        if (reply_sent_)
            return; // an HTTP answer is on its way; ignore whatever else arrives
        // Made when the request's first bytes arrive, not with the connection: a request read
        // whole then needs it only until this handler returns, so a join storm's parsers
        // come and go one after the other instead of each leaving a hole in the heap
        // between the connections made meanwhile.
        if (!request_parser_)
            request_parser_ = std::make_unique<request_parser>(options().max_header_bytes);
        const std::size_t used = request_parser_->feed(reinterpret_cast<const char*>(bytes), size);
        switch (request_parser_->current()) {
        case request_parser::state::incomplete:
            return;
        case request_parser::state::failed: {
            const detail::upgrade_answer refused = detail::refusal(request_parser_->error());
            return end({ending::reply, {}, 0, {}, &refused});
        }
        case request_parser::state::done:
            break;
        }
        const http_request& req = request_parser_->request();
        // Until here the remote address is the one the transport saw.
        if (options().trusts_proxy(remote_address()))
            if (const auto client = forwarded_client_address(req)) {
                set_remote_address(*client);
                if (!owner_->admit_forwarded_client(this->shared_from_this()))
                    over_limit_ = true;
            }
        detail::upgrade_answer answer =
            detail::negotiate_upgrade(req, remote_address(), over_limit_, options(), *owner_);
        if (!answer.opens)
            return end({ending::reply, {}, 0, {}, &answer});
        open(req, answer);
        // Frames the client sent right behind its request are already in the buffer.
        if (used < size && state_ == state::open)
            receive(bytes + used, size - used);
    }

    /// Sends the 101 and opens, with the decision's subprotocol and user data.
    void open(const http_request& req, detail::upgrade_answer& answer) {
        upgrade_decision& decision = answer.decision;
        if (!decision.subprotocol.empty())
            seldom().subprotocol = std::move(decision.subprotocol);
        user_data_ = std::move(decision.user_data);
        session_.use_compression(std::move(answer.compression));
        compressed_ = session_.compression() != nullptr;
        keep_request_line(req);
        enqueue(raw_bytes(answer.response.serialize()));
        times_.opened(now());
        state_ = state::open;
        owner_->opened(this->shared_from_this());
        // The on_open handlers have seen the whole request; an open connection keeps no
        // headers (often the largest thing an idle connection would hold) nor the parser.
        request_parser_.reset();
    }

    /// Keeps the target and version of the request for request(). Before the handlers see
    /// the connection, so that remote_address(), which shares the string, never changes
    /// under a reader on another thread.
    void keep_request_line(const http_request& req) {
        labels_.resize(address_size_);
        labels_ += req.target;
        // Single digits: the request parser reads "HTTP/d.d".
        opened_version_ = {static_cast<std::uint8_t>(req.version_major),
                           static_cast<std::uint8_t>(req.version_minor)};
    }

    /// Answers a plain HTTP request or refuses an upgrade, then closes. A refusal by a check
    /// or a limit counts as a limit hit and is how the connection ended.
    void reply(const detail::upgrade_answer& answer) {
        if (answer.refused_for) {
            owner_->limit_hit(answer.refused_for);
            end_info().error = answer.refused_for;
        }
        reply_sent_ = true;
        set_deadline(options().close_timeout);
        enqueue(raw_bytes(answer.response.serialize()), true);
    }

    // --- messages --------------------------------------------------------------------------

    /// Hands bytes of an open connection to the session, with the time they arrived.
    void receive(std::uint8_t* bytes, std::size_t size) {
        session_sink sink{*this};
        session_.receive(bytes, size, times_.last_heard(), sink);
    }

    /// A message passed the session's checks: it counts against the idle timeout and goes
    /// to the handlers.
    void deliver(opcode op, std::string_view payload) {
        times_.message_received();
        owner_->received(this->shared_from_this(), message{op, payload});
    }

    /// The session sends its Close frame (ours, or the echo of the peer's): the last frame,
    /// bounded by the close timeout.
    void closing(shared_frame frame, std::uint16_t code, std::string_view reason,
                 std::error_code why) {
        close_info& info = end_info();
        info.code = code;
        info.reason = std::string{reason};
        info.error = why;
        state_ = state::closing;
        set_deadline(options().close_timeout);
        enqueue(std::move(frame), true);
    }

    /// Called when the last queued bytes (ending with a Close frame or an HTTP answer)
    /// have been written.
    void last_write_done() {
        if (session_.close_received())
            return end({ending::at_once}); // both Close frames exchanged: we close TCP first
        // Tell the peer we are done and let it close; the read loop sees its EOF.
        io_.shutdown_send(*this);
    }

    /// The handshake deadline, then the close deadline: the server's sweep ends the
    /// connection when it passes (see deadline_error()).
    void set_deadline(std::chrono::milliseconds after) { times_.set_deadline(now(), after); }

    /// How the connection ends.
    close_info& end_info() { return seldom().end; }

    /// Addresses are IP literals, "unix" or a transport's like: never near the 255
    /// characters kept.
    void set_remote_address(std::string_view address) {
        address = address.substr(0, std::numeric_limits<std::uint8_t>::max());
        labels_.assign(address.data(), address.size());
        address_size_ = static_cast<std::uint8_t>(address.size());
    }

    /// The request target of an open connection.
    std::string_view target() const noexcept {
        return std::string_view{labels_}.substr(address_size_);
    }

    /// Made when first needed, on the strand: most open connections never need it.
    seldom_state& seldom() const {
        if (!seldom_)
            seldom_ = std::make_unique<seldom_state>();
        return *seldom_;
    }

    /// Closes the socket and reports, exactly once: where every way of ending arrives.
    void finish(std::error_code why) {
        if (state_ == state::closed)
            return;
        const bool was_open = state_ != state::handshake;
        state_ = state::closed;
        if (why && !end_info().error) {
            end_info().error = why;
            owner_->limit_hit(why);
        }
        io_.close(*this);
        queue_.close();
        owner_->finished(this->shared_from_this(), end_info(), was_open);
    }

    // --- writing ---------------------------------------------------------------------------

    static shared_frame raw_bytes(const std::string& bytes) { return shared_frame::copy_of(bytes); }

    /// Queues a frame (see send_queue::push for `last`), schedules the flush when the queue
    /// was idle, and acts on the queue's bound.
    void enqueue(shared_frame frame, bool last = false) {
        const detail::send_queue::pushed pushed = queue_.push(std::move(frame), last, options());
        if (pushed.dropped)
            owner_->limit_hit(error::send_queue_full);
        if (pushed.start_flush &&
            !cork_batch::defer(this->shared_from_this(), &flush_when_uncorked))
            asio::post(strand(), flush_handler{this->shared_from_this()});
        if (pushed.overflow)
            asio::post(strand(),
                       call{this->shared_from_this(), &connection::drop_backlog_and_fail});
    }

    /// Flushes on the strand: one handler type for posting and dispatching it.
    struct flush_handler {
        std::shared_ptr<connection> self;
        void operator()() const { self->flush(); }
    };

    /// A cork's batch: flushes on the strand, at once when the strand is free.
    static void flush_when_uncorked(const std::shared_ptr<void>& target) {
        auto self = std::static_pointer_cast<connection>(target);
        strand_type& on = self->strand();
        asio::dispatch(on, flush_handler{std::move(self)});
    }

    /// The peer does not read fast enough: forget what it has not been sent yet and close.
    void drop_backlog_and_fail() {
        if (state_ != state::open)
            return;
        queue_.drop_untaken();
        end({ending::close, error::send_queue_full});
    }

    /// Writes everything queued so far: called once per event-loop turn in which frames
    /// were queued (corking), so a burst of broadcasts leaves in one gather write.
    void flush() {
        if (state_ != state::closed)
            io_.write(*this);
    }

    // Members are grouped by size, so that an idle connection, which holds little but
    // this object, wastes no bytes on padding.
    // The owner outlives every connection it made: each holds a reference to it, and the
    // transport, options and strands live inside it.
    std::shared_ptr<owner_type> owner_;

    std::unique_ptr<request_parser> request_parser_; // until the connection opens
    session<role::server> session_;
    io_type io_;
    detail::connection_times times_; // deadlines and signs of life, read by the sweep

    mutable std::unique_ptr<seldom_state> seldom_; // see seldom()
    // The remote address (its first address_size_ bytes) and, once open, the request's
    // target: one string, whose own buffer holds both when they are short, as is usual.
    std::string labels_;
    std::any user_data_;
    const std::uint64_t id_;
    detail::send_queue queue_;

    detail::registry_entry registry_entry_; // the server's bookkeeping (its registry lock)
    struct {
        std::uint8_t major, minor;
    } opened_version_{1, 1};        // of the request, kept with its target
    std::uint8_t address_size_ = 0; // see labels_
    std::atomic<state> state_{state::handshake};
    bool reply_sent_ = false;
    bool over_limit_ = false; // set by the server when a connection limit refuses this one
    // A compression extension was negotiated: send() goes through the session's. A flag
    // beside the send queue, so that a broadcast reads no other line of its members.
    bool compressed_ = false;
};

namespace detail {

/// What the server does to its connections, and all it may: start them, sweep them, stop
/// them and keep its registry's bookkeeping in them. The connection's one friend on the
/// server's side.
struct connection_access {
    /// Starts `conn` on its strand: the transport's handshake on `stream`, then reading.
    template <class Connection>
    static void start(const std::shared_ptr<Connection>& conn,
                      typename Connection::stream_type stream) {
        asio::post(conn->strand(), [conn, stream = std::move(stream)]() mutable {
            conn->start(std::move(stream));
        });
    }
    /// From the server's strand: ends the connection if something is due, else pings it
    /// when `ping` is set.
    template <class Connection>
    static void sweep(Connection& conn, std::chrono::steady_clock::time_point now,
                      const shared_frame& ping) {
        conn.sweep(now, ping);
    }
    /// The server stops: on its strand, the connection closes with 1001 (see go_away).
    template <class Connection>
    static void go_away(const std::shared_ptr<Connection>& conn) {
        asio::post(conn->strand(), typename Connection::call{conn, &Connection::go_away});
    }
    /// Ends the connection at once, from any thread (the server is gone or out of time).
    template <class Connection>
    static void abort(Connection& conn) {
        conn.abort();
    }
    /// A connection limit refuses the connection: it answers 503 to its request.
    template <class Connection>
    static void refuse_over_limit(Connection& conn) {
        conn.over_limit_ = true;
    }
    /// The registry's bookkeeping of the connection.
    template <class Connection>
    static registry_entry& entry(Connection& conn) {
        return conn.registry_entry_;
    }
    /// The server that made the connection.
    template <class Connection>
    static const void* owner(const Connection& conn) {
        return conn.owner_.get();
    }
};

} // namespace detail

// The entry points into the send path and the close handshake are defined out of the class,
// so that `extern template` declarations of them (separate compilation) keep a unit that only
// calls them from instantiating the writing machinery behind them.

template <class Transport>
void connection<Transport>::send(shared_frame frame) {
    if (compressed_) {
        compressed_sink queue{*this};
        return session_.compression()->send(frame, queue);
    }
    enqueue(std::move(frame));
}

template <class Transport>
void connection<Transport>::close(close_code code, std::string_view reason) {
    asio::post(strand(), [self = this->shared_from_this(), code, why = std::string{reason}] {
        self->end({ending::close, {}, static_cast<std::uint16_t>(code), why});
    });
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/connection.hpp ----
// ---- begin wschat/ws/server.hpp ----
// wschat — the server: accepts streams, runs handshakes, hands connections to the handlers.

// ---- begin wschat/ws/detail/acceptor_loop.hpp ----
// wschat — a server's acceptor: listens, accepts one stream at a time on the server's strand,
// backs off after an error, and closes.

// ---- begin wschat/ws/detail/steady_timer_on.hpp ----
// wschat — the timer type of the library's own deadlines, on a concrete executor.


#include <asio/basic_waitable_timer.hpp>
#include <asio/wait_traits.hpp>

#include <chrono>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A steady-clock timer whose waits complete on `Executor` (a strand, or the io_context's
/// own executor). Asio's `steady_timer` holds the type-erased `any_io_executor` instead,
/// whose machinery costs every program that includes the library some 20 KB of code and a
/// share of its compile time; a concrete executor costs neither.
template <class Executor>
using steady_timer_on =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, Executor>;

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/steady_timer_on.hpp ----
// ---- begin wschat/ws/detail/uncached_allocator.hpp ----
// wschat — an allocator for Asio operations whose memory should not be recycled.


#include <cstddef>
#include <new>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Asio keeps the memory of a completed operation in a small per-thread cache and hands it
/// to the next operation that fits, whatever its size. An accept operation is larger than
/// most (it holds the socket being accepted), and its block would otherwise pass to the
/// next long-lived operation started on the thread: a new TLS connection's pending read,
/// which would hold 56 bytes it does not use for as long as the connection stays idle.
/// (Plain sockets wait in the server's readiness set, with no operation pending in Asio.)
///
/// Bound to a handler (`asio::bind_allocator`), this allocator gives its operation plain
/// `operator new` memory that goes back to the heap when the operation completes.
template <class T>
struct uncached_allocator {
    using value_type = T;

    uncached_allocator() noexcept = default;
    template <class U>
    uncached_allocator(const uncached_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }

    template <class U>
    bool operator==(const uncached_allocator<U>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const uncached_allocator<U>&) const noexcept {
        return false;
    }
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/uncached_allocator.hpp ----
// ---- begin wschat/ws/transport.hpp ----
// wschat — the Transport concept (how a server accepts and talks over a stream) and `asio_tcp`.


#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(ASIO_HAS_LOCAL_SOCKETS)
#include <cerrno>

#include <sys/stat.h>
#include <unistd.h>
#endif

WSCHAT_BEGIN_NAMESPACE(ws)

// clang-format off
/// # The Transport concept
///
/// `ws::server<Transport>` is generic over how bytes travel. A Transport is a copyable
/// class; the server keeps one copy and calls it from its strands (so its members are
/// `const` and any state it shares, like a TLS context, is thread-safe). It provides:
///
/// | member | meaning |
/// |---|---|
/// | `stream_type` | an Asio AsyncReadStream + AsyncWriteStream (with `get_executor()`), moved into the connection |
/// | `acceptor_type` | what listens: constructible from the `asio::io_context`, move-assignable (from `listen`), with `endpoint_type` and `local_endpoint(std::error_code&) const` (`server::local_endpoint()`) |
/// | `acceptor_type listen(asio::io_context&, const listen_address&, std::error_code&) const` | opens, binds, listens (where the server's options say, if the transport listens on an address at all) |
/// | `void async_accept(acceptor_type&, H) const` | accepts one stream: `H(std::error_code, stream_type)`, run on H's executor |
/// | `void async_handshake(stream_type&, H) const` | the transport's own handshake before HTTP (TLS): `H(std::error_code)`; the connection bounds it by `handshake_timeout` |
/// | `void shutdown_send(stream_type&) const` | after the last write: ends our direction (TCP FIN, TLS close_notify) and lets the read loop see the peer's end; bounded by `close_timeout` |
/// | `void close(stream_type&) const noexcept` | closes at once, cancelling pending operations |
/// | `void close_acceptor(acceptor_type&) const noexcept` | stops listening and removes what `listen` created (a socket file) |
/// | `std::string remote_address(const stream_type&) const` | the peer's address, for logs, per-address limits and `trusted_proxies` |
///
/// `check_transport<T>()` verifies each row at compile time and `ws::server` asserts it,
/// with a message naming the missing member. Shipped transports: `asio_tcp` and
/// `asio_local` (below), `asio_tls` (`<wschat/ws/tls.hpp>`, needs OpenSSL).
// clang-format on

/// Sockets bound to the io_context's own executor type rather than the type-erased
/// `asio::any_io_executor`: every connection's strand, timer and pending operation is then
/// smaller (about 250 bytes less per idle connection) and dispatch needs no indirection.
template <class Protocol>
using io_socket = asio::basic_stream_socket<Protocol, asio::io_context::executor_type>;
/// An acceptor bound to the io_context's own executor type, for the same reason.
template <class Protocol>
using io_acceptor = asio::basic_socket_acceptor<Protocol, asio::io_context::executor_type>;

/// Where a server listens, from its options (`server_options::address` and `port`): all a
/// transport learns of them.
struct listen_address {
    /// An IP literal ("127.0.0.1", "::", "0.0.0.0").
    std::string address;
    /// 0 asks the OS for a free port.
    std::uint16_t port = 0;
};

namespace detail {
/// What the plain-socket transports (TCP, Unix domain) do alike: accepting, ending our
/// direction, closing, and the open-bind-listen sequence.
template <class Protocol>
struct socket_transport {
    using stream_type = io_socket<Protocol>;
    using acceptor_type = io_acceptor<Protocol>;

    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        acceptor.async_accept(std::forward<Handler>(handler));
    }

    void shutdown_send(stream_type& stream) const {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
    }

    void close(stream_type& stream) const noexcept {
        std::error_code ignored;
        stream.close(ignored);
    }

protected:
    /// Opens `acceptor`, binds it to `endpoint` (with SO_REUSEADDR when `reuse_address`) and
    /// listens; stops at the first error.
    static void bind_and_listen(acceptor_type& acceptor,
                                const typename Protocol::endpoint& endpoint, bool reuse_address,
                                std::error_code& ec) {
        acceptor.open(endpoint.protocol(), ec);
        if (!ec && reuse_address)
            acceptor.set_option(asio::socket_base::reuse_address{true}, ec);
        if (!ec)
            acceptor.bind(endpoint, ec);
        if (!ec)
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
};
} // namespace detail

/// Plain TCP (`ws://`): the default transport.
struct asio_tcp : detail::socket_transport<asio::ip::tcp> {

    /// Listens on `opts.address`:`opts.port` with SO_REUSEADDR, so a restarted server can
    /// bind while old connections sit in TIME_WAIT.
    acceptor_type listen(asio::io_context& io, const listen_address& where,
                         std::error_code& ec) const {
        acceptor_type acceptor{io};
        const auto address = asio::ip::make_address(where.address, ec);
        if (ec)
            return acceptor;
        bind_and_listen(acceptor, {address, where.port}, true, ec);
        return acceptor;
    }

    /// Plain TCP has nothing to negotiate below HTTP; completes at once, with
    /// Nagle's algorithm off so small chat frames leave immediately.
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        std::error_code ec;
        stream.set_option(asio::ip::tcp::no_delay{true}, ec);
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler), ec]() mutable { h(ec); });
    }

    /// Stops listening.
    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::error_code ignored;
        acceptor.close(ignored);
    }

    /// The peer's IP address as text, or empty when the socket no longer has one.
    std::string remote_address(const stream_type& stream) const {
        std::error_code ec;
        const auto endpoint = stream.remote_endpoint(ec);
        return ec ? std::string{} : endpoint.address().to_string();
    }
};

#if defined(ASIO_HAS_LOCAL_SOCKETS)
/// Unix domain sockets: the server listens on a socket file instead of a TCP port, the
/// usual set-up for a gateway behind a reverse proxy on the same host (nginx's
/// `proxy_pass http://unix:/run/chat.sock;`). No port is exposed, and who may connect is
/// decided by the file's permissions.
///
/// ```cpp
/// ws::server<ws::asio_local> server{io, opts, ws::asio_local{"/run/chat/chat.sock"}};
/// ```
///
/// `server_options::address` and `port` are not used. A stale socket file left by a crashed
/// process is replaced; a path where another server still accepts connections is refused
/// with `address_in_use`, and a path that is not a socket is never removed. The file is
/// removed when the server stops listening.
///
/// Every peer's `remote_address()` is `"unix"`: per-address limits count all local peers as
/// one address, so behind a local proxy list `"unix"` in `trusted_proxies`, which both
/// exempts the proxy from that limit and makes the client address it forwards believed.
struct asio_local : detail::socket_transport<asio::local::stream_protocol> {

    asio_local() = default;
    /// A transport that listens on the socket file at `socket_path`.
    explicit asio_local(std::string socket_path) : path(std::move(socket_path)) {}

    /// The path of the socket file (at most about 100 bytes: `sockaddr_un` is small).
    std::string path;

    /// Listens on `path`, replacing a stale socket file; the address is not used.
    acceptor_type listen(asio::io_context& io, const listen_address&, std::error_code& ec) const {
        acceptor_type acceptor{io};
        remove_stale_socket(io, ec);
        if (!ec)
            bind_and_listen(acceptor, asio::local::stream_protocol::endpoint{path}, false, ec);
        return acceptor;
    }

    /// Nothing to negotiate below HTTP: completes at once.
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        asio::post(stream.get_executor(),
                   [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    /// Stops listening and removes the socket file, but only while it is still the one this
    /// acceptor bound (the path the acceptor reports), never a file someone put there since.
    void close_acceptor(acceptor_type& acceptor) const noexcept {
        std::error_code ec;
        const bool bound = acceptor.is_open() && acceptor.local_endpoint(ec).path() == path && !ec;
        acceptor.close(ec);
        if (bound)
            ::unlink(path.c_str());
    }

    /// Always "unix": a Unix socket's peer has no address of its own.
    std::string remote_address(const stream_type&) const { return "unix"; }

private:
    /// A socket file nobody accepts on (left by a process that died) would make bind fail
    /// with "address in use": remove it. One with a live listener is left alone.
    void remove_stale_socket(asio::io_context& io, std::error_code& ec) const {
        struct ::stat file {};
        if (::stat(path.c_str(), &file) != 0 || !S_ISSOCK(file.st_mode))
            return; // absent, or not a socket: bind reports what is wrong, if anything
        stream_type probe{io};
        std::error_code refused;
        probe.connect(asio::local::stream_protocol::endpoint{path}, refused);
        if (!refused) {
            ec = asio::error::address_in_use;
            return;
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            ec.assign(errno, std::system_category());
    }
};
#endif

namespace detail {
template <class T, class = void>
struct has_stream_type : std::false_type {};
template <class T>
struct has_stream_type<T, std::void_t<typename T::stream_type>> : std::true_type {};

template <class T, class = void>
struct has_acceptor_type : std::false_type {};
template <class T>
struct has_acceptor_type<T, std::void_t<typename T::acceptor_type>> : std::true_type {};

template <class T, class = void>
struct has_listen : std::false_type {};
template <class T>
struct has_listen<T, std::void_t<decltype(std::declval<const T&>().listen(
                         std::declval<asio::io_context&>(), std::declval<const listen_address&>(),
                         std::declval<std::error_code&>()))>> : std::true_type {};

template <class T>
constexpr bool acceptor_constructible() {
    using acceptor = typename T::acceptor_type;
    return std::is_constructible_v<acceptor, asio::io_context&> &&
           std::is_move_assignable_v<acceptor>;
}

template <class T, class = void>
struct has_local_endpoint : std::false_type {};
template <class T>
struct has_local_endpoint<
    T, std::void_t<typename T::acceptor_type::endpoint_type,
                   decltype(std::declval<const typename T::acceptor_type&>().local_endpoint(
                       std::declval<std::error_code&>()))>> : std::true_type {};

// Completion handlers of the signatures the server passes, to probe the async members.
template <class T>
struct probe_accept_handler {
    void operator()(std::error_code, typename T::stream_type) const {}
};
struct probe_handshake_handler {
    void operator()(std::error_code) const {}
};

template <class T, class = void>
struct has_async_accept : std::false_type {};
template <class T>
struct has_async_accept<
    T, std::void_t<decltype(std::declval<const T&>().async_accept(
           std::declval<typename T::acceptor_type&>(), std::declval<probe_accept_handler<T>>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_async_handshake : std::false_type {};
template <class T>
struct has_async_handshake<
    T, std::void_t<decltype(std::declval<const T&>().async_handshake(
           std::declval<typename T::stream_type&>(), std::declval<probe_handshake_handler>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_shutdown_send : std::false_type {};
template <class T>
struct has_shutdown_send<T, std::void_t<decltype(std::declval<const T&>().shutdown_send(
                                std::declval<typename T::stream_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_close : std::false_type {};
template <class T>
struct has_close<T, std::void_t<decltype(std::declval<const T&>().close(
                        std::declval<typename T::stream_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_close_acceptor : std::false_type {};
template <class T>
struct has_close_acceptor<T, std::void_t<decltype(std::declval<const T&>().close_acceptor(
                                 std::declval<typename T::acceptor_type&>()))>> : std::true_type {};

template <class T, class = void>
struct has_remote_address : std::false_type {};
template <class T>
struct has_remote_address<
    T, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const T&>().remote_address(
                                                  std::declval<const typename T::stream_type&>())),
                                              std::string>>> : std::true_type {};
} // namespace detail

/// Checks a Transport type at compile time: one `static_assert` per row of the concept table,
/// each naming the missing member (so a mistake reads as one line, not a template backtrace).
/// Returns true, so that it can itself be used in a `static_assert`.
template <class T>
constexpr bool check_transport() {
    static_assert(std::is_copy_constructible_v<T>,
                  "wschat Transport: must be copy-constructible (the server keeps a copy)");
    static_assert(detail::has_stream_type<T>::value,
                  "wschat Transport: missing `using stream_type = ...` (an Asio stream)");
    static_assert(detail::has_acceptor_type<T>::value,
                  "wschat Transport: missing `using acceptor_type = ...`");
    if constexpr (detail::has_stream_type<T>::value && detail::has_acceptor_type<T>::value) {
        static_assert(detail::acceptor_constructible<T>(),
                      "wschat Transport: acceptor_type must be constructible from an "
                      "asio::io_context& and move-assignable");
        static_assert(detail::has_local_endpoint<T>::value,
                      "wschat Transport: acceptor_type needs `endpoint_type` and "
                      "`local_endpoint(std::error_code&) const`");
        static_assert(detail::has_listen<T>::value,
                      "wschat Transport: missing `acceptor_type listen(asio::io_context&, const "
                      "ws::listen_address&, std::error_code&) const`");
        static_assert(detail::has_async_accept<T>::value,
                      "wschat Transport: missing `template <class H> void "
                      "async_accept(acceptor_type&, H&&) const` calling H(std::error_code, "
                      "stream_type)");
        static_assert(detail::has_async_handshake<T>::value,
                      "wschat Transport: missing `template <class H> void "
                      "async_handshake(stream_type&, H&&) const` calling H(std::error_code)");
        static_assert(detail::has_shutdown_send<T>::value,
                      "wschat Transport: missing `void shutdown_send(stream_type&) const`");
        static_assert(detail::has_close<T>::value,
                      "wschat Transport: missing `void close(stream_type&) const noexcept`");
        static_assert(detail::has_close_acceptor<T>::value,
                      "wschat Transport: missing `void close_acceptor(acceptor_type&) const "
                      "noexcept`");
        static_assert(detail::has_remote_address<T>::value,
                      "wschat Transport: missing `std::string remote_address(const "
                      "stream_type&) const`");
    }
    return true;
}

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/transport.hpp ----

#include <asio/bind_allocator.hpp>
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The acceptor of a server over `Transport`, and the timer of its back-off. Its handlers
/// run on `strand`, the server's, as must its calls.
template <class Transport>
class acceptor_loop {
public:
    using acceptor_type = typename Transport::acceptor_type;
    using strand_type = asio::strand<asio::io_context::executor_type>;

    acceptor_loop(asio::io_context& io, strand_type& strand)
        : strand_(strand), acceptor_(io), retry_timer_(strand) {}

    /// Binds and listens at `address`.
    void listen(const Transport& transport, asio::io_context& io, const listen_address& address,
                std::error_code& ec) {
        acceptor_ = transport.listen(io, address, ec);
    }

    /// Accepts the next stream: `on_accepted(ec, stream)` runs on the strand.
    template <class Handler>
    void accept(const Transport& transport, Handler on_accepted) {
        auto handler = asio::bind_executor(strand_, std::move(on_accepted));
        // The operation's memory must not pass to an idle connection's pending read (see
        // uncached_allocator); plain sockets have none, and skip the allocator's instantiations.
        if constexpr (is_plain_socket<typename Transport::stream_type>::value)
            transport.async_accept(acceptor_, std::move(handler));
        else
            transport.async_accept(
                acceptor_, asio::bind_allocator(uncached_allocator<void>{}, std::move(handler)));
    }

    /// An accept failed (out of file descriptors and similar): `retry(ec)` runs after a brief
    /// back-off instead of spinning.
    template <class Handler>
    void back_off(Handler retry) {
        retry_timer_.expires_after(std::chrono::milliseconds{50});
        retry_timer_.async_wait(std::move(retry));
    }

    /// Stops accepting.
    void close(const Transport& transport) {
        retry_timer_.cancel();
        transport.close_acceptor(acceptor_);
    }

    /// The listening acceptor (for its local endpoint).
    const acceptor_type& acceptor() const noexcept { return acceptor_; }

private:
    strand_type& strand_;
    acceptor_type acceptor_;
    steady_timer_on<strand_type> retry_timer_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/acceptor_loop.hpp ----
// ---- begin wschat/ws/detail/drain.hpp ----
// wschat — a server's graceful stop: who waits for its last connection to finish, and the
// deadline after which the rest are cut off.


#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The drain of a stopping server whose strand is a `Strand`. `begin` and `cancel` run on
/// that strand; `finish_if` from any thread (a connection finishing). A template so that a
/// unit that never stops a server (separate compilation) instantiates none of its timer.
template <class Strand>
class drain {
public:
    explicit drain(Strand& strand) : deadline_(strand) {}

    /// Begins (again, for another stop call): `on_stopped`, when set, waits for the end;
    /// `on_deadline(ec)` runs once `after` has passed, unless cancelled first.
    template <class Handler>
    void begin(std::chrono::milliseconds after, const std::function<void()>& on_stopped,
               Handler on_deadline) {
        deadline_.expires_after(after);
        deadline_.async_wait(std::move(on_deadline));
        if (on_stopped) {
            std::lock_guard<std::mutex> lock{mutex_};
            waiting_.push_back(on_stopped);
        }
    }

    /// When `nothing_left()` (asked under the drain's lock, so that one caller takes who
    /// waits): returns who waits, to be called, and forgets them. Otherwise nullopt.
    template <class Check>
    std::optional<std::vector<std::function<void()>>> finish_if(Check&& nothing_left) {
        std::lock_guard<std::mutex> lock{mutex_};
        if (!nothing_left())
            return std::nullopt;
        return std::exchange(waiting_, {});
    }

    /// Nothing is left to drain: the deadline must not keep the io_context busy.
    void cancel() { deadline_.cancel(); }

private:
    steady_timer_on<Strand> deadline_;
    std::mutex mutex_; // of waiting_
    std::vector<std::function<void()>> waiting_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/drain.hpp ----
// ---- begin wschat/ws/detail/handler_table.hpp ----
// wschat — the server's handlers, replaceable while the io_context runs.


#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Names a group of handlers added together (`server::add_handlers`), so that they can be
/// removed together (`server::remove_handlers`). Never 0 for a group that was added.
using handler_id = std::uint64_t;

namespace detail {

/// The handlers of one server, as an immutable table that a change replaces whole (copy on
/// write). Readers take the current table with one reference count and call it without any
/// lock held, so a handler may add or remove handlers, and handlers may change from any
/// thread while connections are being served. A handler already running on another thread
/// when its group is removed finishes that call; what it refers to must tolerate that (a
/// room's handlers hold the room weakly).
template <class Group, class Deciders>
class handler_table {
public:
    /// One snapshot: the groups in the order added, and the single deciders.
    struct table {
        std::vector<std::pair<handler_id, Group>> groups;
        Deciders deciders;
    };
    using snapshot = std::shared_ptr<const table>;

    /// The table as it is now; empty after `clear()`.
    snapshot current() const {
        std::lock_guard<spin_lock> lock{lock_};
        return table_;
    }

    handler_id add(Group group) {
        handler_id id = 0;
        change([&](table& next) {
            id = ++last_id_;
            next.groups.emplace_back(id, std::move(group));
        });
        return id;
    }

    /// Removes the group `id`; false when there is none (removed already, or never added).
    bool remove(handler_id id) {
        bool found = false;
        change([&](table& next) {
            const auto at = std::find_if(next.groups.begin(), next.groups.end(),
                                         [id](const auto& entry) { return entry.first == id; });
            found = at != next.groups.end();
            if (found)
                next.groups.erase(at);
        });
        return found;
    }

    /// Replaces the deciders through `edit(Deciders&)`.
    template <class Edit>
    void set_deciders(Edit&& edit) {
        change([&](table& next) { edit(next.deciders); });
    }

    /// Drops every handler for good (the server object is gone, and with it possibly what
    /// the handlers refer to); later changes are ignored.
    void clear() {
        std::lock_guard<std::mutex> writing{writer_};
        cleared_ = true;
        publish(std::make_shared<const table>());
    }

private:
    /// Writers are serialised by a mutex and build the next table outside the readers'
    /// lock, which is held only to swap one pointer.
    template <class Edit>
    void change(Edit&& edit) {
        std::lock_guard<std::mutex> writing{writer_};
        if (cleared_)
            return;
        auto next = std::make_shared<table>(*current());
        edit(*next);
        publish(std::move(next));
    }

    void publish(snapshot next) {
        std::lock_guard<spin_lock> lock{lock_};
        table_.swap(next); // the old table is released after the lock
    }

    mutable spin_lock lock_; // of table_
    snapshot table_ = std::make_shared<const table>();
    std::mutex writer_; // of last_id_ and cleared_, and orders the changes
    handler_id last_id_ = 0;
    bool cleared_ = false;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/handler_table.hpp ----
// ---- begin wschat/ws/detail/registry.hpp ----
// wschat — a server's registry: every connection not yet finished, the count of open ones and
// the per-address counts that the connection limits read, under one lock.


#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The connections of one server, from their acceptance until they finish. A vector rather
/// than a map, as a map's node would cost each idle connection about 50 bytes: each
/// connection keeps its slot (registry_entry), and the last one moves into a slot that
/// empties. Thread-safe: every member takes the registry's lock.
template <class Connection>
class connection_registry {
public:
    using connection_ptr = std::shared_ptr<Connection>;

    /// Registers a connection just accepted; false when a connection limit refuses it (the
    /// total, or its address's). A trusted proxy's connections are counted later, by the
    /// client address it forwards (count_forwarded).
    bool add(const connection_ptr& conn, const server_options& options) {
        std::lock_guard<std::mutex> lock{mutex_};
        bool admitted = connections_.size() < options.max_connections;
        if (!options.trusts_proxy(conn->remote_address()))
            admitted = count_address(*conn, options) && admitted;
        connection_access::entry(*conn).slot = static_cast<std::uint32_t>(connections_.size());
        connections_.push_back(conn);
        return admitted;
    }

    /// A connection through a trusted proxy has named its client: counts it under that
    /// address; false when the address is over its limit.
    bool count_forwarded(Connection& conn, const server_options& options) {
        std::lock_guard<std::mutex> lock{mutex_};
        return count_address(conn, options);
    }

    /// A connection has opened: true when it counts (false once the registry is detached,
    /// when no handler may run).
    bool opened() {
        std::lock_guard<std::mutex> lock{mutex_};
        if (detached_)
            return false;
        ++open_count_;
        return true;
    }

    /// Takes out a finished connection, which had opened or not (`was_open`).
    void remove(Connection& conn, bool was_open) {
        std::lock_guard<std::mutex> lock{mutex_};
        registry_entry& entry = connection_access::entry(conn);
        if (entry.slot + std::size_t{1} != connections_.size()) {
            connections_[entry.slot] = std::move(connections_.back());
            connection_access::entry(*connections_[entry.slot]).slot = entry.slot;
        }
        connections_.pop_back();
        if (entry.counted_per_address) {
            const auto from_address = per_address_.find(std::string{conn.remote_address()});
            if (--from_address->second == 0)
                per_address_.erase(from_address);
        }
        if (was_open)
            --open_count_;
    }

    /// Connections that opened and have not finished.
    std::size_t open_count() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return open_count_;
    }

    /// True when every connection has finished.
    bool empty() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return connections_.empty();
    }

    /// A copy of the registry, to act on without the lock.
    std::vector<connection_ptr> all() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return connections_;
    }

    /// The server is gone: no connection counts as opened any more. Returns them all.
    std::vector<connection_ptr> detach() {
        std::lock_guard<std::mutex> lock{mutex_};
        detached_ = true;
        return connections_;
    }

    /// Calls `visit(conn)` for each connection under the lock, rather than over a copy: a
    /// copy would cost a pointer pair per connection. `visit` must not take the lock.
    template <class Visit>
    void for_each(Visit&& visit) {
        std::lock_guard<std::mutex> lock{mutex_};
        for (const connection_ptr& conn : connections_)
            visit(*conn);
    }

private:
    /// Counts `conn` under its remote address; false when that address already has its
    /// maximum. Called with the lock held.
    bool count_address(Connection& conn, const server_options& options) {
        connection_access::entry(conn).counted_per_address = true;
        return ++per_address_[std::string{conn.remote_address()}] <=
               options.max_connections_per_address;
    }

    mutable std::mutex mutex_;
    std::vector<connection_ptr> connections_; // each at its registry_entry's slot
    std::unordered_map<std::string, std::size_t> per_address_;
    std::size_t open_count_ = 0;
    bool detached_ = false;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/registry.hpp ----
// ---- begin wschat/ws/detail/sweep.hpp ----
// wschat — a server's sweep: one timer for every connection's deadlines, idle and heartbeat
// timeouts, and the heartbeat's pings.


#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// Sweeps the connections of a server (a connection has no timer of its own): each sweep
/// ends those past their handshake or close deadline, silent past the heartbeat timeout or
/// idle past the idle timeout and, when a heartbeat is due, pings the rest with one shared
/// frame. Runs on the server's strand, on a timer of the steady clock every sweep_period();
/// with a manual clock the server sweeps at each advance instead.
template <class Connection>
class sweeper {
public:
    using strand_type = asio::strand<asio::io_context::executor_type>;
    using clock = time_source::clock;

    sweeper(strand_type& strand, const server_options& options, const time_source& time)
        : options_(options), timer_(strand), heartbeat_(time.now(), options.heartbeat_interval),
          ping_(make_frame(opcode::ping, {})) {}

    /// Arms the timer for the next sweep: `on_due(ec)` runs then. False when no sweep is
    /// ever due (every timeout off).
    template <class Handler>
    bool schedule(Handler on_due) {
        const std::chrono::milliseconds period = sweep_period(options_);
        if (period.count() <= 0)
            return false;
        timer_.expires_after(period);
        timer_.async_wait(std::move(on_due));
        return true;
    }

    /// Sweeps `registry` at `now`. Under the registry's lock rather than over a copy: a
    /// connection's sweep only reads atomics, posts, or queues the ping, none of which takes
    /// that lock; the cork (of `executor`), released after the lock, sends the pings.
    void sweep(connection_registry<Connection>& registry, clock::time_point now,
               const asio::io_context::executor_type& executor) {
        const shared_frame ping = heartbeat_.due_at(now) ? ping_ : shared_frame{};
        cork corked{executor};
        registry.for_each([&](Connection& conn) { connection_access::sweep(conn, now, ping); });
    }

    /// No more sweeps.
    void cancel() { timer_.cancel(); }

private:
    const server_options& options_;
    steady_timer_on<strand_type> timer_;
    heartbeat_schedule heartbeat_;
    const shared_frame ping_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/ws/detail/sweep.hpp ----

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// The handlers of one group (`server::add_handlers`); any of them may be empty.
template <class Transport>
struct connection_handlers {
    /// How the handlers receive a connection.
    using connection_ptr = std::shared_ptr<connection<Transport>>;
    /// Called when a connection has completed its handshake.
    std::function<void(const connection_ptr&)> on_open;
    /// Called for every complete message (text already validated as UTF-8).
    std::function<void(const connection_ptr&, const message&)> on_message;
    /// Called once when an opened connection has ended, however it ended.
    std::function<void(const connection_ptr&, const close_info&)> on_close;
};

namespace detail {

/// The two handlers of which a server has one: plain HTTP requests and upgrade decisions.
struct http_deciders {
    std::function<void(const http_request&, http_response&)> on_http;
    std::function<void(const http_request&, upgrade_decision&)> on_upgrade;
};

/// The server's state, shared with its connections so that it outlives all of them: the
/// units below put together, the handlers, and what connections report (connection_owner).
template <class Transport>
class server_core final : public connection_owner<Transport>,
                          public std::enable_shared_from_this<server_core<Transport>> {
public:
    using connection_type = connection<Transport>;
    using connection_ptr = std::shared_ptr<connection_type>;
    using acceptor_type = typename Transport::acceptor_type;

    server_core(asio::io_context& io, server_options options, Transport transport)
        : connection_owner<Transport>(transport_, options_, make_readiness_set(io), options.clock,
                                      session_limits_of(options)),
          options_(std::move(options)), transport_(std::move(transport)),
          strand_(asio::make_strand(io)), acceptor_(io, strand_),
          sweeper_(strand_, options_, this->time()), drain_(strand_) {}

    void listen(asio::io_context& io, std::error_code& ec) {
        acceptor_.listen(transport_, io, listen_address{options_.address, options_.port}, ec);
        if (ec)
            return;
        if (const auto& manual = this->time().manual())
            manual->on_advance([weak = this->weak_from_this()] {
                const auto self = weak.lock();
                if (self)
                    asio::post(self->strand_, call{self, &server_core::sweep});
                return self != nullptr;
            });
        asio::post(strand_, call{this->shared_from_this(), &server_core::begin});
    }

    handler_table<connection_handlers<Transport>, http_deciders> handlers;

    const acceptor_type& acceptor() const noexcept { return acceptor_.acceptor(); }
    asio::io_context::executor_type get_executor() const noexcept {
        return strand_.get_inner_executor();
    }

    std::size_t connection_count() const { return registry_.open_count(); }

    std::uint64_t limit_hits(limit which) const noexcept { return counters_[which]; }

    /// True when `conn` was accepted by this server.
    bool owns(const connection_type& conn) const noexcept {
        return connection_access::owner(conn) == this;
    }

    void stop(std::chrono::milliseconds drain_deadline, std::function<void()> on_stopped) {
        asio::post(strand_,
                   [self = this->shared_from_this(), drain_deadline, done = std::move(on_stopped)] {
                       self->stop_on_strand(drain_deadline, done);
                   });
    }

    /// The server object is gone: end every connection without calling any handler, since
    /// the objects the handlers refer to may be gone too.
    void detach() {
        const std::vector<connection_ptr> all = registry_.detach();
        handlers.clear();
        asio::post(strand_, call{this->shared_from_this(), &server_core::stop_listening});
        for (const connection_ptr& conn : all)
            connection_access::abort(*conn);
    }

private:
    static session_limits session_limits_of(const server_options& options) {
        return {options.max_message_size, options.max_messages_per_second, options.message_burst,
                options.rate_limit_action == server_options::rate_action::drop};
    }

    static std::shared_ptr<readiness_set<connection_type>>
    make_readiness_set(asio::io_context& io) {
        if constexpr (connection_type::plain_socket)
            return std::make_shared<readiness_set<connection_type>>(io);
        else
            return nullptr;
    }

    /// The one handler type of the core's own posts and timers (each distinct handler type
    /// instantiates an operation of its own): calls `what` on the core; as a timer's
    /// handler, only when the timer expired (was not cancelled).
    struct call {
        std::shared_ptr<server_core> self;
        void (server_core::*what)();
        void operator()() const { ((*self).*what)(); }
        void operator()(std::error_code ec) const {
            if (!ec)
                ((*self).*what)();
        }
    };

    /// On the strand, once listening: accepts and sweeps from now on.
    void begin() {
        accept_next();
        schedule_sweep();
    }

    // --- accepting -------------------------------------------------------------------------

    void accept_next() {
        if (stopping_)
            return;
        acceptor_.accept(transport_,
                         [self = this->shared_from_this()](std::error_code ec,
                                                           typename Transport::stream_type stream) {
                             self->accepted(ec, std::move(stream));
                         });
    }

    void accepted(std::error_code ec, typename Transport::stream_type stream) {
        if (stopping_)
            return;
        if (ec)
            return acceptor_.back_off(call{this->shared_from_this(), &server_core::accept_next});
        std::string address = transport_.remote_address(stream);
        ++last_id_;
        this->strands_.pick(last_id_, stream.get_executor());
        auto conn = std::make_shared<connection_type>(this->shared_from_this(), last_id_, address);
        // Over a limit, the connection still reads the request head, so that the 503 reaches
        // the client instead of being lost to a reset.
        if (!registry_.add(conn, options_))
            connection_access::refuse_over_limit(*conn);
        connection_access::start(conn, std::move(stream));
        accept_next();
    }

    // --- sweeping --------------------------------------------------------------------------

    /// On a timer of the steady clock; a manual clock runs the sweep at each advance instead.
    void schedule_sweep() {
        if (stopping_ || this->time().manual())
            return;
        sweeper_.schedule(call{this->shared_from_this(), &server_core::sweep});
    }

    void sweep() {
        if (stopping_ && this->time().manual())
            return;
        sweeper_.sweep(registry_, this->time().now(), get_executor());
        schedule_sweep();
    }

    // --- stopping --------------------------------------------------------------------------

    void stop_listening() {
        stopping_ = true;
        sweeper_.cancel();
        acceptor_.close(transport_);
    }

    void stop_on_strand(std::chrono::milliseconds drain_deadline,
                        const std::function<void()>& on_stopped) {
        stop_listening();
        drain_.begin(drain_deadline, on_stopped,
                     call{this->shared_from_this(), &server_core::abort_remaining});
        for (const connection_ptr& conn : registry_.all())
            connection_access::go_away(conn);
        notify_if_stopped();
    }

    void notify_if_stopped() {
        auto waiting = drain_.finish_if([this] { return stopping_ && registry_.empty(); });
        if (!waiting)
            return;
        // Nothing is left to drain: the deadline must not keep the io_context busy.
        asio::post(strand_, call{this->shared_from_this(), &server_core::cancel_drain});
        for (auto& callback : *waiting)
            callback();
    }

    void cancel_drain() { drain_.cancel(); }

    /// The drain deadline has passed: whoever is still connected is cut off.
    void abort_remaining() {
        for (const connection_ptr& conn : registry_.all())
            connection_access::abort(*conn);
    }

    // --- connection_owner ------------------------------------------------------------------

    void decide_upgrade(const http_request& request, upgrade_decision& decision) override {
        if (!origin_allowed(request)) {
            counters_.add(limit::origin);
            return decision.reject(403, "origin not allowed");
        }
        const auto current = handlers.current();
        if (current->deciders.on_upgrade)
            current->deciders.on_upgrade(request, decision);
    }

    /// Cross-site WebSocket hijacking defence: a browser always sends Origin, so a request
    /// with a foreign one is refused; one without (a native client) is not a browser's.
    bool origin_allowed(const http_request& request) const {
        const auto& allowed = options_.allowed_origins;
        const auto origin = request.header("Origin");
        return allowed.empty() || !origin ||
               std::find(allowed.begin(), allowed.end(), *origin) != allowed.end();
    }

    void limit_hit(std::error_code ec) override { counters_.add(ec); }

    bool admit_forwarded_client(const connection_ptr& conn) override {
        return registry_.count_forwarded(*conn, options_);
    }

    void answer_http(const http_request& request, http_response& response) override {
        const auto current = handlers.current();
        if (current->deciders.on_http)
            return current->deciders.on_http(request, response);
        response = make_error_response(426, "This is a WebSocket endpoint: connect with a "
                                            "WebSocket client.");
    }

    void opened(const connection_ptr& conn) override {
        if (!registry_.opened())
            return;
        const auto current = handlers.current();
        for (const auto& [id, group] : current->groups)
            if (group.on_open)
                group.on_open(conn);
    }

    void received(const connection_ptr& conn, const message& msg) override {
        const auto current = handlers.current();
        for (const auto& [id, group] : current->groups)
            if (group.on_message)
                group.on_message(conn, msg);
    }

    void finished(const connection_ptr& conn, const close_info& info, bool was_open) override {
        registry_.remove(*conn, was_open);
        if (was_open) {
            const auto current = handlers.current();
            for (const auto& [id, group] : current->groups)
                if (group.on_close)
                    group.on_close(conn, info);
        }
        notify_if_stopped();
    }

    const server_options options_;
    const Transport transport_;
    asio::strand<asio::io_context::executor_type> strand_; // the acceptor's and the timers'
    acceptor_loop<Transport> acceptor_;
    connection_registry<connection_type> registry_;
    sweeper<connection_type> sweeper_;
    drain<asio::strand<asio::io_context::executor_type>> drain_;
    limit_counters counters_;
    std::atomic<bool> stopping_{false}; // set on the strand, read by finishing connections
    std::uint64_t last_id_ = 0;         // of the last connection accepted (on the strand)
};

} // namespace detail

/// A WebSocket server on the application's `asio::io_context`.
///
/// Listens as soon as it is constructed; the work happens while the application runs its
/// io_context (on one thread or several: each connection's handlers run on a strand). The server
/// starts no thread of its own.
///
/// ```cpp
/// asio::io_context io;
/// ws::server<> server{io, {}};
/// server.on_message([](const auto& conn, const ws::message& msg) {
///     conn->send(ws::make_frame(msg.type, msg.data)); // echo
/// });
/// io.run();
/// ```
///
/// Handlers: `on_open`, `on_message` and `on_close` add a handler (several may listen,
/// called in the order added, like Node's `ws.on`); `add_handlers` adds a group that
/// `remove_handlers` takes away again; `on_http` and `on_upgrade` set the single decider.
/// All of them may be called from any thread, before or while the io_context runs.
/// Handlers for one connection run on its strand, one at a time.
template <class Transport = asio_tcp>
class server {
    static_assert(check_transport<Transport>());

public:
    /// How the server accepts and talks (`asio_tcp`, `asio_tls`, `asio_local`, yours).
    using transport_type = Transport;
    /// One peer of this server.
    using connection_type = connection<Transport>;
    /// How the handlers receive a connection: safe to keep, also after it has ended.
    using connection_ptr = std::shared_ptr<connection_type>;
    /// What `local_endpoint` returns (a TCP endpoint, a socket file's path).
    using endpoint_type = typename Transport::acceptor_type::endpoint_type;

    /// Binds and listens; throws `std::system_error` when it cannot (port in use, bad
    /// address, no permission).
    server(asio::io_context& io, server_options options = {}, Transport transport = {});

    /// Binds and listens; reports failure in `ec` instead of throwing.
    server(asio::io_context& io, server_options options, std::error_code& ec,
           Transport transport = {});

    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Stops listening and ends every connection without calling any handler. Prefer
    /// `stop()` and running the io_context until it completes, which closes cleanly.
    ~server();

    /// The handlers of one group, for `add_handlers`.
    using handlers = connection_handlers<Transport>;

    /// Adds a group of handlers and returns its id, for `remove_handlers`. Groups are called
    /// in the order added. May be called from any thread, also while the io_context runs
    /// (a room attaches this way): the group sees the events that begin after it was added.
    handler_id add_handlers(handlers group) { return core_->handlers.add(std::move(group)); }
    /// Removes the group `id`; false when there is none. May be called from any thread, also
    /// from a handler. Events that begin afterwards do not reach the group; a call already
    /// running on another thread finishes.
    bool remove_handlers(handler_id id) { return core_->handlers.remove(id); }

    /// Adds a handler called when a connection has completed its handshake (a group of one,
    /// see `add_handlers`).
    server& on_open(std::function<void(const connection_ptr&)> handler) {
        add_handlers({std::move(handler), {}, {}});
        return *this;
    }
    /// Adds a handler called for every complete message (text already validated as UTF-8).
    server& on_message(std::function<void(const connection_ptr&, const message&)> handler) {
        add_handlers({{}, std::move(handler), {}});
        return *this;
    }
    /// Adds a handler called once when an opened connection has ended, however it ended.
    server& on_close(std::function<void(const connection_ptr&, const close_info&)> handler) {
        add_handlers({{}, {}, std::move(handler)});
        return *this;
    }
    /// Sets the handler for plain HTTP requests (not upgrades), e.g. to serve a page on the
    /// same port. The response is sent with `Connection: close`. Without a handler: 426.
    /// May be called from any thread, also while the io_context runs.
    server& on_http(std::function<void(const http_request&, http_response&)> handler) {
        core_->handlers.set_deciders(
            [&](detail::http_deciders& deciders) { deciders.on_http = std::move(handler); });
        return *this;
    }
    /// Sets the handler that may refuse a valid upgrade request (authentication, origin,
    /// capacity) with a status, or choose the subprotocol. May be called from any thread,
    /// also while the io_context runs.
    server& on_upgrade(std::function<void(const http_request&, upgrade_decision&)> handler) {
        core_->handlers.set_deciders(
            [&](detail::http_deciders& deciders) { deciders.on_upgrade = std::move(handler); });
        return *this;
    }

    /// Graceful stop: stops accepting, sends every peer a Close frame with 1001 (going
    /// away) after what is already queued for it (pending broadcasts are flushed first), and
    /// calls `on_stopped` once every connection has ended. Connections still open when
    /// `drain_deadline` passes are closed at once. Afterwards the server leaves no work in
    /// the io_context, so `io.run()` returns once the application's own work is done.
    void stop(std::chrono::milliseconds drain_deadline, std::function<void()> on_stopped = {});
    /// Graceful stop with `close_timeout` as the drain deadline.
    void stop(std::function<void()> on_stopped = {}) {
        stop(options().close_timeout, std::move(on_stopped));
    }

    /// Connections that completed their handshake and have not ended.
    std::size_t connection_count() const { return core_->connection_count(); }

    /// How many times peers ran into `which` since the server started. Every hit on an
    /// opened connection is also reported in `on_close` (`close_info::error`).
    std::uint64_t limit_hits(limit which) const noexcept { return core_->limit_hits(which); }

    /// True when `conn` is one of this server's connections.
    bool serves(const connection_type& conn) const noexcept { return core_->owns(conn); }

    /// Where the server listens (the real port when `port` was 0).
    endpoint_type local_endpoint() const {
        std::error_code ignored;
        return core_->acceptor().local_endpoint(ignored);
    }

    /// The options the server was made with (fixed for its life).
    const server_options& options() const noexcept { return core_->options(); }

    /// The executor of the io_context the server runs on: for the application's own timers
    /// and work (a room's presence timer uses it).
    asio::io_context::executor_type get_executor() const noexcept { return core_->get_executor(); }

private:
    std::shared_ptr<detail::server_core<Transport>> core_;
};

// The members that reach into the server core are defined out of the class: not being
// inline, they are not instantiated in a unit that sees them declared `extern template`
// (separate compilation, <wschat/ws/detail/extern_templates.hpp>), where the compiler would
// otherwise instantiate the whole core behind them to consider inlining it.

template <class Transport>
server<Transport>::server(asio::io_context& io, server_options options, Transport transport)
    : core_(std::make_shared<detail::server_core<Transport>>(io, std::move(options),
                                                             std::move(transport))) {
    std::error_code ec;
    core_->listen(io, ec);
    if (ec)
        throw std::system_error{ec, "ws::server: cannot listen"};
}

template <class Transport>
server<Transport>::server(asio::io_context& io, server_options options, std::error_code& ec,
                          Transport transport)
    : core_(std::make_shared<detail::server_core<Transport>>(io, std::move(options),
                                                             std::move(transport))) {
    core_->listen(io, ec);
}

template <class Transport>
server<Transport>::~server() {
    core_->detach();
}

template <class Transport>
void server<Transport>::stop(std::chrono::milliseconds drain_deadline,
                             std::function<void()> on_stopped) {
    core_->stop(drain_deadline, std::move(on_stopped));
}

WSCHAT_END_NAMESPACE

// ---- begin wschat/ws/detail/extern_templates.hpp ----
// wschat — separate compilation of the server: which instantiations the compiled library holds.
//
// Defining WSCHAT_SEPARATE_COMPILATION (the `wschat::compiled` CMake target and meson's
// `wschat_compiled_dep` define it for their users) declares the server over the shipped plain
// transports `extern template`: a unit that uses them calls the library's copy (src/wschat.cpp)
// instead of instantiating and optimising it again. Without the macro nothing is declared
// and wschat stays header-only. Other transports are instantiated where used, as always.


#include <string_view>

/// The server's instantiations over `Transport`: declared with `how` = `extern template`,
/// defined once with `how` = `template` (in src/wschat.cpp). A connection is not instantiated
/// as a whole (only plain sockets have a readiness report, `ready`), only its entry points
/// that applications call.
#define WSCHAT_SERVER_INSTANTIATIONS(how, Transport)                                               \
    how class ::ws::detail::server_core<Transport>;                                                \
    how class ::ws::server<Transport>;                                                             \
    how void ::ws::connection<Transport>::send(::ws::shared_frame);                                \
    how void ::ws::connection<Transport>::close(::ws::close_code, std::string_view);

#ifdef WSCHAT_SEPARATE_COMPILATION
WSCHAT_SERVER_INSTANTIATIONS(extern template, ::ws::asio_tcp)
WSCHAT_SERVER_INSTANTIATIONS(extern template, ::ws::asio_local)
#endif
// ---- end wschat/ws/detail/extern_templates.hpp ----
// ---- end wschat/ws/server.hpp ----

// ---- begin wschat/chat/policy.hpp ----
// wschat — message policies: what a room's messages are and how they travel.


#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// What a policy's `decode` makes of an incoming WebSocket message: a room message to
/// broadcast, nothing (ignore it), or a refusal that closes the sender; and, in any case, an
/// optional reply that goes to the sender alone (an error, a pong).
///
/// The room sends the reply first, then closes the sender when refused, else broadcasts
/// the message when set. A default-constructed result is ignore().
///
/// ```cpp
/// if (in.data.size() > 280)
///     return chat::decode_result<message_type>::refuse(ws::close_code::message_too_big,
///                                                      "at most 280 bytes");
/// return chat::decode_result<message_type>::accept(in.data);
/// ```
template <class Message>
struct decode_result {
    std::optional<Message> message;        ///< broadcast this, when set
    std::optional<ws::close_code> refusal; ///< close the sender with this code, when set
    std::string reason;                    ///< the close reason that goes with `refusal`
    ws::shared_frame reply;                ///< sent to the sender only, when set

    /// Broadcast `m` to every member, the sender included.
    static decode_result accept(Message m) { return {std::move(m), std::nullopt, {}, {}}; }
    /// Do nothing: no broadcast, no reply; the sender stays.
    static decode_result ignore() { return {}; }
    /// Close the sender's connection with `code` and the reason `why`; nothing is broadcast.
    static decode_result refuse(ws::close_code code, std::string why) {
        return {std::nullopt, code, std::move(why), {}};
    }
    /// Nothing to broadcast; `frame` goes back to the sender, who stays.
    static decode_result answer(ws::shared_frame frame) {
        return {std::nullopt, std::nullopt, {}, std::move(frame)};
    }
};

/// What a room tells a policy with per-member state when it announces presence: everyone
/// present, and who came and went since the previous announcement (announcements are
/// coalesced, so several joins and leaves may arrive in one update).
template <class Member>
struct presence_update {
    std::size_t online;                 ///< the count, `members.size()`
    const std::vector<Member>& members; ///< everyone present, in no particular order
    const std::vector<Member>& joined;  ///< since the previous announcement, in join order
    const std::vector<Member>& left;    ///< since the previous announcement, in leave order
};

/// \page policy_concept The Policy concept
///
/// `chat::room<Transport, Policy>` asks of every Policy:
///
/// - `message_type`: what a room message is for the application.
/// - `ws::shared_frame encode(const message_type&) const`: the one frame every member
///   receives; or `encode(const message_type&, std::uint64_t sequence) const`, and the room
///   numbers its messages 1, 2, 3 … under its lock, so numbers follow delivery order.
///
/// A simple policy (`text_policy`, `binary_policy`) adds:
///
/// - `decode_result<message_type> decode(const Connection& from, const ws::message&) const`:
///   an incoming message becomes a room message, is ignored, is refused, or is answered.
/// - `ws::shared_frame welcome(std::size_t online) const`: sent to a member who joins
///   (empty: none).
/// - `ws::shared_frame presence(std::size_t online) const`: sent to everyone when the count
///   changed (empty: none).
///
/// A policy that keeps state per member (`json_policy`: each member's name) declares
/// `using member_type = ...;` (cheap to copy: the room copies it out of its lock to decode)
/// and adds instead:
///
/// - `member_type admit(Connection& conn, const std::vector<member_type>& present) const`:
///   the state of a joining member, knowing who is present (to resolve duplicate names).
/// - `ws::shared_frame welcome(const member_type&, std::size_t online) const`.
/// - `decode_result<message_type> decode(const Connection&, const member_type& from,
///   const ws::message&) const`.
/// - `std::vector<ws::shared_frame> presence(const presence_update<member_type>&) const`:
///   the frames everyone receives when members came or went (join/leave events, a roster).
///
/// Presence announcements are coalesced by the room (`room_options::presence_interval`):
/// the first change is announced at once, later ones at most once per interval, carrying
/// the latest state. `check_policy()` in room.hpp names whatever is missing.
///
/// Thread safety: the room calls these `const` members from its members' strands, so with
/// an io_context run by several threads they may run at the same time (`decode` and an
/// unnumbered `encode` outside the room's lock; `admit`, `welcome`, `presence` and a
/// numbered `encode` under it). A policy that changes state of its own must synchronise it.
/// The room keeps its copy of the policy and gives only const access to it.

/// The classic Node.js `ws` chat: text relayed to every member, sender included; a welcome
/// line for whoever joins; the online count announced on every join and leave.
///
/// Members cannot speak for the server: a text that starts with `presence_prefix`, or is
/// exactly `welcome_text`, is not relayed, since a page that reads the count from lines
/// starting with "Online users: " would believe anyone who sent `Online users: 999`. Its
/// sender gets one line saying why (see `reserved`) and stays connected. An empty
/// `presence_prefix` or `welcome_text` reserves nothing.
///
/// The default policy of `chat::room<>`. Its members only read its settings, so it is safe
/// on any number of threads (see \ref policy_concept).
///
/// ```cpp
/// chat::text_policy policy;
/// policy.welcome_text = "Welcome to #lobby";
/// chat::room<ws::asio_tcp, chat::text_policy> room{policy};
/// ```
struct text_policy {
    /// A room message is the received text itself: a view that the room encodes before the
    /// message handler returns, so relaying copies nothing but the one outgoing frame.
    using message_type = std::string_view;

    /// First line a member receives.
    std::string welcome_text = "Welcome to the chat room!";
    /// Presence announcement, followed by the count: "Online users: 3".
    std::string presence_prefix = "Online users: ";

    /// Text is relayed as is, unless it would pass for one of the server's own lines: then
    /// only its sender hears, in one line, why it was not sent. Binary is refused with 1003
    /// (unsupported data).
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_text())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays text only");
        const std::string why = reserved(in.data);
        if (!why.empty())
            return decode_result<message_type>::answer(ws::make_frame(ws::opcode::text, why));
        return decode_result<message_type>::accept(in.data);
    }
    /// Why `text` may not be relayed — it starts with `presence_prefix`, or it is
    /// `welcome_text` — as the line its sender hears; empty when it may.
    std::string reserved(std::string_view text) const {
        if (!presence_prefix.empty() && text.substr(0, presence_prefix.size()) == presence_prefix)
            return "Not sent: a line starting with \"" + presence_prefix +
                   "\" would pass for the server's online count";
        if (!welcome_text.empty() && text == welcome_text)
            return "Not sent: \"" + welcome_text + "\" would pass for the server's welcome";
        return {};
    }
    /// One text frame holding the text as received.
    ws::shared_frame encode(message_type text) const {
        return ws::make_frame(ws::opcode::text, text);
    }
    /// `welcome_text` as a text frame, whatever the count.
    ws::shared_frame welcome(std::size_t) const {
        return ws::make_frame(ws::opcode::text, welcome_text);
    }
    /// `presence_prefix` followed by the count, as a text frame.
    ws::shared_frame presence(std::size_t online) const {
        return ws::make_frame(ws::opcode::text, presence_prefix + std::to_string(online));
    }
};

/// Raw binary relay for game state and telemetry: binary messages go to every member
/// unchanged; text is refused with 1003; no welcome and no presence frames (the count is
/// still kept: `room::size()`).
///
/// Stateless, so safe on any number of threads.
///
/// ```cpp
/// chat::room<ws::asio_tcp, chat::binary_policy> room;
/// ```
struct binary_policy {
    /// A room message is the received bytes themselves, a view encoded before the message
    /// handler returns.
    using message_type = std::string_view;

    /// Binary is relayed as is; text is refused with 1003 (unsupported data).
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_binary())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays binary only");
        return decode_result<message_type>::accept(in.data);
    }
    /// One binary frame holding the bytes as received.
    ws::shared_frame encode(message_type bytes) const {
        return ws::make_frame(ws::opcode::binary, bytes);
    }
    /// No welcome: an empty frame, which the room does not send.
    ws::shared_frame welcome(std::size_t) const { return {}; }
    /// No presence announcement: an empty frame, which the room does not send.
    ws::shared_frame presence(std::size_t) const { return {}; }
};

WSCHAT_END_NAMESPACE
// ---- end wschat/chat/policy.hpp ----
// ---- begin wschat/chat/room.hpp ----
// wschat — a chat room: membership, broadcast and presence over a message policy.

// ---- begin wschat/chat/detail/member_index.hpp ----
// wschat — where each member sits in a room's member list, found by its connection's
// address in a table that holds only positions.


#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// Finds a member's position in a room's member list by its key (the connection's
/// address). An open-addressing table, at most half full, of 4-byte positions: the key of
/// an entry is read back from the list through `key_of(position)`, which every call that
/// looks at entries takes. A node-based map costs about 40 bytes per member, which is more
/// than a tenth of what an idle connection costs the server; this costs 8 to 16.
///
/// The list is the caller's; the index only follows it, so every call must see the list
/// as it was when the entries it reads were made (see `erase` and `relocate`).
class member_index {
public:
    using position = std::uint32_t;
    static constexpr position absent = std::numeric_limits<position>::max();

    /// The position of `key`, or `absent`.
    template <class KeyOf>
    position find(const void* key, KeyOf key_of) const {
        if (slots_.empty())
            return absent;
        for (std::size_t i = home(key);; i = next(i))
            if (slots_[i] == absent || key_of(slots_[i]) == key)
                return slots_[i];
    }

    /// Adds `key`, not in the index yet, which the list now holds at `at`.
    template <class KeyOf>
    void insert(const void* key, position at, KeyOf key_of) {
        if (2 * (entries_ + 1) > slots_.size())
            rebuild(std::max(min_slots, 2 * slots_.size()), key_of);
        place(key, at);
        ++entries_;
    }

    /// Removes `key`, which must be in the index, before the list loses it.
    template <class KeyOf>
    void erase(const void* key, KeyOf key_of) {
        std::size_t hole = slot_of(key, key_of);
        // Backward-shift deletion: later entries of the same probe run move into the hole
        // when their home is not between the hole and them, so no search stops early.
        for (std::size_t i = next(hole); slots_[i] != absent; i = next(i)) {
            const std::size_t wanted = home(key_of(slots_[i]));
            if (distance(wanted, i) >= distance(hole, i)) {
                slots_[hole] = slots_[i];
                hole = i;
            }
        }
        slots_[hole] = absent;
        --entries_;
        if (slots_.size() > min_slots && 8 * entries_ < slots_.size())
            rebuild(slots_.size() / 2, key_of); // a room that emptied gives its table back
    }

    /// `key`, which must be in the index, moves to position `to`: called before the list
    /// moves it.
    template <class KeyOf>
    void relocate(const void* key, position to, KeyOf key_of) {
        slots_[slot_of(key, key_of)] = to;
    }

    std::size_t size() const noexcept { return entries_; }
    /// Entries the table has room for (twice the most it holds before it grows).
    std::size_t slot_count() const noexcept { return slots_.size(); }

private:
    static constexpr std::size_t min_slots = 16;

    std::size_t mask() const noexcept { return slots_.size() - 1; }
    std::size_t next(std::size_t i) const noexcept { return (i + 1) & mask(); }
    std::size_t distance(std::size_t from, std::size_t to) const noexcept {
        return (to - from) & mask();
    }
    /// Where the search for `key` begins: Fibonacci hashing of the address, whose low bits
    /// are always zero (alignment) and whose high bits rarely differ.
    std::size_t home(const void* key) const noexcept {
        const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key));
        return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15ull) >> 32) & mask();
    }

    template <class KeyOf>
    std::size_t slot_of(const void* key, KeyOf key_of) const {
        std::size_t i = home(key);
        while (key_of(slots_[i]) != key)
            i = next(i);
        return i;
    }

    void place(const void* key, position at) {
        std::size_t i = home(key);
        while (slots_[i] != absent)
            i = next(i);
        slots_[i] = at;
    }

    template <class KeyOf>
    void rebuild(std::size_t slots, KeyOf key_of) {
        std::vector<position> old(slots, absent);
        old.swap(slots_);
        for (const position at : old)
            if (at != absent)
                place(key_of(at), at);
    }

    std::vector<position> slots_;
    std::size_t entries_ = 0;
};

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/chat/detail/member_index.hpp ----
// ---- begin wschat/chat/detail/presence_window.hpp ----
// wschat — how long a room waits between presence announcements.


#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// The window after an announcement of `sent` frames (one per member told): `interval`, or
/// as long as sending them at `frames_per_second` takes, whichever is longer (0 frames per
/// second: `interval` alone). Each frame is a write to one member; bounding their rate keeps
/// a join storm in a large room from spending the server on counts nobody reads.
inline std::chrono::microseconds presence_window(std::chrono::milliseconds interval,
                                                 std::size_t frames_per_second, std::size_t sent) {
    const std::chrono::microseconds plain = interval;
    if (frames_per_second == 0)
        return plain;
    return std::max(plain, std::chrono::microseconds{
                               static_cast<std::int64_t>(sent * 1'000'000 / frames_per_second)});
}

} // namespace detail

WSCHAT_END_NAMESPACE
// ---- end wschat/chat/detail/presence_window.hpp ----
// ---- begin wschat/chat/history.hpp ----
// wschat — a room's recent messages, numbered, for replay and for resuming after a reconnect.


#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// How much of its past a `history` keeps. A message is held while all three bounds allow
/// it; the oldest go first. Setting any bound to 0 turns the history off: nothing is held,
/// but messages are still numbered, so clients can tell that they missed some.
///
/// The defaults bound a room's memory whatever its traffic (a lobby of many rooms multiplies
/// them), while covering what resuming is for: a phone that lost its network for a few
/// minutes, a page reloaded, a server-side reconnect.
struct history_options {
    /// Messages held at most. 1000: a few minutes of a busy room, one screen of scrollback
    /// many times over; it also bounds the entries' own memory (16 B each, see `history`).
    std::size_t max_messages = 1000;
    /// Bytes of frames held at most (each frame's `size()`, header included). 1 MiB: a room
    /// holds at most this much of other people's text, however large its messages.
    std::size_t max_bytes = std::size_t{1} << 20;
    /// How long a message is held. 10 minutes: a client away longer than that reloads the
    /// room rather than replays it, and a quiet room's memory is freed (see
    /// `history::expire`). `std::chrono::seconds::max()`: no bound by age.
    std::chrono::seconds max_age{600};
};

/// Where a client is in a room's stream of messages: the room's epoch and the sequence
/// number of the last message it saw. Clients send it back when they reconnect
/// (`history::since`).
struct stream_position {
    /// The history's epoch: 16 lowercase hexadecimal digits of a random 64-bit value, new
    /// whenever a history is made or reset. It travels as a string, since JavaScript numbers
    /// lose the bits above 2^53.
    std::string epoch;
    /// The number of the last message seen; 0 before the first.
    std::uint64_t sequence = 0;
};

/// What `history::since` found out about a client's position.
enum class recovery_outcome : std::uint8_t {
    recovered,        ///< every message after the position is in `recovery::frames` (maybe none)
    epoch_changed,    ///< the position belongs to another epoch: the history was lost since
    too_old,          ///< some messages after the position are no longer held
    unknown_position, ///< the position is ahead of the history's last message
    too_many,         ///< more messages were missed than the caller is willing to send
};

/// The number of `recovery_outcome` values (for tables indexed by outcome).
inline constexpr std::size_t recovery_outcome_count =
    static_cast<std::size_t>(recovery_outcome::too_many) + 1;

/// The outcome's name as written above ("recovered", "epoch_changed", …): for protocol
/// messages, logs and metric labels. The view refers to a string literal.
constexpr std::string_view to_string(recovery_outcome outcome) noexcept {
    switch (outcome) {
    case recovery_outcome::recovered:
        return "recovered";
    case recovery_outcome::epoch_changed:
        return "epoch_changed";
    case recovery_outcome::too_old:
        return "too_old";
    case recovery_outcome::unknown_position:
        return "unknown_position";
    case recovery_outcome::too_many:
        return "too_many";
    }
    return "unknown";
}

/// The answer of `history::since`.
struct recovery {
    /// Whether the client's gap could be filled.
    recovery_outcome result = recovery_outcome::recovered;
    /// When recovered: the frames the client missed, oldest first, each once (the same
    /// shared frames the members received). Empty for every other outcome.
    std::vector<ws::shared_frame> frames;
    /// The history's position now: where the client is once it has `frames`, or where it
    /// starts again when the gap could not be filled.
    stream_position position;

    /// True when recovered.
    explicit operator bool() const noexcept { return result == recovery_outcome::recovered; }
};

/// A room's history: the frames it broadcast, each numbered (1, 2, 3 … in broadcast order),
/// kept within `history_options`' bounds, so that a member who joins can be shown the recent
/// past (`recent`) and a member who reconnects can be sent exactly what it missed (`since`).
///
/// The frames are the room's encoded broadcast frames themselves: appending one stores a
/// reference (no copy, no re-encoding), and a replay sends the same bytes again. The
/// history always holds the newest messages without a gap: messages
/// `last_sequence() - size() + 1` to `last_sequence()`.
///
/// The epoch names one unbroken numbering: it is random and new whenever a history is made
/// or reset, so a client that saw sequence 40 of a history that was since lost (a restarted
/// server, a room closed and opened again) is told so instead of being sent the wrong
/// messages.
///
/// Time comes in as arguments (no clock of its own), so tests are deterministic. Times are
/// expected not to go back; a time earlier than the newest entry's counts as that entry's.
///
/// Memory: 16 B per entry (the time and the frame reference; the sequence number is implied
/// by the position), in a ring that doubles as it fills, halves once three quarters are
/// empty and is freed when nothing is held: between 16 and 64 B per message held, plus the
/// frames themselves (their bytes and a 40 B block each), which are shared with the send
/// queues they are in.
///
/// Thread safety: none of its own. The room keeps its history under its lock; const members
/// may be called from several threads at once while nobody modifies the history.
///
/// ```cpp
/// chat::history past;                               // the defaults: 1000 messages, 1 MiB, 10 min
/// const auto frame = policy.encode(msg, past.next_sequence());
/// past.append(frame, now);                          // under the room's lock, with the broadcast
/// // a member reconnects, saying it saw {epoch, 41}:
/// chat::recovery r = past.since(seen, 200, now);
/// if (r) for (const auto& f : r.frames) conn->send(f);
/// ```
class history {
public:
    /// What the history reads its time as.
    using clock = std::chrono::steady_clock;

    /// An empty history with a new epoch and the given bounds. Throws what
    /// `ws::random_bytes` throws when the kernel gives no random bytes.
    explicit history(history_options options = {}) : options_(options), epoch_(ws::random_hex(8)) {}

    /// Not copyable: two histories never share an epoch.
    history(const history&) = delete;
    /// Not copyable: two histories never share an epoch.
    history& operator=(const history&) = delete;
    /// Takes `other`'s entries, numbering and epoch; `other` may then only be destroyed or
    /// assigned to.
    history(history&& other) noexcept = default;
    /// Takes `other`'s entries, numbering and epoch; `other` may then only be destroyed or
    /// assigned to.
    history& operator=(history&& other) noexcept = default;

    /// The bounds given at construction.
    const history_options& options() const noexcept { return options_; }

    /// The epoch: 16 lowercase hexadecimal digits, new at construction and at `reset()`.
    const std::string& epoch() const noexcept { return epoch_; }

    /// The number of the last message appended; 0 before the first.
    std::uint64_t last_sequence() const noexcept { return last_; }

    /// The number the next appended message gets, `last_sequence() + 1`: encode the frame
    /// with it, then `append` the frame.
    std::uint64_t next_sequence() const noexcept { return last_ + 1; }

    /// The epoch and the last sequence number: what a client that has seen every message
    /// holds.
    stream_position position() const { return {epoch_, last_}; }

    /// Stores `frame` as message `next_sequence()`, received at `now`, and returns its
    /// number. Then the oldest messages go until the bounds hold again: more than
    /// `max_messages`, more than `max_bytes`, or `max_age` old at `now`. A frame larger than
    /// `max_bytes` is numbered but not held, and neither is anything older (the history
    /// holds no gap). Amortised O(1); copies no bytes.
    std::uint64_t append(ws::shared_frame frame, clock::time_point now) {
        ++last_;
        if (count_ > 0)
            now = std::max(now, at(count_ - 1).time);
        if (!holds_any() || frame.size() > options_.max_bytes) {
            clear();
            return last_;
        }
        // Room is made before the frame goes in, so the ring never grows past what the
        // bounds let it hold. Each entry is looked at once more when it goes: amortised O(1).
        std::size_t dropped = 0;
        std::size_t bytes = bytes_;
        const auto must_go = [&](const entry& oldest) {
            return count_ - dropped >= options_.max_messages ||
                   bytes + frame.size() > options_.max_bytes || aged(oldest, now);
        };
        while (dropped < count_ && must_go(at(dropped)))
            bytes -= at(dropped++).frame.size();
        drop_oldest(dropped);
        if (count_ == ring_.size())
            resize(ring_.empty() ? min_ring : ring_.size() * 2);
        bytes_ += frame.size();
        at(count_++) = entry{now, std::move(frame)};
        return last_;
    }

    /// Drops the messages that are `max_age` old or older at `now`, and the memory they
    /// used. Appending does this too; call it on a timer for rooms that fall quiet.
    void expire(clock::time_point now) {
        std::size_t dropped = 0;
        while (dropped < count_ && aged(at(dropped), now))
            ++dropped;
        drop_oldest(dropped);
    }

    /// What a client that saw `seen` missed, as of `now`:
    /// - another epoch: `epoch_changed`;
    /// - a sequence past `last_sequence()`: `unknown_position`;
    /// - some message after `seen.sequence` no longer held (dropped for a bound, or
    ///   `max_age` old at `now`): `too_old`;
    /// - more than `max_messages` missed: `too_many`;
    /// - otherwise `recovered`, with the frames after `seen.sequence` in order (none when
    ///   `seen` is the last message, or 0 in a history that has none yet).
    ///
    /// `position` is the history's position in every case. O(k) for k frames returned.
    recovery since(const stream_position& seen, std::size_t max_messages,
                   clock::time_point now) const {
        recovery answer;
        answer.position = position();
        if (seen.epoch != epoch_)
            answer.result = recovery_outcome::epoch_changed;
        else if (seen.sequence > last_)
            answer.result = recovery_outcome::unknown_position;
        else if (last_ - seen.sequence > count_ - first_live(now))
            answer.result = recovery_outcome::too_old;
        else if (last_ - seen.sequence > max_messages)
            answer.result = recovery_outcome::too_many;
        else
            answer.frames = frames_from(count_ - static_cast<std::size_t>(last_ - seen.sequence));
        return answer;
    }

    /// The last `n` messages held that are younger than `max_age` at `now` (fewer when fewer
    /// are), oldest first: what a member who joins may be shown. O(k) for k frames.
    std::vector<ws::shared_frame> recent(std::size_t n, clock::time_point now) const {
        const std::size_t live = count_ - first_live(now);
        return frames_from(count_ - std::min(n, live));
    }

    /// Messages held (some may be `max_age` old already if nothing appended or expired
    /// since).
    std::size_t size() const noexcept { return count_; }

    /// Bytes of the frames held (the sum of their `size()`).
    std::size_t bytes() const noexcept { return bytes_; }

    /// The history is lost: a new epoch, numbering from 1 again, nothing held (the memory is
    /// freed). Clients that resume with a position of the old epoch get `epoch_changed`.
    void reset() {
        epoch_ = ws::random_hex(8);
        last_ = 0;
        clear();
    }

    /// The history takes up a numbering kept elsewhere (a cluster bus's): epoch `epoch`,
    /// message `last` the last one, nothing held; the next appended is `last + 1`.
    void restart(std::string epoch, std::uint64_t last) {
        epoch_ = std::move(epoch);
        last_ = last;
        clear();
    }

private:
    struct entry {
        clock::time_point time;
        ws::shared_frame frame;
    };

    /// The smallest ring, and the one below which it does not shrink.
    static constexpr std::size_t min_ring = 8;

    bool holds_any() const noexcept {
        return options_.max_messages > 0 && options_.max_bytes > 0 && options_.max_age.count() > 0;
    }

    /// True when `e` is `max_age` old at `now`. Compared in whole seconds, the unit of
    /// `max_age`, so that a huge `max_age` (seconds::max() for "no age bound") cannot
    /// overflow a conversion to the clock's nanoseconds.
    bool aged(const entry& e, clock::time_point now) const noexcept {
        return std::chrono::duration_cast<std::chrono::seconds>(now - e.time) >= options_.max_age;
    }

    /// The i-th oldest entry held; the ring's size is a power of two.
    entry& at(std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    const entry& at(std::size_t i) const noexcept {
        return ring_[(head_ + i) & (ring_.size() - 1)];
    }

    /// How many of the oldest entries are `max_age` old at `now` (times never decrease
    /// along the ring, so a binary search finds the first younger one): for the const
    /// readers, which drop nothing.
    std::size_t first_live(clock::time_point now) const {
        std::size_t low = 0;
        std::size_t high = count_;
        while (low < high) {
            const std::size_t middle = low + (high - low) / 2;
            if (aged(at(middle), now))
                low = middle + 1;
            else
                high = middle;
        }
        return low;
    }

    /// The frames of entries `from` to the newest, oldest first.
    std::vector<ws::shared_frame> frames_from(std::size_t from) const {
        std::vector<ws::shared_frame> frames;
        frames.reserve(count_ - from);
        for (std::size_t i = from; i < count_; ++i)
            frames.push_back(at(i).frame);
        return frames;
    }

    /// Drops the `n` oldest entries, then halves the ring while three quarters of it are
    /// empty (amortised O(1) per entry, like the doubling), or frees it when nothing is
    /// left.
    void drop_oldest(std::size_t n) {
        if (n == 0)
            return;
        for (std::size_t i = 0; i < n; ++i) {
            entry& oldest = at(i);
            bytes_ -= oldest.frame.size();
            oldest.frame = {};
        }
        count_ -= n;
        head_ = (head_ + n) & (ring_.size() - 1);
        if (count_ == 0)
            return clear(); // an idle room holds no ring at all
        std::size_t size = ring_.size();
        while (size > min_ring && count_ <= size / 4)
            size /= 2;
        if (size != ring_.size())
            resize(size);
    }

    /// Moves the entries, oldest first, into a ring of `size` slots (a power of two, at
    /// least count_).
    void resize(std::size_t size) {
        std::vector<entry> next(size);
        for (std::size_t i = 0; i < count_; ++i)
            next[i] = std::move(at(i));
        ring_ = std::move(next);
        head_ = 0;
    }

    void clear() {
        ring_ = {};
        head_ = 0;
        count_ = 0;
        bytes_ = 0;
    }

    history_options options_;
    std::string epoch_;
    std::uint64_t last_ = 0;  // the last sequence number given
    std::vector<entry> ring_; // empty, or a power of two slots
    std::size_t head_ = 0;    // the oldest entry's slot
    std::size_t count_ = 0;   // entries held
    std::size_t bytes_ = 0;   // their frames' bytes
};

WSCHAT_END_NAMESPACE
// ---- end wschat/chat/history.hpp ----

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/wait_traits.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {
template <class P, class = void>
struct has_message_type : std::false_type {};
template <class P>
struct has_message_type<P, std::void_t<typename P::message_type>> : std::true_type {};

/// A policy with per-member state declares `member_type`.
template <class P, class = void>
struct has_member_type : std::false_type {};
template <class P>
struct has_member_type<P, std::void_t<typename P::member_type>> : std::true_type {};

template <class P, class Connection, class = void>
struct has_decode : std::false_type {};
template <class P, class Connection>
struct has_decode<P, Connection,
                  std::void_t<decltype(std::declval<const P&>().decode(
                      std::declval<const Connection&>(), std::declval<const ws::message&>()))>>
    : std::true_type {};

template <class P, class = void>
struct has_encode : std::false_type {};
template <class P>
struct has_encode<P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().encode(
                         std::declval<const typename P::message_type&>())})>> : std::true_type {};

/// `encode(message, sequence)`: the room numbers the messages it broadcasts.
template <class P, class = void>
struct has_sequenced_encode : std::false_type {};
template <class P>
struct has_sequenced_encode<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().encode(
           std::declval<const typename P::message_type&>(), std::uint64_t{})})>> : std::true_type {
};

template <class P, class = void>
struct has_announcements : std::false_type {};
template <class P>
struct has_announcements<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().welcome(std::size_t{})}),
                   decltype(ws::shared_frame{std::declval<const P&>().presence(std::size_t{})})>>
    : std::true_type {};

// The hooks of a policy with per-member state (only instantiated when it has member_type).
template <class P, class Connection, class = void>
struct has_admit : std::false_type {};
template <class P, class Connection>
struct has_admit<P, Connection,
                 std::void_t<decltype(typename P::member_type{std::declval<const P&>().admit(
                     std::declval<Connection&>(),
                     std::declval<const std::vector<typename P::member_type>&>())})>>
    : std::true_type {};

template <class P, class Connection, class = void>
struct has_member_decode : std::false_type {};
template <class P, class Connection>
struct has_member_decode<
    P, Connection,
    std::void_t<decltype(std::declval<const P&>().decode(
        std::declval<const Connection&>(), std::declval<const typename P::member_type&>(),
        std::declval<const ws::message&>()))>> : std::true_type {};

template <class P, class = void>
struct has_member_announcements : std::false_type {};
template <class P>
struct has_member_announcements<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().welcome(
                       std::declval<const typename P::member_type&>(), std::size_t{})}),
                   decltype(std::vector<ws::shared_frame>{std::declval<const P&>().presence(
                       std::declval<const presence_update<typename P::member_type>&>())})>>
    : std::true_type {};

/// The per-member state of a policy without any.
struct no_member_state {};
template <class P, bool = has_member_type<P>::value>
struct member_state {
    using type = no_member_state;
};
template <class P>
struct member_state<P, true> {
    using type = typename P::member_type;
};
} // namespace detail

/// Checks a Policy type at compile time, one readable message per missing piece.
template <class Policy, class Transport>
constexpr bool check_policy() {
    using connection = ws::connection<Transport>;
    static_assert(detail::has_message_type<Policy>::value,
                  "wschat Policy: missing `using message_type = ...`");
    if constexpr (detail::has_message_type<Policy>::value) {
        static_assert(detail::has_encode<Policy>::value ||
                          detail::has_sequenced_encode<Policy>::value,
                      "wschat Policy: missing `ws::shared_frame encode(const message_type&) "
                      "const` (or `encode(const message_type&, std::uint64_t sequence) const`)");
        if constexpr (detail::has_member_type<Policy>::value) {
            static_assert(detail::has_admit<Policy, connection>::value,
                          "wschat Policy with member_type: missing `member_type admit(Connection&, "
                          "const std::vector<member_type>& present) const`");
            static_assert(detail::has_member_decode<Policy, connection>::value,
                          "wschat Policy with member_type: missing `decode_result<message_type> "
                          "decode(const Connection&, const member_type&, const ws::message&) "
                          "const`");
            static_assert(detail::has_member_announcements<Policy>::value,
                          "wschat Policy with member_type: missing `ws::shared_frame "
                          "welcome(const member_type&, std::size_t) const` or "
                          "`std::vector<ws::shared_frame> presence(const "
                          "presence_update<member_type>&) const`");
        } else {
            static_assert(detail::has_decode<Policy, connection>::value,
                          "wschat Policy: missing `decode_result<message_type> decode(const "
                          "Connection& from, const ws::message&) const`");
            static_assert(detail::has_announcements<Policy>::value,
                          "wschat Policy: missing `ws::shared_frame welcome(std::size_t) const` "
                          "or `ws::shared_frame presence(std::size_t) const`");
        }
    }
    return true;
}

/// How a room behaves, beyond its policy.
struct room_options {
    /// Presence announcements are coalesced: the first change after a quiet period is
    /// announced at once (a lone join sees its count promptly), further changes at most once
    /// per window with the latest state, instead of one announcement to everyone per join.
    /// The timer runs on the server's io_context once the room is attached (or on the
    /// executor given to the constructor); zero announces every change at once.
    std::chrono::milliseconds presence_interval{50};
    /// The room's recent messages, kept as the frames its members received (no copy, no
    /// re-encoding). Keeps none by default: the three-line chat starts a newcomer with an
    /// empty page, as the classic Node `ws` chat does. `chat::lobby` rooms keep history by
    /// default, with positions for resume. Only `max_messages` is 0 here: setting it turns
    /// history on with the byte and age bounds of `history_options`.
    history_options history{0, history_options{}.max_bytes, history_options{}.max_age};
    /// Of the messages kept, how many a joiner receives right after its welcome, oldest
    /// first (Asio's chat example replays its last 100): a reloaded page shows the recent
    /// conversation.
    std::size_t replay_on_join = 0;
    /// How many presence frames per second a room sends at most, on average, while its
    /// members keep coming and going, so that presence cannot eat the server in a large
    /// room: after an announcement to N members the next waits N / presence_frames_per_second
    /// seconds (at least `presence_interval`). Each frame is a write to one member, a system
    /// call costing about a third of a handshake: at a fixed interval, a join storm of N
    /// members lasting T would cost every member T / interval announcements, O(N) frames
    /// per interval, and the slower the storm went the more. With the bound, churn costs
    /// the room at most about this many frames per second, and a storm the fewer
    /// announcements per member the faster it comes (fewer than one from some 3500 joins per
    /// second); the count still converges, within N / presence_frames_per_second of the
    /// last change. Rooms of up to presence_frames_per_second * presence_interval members
    /// (100 by default) keep the plain interval. Zero: every window is `presence_interval`.
    std::size_t presence_frames_per_second = 2000;
};

/// A set of connections that hear each other.
///
/// Every message a member sends is decoded by the Policy and broadcast to every member,
/// sender included: encoded once into one shared frame that every member's send queue
/// references. A member who joins gets the Policy's welcome at once; joins and leaves are
/// announced to all (coalesced, see `room_options::presence_interval`). `size()` is the
/// presence count.
///
/// ```cpp
/// ws::server<> server{io, opts};
/// chat::room<> room;  // plain text, the classic Node `ws` chat
/// room.attach(server); // every connection joins; messages are relayed; leaving is counted
/// ```
///
/// Thread safety: every member function may be called from any thread.
template <class Transport = ws::asio_tcp, class Policy = text_policy>
class room {
    static_assert(check_policy<Policy, Transport>());
    static constexpr bool has_members = detail::has_member_type<Policy>::value;

public:
    /// A member, as the server's handlers hand it over.
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;
    /// What the policy decodes a member's message into and encodes for everyone.
    using message_type = typename Policy::message_type;
    /// The policy's per-member state (an empty struct for policies without any).
    using member_type = typename detail::member_state<Policy>::type;

    /// A room that coalesces its presence announcements on the io_context of the first
    /// server it is attached to (until then, or without one, it announces at once).
    explicit room(Policy policy = {}, room_options options = {});

    /// A room whose presence announcements are coalesced on timers of `executor` (for a
    /// room used without `attach`).
    explicit room(const asio::io_context::executor_type& executor, Policy policy = {},
                  room_options options = {});

    /// Makes every connection of `server` that opens from now on a member for as long as it
    /// is open: joins on open, relays its messages, leaves on close. The server's handlers
    /// refer to the room weakly, so destroying the room simply ends its part. May be called
    /// from any thread, also while the server's io_context runs; attaching to a server the
    /// room is attached to already does nothing.
    void attach(ws::server<Transport>& server);

    /// Undoes `attach(server)`: the room stops hearing `server`, and that server's members
    /// leave the room (the others are told, as for any leave). Their connections stay open.
    /// May be called from any thread, also while the io_context runs; a no-op when the room
    /// is not attached to `server`.
    void detach(ws::server<Transport>& server);

    /// Adds a member (for routing of your own instead of `attach`). Joining twice is a
    /// no-op.
    void join(const connection_ptr& conn);
    /// Removes a member; a no-op for a non-member.
    void leave(const connection_ptr& conn);
    /// Handles a message from `from` as if the room were attached: decode, reply, broadcast.
    void receive(const connection_ptr& from, const ws::message& msg);

    /// Sends a room message to every member (encoded once).
    void broadcast(const message_type& msg);
    /// Sends an already encoded frame to every member.
    void broadcast(const ws::shared_frame& frame);

    /// The number of members: the online count.
    std::size_t size() const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        return state_->members.size();
    }

    /// The policy's state of member `conn` (its assigned name, for json_policy), or nothing
    /// when `conn` is not a member.
    std::optional<member_type> member(const connection_ptr& conn) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const auto at = state_->position_of(conn.get());
        if (at == detail::member_index::absent)
            return std::nullopt;
        return state_->data[at];
    }

    /// The room's policy (immutable once the room is made, so safe from any thread).
    const Policy& policy() const noexcept { return state_->policy; }

private:
    // On the io_context's own executor type, not Asio's type-erased default `steady_timer`,
    // whose machinery would cost every program some 20 KB of code.
    using timer_type = asio::basic_waitable_timer<std::chrono::steady_clock,
                                                  asio::wait_traits<std::chrono::steady_clock>,
                                                  asio::io_context::executor_type>;

    struct state : std::enable_shared_from_this<state> {
        state(Policy p, const room_options& options)
            : policy(std::move(p)), messages(options.history),
              keeps_history(options.history.max_messages > 0 && options.history.max_bytes > 0 &&
                            options.history.max_age.count() > 0),
              options(options) {}

        using clock = std::chrono::steady_clock;

        void join(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            if (position_of(conn.get()) != detail::member_index::absent)
                return;
            member_type who{};
            if constexpr (has_members)
                who = policy.admit(*conn, data);
            members.push_back(conn);
            data.push_back(who);
            index.insert(conn.get(), static_cast<position>(members.size() - 1), key_of());
            // Under the lock, so that a welcome always precedes the presence that counts
            // its member.
            if constexpr (has_members) {
                joined.push_back(std::move(who));
                if (ws::shared_frame hello = policy.welcome(data.back(), members.size()))
                    conn->send(std::move(hello));
            } else if (ws::shared_frame hello = policy.welcome(members.size())) {
                conn->send(std::move(hello));
            }
            if (options.replay_on_join > 0)
                for (const ws::shared_frame& past :
                     messages.recent(options.replay_on_join, clock::now()))
                    conn->send(past);
            presence_changed();
        }

        void leave(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            const position at = position_of(conn.get());
            if (at == detail::member_index::absent)
                return;
            index.erase(conn.get(), key_of());
            if constexpr (has_members)
                left.push_back(std::move(data[at]));
            if (at + 1 != members.size()) { // swap-remove, keeping `index` in step
                index.relocate(members.back().get(), at, key_of());
                members[at] = std::move(members.back());
                data[at] = std::move(data.back());
            }
            members.pop_back();
            data.pop_back();
            presence_changed();
        }

        bool is_member(const connection_ptr& conn) const {
            std::lock_guard<std::mutex> lock{mutex};
            return position_of(conn.get()) != detail::member_index::absent;
        }

        void receive(const connection_ptr& from, const ws::message& msg) {
            decode_result<message_type> result;
            if constexpr (has_members) {
                member_type who;
                {
                    std::lock_guard<std::mutex> lock{mutex};
                    const position at = position_of(from.get());
                    if (at == detail::member_index::absent)
                        return; // left meanwhile
                    who = data[at];
                }
                result = policy.decode(*from, who, msg);
            } else {
                result = policy.decode(*from, msg);
            }
            if (result.reply)
                from->send(std::move(result.reply));
            if (result.refusal)
                return from->close(*result.refusal, result.reason);
            if (result.message)
                publish(*result.message);
        }

        void publish(const message_type& msg) {
            if constexpr (detail::has_sequenced_encode<Policy>::value) {
                // Numbered and encoded under the lock: numbers follow delivery order.
                std::lock_guard<std::mutex> lock{mutex};
                deliver(policy.encode(msg, ++sequence));
            } else {
                broadcast(policy.encode(msg));
            }
        }

        void broadcast(const ws::shared_frame& frame) {
            std::lock_guard<std::mutex> lock{mutex};
            deliver(frame);
        }

        /// A room message to everyone, kept in the history when the room keeps one (called
        /// with the mutex held).
        void deliver(const ws::shared_frame& frame) {
            if (keeps_history && frame)
                messages.append(frame, clock::now());
            send_to_all(frame);
        }

        // --- coalesced presence (called with the mutex held) ---------------------------

        /// Leading edge at once; within the window only remember that something changed.
        void presence_changed() {
            if (window_open) {
                changed_in_window = true;
                return;
            }
            open_window(announce_presence());
        }

        /// Opens the window after an announcement of `sent` frames: the interval, or as long
        /// as spreading them at the room's rate takes.
        void open_window(std::size_t sent) {
            if (!executor || options.presence_interval.count() <= 0)
                return;
            window_open = true;
            const auto window = detail::presence_window(options.presence_interval,
                                                        options.presence_frames_per_second, sent);
            // The timer belongs to its own wait handler, not to the room: it goes when the
            // wait completes or when the io_context is destroyed with the handler, so a room
            // may outlive the io_context (as it does when declared before its server).
            auto timer = std::make_shared<timer_type>(*executor, window);
            timer->async_wait([weak = this->weak_from_this(), timer](std::error_code ec) {
                if (auto self = weak.lock(); self && !ec)
                    self->window_closed();
            });
        }

        /// Trailing edge: what changed during the window is announced, and another window
        /// begins; a quiet window ends the coalescing.
        void window_closed() {
            ws::cork corked{*executor}; // the announcement leaves in one batch
            std::lock_guard<std::mutex> lock{mutex};
            window_open = false;
            if (!changed_in_window)
                return;
            changed_in_window = false;
            open_window(announce_presence());
        }

        /// Sends the presence frames to everyone; returns how many frames were sent.
        std::size_t announce_presence() {
            std::size_t sent = 0;
            if constexpr (has_members) {
                const presence_update<member_type> update{members.size(), data, joined, left};
                for (const ws::shared_frame& frame : policy.presence(update))
                    sent += send_to_all(frame);
                joined.clear();
                left.clear();
            } else if (ws::shared_frame count = policy.presence(members.size())) {
                sent += send_to_all(count);
            }
            return sent;
        }

        /// Sends `frame` to every member; returns how many it went to.
        std::size_t send_to_all(const ws::shared_frame& frame) {
            if (!frame)
                return 0;
            for (const connection_ptr& member : members)
                member->send(frame);
            return members.size();
        }

        // --- the member list and its index (called with the mutex held) -----------------

        using attachment = std::pair<const ws::server<Transport>*, ws::handler_id>;

        auto attachment_of(const ws::server<Transport>& server) {
            return std::find_if(attachments.begin(), attachments.end(),
                                [&](const attachment& a) { return a.first == &server; });
        }

        using position = detail::member_index::position;

        /// Where `conn` is in `members` and `data`, or member_index::absent.
        position position_of(const ws::connection<Transport>* conn) const {
            return index.find(conn, key_of());
        }

        /// How the index reads the key at a position back from the list.
        auto key_of() const {
            return [this](position at) -> const void* { return members[at].get(); };
        }

        const Policy policy;
        mutable std::mutex mutex;
        std::vector<attachment> attachments; // the servers attach() added handlers to
        std::vector<connection_ptr> members;
        std::vector<member_type> data; // data[i] belongs to members[i]
        detail::member_index index;    // into both
        std::uint64_t sequence = 0;    // of the last numbered message
        history messages;              // recent room messages (room_options::history)
        bool keeps_history = false;
        // Coalescing: on when the room has an executor (given, or the attached server's).
        std::optional<asio::io_context::executor_type> executor;
        room_options options;
        bool window_open = false;
        bool changed_in_window = false;
        std::vector<member_type> joined; // since the last announcement (member policies)
        std::vector<member_type> left;
    };

    std::shared_ptr<state> state_;
};

// The members that reach into the room's state are defined out of the class: not being
// inline, they are not instantiated in a unit that sees them declared `extern template`
// (separate compilation, <wschat/chat/detail/extern_templates.hpp>), where the compiler would
// otherwise instantiate everything behind them to consider inlining it.

template <class Transport, class Policy>
room<Transport, Policy>::room(Policy policy, room_options options)
    : state_(std::make_shared<state>(std::move(policy), options)) {
}

template <class Transport, class Policy>
room<Transport, Policy>::room(const asio::io_context::executor_type& executor, Policy policy,
                              room_options options)
    : state_(std::make_shared<state>(std::move(policy), options)) {
    state_->executor = executor;
}

template <class Transport, class Policy>
void room<Transport, Policy>::attach(ws::server<Transport>& server) {
    std::lock_guard<std::mutex> lock{state_->mutex};
    if (!state_->executor)
        state_->executor = server.get_executor();
    if (state_->attachment_of(server) != state_->attachments.end())
        return;
    std::weak_ptr<state> weak = state_;
    const ws::handler_id id = server.add_handlers({
        [weak](const connection_ptr& conn) {
            if (auto s = weak.lock())
                s->join(conn);
        },
        [weak](const connection_ptr& conn, const ws::message& msg) {
            // A connection opened before the room was attached is not a member (receive
            // itself checks that for policies with member state).
            if (auto s = weak.lock(); s && (has_members || s->is_member(conn)))
                s->receive(conn, msg);
        },
        [weak](const connection_ptr& conn, const ws::close_info&) {
            if (auto s = weak.lock())
                s->leave(conn);
        },
    });
    state_->attachments.emplace_back(&server, id);
}

template <class Transport, class Policy>
void room<Transport, Policy>::detach(ws::server<Transport>& server) {
    std::vector<connection_ptr> leaving;
    {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const auto at = state_->attachment_of(server);
        if (at == state_->attachments.end())
            return;
        server.remove_handlers(at->second);
        state_->attachments.erase(at);
        for (const connection_ptr& member : state_->members)
            if (server.serves(*member))
                leaving.push_back(member);
    }
    for (const connection_ptr& member : leaving)
        state_->leave(member);
}

template <class Transport, class Policy>
void room<Transport, Policy>::join(const connection_ptr& conn) {
    state_->join(conn);
}

template <class Transport, class Policy>
void room<Transport, Policy>::leave(const connection_ptr& conn) {
    state_->leave(conn);
}

template <class Transport, class Policy>
void room<Transport, Policy>::receive(const connection_ptr& from, const ws::message& msg) {
    state_->receive(from, msg);
}

template <class Transport, class Policy>
void room<Transport, Policy>::broadcast(const message_type& msg) {
    state_->publish(msg);
}

template <class Transport, class Policy>
void room<Transport, Policy>::broadcast(const ws::shared_frame& frame) {
    state_->broadcast(frame);
}

WSCHAT_END_NAMESPACE

// ---- begin wschat/chat/detail/extern_templates.hpp ----
// wschat — separate compilation of rooms: which instantiations the compiled library holds.
//
// With WSCHAT_SEPARATE_COMPILATION defined (see <wschat/ws/detail/extern_templates.hpp>), the
// rooms of the shipped policies over the shipped plain transports are declared
// `extern template`, defined once in src/wschat.cpp. Without it nothing is declared.


/// The rooms the library holds: declared with `how` = `extern template`, defined with
/// `how` = `template`.
#define WSCHAT_ROOM_INSTANTIATIONS(how)                                                            \
    how class ::chat::room<::ws::asio_tcp, ::chat::text_policy>;                                   \
    how class ::chat::room<::ws::asio_tcp, ::chat::binary_policy>;                                 \
    how class ::chat::room<::ws::asio_local, ::chat::text_policy>;                                 \
    how class ::chat::room<::ws::asio_local, ::chat::binary_policy>;

#ifdef WSCHAT_SEPARATE_COMPILATION
WSCHAT_ROOM_INSTANTIATIONS(extern template)
#endif
// ---- end wschat/chat/detail/extern_templates.hpp ----
// ---- end wschat/chat/room.hpp ----

/// \namespace ws
/// The WebSocket layer: RFC 6455 framing and handshake, the server, its connections and
/// transports.
///
/// Usable on its own, without the chat layer: `ws::server` hands each connection to the
/// application's handlers. Every name lives in a versioned inline namespace
/// (`ws::v0_1`), which user code never needs to spell.

/// \namespace chat
/// The chat layer over `ws`: rooms that broadcast, count presence, and the message
/// policies that decide what a room's messages are.
// ---- end wschat/wschat.hpp ----
