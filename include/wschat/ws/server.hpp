// wschat — the server: accepts streams, runs handshakes, hands connections to the handlers.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/detail/handler_table.hpp>
#include <wschat/ws/detail/readiness_set.hpp>
#include <wschat/ws/detail/strand_pool.hpp>
#include <wschat/ws/detail/uncached_allocator.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/bind_allocator.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
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

/// The server's state, shared with its connections so that it outlives all of them.
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
          strand_(asio::make_strand(io)), acceptor_(io), sweep_timer_(strand_),
          accept_retry_timer_(strand_), drain_timer_(strand_), ping_(make_frame(opcode::ping, {})) {
    }

    void listen(asio::io_context& io, std::error_code& ec) {
        acceptor_ = transport_.listen(io, listen_address{options_.address, options_.port}, ec);
        if (ec)
            return;
        if (const auto& manual = this->time().manual())
            manual->on_advance([weak = this->weak_from_this()] {
                const auto self = weak.lock();
                if (self)
                    asio::post(self->strand_, [self] { self->sweep(); });
                return self != nullptr;
            });
        asio::post(strand_, [self = this->shared_from_this()] {
            self->accept_next();
            self->schedule_sweep();
        });
    }

    handler_table<connection_handlers<Transport>, http_deciders> handlers;

    const acceptor_type& acceptor() const noexcept { return acceptor_; }
    asio::io_context::executor_type get_executor() const noexcept {
        return strand_.get_inner_executor();
    }

    std::size_t connection_count() const {
        std::lock_guard<std::mutex> lock{registry_mutex_};
        return open_count_;
    }

    std::uint64_t limit_hits(limit which) const noexcept { return counters_[which]; }

    /// True when `conn` was accepted by this server.
    bool owns(const connection_type& conn) const noexcept { return conn.owner_.get() == this; }

    void stop(std::chrono::milliseconds drain_deadline, std::function<void()> on_stopped) {
        asio::post(strand_,
                   [self = this->shared_from_this(), drain_deadline, done = std::move(on_stopped)] {
                       self->stop_on_strand(drain_deadline, done);
                   });
    }

    /// The server object is gone: end every connection without calling any handler, since
    /// the objects the handlers refer to may be gone too.
    void detach() {
        std::vector<connection_ptr> all;
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            detached_ = true;
            all = connections_;
        }
        handlers.clear();
        asio::post(strand_, [self = this->shared_from_this()] { self->stop_listening(); });
        for (const connection_ptr& conn : all)
            conn->abort();
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

    void accept_next() {
        if (stopping_)
            return;
        transport_.async_accept(
            acceptor_,
            asio::bind_allocator(
                uncached_allocator<void>{},
                asio::bind_executor(
                    strand_, [self = this->shared_from_this()](
                                 std::error_code ec, typename Transport::stream_type stream) {
                        self->accepted(ec, std::move(stream));
                    })));
    }

    void accepted(std::error_code ec, typename Transport::stream_type stream) {
        if (stopping_)
            return;
        if (ec) {
            // Out of file descriptors and similar: back off briefly instead of spinning.
            accept_retry_timer_.expires_after(std::chrono::milliseconds{50});
            return accept_retry_timer_.async_wait(
                [self = this->shared_from_this()](std::error_code e) {
                    if (!e)
                        self->accept_next();
                });
        }
        std::string address = transport_.remote_address(stream);
        ++last_id_;
        this->strands_.pick(last_id_, stream.get_executor());
        auto conn = std::make_shared<connection_type>(this->shared_from_this(), last_id_, address);
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            // Over a limit, the connection still reads the request head, so that the 503
            // reaches the client instead of being lost to a reset. A trusted proxy's
            // connections are counted later, by the client address it forwards.
            bool admitted = connections_.size() < options_.max_connections;
            if (!options_.trusts_proxy(conn->remote_address()))
                admitted = count_address(*conn) && admitted;
            if (!admitted)
                conn->over_limit_ = true;
            conn->registry_slot_ = static_cast<std::uint32_t>(connections_.size());
            connections_.push_back(conn);
        }
        asio::post(conn->strand(), [conn, stream = std::move(stream)]() mutable {
            conn->start(std::move(stream));
        });
        accept_next();
    }

    /// Counts `conn` under its remote address for the per-address limit; false when that
    /// address already has its maximum. Called with the registry mutex held.
    bool count_address(connection_type& conn) {
        conn.counted_per_address_ = true;
        return ++connections_per_address_[std::string{conn.remote_address()}] <=
               options_.max_connections_per_address;
    }

    /// The sweep runs as often as the shortest of the heartbeat interval, the idle timeout
    /// and a quarter of the handshake and close timeouts (so those deadlines are kept to
    /// within a quarter of their length); zero when all are off.
    std::chrono::milliseconds sweep_period() const {
        std::chrono::milliseconds period{0};
        for (const auto enabled : {options_.heartbeat_interval, options_.idle_timeout,
                                   options_.handshake_timeout / 4, options_.close_timeout / 4})
            if (enabled.count() > 0 && (period.count() == 0 || enabled < period))
                period = enabled;
        return period;
    }

    /// On a timer of the steady clock; a manual clock runs the sweep at each advance instead.
    void schedule_sweep() {
        if (stopping_ || sweep_period().count() <= 0 || this->time().manual())
            return;
        sweep_timer_.expires_after(sweep_period());
        sweep_timer_.async_wait([self = this->shared_from_this()](std::error_code ec) {
            if (!ec)
                self->sweep();
        });
    }

    /// One timer serves every connection: each sweep ends those past their handshake or
    /// close deadline, silent past the heartbeat timeout or idle past the idle timeout and,
    /// when a heartbeat is due, pings the rest with the same shared frame (corked: the
    /// pings leave in one batch of flushes).
    void sweep() {
        if (stopping_ && this->time().manual())
            return;
        const auto now = this->time().now();
        shared_frame ping;
        if (options_.heartbeat_interval.count() > 0 && now >= next_ping_) {
            ping = ping_;
            next_ping_ = now + options_.heartbeat_interval;
        }
        {
            // Under the registry lock rather than over a copy of the registry: a copy would
            // cost a pointer pair per connection at every sweep. A connection's sweep only
            // reads atomics, posts, or queues the ping, none of which takes this lock; the
            // cork, released after the lock, sends the pings.
            cork corked{get_executor()};
            std::lock_guard<std::mutex> lock{registry_mutex_};
            for (const connection_ptr& conn : connections_)
                conn->sweep(now, ping);
        }
        schedule_sweep();
    }

    void stop_listening() {
        stopping_ = true;
        sweep_timer_.cancel();
        accept_retry_timer_.cancel();
        transport_.close_acceptor(acceptor_);
    }

    void stop_on_strand(std::chrono::milliseconds drain_deadline,
                        const std::function<void()>& on_stopped) {
        stop_listening();
        drain_timer_.expires_after(drain_deadline);
        drain_timer_.async_wait([self = this->shared_from_this()](std::error_code ec) {
            if (!ec)
                self->abort_remaining();
        });
        std::vector<connection_ptr> all;
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            if (on_stopped)
                stopped_callbacks_.push_back(on_stopped);
            all = connections_;
        }
        for (const connection_ptr& conn : all)
            asio::post(conn->strand(), [conn] { conn->go_away(); });
        notify_if_stopped();
    }

    void notify_if_stopped() {
        std::vector<std::function<void()>> callbacks;
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            if (!stopping_ || !connections_.empty())
                return;
            callbacks.swap(stopped_callbacks_);
        }
        // Nothing is left to drain: the deadline must not keep the io_context busy.
        asio::post(strand_, [self = this->shared_from_this()] { self->drain_timer_.cancel(); });
        for (auto& callback : callbacks)
            callback();
    }

    /// The drain deadline has passed: whoever is still connected is cut off.
    void abort_remaining() {
        std::vector<connection_ptr> all;
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            all = connections_;
        }
        for (const connection_ptr& conn : all)
            conn->abort();
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
        std::lock_guard<std::mutex> lock{registry_mutex_};
        return count_address(*conn);
    }

    void answer_http(const http_request& request, http_response& response) override {
        const auto current = handlers.current();
        if (current->deciders.on_http)
            return current->deciders.on_http(request, response);
        response = make_error_response(426, "This is a WebSocket endpoint: connect with a "
                                            "WebSocket client.");
    }

    void opened(const connection_ptr& conn) override {
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            if (detached_)
                return;
            ++open_count_;
        }
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

    /// Takes `conn` out of the registry: the last connection moves into its slot. Called
    /// with the registry mutex held.
    void unregister(const connection_type& conn) {
        const std::uint32_t slot = conn.registry_slot_;
        if (slot + std::size_t{1} != connections_.size()) {
            connections_[slot] = std::move(connections_.back());
            connections_[slot]->registry_slot_ = slot;
        }
        connections_.pop_back();
    }

    void finished(const connection_ptr& conn, const close_info& info, bool was_open) override {
        {
            std::lock_guard<std::mutex> lock{registry_mutex_};
            unregister(*conn);
            if (conn->counted_per_address_) {
                const auto from_address =
                    connections_per_address_.find(std::string{conn->remote_address()});
                if (--from_address->second == 0)
                    connections_per_address_.erase(from_address);
            }
            if (was_open)
                --open_count_;
        }
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
    asio::strand<asio::io_context::executor_type> strand_; // acceptor and timer
    acceptor_type acceptor_;
    asio::steady_timer sweep_timer_;
    asio::steady_timer accept_retry_timer_;
    asio::steady_timer drain_timer_; // the deadline of a graceful stop
    const shared_frame ping_;
    std::chrono::steady_clock::time_point next_ping_ =
        this->time().now() + options_.heartbeat_interval;
    limit_counters counters_;
    std::atomic<bool> stopping_{false}; // set on the strand, read by finishing connections
    std::uint64_t last_id_ = 0;
    // The strands connections run on, picked in accepted() (on the strand above).

    mutable std::mutex registry_mutex_;
    // Every connection not yet finished, each at its `registry_slot_`: a vector rather than
    // a map, as a map's node would cost each idle connection about 50 bytes.
    std::vector<connection_ptr> connections_;
    std::unordered_map<std::string, std::size_t> connections_per_address_;
    std::size_t open_count_ = 0;
    bool detached_ = false;
    std::vector<std::function<void()>> stopped_callbacks_;
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

#include <wschat/ws/detail/extern_templates.hpp>
