// wschat — the client's state across attempts: reconnection with backoff, the offline queue,
// the timer of every deadline, and the application's handlers.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_error.hpp>
#include <wschat/ws/client_events.hpp>
#include <wschat/ws/client_options.hpp>
#include <wschat/ws/clock.hpp>
#include <wschat/ws/detail/backoff.hpp>
#include <wschat/ws/detail/client_link.hpp>
#include <wschat/ws/detail/client_transport.hpp>
#include <wschat/ws/detail/http_connect.hpp>
#include <wschat/ws/detail/rate_limiter.hpp>
#include <wschat/ws/detail/steady_timer_on.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/random.hpp>
#include <wschat/ws/session.hpp>
#include <wschat/ws/url.hpp>

#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A number in [0, 1) from the kernel's generator: the default jitter.
inline double random_unit() {
    std::uint64_t bits = 0;
    random_bytes(&bits, sizeof bits);
    return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0); // 53 bits / 2^53
}

/// The handlers of a client; any may be empty.
struct client_handlers {
    std::function<void(const client_connecting&)> on_connecting;
    std::function<void(const client_open&)> before_open;
    std::function<void(const client_open&)> on_open;
    std::function<void(const message&)> on_message;
    std::function<void(const client_closed&)> on_close;
    std::function<void(std::error_code, std::string_view)> on_error;
};

/// The client's state, shared with its current link so that it outlives it.
template <class Transport>
class client_core final : public link_owner,
                          public std::enable_shared_from_this<client_core<Transport>> {
public:
    using link_type = client_link<Transport>;
    using traits = client_transport<Transport>;
    using clock = std::chrono::steady_clock;

    using state = client_state;

    client_core(asio::io_context& io, client_options options)
        : options_(std::move(options)), strand_(asio::make_strand(io)), time_(options_.clock),
          backoff_(options_.reconnect.initial_delay, options_.reconnect.max_delay,
                   options_.random ? options_.random : std::function<double()>{random_unit}),
          timer_(strand_), limits_{options_.max_message_size, 0, 1, false}, io_(io) {
        queue_bound_.max_send_queue_bytes = std::numeric_limits<std::size_t>::max();
    }

    client_handlers handlers;

    asio::strand<asio::io_context::executor_type> get_executor() const noexcept { return strand_; }
    state current() const noexcept { return state_; }
    const client_options& options() const noexcept { return options_; }

    /// Checks the options and starts the first attempt (posted: handlers never run inside
    /// connect()). A stopped client starts again.
    void connect(std::error_code& ec) {
        ec.clear();
        if (state_ != state::idle && state_ != state::stopped)
            return;
        prepare(ec);
        if (ec)
            return;
        user_closed_ = false;
        attempts_ = 0;
        backoff_.reset();
        state_ = state::connecting;
        if (const auto& manual = time_.manual(); manual && !listening_) {
            listening_ = true;
            manual->on_advance([weak = this->weak_from_this()] {
                const auto self = weak.lock();
                if (self)
                    asio::post(self->strand_, [self] { self->tick(); });
                return self != nullptr;
            });
        }
        asio::post(strand_, [self = this->shared_from_this()] { self->start_attempt(); });
    }

    send_status send(opcode op, std::string_view payload) {
        if (state_ == state::idle || state_ == state::stopped || user_closed_)
            return send_status::closed;
        if (!rate_.admit(time_.now(), options_.max_sends_per_second, options_.send_burst))
            return send_status::rate_limited;
        if (state_ == state::open && link_ && link_->is_open())
            return link_->send(op, payload) ? send_status::sent : send_status::queue_full;
        if (offline_.size() >= options_.max_offline_messages ||
            offline_bytes_ + payload.size() > options_.max_offline_bytes) {
            report(client_error::offline_queue_full, "message dropped while disconnected");
            return send_status::dropped;
        }
        offline_.push_back({op, std::string{payload}});
        offline_bytes_ += payload.size();
        return send_status::queued_offline;
    }

    void close(std::uint16_t code, std::string_view reason) {
        if (state_ == state::idle || state_ == state::stopped || user_closed_)
            return;
        user_closed_ = true;
        drop_offline();
        if (link_) {
            state_ = state::closing;
            const std::shared_ptr<link_type> link = link_;
            return link->close(code, reason);
        }
        // Waiting to retry: nothing to close but the wait.
        state_ = state::stopped;
        rearm();
        client_closed info;
        info.code = code;
        info.reason.assign(reason);
        info.stop_reason = "closed by the application";
        asio::post(strand_, [self = this->shared_from_this(), info = std::move(info)] {
            if (self->handlers.on_close)
                self->handlers.on_close(info);
        });
    }

    std::size_t offline_count() const noexcept { return offline_.size(); }
    std::size_t queued_bytes() const { return link_ ? link_->queued_bytes() : 0; }

    /// The client object is gone: no handler runs any more and the connection is cut now
    /// (from the io_context's thread, as every call), so that the server sees it go.
    void detach() {
        handlers = client_handlers{};
        user_closed_ = true;
        state_ = state::stopped;
        if (link_) {
            const std::shared_ptr<link_type> link = link_;
            link->abort(asio::error::operation_aborted);
        }
        timer_.cancel();
    }

private:
    struct pending {
        opcode op;
        std::string payload;
    };

    /// Parses the URL and the proxy and makes the transport's context, once per connect().
    void prepare(std::error_code& ec) {
        const auto url = parse_ws_url(options_.url, ec);
        if (ec)
            return;
        if (url->scheme != traits::scheme) {
            ec = client_error::transport_mismatch;
            return;
        }
        url_ = *url;
        proxy_.reset();
        if (!options_.proxy.empty()) {
            if (url_.scheme == ws_url::scheme_kind::ws_unix) {
                ec = client_error::invalid_proxy;
                return;
            }
            proxy_ = parse_proxy(options_.proxy, ec);
            if (ec)
                return;
        }
        offer_ = handshake_offer{};
        offer_.host = url_.host;
        offer_.port = url_.port;
        offer_.secure = url_.secure();
        offer_.target = url_.target;
        offer_.origin = options_.origin;
        offer_.subprotocols = options_.subprotocols;
        offer_.headers = options_.headers;
        if ((ec = validate_offer(offer_)))
            return;
        context_.reset();
        context_.emplace(options_, ec);
        if (ec)
            return;
        shared_.reset();
        shared_.emplace(typename link_type::shared{io_, strand_, options_, url_, proxy_, *context_,
                                                   time_, queue_bound_, limits_});
    }

    void start_attempt() {
        if (state_ != state::connecting && state_ != state::waiting)
            return;
        if (user_closed_)
            return;
        state_ = state::connecting;
        ++attempts_;
        if (context_->insecure())
            report(client_error::tls_verification_disabled,
                   "client_tls_options::insecure_skip_verification is set: the server is not "
                   "authenticated");
        if (handlers.on_connecting)
            handlers.on_connecting(client_connecting{attempts_});
        if (state_ != state::connecting) // closed by the handler
            return;
        link_ = std::make_shared<link_type>(this->shared_from_this(), *shared_, offer_);
        const std::shared_ptr<link_type> link = link_;
        link->start();
        rearm();
    }

    // --- link_owner --------------------------------------------------------------------------

    void link_opened(const handshake_result& result) override {
        state_ = state::open;
        opened_at_ = time_.now();
        attempts_ = 0;
        client_open info{result.subprotocol, result.extensions, opened_before_};
        opened_before_ = true;
        if (handlers.before_open)
            handlers.before_open(info);
        flush_offline();
        if (handlers.on_open && state_ == state::open)
            handlers.on_open(info);
    }

    void link_message(const message& msg) override {
        if (handlers.on_message)
            handlers.on_message(msg);
    }

    void link_finished(const link_end& end) override {
        link_.reset();
        client_closed info;
        info.code = end.code;
        info.reason = end.reason;
        info.error = end.error;
        info.http_status = end.http_status;
        info.was_open = end.was_open;
        info.closed_by_peer = end.closed_by_peer;
        if (end.was_open && time_.now() - opened_at_ >= options_.reconnect.stable_after)
            backoff_.reset();
        info.stop_reason = why_stop(end);
        if (info.stop_reason.empty()) {
            info.will_retry = true;
            info.retry_delay = backoff_.next();
            retry_at_ = time_.now() + info.retry_delay;
            state_ = state::waiting;
        } else {
            state_ = state::stopped;
            drop_offline();
            if (info.stop_reason.rfind("gave up", 0) == 0)
                report(client_error::given_up, info.stop_reason);
        }
        rearm();
        if (handlers.on_close)
            handlers.on_close(info);
    }

    void link_deadlines_changed() override { rearm(); }

    /// Why the client must not try again after `end`, or an empty string.
    std::string why_stop(const link_end& end) const {
        const client_reconnect_options& reconnect = options_.reconnect;
        if (user_closed_)
            return "closed by the application";
        if (!reconnect.enabled)
            return "reconnection disabled";
        const int status = end.http_status;
        if (reconnect.stop_on_4xx && status >= 400 && status < 500 && status != 408 &&
            status != 429)
            return "HTTP " + std::to_string(status) + " at the handshake";
        const auto& codes = reconnect.no_retry_close_codes;
        if (end.closed_by_peer && std::find(codes.begin(), codes.end(), end.code) != codes.end())
            return "close code " + std::to_string(end.code) + " means do not retry";
        if (traits::permanent(end.error))
            return "TLS: " + end.error.message();
        if (reconnect.max_attempts != 0 && attempts_ >= reconnect.max_attempts)
            return "gave up after " + std::to_string(attempts_) + " attempts";
        return {};
    }

    // --- the offline queue ---------------------------------------------------------------------

    void flush_offline() {
        while (!offline_.empty() && state_ == state::open && link_ && link_->is_open()) {
            const pending& next = offline_.front();
            if (!link_->send(next.op, next.payload))
                return; // the send queue is full: the rest waits for the next open
            offline_bytes_ -= next.payload.size();
            offline_.pop_front();
        }
    }

    void drop_offline() {
        offline_.clear();
        offline_bytes_ = 0;
    }

    void report(std::error_code ec, std::string_view detail) {
        if (handlers.on_error)
            handlers.on_error(ec, detail);
    }

    // --- time ------------------------------------------------------------------------------------

    /// The earliest thing due: the link's deadlines, or the next attempt.
    clock::time_point next_due() const noexcept {
        if (link_)
            return link_->next_due();
        if (state_ == state::waiting)
            return retry_at_;
        return clock::time_point::max();
    }

    /// Arms the timer for the earliest thing due (a manual clock ticks at each advance).
    void rearm() {
        if (time_.manual())
            return;
        const clock::time_point due = next_due();
        if (due == clock::time_point::max()) {
            timer_.cancel();
            return;
        }
        if (armed_for_ == due)
            return;
        armed_for_ = due;
        timer_.expires_at(due);
        timer_.async_wait([self = this->shared_from_this()](std::error_code ec) {
            if (!ec) {
                self->armed_for_ = clock::time_point::max();
                self->tick();
            }
        });
    }

    void tick() {
        const clock::time_point now = time_.now();
        if (link_) {
            const std::shared_ptr<link_type> link = link_;
            link->tick(now);
        } else if (state_ == state::waiting && now >= retry_at_) {
            start_attempt();
        }
        rearm();
    }

    const client_options options_;
    asio::strand<asio::io_context::executor_type> strand_;
    time_source time_;
    backoff backoff_;
    steady_timer_on<asio::strand<asio::io_context::executor_type>> timer_;
    clock::time_point armed_for_ = clock::time_point::max();
    const session_limits limits_;
    server_options queue_bound_; // the link refuses sends past the bound itself
    asio::io_context& io_;

    ws_url url_;
    std::optional<proxy_address> proxy_;
    handshake_offer offer_;
    std::optional<typename traits::context> context_;
    std::optional<typename link_type::shared> shared_;
    std::shared_ptr<link_type> link_;

    std::deque<pending> offline_;
    std::size_t offline_bytes_ = 0;
    rate_limiter rate_;

    state state_ = state::idle;
    unsigned attempts_ = 0; // in a row without an open
    clock::time_point opened_at_{};
    clock::time_point retry_at_{};
    bool user_closed_ = false;
    bool opened_before_ = false;
    bool listening_ = false; // to the manual clock
};

} // namespace detail

WSCHAT_END_NAMESPACE
