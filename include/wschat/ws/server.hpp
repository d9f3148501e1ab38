// wschat — the server: accepts streams, runs handshakes, hands connections to the handlers.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/detail/acceptor_loop.hpp>
#include <wschat/ws/detail/drain.hpp>
#include <wschat/ws/detail/handler_table.hpp>
#include <wschat/ws/detail/io/readiness_set.hpp>
#include <wschat/ws/detail/registry.hpp>
#include <wschat/ws/detail/sweep.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

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
                    asio::post(self->strand_, [self] { self->sweep(); });
                return self != nullptr;
            });
        asio::post(strand_, [self = this->shared_from_this()] {
            self->accept_next();
            self->schedule_sweep();
        });
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
        asio::post(strand_, [self = this->shared_from_this()] { self->stop_listening(); });
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
            return acceptor_.back_off([self = this->shared_from_this()](std::error_code e) {
                if (!e)
                    self->accept_next();
            });
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
        sweeper_.schedule([self = this->shared_from_this()](std::error_code ec) {
            if (!ec)
                self->sweep();
        });
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
                     [self = this->shared_from_this()](std::error_code ec) {
                         if (!ec)
                             self->abort_remaining();
                     });
        for (const connection_ptr& conn : registry_.all())
            connection_access::go_away(conn);
        notify_if_stopped();
    }

    void notify_if_stopped() {
        auto waiting = drain_.finish_if([this] { return stopping_ && registry_.empty(); });
        if (!waiting)
            return;
        // Nothing is left to drain: the deadline must not keep the io_context busy.
        asio::post(strand_, [self = this->shared_from_this()] { self->drain_.cancel(); });
        for (auto& callback : *waiting)
            callback();
    }

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
    drain drain_;
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

#include <wschat/ws/detail/extern_templates.hpp>
