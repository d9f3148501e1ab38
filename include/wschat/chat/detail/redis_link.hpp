// wschat — one self-healing connection to Redis: connect, log in, read and write RESP, detect a
// stall, reconnect with backoff. The base of redis_connection and redis_subscriber.
#pragma once

#include <wschat/chat/detail/redis_protocol.hpp>
#include <wschat/chat/detail/redis_reply.hpp>
#include <wschat/chat/detail/redis_url.hpp>
#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/steady_timer_on.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// Where a Redis connection is in its life.
enum class redis_state {
    idle,         ///< created, `start()` not called yet: commands fail with `unavailable`
    connecting,   ///< connecting and logging in: commands wait in the bounded queue
    connected,    ///< ready: commands are sent at once
    disconnected, ///< lost or refused, waiting to retry: commands fail at once (`unavailable`)
    stopped,      ///< `stop()` was called: final
};

/// What the state handler (`on_state`) receives at each change of state.
struct redis_state_event {
    redis_state state = redis_state::idle;
    /// Why the link is `disconnected`: the socket's error (connection refused, end of file,
    /// reset), or `redis_errc::timeout`, `protocol` or `handshake_failed`; empty otherwise.
    std::error_code error;
    /// The same in words, with what Redis or the reply reader said ("WRONGPASS ...").
    std::string detail;
    /// When `disconnected`: the delay before the next attempt.
    std::chrono::milliseconds retry_in{0};
};

/// How a Redis connection behaves; every default is safe for a chat bus on a LAN.
struct redis_options {
    /// The server (see `parse_redis_url`).
    redis_endpoint endpoint;
    /// Bound on connecting, AUTH, SELECT and the first PING (and, for a subscriber,
    /// re-subscribing): a server that accepts but never answers is given up on.
    std::chrono::milliseconds connect_timeout{2000};
    /// Bound on waiting for a reply while nothing at all arrives from the server. When it
    /// passes, the connection is considered dead: every pending command fails with
    /// `redis_errc::timeout` and the link reconnects (replies are matched in order, so one
    /// missing reply spoils the ones behind it).
    std::chrono::milliseconds command_timeout{2000};
    /// First reconnection delay cap; doubled at each failed attempt up to `reconnect_max`.
    /// The delay is drawn uniformly from [0, cap] ("full jitter"), so nodes that lost Redis
    /// together do not come back in lockstep.
    std::chrono::milliseconds reconnect_min{100};
    /// Largest reconnection delay: how long a recovered Redis may wait for us at most.
    std::chrono::milliseconds reconnect_max{5000};
    /// A connection that stayed up this long resets the backoff, so one blip after a day of
    /// service retries fast, while a flapping server is not hammered.
    std::chrono::milliseconds stable_after{10000};
    /// A PING is sent after this long without any byte from the server, so a silent peer (a
    /// subscriber's only traffic is inbound) is found dead within this plus
    /// `command_timeout`. Zero disables it.
    std::chrono::milliseconds health_check_interval{5000};
    /// Commands queued (while connecting) or awaiting their reply, at most. More fail at once
    /// with `redis_errc::queue_full`: memory stays bounded when Redis is slow or away.
    std::size_t max_pending = 10000;
    /// The same bound in bytes of formatted commands (64 MiB).
    std::size_t max_pending_bytes = std::size_t{64} << 20;
    /// Limits on replies (see `redis_reader_limits`).
    redis_reader_limits reader;
};

/// The strand every Redis link runs its handlers on, and calls its user's handlers on.
using redis_strand = asio::strand<asio::io_context::executor_type>;

/// The machinery shared by `redis_connection` and `redis_subscriber`: one socket (TCP or
/// Unix, the transports' own stream types), the RESP reader, a write buffer that batches every
/// command issued while a write is in flight (pipelining), the login handshake, a stall
/// detector, a health-check PING, and reconnection with capped exponential backoff.
///
/// Everything runs on the strand given at creation; the public calls may come from any thread
/// and are dispatched onto it. No threads of its own. Held by `shared_ptr` (pending
/// operations keep it alive): call `stop()` to end it, which also releases the handlers.
class redis_link : public std::enable_shared_from_this<redis_link> {
public:
    using state_handler = std::function<void(const redis_state_event&)>;

    redis_link(const redis_link&) = delete;
    redis_link& operator=(const redis_link&) = delete;
    virtual ~redis_link() = default;

    /// Sets the handler of state changes (connecting, connected, disconnected, stopped). Set
    /// it before `start()`; runs on the strand.
    void on_state(state_handler handler) {
        asio::dispatch(strand_, [self = shared_from_this(), h = std::move(handler)]() mutable {
            self->state_handler_ = std::move(h);
        });
    }

    /// Starts connecting (and reconnecting whenever the connection is lost) until `stop()`.
    /// A second call does nothing.
    void start() {
        asio::dispatch(strand_, [self = shared_from_this()] {
            if (self->state_ == redis_state::idle)
                self->connect();
        });
    }

    /// Closes the connection for good: pending commands fail with `redis_errc::stopped`
    /// (each handler once), the `stopped` state is reported, and every handler is released.
    void stop() {
        asio::dispatch(strand_, [self = shared_from_this()] { self->shut(); });
    }

    /// The current state; may be read from any thread (it may change right after).
    redis_state state() const noexcept { return public_state_.load(std::memory_order_relaxed); }

    /// The strand handlers run on.
    const redis_strand& get_executor() const noexcept { return strand_; }

    /// The options given at creation.
    const redis_options& options() const noexcept { return options_; }

protected:
    using clock = std::chrono::steady_clock;

    redis_link(redis_strand strand, redis_options options)
        : strand_(std::move(strand)), options_(std::move(options)), deadline_(strand_),
          retry_(strand_), stall_(strand_), health_(strand_),
          rng_(static_cast<std::uint32_t>(std::random_device{}())) {}

    // --- what the derived classes provide (all called on the strand) ----------------------

    /// AUTH, SELECT and PING succeeded. The derived class either calls `mark_connected()` at
    /// once or first sends what must precede it (a subscriber's re-SUBSCRIBE).
    virtual void handshake_done() = 0;
    /// A reply after the handshake.
    virtual void handle_reply(redis_reply reply) = 0;
    /// The connection is gone: fail everything awaiting a reply with `sent` and everything
    /// never written with `unsent`.
    virtual void connection_down(std::error_code sent, std::error_code unsent) = 0;
    /// Write a PING and account for its reply (the link is idle and quiet).
    virtual void send_ping() = 0;
    /// `stop()` finished: the derived class releases its own handlers (they may hold the
    /// link's `shared_ptr`, a cycle that would otherwise keep it alive).
    virtual void released() {}

    // --- what the derived classes use ------------------------------------------------------

    redis_state current_state() const noexcept { return state_; }

    /// Appends formatted commands to the write buffer and starts writing if idle. Only while
    /// the socket is connected.
    void write(std::string_view bytes) {
        out_.append(bytes.data(), bytes.size());
        if (!writing_)
            flush();
    }

    /// Counts `n` more replies awaited; the stall detector watches while any are.
    void expect(std::size_t n) {
        if (n == 0)
            return;
        if (awaited_ == 0)
            last_progress_ = clock::now();
        awaited_ += n;
        arm_stall_timer();
    }

    /// One awaited reply arrived.
    void received() noexcept {
        if (awaited_ > 0)
            --awaited_;
    }

    /// The link is ready: stops the connect deadline and reports `connected`.
    void mark_connected() {
        if (state_ != redis_state::connecting)
            return;
        deadline_.cancel();
        set_state(redis_state::connected);
        connected_at_ = clock::now();
        arm_stall_timer();
        arm_health_timer();
        report({redis_state::connected, {}, {}, {}});
    }

    /// Drops the connection because of `cause` (described by `detail`) and schedules a retry.
    void fail_connection(std::error_code cause, std::string detail) {
        if (state_ != redis_state::connecting && state_ != redis_state::connected)
            return;
        const bool was_connected = state_ == redis_state::connected;
        close_socket();
        set_state(redis_state::disconnected);
        if (was_connected && clock::now() - connected_at_ >= options_.stable_after)
            attempt_ = 0;
        const auto delay = next_delay();
        // Commands that went out may or may not have run; a timeout or a protocol error is
        // the more precise reason for them, a plain drop is `connection_lost`.
        const bool ours = cause.category() == redis_category();
        connection_down(ours ? cause : make_error_code(redis_errc::connection_lost),
                        make_error_code(redis_errc::unavailable));
        if (state_ != redis_state::disconnected)
            return; // a handler stopped the link
        report({redis_state::disconnected, cause, std::move(detail), delay});
        if (state_ != redis_state::disconnected)
            return;
        retry_.expires_after(delay);
        retry_.async_wait([self = shared_from_this(), gen = generation_](std::error_code ec) {
            if (!ec && gen == self->generation_ && self->state_ == redis_state::disconnected)
                self->connect();
        });
    }

    /// Posts `handler(args...)` to run on the strand later, never inside the caller's frame:
    /// a command refused at once must not call back into code that is still issuing it.
    template <class Handler, class... Args>
    void post_call(Handler handler, Args... args) {
        asio::post(strand_, [h = std::move(handler), args...]() mutable { h(args...); });
    }

    redis_strand strand_;
    redis_options options_;

private:
    using tcp_stream = ws::asio_tcp::stream_type;
#if defined(ASIO_HAS_LOCAL_SOCKETS)
    using local_stream = ws::asio_local::stream_type;
    using socket_variant = std::variant<std::monostate, tcp_stream, local_stream>;
#else
    using socket_variant = std::variant<std::monostate, tcp_stream>;
#endif
    using resolver = asio::ip::basic_resolver<asio::ip::tcp, asio::io_context::executor_type>;
    using timer = ws::detail::steady_timer_on<redis_strand>;

    // --- connecting and the handshake ------------------------------------------------------

    void connect() {
        ++generation_;
        set_state(redis_state::connecting);
        reader_.emplace(options_.reader);
        out_.clear();
        handshake_left_ = 0;
        awaited_ = 0;
        report({redis_state::connecting, {}, {}, {}});
        if (state_ != redis_state::connecting)
            return;
        deadline_.expires_after(options_.connect_timeout);
        deadline_.async_wait([self = shared_from_this(), gen = generation_](std::error_code ec) {
            if (!ec && gen == self->generation_ && self->state_ == redis_state::connecting)
                self->fail_connection(make_error_code(redis_errc::timeout),
                                      "no answer from " + self->options_.endpoint.describe() +
                                          " within the connect timeout");
        });
        const redis_endpoint& ep = options_.endpoint;
        const auto gen = generation_;
        if (ep.is_unix()) {
#if defined(ASIO_HAS_LOCAL_SOCKETS)
            auto& s = socket_.emplace<local_stream>(strand_.get_inner_executor());
            s.async_connect(
                asio::local::stream_protocol::endpoint{ep.path},
                asio::bind_executor(strand_, [self = shared_from_this(), gen](std::error_code ec) {
                    self->connected(gen, ec);
                }));
#else
            post_call([self = shared_from_this()] {
                self->fail_connection(make_error_code(redis_errc::invalid_url),
                                      "Unix sockets are not available on this platform");
            });
#endif
            return;
        }
        resolver_.emplace(strand_.get_inner_executor());
        resolver_->async_resolve(
            ep.host, std::to_string(ep.port),
            asio::bind_executor(strand_, [self = shared_from_this(),
                                          gen](std::error_code ec,
                                               asio::ip::tcp::resolver::results_type results) {
                if (gen != self->generation_ || self->state_ != redis_state::connecting)
                    return;
                if (ec) {
                    self->fail_connection(ec, "cannot resolve " + self->options_.endpoint.host +
                                                  ": " + ec.message());
                    return;
                }
                auto& s = self->socket_.emplace<tcp_stream>(self->strand_.get_inner_executor());
                asio::async_connect(
                    s, results,
                    asio::bind_executor(self->strand_, [self, gen](std::error_code ec,
                                                                   const asio::ip::tcp::endpoint&) {
                        self->connected(gen, ec);
                    }));
            }));
    }

    void connected(std::uint64_t gen, std::error_code ec) {
        if (gen != generation_ || state_ != redis_state::connecting)
            return;
        if (ec) {
            fail_connection(ec, "cannot connect to " + options_.endpoint.describe() + ": " +
                                    ec.message());
            return;
        }
        if (auto* tcp = std::get_if<tcp_stream>(&socket_)) {
            std::error_code ignored;
            tcp->set_option(asio::ip::tcp::no_delay{true}, ignored);
        }
        read();
        // AUTH and SELECT as the URL says, then a PING: a server that accepts connections but
        // is not Redis (or is still loading) is found out before anything else is sent.
        const redis_endpoint& ep = options_.endpoint;
        std::string hello;
        if (!ep.password.empty()) {
            if (ep.username.empty())
                append_command(hello, std::array<std::string_view, 2>{"AUTH", ep.password});
            else
                append_command(hello,
                               std::array<std::string_view, 3>{"AUTH", ep.username, ep.password});
            ++handshake_left_;
        }
        if (ep.database != 0) {
            const std::string db = std::to_string(ep.database);
            append_command(hello, std::array<std::string_view, 2>{"SELECT", db});
            ++handshake_left_;
        }
        append_command(hello, std::array<std::string_view, 1>{"PING"});
        ++handshake_left_;
        write(hello);
    }

    void handshake_reply(const redis_reply& reply) {
        // AUTH and SELECT answer +OK, the closing PING +PONG; anything else (a refusal, or a
        // server that speaks RESP but is not Redis) ends the attempt.
        const std::string_view expected = handshake_left_ == 1 ? "PONG" : "OK";
        if (!reply.is_status() || reply.text() != expected) {
            fail_connection(
                make_error_code(redis_errc::handshake_failed),
                reply.is_error()
                    ? std::string{reply.text()}
                    : "unexpected answer to the connection's " +
                          std::string{handshake_left_ == 1 ? "PING" : "AUTH or SELECT"});
            return;
        }
        if (--handshake_left_ == 0)
            handshake_done();
    }

    // --- reading and writing ---------------------------------------------------------------

    template <class F>
    void with_socket(F&& f) {
        std::visit(
            [&](auto& s) {
                if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>)
                    f(s);
            },
            socket_);
    }

    void read() {
        with_socket([this](auto& s) {
            s.async_read_some(
                asio::buffer(read_buffer_),
                asio::bind_executor(strand_, [self = shared_from_this(), gen = generation_](
                                                 std::error_code ec, std::size_t n) {
                    self->on_read(gen, ec, n);
                }));
        });
    }

    void on_read(std::uint64_t gen, std::error_code ec, std::size_t n) {
        if (gen != generation_)
            return;
        if (ec) {
            fail_connection(ec, "connection to " + options_.endpoint.describe() +
                                    " lost: " + ec.message());
            return;
        }
        last_progress_ = last_read_ = clock::now();
        reader_->feed(std::string_view{read_buffer_.data(), n});
        while (auto reply = reader_->next()) {
            if (handshake_left_ > 0)
                handshake_reply(*reply);
            else
                handle_reply(std::move(*reply));
            // A handler may have stopped the link or dropped the connection.
            if (gen != generation_)
                return;
        }
        if (reader_->error()) {
            fail_connection(reader_->error(), "bytes from " + options_.endpoint.describe() +
                                                  " are not RESP: " + reader_->error_text());
            return;
        }
        read();
    }

    void flush() {
        writing_ = true;
        std::swap(out_, in_flight_);
        with_socket([this](auto& s) {
            asio::async_write(
                s, asio::buffer(in_flight_),
                asio::bind_executor(strand_, [self = shared_from_this(),
                                              gen = generation_](std::error_code ec, std::size_t) {
                    self->on_written(gen, ec);
                }));
        });
    }

    void on_written(std::uint64_t gen, std::error_code ec) {
        if (gen != generation_)
            return;
        writing_ = false;
        in_flight_.clear();
        if (ec) {
            fail_connection(ec, "cannot write to " + options_.endpoint.describe() + ": " +
                                    ec.message());
            return;
        }
        if (!out_.empty())
            flush();
    }

    // --- liveness --------------------------------------------------------------------------

    void arm_stall_timer() {
        if (stall_armed_ || awaited_ == 0 || state_ != redis_state::connected)
            return;
        stall_armed_ = true;
        stall_.expires_at(last_progress_ + options_.command_timeout);
        stall_.async_wait([self = shared_from_this(), gen = generation_](std::error_code ec) {
            // A closed socket's wait belongs to nobody: close_socket() cleared the flag.
            if (gen != self->generation_)
                return;
            self->stall_armed_ = false;
            if (ec || self->state_ != redis_state::connected)
                return;
            if (self->awaited_ > 0 &&
                clock::now() - self->last_progress_ >= self->options_.command_timeout) {
                self->fail_connection(make_error_code(redis_errc::timeout),
                                      "no reply from " + self->options_.endpoint.describe() +
                                          " within the command timeout");
                return;
            }
            self->arm_stall_timer();
        });
    }

    void arm_health_timer() {
        if (options_.health_check_interval.count() <= 0)
            return;
        health_.expires_after(options_.health_check_interval);
        health_.async_wait([self = shared_from_this(), gen = generation_](std::error_code ec) {
            if (ec || gen != self->generation_ || self->state_ != redis_state::connected)
                return;
            if (self->awaited_ == 0 &&
                clock::now() - self->last_read_ >= self->options_.health_check_interval)
                self->send_ping();
            self->arm_health_timer();
        });
    }

    std::chrono::milliseconds next_delay() {
        const auto lo = std::max<std::int64_t>(options_.reconnect_min.count(), 1);
        const auto hi = std::max<std::int64_t>(options_.reconnect_max.count(), lo);
        // lo * 2^attempt without overflow: past 2^20 the cap is reached anyway.
        const unsigned shift = std::min(attempt_, 20U);
        const std::int64_t cap = std::min(hi, lo << shift);
        ++attempt_;
        std::uniform_int_distribution<std::int64_t> pick(0, cap);
        return std::chrono::milliseconds{pick(rng_)};
    }

    // --- the end ---------------------------------------------------------------------------

    void close_socket() {
        ++generation_;
        with_socket([](auto& s) {
            std::error_code ignored;
            s.close(ignored);
        });
        socket_.emplace<std::monostate>();
        if (resolver_)
            resolver_->cancel();
        deadline_.cancel();
        stall_.cancel();
        stall_armed_ = false;
        health_.cancel();
        reader_.reset();
        out_.clear();
        writing_ = false;
        handshake_left_ = 0;
        awaited_ = 0;
    }

    void shut() {
        if (state_ == redis_state::stopped)
            return;
        close_socket();
        retry_.cancel();
        set_state(redis_state::stopped);
        const auto stopped = make_error_code(redis_errc::stopped);
        connection_down(stopped, stopped);
        report({redis_state::stopped, {}, {}, {}});
        state_handler_ = nullptr;
        released();
    }

    void set_state(redis_state s) noexcept {
        state_ = s;
        public_state_.store(s, std::memory_order_relaxed);
    }

    void report(const redis_state_event& event) {
        if (state_handler_)
            state_handler_(event);
    }

    socket_variant socket_;
    std::optional<resolver> resolver_;
    std::optional<redis_reader> reader_;
    std::array<char, 64 * 1024> read_buffer_{};
    std::string out_;
    std::string in_flight_;
    bool writing_ = false;

    timer deadline_; // connect + handshake
    timer retry_;    // backoff
    timer stall_;    // replies awaited, nothing arriving
    timer health_;   // PING when quiet
    bool stall_armed_ = false;

    redis_state state_ = redis_state::idle;
    std::atomic<redis_state> public_state_{redis_state::idle};
    // Incremented whenever a socket is closed or opened: completions of an older socket's
    // operations compare it and do nothing.
    std::uint64_t generation_ = 0;
    std::size_t handshake_left_ = 0;
    std::size_t awaited_ = 0;
    clock::time_point last_progress_{};
    clock::time_point last_read_{};
    clock::time_point connected_at_{};
    unsigned attempt_ = 0;
    std::minstd_rand rng_;
    state_handler state_handler_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
