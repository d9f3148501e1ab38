// wschat — one peer: handshake, read loop, send queue with gather writes, close handshake.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/detail/frame_queue.hpp>
#include <wschat/ws/detail/socket_io.hpp>
#include <wschat/ws/detail/spin_lock.hpp>
#include <wschat/ws/detail/strand_pool.hpp>
#include <wschat/ws/detail/upgrade.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/session.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

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
template <class Transport>
class server_core;

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
        : owner_(std::move(owner)), session_(owner_->limits()), id_(id) {
        last_seen_.store(time_source::ticks_at(now()), std::memory_order_relaxed);
        set_remote_address(remote_address);
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Normally the socket is closed when the connection finishes; this is for a connection
    /// dropped unfinished with its io_context.
    ~connection() {
        if constexpr (plain_socket)
            if (io_.fd >= 0)
                detail::close_socket(io_.fd);
    }

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
    std::size_t queued_bytes() const {
        std::lock_guard<detail::spin_lock> lock{queue_lock_};
        return queued_bytes_;
    }

private:
    template <class>
    friend class detail::server_core;
    friend readiness_type;

    enum class state : std::uint8_t { handshake, open, closing, closed };

    // What few open connections need, behind one pointer: a request rebuilt by request(),
    // a subprotocol (most peers ask for none) and how the connection ended.
    struct seldom_state {
        std::optional<http_request> opened_by; // made from target() by request()
        std::string subprotocol;
        close_info end;
    };

    const server_options& options() const noexcept { return owner_->options(); }
    const Transport& transport() const noexcept { return owner_->transport(); }
    strand_type& strand() const noexcept { return owner_->strand_of(id_); }
    using time_source = detail::time_source;
    using clock = time_source::clock;
    clock::time_point now() const noexcept { return owner_->time().now(); }

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
        void closed() { self.finish({}); } // the peer answered our Close
    };

    // --- start-up, called by the server on the connection's strand ----------------------

    /// Runs the transport's handshake on `stream`, then reads. A plain socket's stream
    /// lives only until then, and its descriptor joins the owner's readiness set.
    void start(stream_type stream) {
        set_deadline(options().handshake_timeout, error::handshake_timeout);
        if constexpr (plain_socket) {
            io_.handshaking = std::make_unique<stream_type>(std::move(stream));
            transport().async_handshake(
                *io_.handshaking,
                asio::bind_executor(strand(), [self = this->shared_from_this()](
                                                  std::error_code ec) { self->adopt(ec); }));
        } else {
            io_.stream.emplace(std::move(stream));
            transport().async_handshake(
                *io_.stream, asio::bind_executor(
                                 strand(), [self = this->shared_from_this()](std::error_code ec) {
                                     if (ec)
                                         return self->finish(ec);
                                     self->read_some();
                                 }));
        }
    }

    /// A plain socket's transport handshake is done: its descriptor leaves Asio (and the
    /// stream, which then closes nothing) for the readiness set, non-blocking. The set
    /// reports it writable at once, which makes the first read.
    void adopt(std::error_code ec) {
        // Destroyed on return, now that the handshake no longer uses it.
        const std::unique_ptr<stream_type> stream = std::move(io_.handshaking);
        if (state_ == state::closed)
            return; // ended during the handshake, whose stream close_stream() closed
        if (!ec)
            stream->non_blocking(true, ec);
        if (!ec)
            io_.fd = stream->release(ec);
        if (!ec)
            ec = owner_->readiness()->add(io_.fd, *this);
        if (ec)
            finish(ec);
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
        if (due_at(now, current) != due::nothing)
            return asio::post(strand(),
                              [self = this->shared_from_this(), now] { self->expire(now); });
        if (ping && current == state::open)
            enqueue(ping);
    }

    enum class due : std::uint8_t { nothing, deadline, silent, idle };

    /// What is due at `now`, the first of: the deadline passed, the peer silent past the
    /// heartbeat timeout, no message past the idle timeout. Reads only atomics.
    due due_at(clock::time_point now, state current) const {
        const clock::rep ticks = time_source::ticks_at(now);
        // A sweep that reads the state before a change and the mark after it may find
        // something due that is not: expire() asks again on the strand, where both are
        // current, so that costs a post and nothing more.
        const clock::rep mark = deadline_or_last_message_.load(std::memory_order_relaxed);
        if (current != state::open)
            return mark != 0 && ticks >= mark ? due::deadline : due::nothing;
        if (options().heartbeat_interval.count() > 0 &&
            ticks - last_seen_.load(std::memory_order_relaxed) >=
                time_source::ticks_of(options().heartbeat_timeout))
            return due::silent;
        if (options().idle_timeout.count() > 0 &&
            ticks - mark >= time_source::ticks_of(options().idle_timeout))
            return due::idle;
        return due::nothing;
    }

    /// On the strand: ends the connection for what the sweep found due, if it still is.
    void expire(clock::time_point now) {
        const state current = state_;
        if (current == state::closed)
            return;
        switch (due_at(now, current)) {
        case due::nothing:
            return;
        case due::deadline:
            return finish(deadline_error_);
        case due::silent:
            return finish(error::heartbeat_timeout);
        case due::idle:
            return fail(error::idle_timeout);
        }
    }

    /// The server is stopping: open connections get a Close frame with 1001, those still
    /// in their handshake are dropped.
    void go_away() {
        if (state_ == state::open)
            start_close(static_cast<std::uint16_t>(close_code::going_away), "server shutting down",
                        error::server_stopping);
        else if (state_ == state::handshake)
            finish(error::server_stopping);
    }

    /// Ends the connection at once, without a close handshake (server destruction).
    void abort() {
        asio::post(strand(),
                   [self = this->shared_from_this()] { self->finish(error::server_stopping); });
    }

    // --- reading ---------------------------------------------------------------------------

    // After our Close (or an HTTP answer) both kinds of stream keep reading, and discarding,
    // until the peer closes: closing a socket with unread data would reset the connection
    // and could destroy the Close frame or response still in flight to the peer.

    /// Plain sockets, from the readiness set's strand: the socket became readable or
    /// writable or both (`events`, epoll's). Schedules one on_ready at a time, which sees
    /// every event reported until it begins. Dispatched: when the connection's strand is
    /// free it runs at once, inside the set's hand-out, as Asio's reactor would run a read;
    /// posted, it would wait behind every handler queued meanwhile (a broadcast's writes).
    void ready(std::uint32_t events) {
        if (first_report(events))
            asio::dispatch(strand(), [self = this->shared_from_this()] { self->on_ready(); });
    }

    /// Records `events` for the next on_ready; true when none was scheduled yet.
    bool first_report(std::uint32_t events) {
        return io_.events.fetch_or(static_cast<event_bits>(events), std::memory_order_acq_rel) == 0;
    }

    void on_ready() {
        const std::uint32_t events = io_.events.exchange(0, std::memory_order_acq_rel);
        if (state_ == state::closed)
            return;
        if (io_.awaiting_writable) {
            io_.awaiting_writable = false;
            write_directly();
        }
        read_available(events);
    }

    /// Plain sockets: reads what has arrived into the thread's read buffer and handles it
    /// before returning, so an idle connection holds no read buffer. Edge-triggered
    /// readiness is reported once per change, so reading goes on until the socket is
    /// drained, which a short read shows (unless the peer's end or an error came with the
    /// data: that is read next). One buffer per turn on the strand, so that other
    /// connections, and what this one posted (a queue-overflow close), go in between.
    void read_available(std::uint32_t events) {
        std::uint8_t* bytes = detail::thread_read_buffer(options().read_buffer_size);
        std::error_code ec;
        const std::size_t size = detail::read_socket(io_.fd, bytes, options().read_buffer_size, ec);
        if (ec == asio::error::would_block)
            return;
        if (ec)
            return peer_vanished(ec);
        handle_bytes(bytes, size);
        const bool drained =
            size < options().read_buffer_size && (events & readiness_type::ending) == 0;
        // No new report would announce the rest: read it on a later turn.
        if (state_ != state::closed && !drained && first_report(events | readiness_type::readable))
            asio::post(strand(), [self = this->shared_from_this()] { self->on_ready(); });
    }

    /// Other streams (TLS): one asynchronous read at a time into the connection's buffer.
    void read_some() {
        if (!io_.read_buffer)
            io_.read_buffer.reset(new std::uint8_t[options().read_buffer_size]); // not zeroed
        io_.stream->async_read_some(
            asio::buffer(io_.read_buffer.get(), options().read_buffer_size),
            asio::bind_executor(
                strand(), [self = this->shared_from_this()](std::error_code ec, std::size_t size) {
                    self->on_read(ec, size);
                }));
    }

    void on_read(std::error_code ec, std::size_t size) {
        if (state_ == state::closed)
            return;
        if (ec)
            return peer_vanished(ec);
        handle_bytes(io_.read_buffer.get(), size);
        if (state_ != state::closed)
            read_some();
    }

    void handle_bytes(std::uint8_t* bytes, std::size_t size) {
        // Whatever the messages read here make the server send (a broadcast to every member,
        // a pong, a close) leaves when the parsing is done, not through the event loop.
        cork corked{strand().get_inner_executor()};
        last_seen_.store(time_source::ticks_at(now()), std::memory_order_relaxed);
        if (state_ == state::handshake)
            consume_request(bytes, size);
        else
            receive(bytes, size);
        session_.release_memory(); // frees the reassembly buffer unless a message is partial
    }

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
        case request_parser::state::failed:
            return reply(detail::refusal(request_parser_->error()));
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
            return reply(answer);
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
        keep_request_line(req);
        enqueue(raw_bytes(answer.response.serialize()));
        // The handshake deadline is over; the idle timeout counts from here.
        deadline_or_last_message_.store(time_source::ticks_at(now()), std::memory_order_relaxed);
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

    /// Hands bytes of an open connection to the session, with the time they arrived.
    void receive(std::uint8_t* bytes, std::size_t size) {
        session_sink sink{*this};
        const clock::time_point arrived{
            clock::duration{last_seen_.load(std::memory_order_relaxed)}};
        session_.receive(bytes, size, arrived, sink);
    }

    /// A message passed the session's checks: it counts against the idle timeout and goes
    /// to the handlers.
    void deliver(opcode op, std::string_view payload) {
        deadline_or_last_message_.store(last_seen_.load(std::memory_order_relaxed),
                                        std::memory_order_relaxed);
        owner_->received(this->shared_from_this(), message{op, payload});
    }

    // --- closing ---------------------------------------------------------------------------

    /// Starts the closing handshake of an open connection.
    void start_close(std::uint16_t code, std::string_view reason, std::error_code why) {
        session_sink sink{*this};
        if (state_ == state::open)
            session_.close(code, reason, why, sink);
    }

    /// A protocol violation or policy breach of an open connection: close with the mapped
    /// code.
    void fail(std::error_code ec) {
        session_sink sink{*this};
        if (state_ == state::open)
            session_.fail(ec, sink);
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
        set_deadline(options().close_timeout, error::close_timeout);
        enqueue(std::move(frame), true);
    }

    /// Answers a plain HTTP request or refuses an upgrade, then closes. A refusal by a check
    /// or a limit counts as a limit hit and is how the connection ended.
    void reply(const detail::upgrade_answer& answer) {
        if (answer.refused_for) {
            owner_->limit_hit(answer.refused_for);
            end_info().error = answer.refused_for;
        }
        const http_response& response = answer.response;
        reply_sent_ = true;
        set_deadline(options().close_timeout, error::close_timeout);
        enqueue(raw_bytes(response.serialize()), true);
    }

    /// Called when the last queued bytes (ending with a Close frame or an HTTP answer)
    /// have been written.
    void last_write_done() {
        if (session_.close_received())
            return finish({}); // both Close frames exchanged: the server closes TCP first
        // Tell the peer we are done and let it close; the read loop sees its EOF.
        if constexpr (plain_socket)
            detail::shutdown_send(io_.fd);
        else
            transport().shutdown_send(*io_.stream);
    }

    /// The peer closed TCP or the network failed.
    void peer_vanished(std::error_code ec) {
        const bool expected = state_ == state::closing || reply_sent_;
        finish(expected ? std::error_code{} : ec);
    }

    /// The handshake deadline, then the close deadline: the server's sweep ends the
    /// connection with `on_expiry` when it passes (a connection has no timer of its own).
    void set_deadline(std::chrono::milliseconds after, error on_expiry) {
        deadline_error_ = on_expiry;
        deadline_or_last_message_.store(time_source::ticks_at(now() + after),
                                        std::memory_order_relaxed);
    }

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

    /// Closes the socket and reports, exactly once.
    void finish(std::error_code why) {
        if (state_ == state::closed)
            return;
        const bool was_open = state_ != state::handshake;
        state_ = state::closed;
        if (why && !end_info().error) {
            end_info().error = why;
            owner_->limit_hit(why);
        }
        close_stream();
        {
            std::lock_guard<detail::spin_lock> lock{queue_lock_};
            queue_closed_ = true;
            frames_.clear();
            taken_ = 0;
            queued_bytes_ = 0;
        }
        owner_->finished(this->shared_from_this(), end_info(), was_open);
    }

    void close_stream() {
        if constexpr (plain_socket) {
            if (io_.handshaking) // cancels the handshake, whose handler then drops the stream
                transport().close(*io_.handshaking);
            if (io_.fd < 0)
                return;
            owner_->readiness()->remove(io_.fd, this->shared_from_this());
            detail::close_socket(io_.fd);
            io_.fd = -1;
        } else {
            if (io_.stream)
                transport().close(*io_.stream);
        }
    }

    // --- writing ---------------------------------------------------------------------------

    static shared_frame raw_bytes(const std::string& bytes) { return shared_frame::copy_of(bytes); }

    /// Adds a frame to the queue. `last` (a Close frame or an HTTP answer) closes the queue
    /// behind it and is exempt from the slow-reader bound, so a close always goes out.
    /// Everything else counts, pongs included: a peer that floods pings and never reads
    /// must hit the bound too.
    void enqueue(shared_frame frame, bool last = false) {
        bool start_flush = false;
        bool overflow = false;
        {
            std::lock_guard<detail::spin_lock> lock{queue_lock_};
            if (queue_closed_)
                return;
            queued_bytes_ += frame.size();
            frames_.push_back(std::move(frame));
            queue_closed_ = last;
            overflow = !last && queued_bytes_ > options().max_send_queue_bytes;
            if (overflow &&
                options().slow_reader_action == server_options::overflow_action::drop_oldest) {
                drop_oldest_pending();
                overflow = false;
                owner_->limit_hit(error::send_queue_full);
            }
            if (!flushing_)
                flushing_ = start_flush = true;
        }
        if (start_flush && !cork::defer(this->shared_from_this(), &flush_when_uncorked))
            asio::post(strand(), [self = this->shared_from_this()] { self->flush(); });
        if (overflow)
            asio::post(strand(),
                       [self = this->shared_from_this()] { self->drop_backlog_and_fail(); });
    }

    /// A cork's batch: flushes on the strand, at once when the strand is free.
    static void flush_when_uncorked(const std::shared_ptr<void>& target) {
        auto self = std::static_pointer_cast<connection>(target);
        asio::dispatch(self->strand(), [self] { self->flush(); });
    }

    /// Drops the oldest frames not yet taken for writing until the queue fits its bound
    /// again. Called with the queue lock held.
    void drop_oldest_pending() {
        const auto first = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        auto last = first;
        while (last != frames_.end() && queued_bytes_ > options().max_send_queue_bytes)
            queued_bytes_ -= (last++)->size();
        frames_.erase(first, last);
    }

    /// The peer does not read fast enough: forget what it has not been sent yet and close.
    void drop_backlog_and_fail() {
        if (state_ != state::open)
            return;
        {
            std::lock_guard<detail::spin_lock> lock{queue_lock_};
            const auto untaken = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
            for (auto frame = untaken; frame != frames_.end(); ++frame)
                queued_bytes_ -= frame->size();
            frames_.erase(untaken, frames_.end());
        }
        fail(error::send_queue_full);
    }

    /// Writes everything queued so far: called once per event-loop turn in which frames
    /// were queued (corking), so a burst of broadcasts leaves in one gather write.
    void flush() {
        if (state_ == state::closed)
            return;
        if constexpr (plain_socket)
            write_directly();
        else
            write_gathered();
    }

    /// Plain sockets: sendmsg straight from the queued frames, as much as the socket
    /// takes; when it is full, the rest waits for the readiness set to report it writable.
    /// The frames are gathered under the queue lock, as other threads may queue more
    /// meanwhile, and written without it.
    void write_directly() {
        for (;;) {
            detail::gathered_frames batch;
            {
                std::lock_guard<detail::spin_lock> lock{queue_lock_};
                taken_ = static_cast<std::uint32_t>(batch.gather(frames_, written_of_front_));
            }
            std::error_code ec;
            const std::size_t size = batch.send(io_.fd, ec);
            const bool full = ec == asio::error::would_block;
            if (ec && !full)
                return finish(ec);
            const bool again = written(size, full);
            io_.awaiting_writable = full;
            if (!again)
                return;
        }
    }

    /// Other streams (TLS): one composed gather write of everything queued.
    void write_gathered() {
        {
            std::lock_guard<detail::spin_lock> lock{queue_lock_};
            taken_ = static_cast<std::uint32_t>(frames_.size());
            gather_writing();
        }
        asio::async_write(*io_.stream, io_.gather,
                          asio::bind_executor(strand(), [self = this->shared_from_this()](
                                                            std::error_code ec, std::size_t size) {
                              self->on_written(ec, size);
                          }));
    }

    /// Lays out the taken frames for one gather write. A TLS stream encrypts each buffer of
    /// a sequence as its own record (and system call), so small frames are copied back to
    /// back into one contiguous run that leaves as few large records; large frames still go
    /// by reference (frames taken are not dropped until written). Called with the queue
    /// lock held.
    void gather_writing() {
        const auto taken = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        std::size_t small_bytes = 0;
        for (auto frame = frames_.begin(); frame != taken; ++frame)
            if (frame->size() <= coalesce_limit)
                small_bytes += frame->size();
        io_.coalesced.clear();
        io_.coalesced.reserve(small_bytes); // no reallocation below: buffers point into it
        io_.gather.clear();
        bool extending_run = false;
        for (auto frame = frames_.begin(); frame != taken; ++frame) {
            if (frame->size() > coalesce_limit) {
                io_.gather.emplace_back(frame->data(), frame->size());
                extending_run = false;
                continue;
            }
            const std::size_t at = io_.coalesced.size();
            io_.coalesced.insert(io_.coalesced.end(), frame->data(), frame->data() + frame->size());
            if (extending_run)
                io_.gather.back() = asio::const_buffer{io_.gather.back().data(),
                                                       io_.gather.back().size() + frame->size()};
            else
                io_.gather.emplace_back(io_.coalesced.data() + at, frame->size());
            extending_run = true;
        }
    }

    void on_written(std::error_code ec, std::size_t size) {
        if (io_.coalesced.capacity() > idle_coalesce_capacity)
            std::vector<std::uint8_t>{}.swap(io_.coalesced); // an idle connection keeps no backlog
        if (ec)
            return finish(ec);
        if (written(size, false))
            write_gathered();
    }

    /// `size` bytes of the taken frames went out (`full`: the socket took no more). Drops
    /// the frames they completed; the rest of the taken ones stay taken while the socket
    /// is full. True when the caller should write again: more is queued and the socket was
    /// not full. Otherwise flushing stops until the next frame comes (or the socket has
    /// room), and a queue that ended with a Close frame or HTTP answer ends the connection.
    bool written(std::size_t size, bool full) {
        bool more = false;
        bool drained_after_last = false;
        {
            std::lock_guard<detail::spin_lock> lock{queue_lock_};
            queued_bytes_ -= size;
            written_of_front_ += size;
            std::size_t done = 0;
            while (done < taken_ && written_of_front_ >= frames_[done].size())
                written_of_front_ -= frames_[done++].size();
            frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(done));
            taken_ = full ? taken_ - done : 0;
            more = !frames_.empty();
            flushing_ = more;
            drained_after_last = !more && queue_closed_;
        }
        if (drained_after_last && state_ != state::closed)
            last_write_done();
        return more && !full;
    }

    // The readiness set's event bits, in 16 so that the whole of plain_socket_io fits in 16
    // bytes (an idle connection holds little else).
    using event_bits = std::uint16_t;

    // The stream, and what reading and writing need besides the queue, by kind of stream.
    // A plain socket is a bare descriptor in the server's readiness set, read into the
    // thread's buffer and written with sendmsg straight from the queue; other streams (TLS)
    // read into a buffer of their own and write through Asio's composed operations.
    struct plain_socket_io {
        static_assert((readiness_type::readable | readiness_type::writable |
                       readiness_type::ending) <= std::numeric_limits<event_bits>::max(),
                      "the readiness set reports bits that event_bits cannot hold");
        std::unique_ptr<stream_type> handshaking; // during the transport handshake
        int fd = -1;                              // from the end of the transport handshake
        std::atomic<event_bits> events{0};        // reported since on_ready last began (0: none)
        bool awaiting_writable = false;           // a write waits for room (strand only)
    };
    struct composed_io {
        std::optional<stream_type> stream; // from start()
        std::unique_ptr<std::uint8_t[]> read_buffer;
        // The write in flight: its buffers, and its small frames copied back to back.
        std::vector<asio::const_buffer> gather;
        std::vector<std::uint8_t> coalesced;
    };

    // Members are grouped by size, so that an idle connection, which holds little but
    // this object, wastes no bytes on padding.
    // The owner outlives every connection it made: each holds a reference to it, and the
    // transport, options and strands live inside it.
    std::shared_ptr<owner_type> owner_;

    std::unique_ptr<request_parser> request_parser_; // until the connection opens
    session<role::server> session_;
    std::conditional_t<plain_socket, plain_socket_io, composed_io> io_;
    // Steady-clock ticks, written on the strand and read by the server's sweep. An open
    // connection has no deadline and the others no idle timeout, so one number serves as
    // the handshake or close deadline (0: none) until open, and while open as when the
    // peer last sent a message. Beside it: when the peer was last heard from at all.
    std::atomic<clock::rep> deadline_or_last_message_{0};
    std::atomic<clock::rep> last_seen_{0}; // set by the constructor

    mutable std::unique_ptr<seldom_state> seldom_; // see seldom()
    // The remote address (its first address_size_ bytes) and, once open, the request's
    // target: one string, whose own buffer holds both when they are short, as is usual.
    std::string labels_;
    std::any user_data_;
    const std::uint64_t id_;

    // The send queue, filled from any thread under the lock (see frame_queue for why it
    // allocates neither for an idle peer nor per delivery). Its first `taken_`
    // frames are in the write under way (the socket may hold part of the first); the
    // strand writes them without the lock, so they are never dropped, only written.
    detail::frame_queue frames_;
    std::size_t queued_bytes_ = 0;     // of frames_, less what was written of the first
    std::size_t written_of_front_ = 0; // bytes of frames_[0] already written

    error deadline_error_ = error::handshake_timeout;
    std::uint32_t registry_slot_ = 0; // its place in the server's registry (under its lock)
    std::uint32_t taken_ = 0;         // see frames_ (queue lock)
    struct {
        std::uint8_t major, minor;
    } opened_version_{1, 1};        // of the request, kept with its target
    std::uint8_t address_size_ = 0; // see labels_
    std::atomic<state> state_{state::handshake};
    mutable detail::spin_lock queue_lock_; // of frames_, queued_bytes_, flushing_, queue_closed_
    bool flushing_ = false;                // a flush is posted or a write is in flight (queue lock)
    bool queue_closed_ = false; // a Close frame or HTTP answer was queued, or the socket closed
    bool reply_sent_ = false;
    bool over_limit_ = false; // set by the server when a connection limit refuses this one
    // Counted under remote_address() for `max_connections_per_address` (a trusted proxy's
    // own connection is not: its clients are). Set by the server, under its registry lock.
    bool counted_per_address_ = false;

    static constexpr std::size_t coalesce_limit = 1024;
    static constexpr std::size_t idle_coalesce_capacity = 64 * 1024;
};

// The entry points into the send path and the close handshake are defined out of the class,
// so that `extern template` declarations of them (separate compilation) keep a unit that only
// calls them from instantiating the writing machinery behind them.

template <class Transport>
void connection<Transport>::send(shared_frame frame) {
    enqueue(std::move(frame));
}

template <class Transport>
void connection<Transport>::close(close_code code, std::string_view reason) {
    asio::post(strand(), [self = this->shared_from_this(), code, why = std::string{reason}] {
        self->start_close(static_cast<std::uint16_t>(code), why, {});
    });
}

WSCHAT_END_NAMESPACE
