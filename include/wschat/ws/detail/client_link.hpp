// wschat — one connection attempt of a client, from name resolution to the socket's close:
// TCP (or a Unix socket), an optional proxy tunnel, the transport's handshake (TLS), the
// opening handshake, then the session<role::client> over the stream back end.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_handshake.hpp>
#include <wschat/ws/client_options.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/detail/client_transport.hpp>
#include <wschat/ws/detail/http_connect.hpp>
#include <wschat/ws/detail/io/stream_io.hpp>
#include <wschat/ws/detail/mask_keys.hpp>
#include <wschat/ws/detail/send_queue.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/http.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/session.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/url.hpp>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/basic_resolver.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// How one attempt ended, as the link reports it to its owner.
struct link_end {
    /// The close code of the closing handshake, 1006 when there was none.
    std::uint16_t code = static_cast<std::uint16_t>(close_code::abnormal);
    /// The reason that went with `code`.
    std::string reason;
    /// What went wrong, if anything (a socket error, a handshake refusal, a timeout).
    std::error_code error;
    /// The status of the server's (or the proxy's) answer when the upgrade was refused.
    int http_status = 0;
    /// The server sent the first Close frame (its code then says why it closed us).
    bool closed_by_peer = false;
    /// The connection had opened.
    bool was_open = false;
};

/// What a link reports, to the client that made it.
class link_owner {
public:
    /// The server accepted the upgrade.
    virtual void link_opened(const handshake_result& result) = 0;
    /// A whole message arrived (valid during the call).
    virtual void link_message(const message& msg) = 0;
    /// The attempt is over, however it ended; called once.
    virtual void link_finished(const link_end& end) = 0;
    /// The link's deadlines changed: the owner re-arms its timer.
    virtual void link_deadlines_changed() = 0;

protected:
    ~link_owner() = default;
};

/// One attempt. Lives in a shared_ptr (its asynchronous operations hold it); everything runs
/// on the client's strand. It keeps its owner alive.
template <class Transport>
class client_link : public std::enable_shared_from_this<client_link<Transport>> {
public:
    using traits = client_transport<Transport>;
    using socket_type = typename traits::socket_type;
    using stream_type = typename traits::stream_type;
    using strand_type = asio::strand<asio::io_context::executor_type>;
    using clock = std::chrono::steady_clock;

    /// What every link of one client shares, owned by the client.
    struct shared {
        asio::io_context& io;
        strand_type strand;
        const client_options& options;
        const ws_url& url;
        const std::optional<proxy_address>& proxy;
        typename traits::context& context;
        const time_source& time;
        const server_options& queue_bound; // the send queue reads its bound from here
        const session_limits& limits;
    };

    client_link(std::shared_ptr<link_owner> owner, const shared& with, handshake_offer offer)
        : owner_(std::move(owner)), with_(with), handshake_(std::move(offer)),
          response_(with.options.max_header_bytes), session_(with.limits),
          resolver_(with.io.get_executor()) {}

    /// Starts the attempt: resolution, connection, tunnel, handshakes, bounded by
    /// `handshake_timeout`.
    void start() {
        deadline_ = now() + with_.options.handshake_timeout;
        std::error_code ec;
        handshake_.request(ec);
        if (ec)
            return post_finish(ec);
        if constexpr (std::is_same_v<typename socket_type::protocol_type, asio::ip::tcp>) {
            const bool proxied = with_.proxy.has_value();
            const std::string& host = proxied ? with_.proxy->host : with_.url.host;
            const std::uint16_t port = proxied ? with_.proxy->port : with_.url.port;
            resolver_.async_resolve(
                host, std::to_string(static_cast<unsigned>(port)),
                asio::bind_executor(with_.strand, [self = this->shared_from_this()](
                                                      std::error_code error, auto results) {
                    self->resolved(error, results);
                }));
        } else {
            socket_.emplace(with_.io.get_executor());
            const std::string& path = with_.options.unix_socket_path.empty()
                                          ? with_.url.socket_path
                                          : with_.options.unix_socket_path;
            socket_->async_connect(
                typename socket_type::endpoint_type{path},
                asio::bind_executor(with_.strand,
                                    [self = this->shared_from_this()](std::error_code error) {
                                        self->connected(error);
                                    }));
        }
    }

    /// True once the server accepted the upgrade and until the close handshake starts.
    bool is_open() const noexcept { return phase_ == phase::open; }

    /// Bytes queued and not yet written.
    std::size_t queued_bytes() const { return queue_.queued_bytes(); }

    /// Queues a text or binary message, masked; false (nothing queued) when the bytes
    /// queued would pass `max_send_queue_bytes` or the link is not open.
    bool send(opcode op, std::string_view payload) {
        if (phase_ != phase::open)
            return false;
        if (queue_.queued_bytes() + payload.size() > with_.options.max_send_queue_bytes)
            return false;
        enqueue(masked(op, payload));
        return true;
    }

    /// Starts the closing handshake (when open), or abandons the attempt (before).
    void close(std::uint16_t code, std::string_view reason) {
        if (phase_ == phase::open) {
            sink s{*this};
            session_.close(code, reason, {}, s);
        } else if (phase_ != phase::closing) {
            finish(asio::error::operation_aborted);
        }
    }

    /// Ends the attempt at once, reporting `why`.
    void abort(std::error_code why) { finish(why); }

    /// The earliest time something is due (a deadline, a ping, a pong's absence), or max.
    clock::time_point next_due() const noexcept {
        clock::time_point next = clock::time_point::max();
        if (phase_ != phase::open && phase_ != phase::done)
            next = deadline_;
        if (phase_ == phase::open && with_.options.ping_interval.count() > 0)
            next = std::min(next, pong_deadline_ ? *pong_deadline_ : next_ping_);
        return next;
    }

    /// Acts on what is due at `now`: a passed deadline ends the attempt, a ping goes out, a
    /// peer silent since a ping is cut.
    void tick(clock::time_point now) {
        if (phase_ == phase::done)
            return;
        if (phase_ != phase::open) {
            if (now >= deadline_)
                finish(phase_ == phase::closing ? error::close_timeout : error::handshake_timeout);
            return;
        }
        if (with_.options.ping_interval.count() <= 0)
            return;
        if (pong_deadline_) {
            if (now >= *pong_deadline_)
                finish(error::heartbeat_timeout);
            return;
        }
        if (now >= next_ping_) {
            enqueue(masked(opcode::ping, {}));
            next_ping_ = now + with_.options.ping_interval;
            pong_deadline_ = now + with_.options.pong_timeout;
        }
    }

private:
    friend stream_io<client_link>;

    enum class phase : std::uint8_t { connecting, tunnel, handshake, open, closing, done };

    clock::time_point now() const noexcept { return with_.time.now(); }

    // --- connecting ------------------------------------------------------------------------

    template <class Results>
    void resolved(std::error_code ec, const Results& results) {
        if (phase_ == phase::done)
            return;
        if (ec)
            return finish(ec);
        socket_.emplace(with_.io.get_executor());
        asio::async_connect(
            *socket_, results,
            asio::bind_executor(
                with_.strand, [self = this->shared_from_this()](
                                  std::error_code error, const auto&) { self->connected(error); }));
    }

    void connected(std::error_code ec) {
        if (phase_ == phase::done)
            return;
        if (ec)
            return finish(ec);
        if (with_.proxy)
            return open_tunnel();
        start_stream();
    }

    /// Asks the proxy for a tunnel to the server, then reads its answer.
    void open_tunnel() {
        phase_ = phase::tunnel;
        tunnel_request_ = connect_request(*with_.proxy, with_.url.host, with_.url.port);
        asio::async_write(*socket_, asio::buffer(tunnel_request_),
                          asio::bind_executor(with_.strand, [self = this->shared_from_this()](
                                                                std::error_code ec, std::size_t) {
                              if (ec)
                                  return self->finish(ec);
                              self->read_tunnel_answer();
                          }));
    }

    void read_tunnel_answer() {
        if (phase_ == phase::done)
            return;
        socket_->async_read_some(
            asio::buffer(tunnel_buffer_),
            asio::bind_executor(with_.strand, [self = this->shared_from_this()](std::error_code ec,
                                                                                std::size_t size) {
                self->tunnel_answer(ec, size);
            }));
    }

    void tunnel_answer(std::error_code ec, std::size_t size) {
        if (phase_ == phase::done)
            return;
        if (ec)
            return finish(ec);
        response_.feed(tunnel_buffer_.data(), size);
        switch (response_.current()) {
        case response_parser::state::incomplete:
            return read_tunnel_answer();
        case response_parser::state::failed:
            return finish(client_error::bad_proxy_response);
        case response_parser::state::done:
            break;
        }
        if (const std::error_code refused = check_connect_response(response_.response())) {
            end_.http_status = response_.response().status;
            return finish(refused);
        }
        response_.reset();
        start_stream();
    }

    /// The stream back end takes the connected socket: the transport's handshake (see
    /// transport()), then the upgrade request, then reading.
    void start_stream() {
        phase_ = phase::handshake;
        stream_type stream = traits::wrap(std::move(*socket_), with_.context);
        socket_.reset();
        io_.start(*this, std::move(stream));
    }

    // --- what the stream back end calls, on the strand -------------------------------------

    /// The transport as the stream back end sees it: its handshake, once done, sends the
    /// upgrade request.
    struct transport_view {
        client_link& self;
        template <class Handler>
        void async_handshake(stream_type& stream, Handler&& handler) const {
            traits::async_handshake(
                stream, self.with_.context, self.with_.url.host,
                asio::bind_executor(self.with_.strand, [link = self.shared_from_this(),
                                                        h = std::forward<Handler>(handler)](
                                                           std::error_code ec) mutable {
                    if (!ec && link->phase_ != phase::done)
                        link->enqueue(shared_frame::copy_of(link->handshake_.request()));
                    h(ec);
                }));
        }
        void shutdown_send(stream_type& stream) const { traits::shutdown_send(stream); }
        void close(stream_type& stream) const { traits::close(stream); }
    };
    transport_view transport() noexcept { return {*this}; }
    const strand_type& strand() const noexcept { return with_.strand; }
    const client_options& options() const noexcept { return with_.options; }
    send_queue& queue() noexcept { return queue_; }
    bool ended() const noexcept { return phase_ == phase::done; }

    void received(std::uint8_t* bytes, std::size_t size) {
        if (phase_ == phase::handshake)
            return consume_response(bytes, size);
        heard();
        sink s{*this};
        session_.receive(bytes, size, now(), s);
        session_.release_memory();
    }

    void read_failed(std::error_code ec) {
        // The server closes TCP after the close handshake: that is the clean end.
        finish(session_.close_received() && session_.close_sent() ? std::error_code{} : ec);
    }

    void end_at_once(std::error_code ec) { finish(ec); }

    bool written(std::size_t size, bool full) {
        if (phase_ == phase::done)
            return false;
        const send_queue::progress progress = queue_.written(size, full);
        // Our Close is out: after the server's, the handshake is complete; before it, the
        // server's answer is awaited (bounded by close_timeout).
        if (progress.drained_after_last && session_.close_received())
            finish({});
        return progress.write_again;
    }

    // --- the opening handshake ---------------------------------------------------------------

    void consume_response(std::uint8_t* bytes, std::size_t size) {
        const std::size_t used = response_.feed(reinterpret_cast<const char*>(bytes), size);
        switch (response_.current()) {
        case response_parser::state::incomplete:
            return;
        case response_parser::state::failed:
            return finish(response_.error());
        case response_parser::state::done:
            break;
        }
        const handshake_result result = handshake_.verify(response_.response());
        if (!result.accepted()) {
            end_.http_status = result.status;
            return finish(result.error);
        }
        phase_ = phase::open;
        end_.was_open = true;
        const clock::time_point t = now();
        next_ping_ = t + with_.options.ping_interval;
        response_ = response_parser{}; // an open link keeps no head
        owner_->link_opened(result);
        owner_->link_deadlines_changed();
        if (used < size && phase_ == phase::open) // frames right behind the 101
            received(bytes + used, size - used);
    }

    // --- the session ---------------------------------------------------------------------------

    /// Anything from the server is a sign of life: a pending pong deadline is met.
    void heard() {
        if (pong_deadline_) {
            pong_deadline_.reset();
            owner_->link_deadlines_changed();
        }
    }

    struct sink {
        client_link& self;
        const session_limits& limits() const noexcept { return self.with_.limits; }
        void message(opcode op, std::string_view payload) {
            self.owner_->link_message(ws::message{op, payload});
        }
        void send(shared_frame frame) { self.enqueue(std::move(frame)); }
        void send_close(shared_frame frame, std::uint16_t code, std::string_view reason,
                        std::error_code why) {
            self.closing(std::move(frame), code, reason, why);
        }
        void limit_hit(std::error_code) {}
        void closed() { self.finish({}); }
    };

    void closing(shared_frame frame, std::uint16_t code, std::string_view reason,
                 std::error_code why) {
        end_.code = code;
        end_.reason.assign(reason);
        end_.error = why;
        end_.closed_by_peer = session_.close_received();
        phase_ = phase::closing;
        deadline_ = now() + with_.options.close_timeout;
        enqueue(std::move(frame), true);
        owner_->link_deadlines_changed();
    }

    // --- writing and ending --------------------------------------------------------------------

    static shared_frame masked(opcode op, std::string_view payload) {
        const std::uint32_t bits = next_mask_key();
        const mask_key key{static_cast<std::uint8_t>(bits >> 24),
                           static_cast<std::uint8_t>(bits >> 16),
                           static_cast<std::uint8_t>(bits >> 8), static_cast<std::uint8_t>(bits)};
        return shared_frame::copy_of(encode_masked_frame(op, payload, key));
    }

    void enqueue(shared_frame frame, bool last = false) {
        const send_queue::pushed pushed = queue_.push(std::move(frame), last, with_.queue_bound);
        if (pushed.start_flush)
            asio::post(with_.strand, [self = this->shared_from_this()] {
                if (!self->ended())
                    self->io_.write(*self);
            });
    }

    void post_finish(std::error_code ec) {
        asio::post(with_.strand, [self = this->shared_from_this(), ec] { self->finish(ec); });
    }

    /// Closes everything and reports, exactly once.
    void finish(std::error_code why) {
        if (phase_ == phase::done)
            return;
        phase_ = phase::done;
        if (why && !end_.error)
            end_.error = why;
        std::error_code ignored;
        resolver_.cancel();
        if (socket_)
            socket_->close(ignored);
        io_.close(*this);
        queue_.close();
        owner_->link_finished(end_);
    }

    // Held for the link's whole life, not only until its end is reported: a completion
    // already queued when the link finished may still read the shared state the owner keeps.
    // The owner drops its own reference to the link when told it finished, so no cycle stays.
    std::shared_ptr<link_owner> owner_;
    const shared& with_;
    client_handshake handshake_;
    response_parser response_;
    session<role::client> session_;
    asio::ip::basic_resolver<asio::ip::tcp, asio::io_context::executor_type> resolver_;
    std::optional<socket_type> socket_; // until the stream back end takes it
    std::string tunnel_request_;
    std::array<char, 1024> tunnel_buffer_{};
    stream_io<client_link> io_;
    send_queue queue_;
    link_end end_;
    clock::time_point deadline_{};  // of the handshake, then of the close
    clock::time_point next_ping_{}; // when open
    std::optional<clock::time_point> pong_deadline_;
    phase phase_ = phase::connecting;
};

} // namespace detail

WSCHAT_END_NAMESPACE
