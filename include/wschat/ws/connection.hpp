// wschat — one peer of a server: the HTTP handshake, then the session, over its I/O back end,
// fed by its send queue, watched by the sweep, and ended one way.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/detail/io/backend.hpp>
#include <wschat/ws/detail/io/readiness_set.hpp>
#include <wschat/ws/detail/send_queue.hpp>
#include <wschat/ws/detail/strand_pool.hpp>
#include <wschat/ws/detail/timekeeping.hpp>
#include <wschat/ws/detail/upgrade.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/session.hpp>
#include <wschat/ws/shared_frame.hpp>

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
