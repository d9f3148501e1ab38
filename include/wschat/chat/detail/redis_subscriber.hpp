// wschat — a Redis pub/sub connection on Asio that keeps its channel set across reconnections.
// Needs hiredis.
#pragma once

#include <wschat/chat/detail/redis_link.hpp>
#include <wschat/chat/detail/redis_protocol.hpp>
#include <wschat/chat/detail/redis_reply.hpp>
#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>

#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// A dedicated Redis connection for pub/sub (RESP2 puts a connection that subscribes into a
/// mode where it takes no other commands, so commands go on a `redis_connection`).
///
/// ```cpp
/// auto sub = chat::detail::redis_subscriber::create(io, {endpoint});
/// sub->on_message([](std::string_view channel, std::string_view payload) { ... });
/// sub->on_state([](const chat::detail::redis_state_event& e) { ... });
/// sub->start();
/// sub->subscribe("room:lobby", [](std::error_code ec) { ... }); // ec empty: active now
/// ```
///
/// The subscriber holds the set of channels the application wants. `subscribe` adds one,
/// `unsubscribe` removes one; after every reconnection the whole set is subscribed again
/// before `connected` is reported, so on that event the application knows every channel is
/// live again and can look for what it missed in between (messages published while the
/// connection was down are lost: that is Redis pub/sub).
///
/// Messages are delivered in the order Redis sent them, only for channels in the set:
/// after `unsubscribe(c)` returns, no message of `c` reaches the handler, even one already
/// on its way. Handlers run on the strand. Thread safety: every member may be called from any
/// thread.
class redis_subscriber final : public redis_link {
public:
    /// Receives one message; both views are valid during the call only.
    using message_handler = std::function<void(std::string_view channel, std::string_view payload)>;
    /// Receives the outcome of a `subscribe` or `unsubscribe`.
    using done_handler = std::function<void(std::error_code)>;

    /// A subscriber on a new strand of `io`; `start()` it.
    static std::shared_ptr<redis_subscriber> create(asio::io_context& io, redis_options options) {
        return create(asio::make_strand(io.get_executor()), std::move(options));
    }
    /// A subscriber whose handlers run on `strand`; `start()` it.
    static std::shared_ptr<redis_subscriber> create(redis_strand strand, redis_options options) {
        return std::shared_ptr<redis_subscriber>(
            new redis_subscriber(std::move(strand), std::move(options)));
    }

    /// Sets the message handler; set it before `start()`.
    void on_message(message_handler handler) {
        asio::dispatch(strand_, [self = self_ptr(), h = std::move(handler)]() mutable {
            self->message_handler_ = std::move(h);
        });
    }

    /// Adds `channel` to the set. `done` (optional) is called once: with no error when Redis
    /// confirmed the subscription (at once if it already had); `unavailable` when not
    /// connected now (the channel stays in the set and is subscribed on the next connection,
    /// reported by the `connected` state event); `connection_lost` or `timeout` when the
    /// connection failed first (likewise); `stopped` after `stop()`.
    void subscribe(std::string channel, done_handler done = {}) {
        asio::dispatch(strand_,
                       [self = self_ptr(), c = std::move(channel), d = std::move(done)]() mutable {
                           self->add(std::move(c), std::move(d));
                       });
    }

    /// Removes `channel` from the set: no message of it is delivered from now on. `done`
    /// (optional) is called once: with no error when Redis confirmed, or at once when not
    /// connected (there is then nothing to undo).
    void unsubscribe(std::string channel, done_handler done = {}) {
        asio::dispatch(strand_,
                       [self = self_ptr(), c = std::move(channel), d = std::move(done)]() mutable {
                           self->remove(std::move(c), std::move(d));
                       });
    }

private:
    redis_subscriber(redis_strand strand, redis_options options)
        : redis_link(std::move(strand), std::move(options)) {}

    std::shared_ptr<redis_subscriber> self_ptr() {
        return std::static_pointer_cast<redis_subscriber>(shared_from_this());
    }

    /// One SUBSCRIBE or UNSUBSCRIBE of one channel awaiting Redis' confirmation. Redis
    /// confirms each channel of each command in order, so a per-channel queue matches them.
    struct waiter {
        bool subscribe = true;
        bool resubscription = false; // part of the set re-subscribed after connecting
        done_handler done;
    };

    // On the strand from here on.

    bool live() const noexcept {
        // After the handshake the socket takes SUBSCRIBE; before it, the channel waits for the
        // re-subscription of the whole set.
        return current_state() == redis_state::connected || resubscribing_;
    }

    void add(std::string channel, done_handler done) {
        const redis_state state = current_state();
        if (state == redis_state::stopped) {
            if (done)
                post_call(std::move(done), make_error_code(redis_errc::stopped));
            return;
        }
        const bool added = channels_.insert(channel).second;
        if (!live()) {
            if (state == redis_state::connecting) {
                parked_[channel].push_back(std::move(done)); // answered by the re-subscription
            } else if (done) {
                post_call(std::move(done), make_error_code(redis_errc::unavailable));
            }
            return;
        }
        if (!added && !waiters_.count(channel)) {
            if (done)
                post_call(std::move(done), std::error_code{});
            return;
        }
        send("SUBSCRIBE", channel, waiter{true, false, std::move(done)});
    }

    void remove(std::string channel, done_handler done) {
        if (channels_.erase(channel) == 0 && !waiters_.count(channel)) {
            if (done)
                post_call(std::move(done), std::error_code{});
            return;
        }
        // A channel still waiting to be re-subscribed: its parked handlers learn it is gone.
        fail_parked(channel, make_error_code(redis_errc::unavailable));
        if (!live()) {
            if (done)
                post_call(std::move(done), std::error_code{});
            return;
        }
        send("UNSUBSCRIBE", channel, waiter{false, false, std::move(done)});
    }

    void send(std::string_view verb, const std::string& channel, waiter w) {
        std::string wire;
        append_command(wire, std::initializer_list<std::string_view>{verb, channel});
        waiters_[channel].push_back(std::move(w));
        write(wire);
        expect(1);
    }

    void handshake_done() override {
        if (channels_.empty()) {
            mark_connected();
            return;
        }
        // The whole set in commands of at most 1000 channels, each confirmed per channel;
        // `connected` is reported when the last confirmation arrives.
        resubscribing_ = true;
        std::vector<std::string_view> argv;
        std::string wire;
        const auto send_batch = [&] {
            append_command(wire, argv);
            argv.clear();
        };
        for (const std::string& channel : channels_) {
            if (argv.empty())
                argv.push_back("SUBSCRIBE");
            argv.push_back(channel);
            auto& queue = waiters_[channel];
            queue.push_back({true, true, {}});
            if (auto parked = parked_.find(channel); parked != parked_.end()) {
                waiter& w = queue.back();
                auto handlers = std::move(parked->second);
                parked_.erase(parked);
                w.done = [handlers = std::move(handlers)](std::error_code ec) {
                    for (const auto& h : handlers)
                        if (h)
                            h(ec);
                };
            }
            if (argv.size() == 1001)
                send_batch();
        }
        if (!argv.empty())
            send_batch();
        resubscribe_left_ = channels_.size();
        write(wire);
        expect(channels_.size());
    }

    void handle_reply(redis_reply reply) override {
        // Before any SUBSCRIBE (or after the last UNSUBSCRIBE) Redis answers PING with +PONG.
        if (reply.is_status()) {
            received();
            return;
        }
        if (!reply.is_array() || reply.elements.empty() || !reply.elements[0].is_string()) {
            fail_connection(make_error_code(redis_errc::protocol),
                            "unexpected reply on a subscriber connection: " +
                                std::string{reply.is_error() ? reply.text() : "not an array"});
            return;
        }
        const std::string_view kind = reply.elements[0].text();
        if (kind == "message" && reply.elements.size() == 3) {
            const std::string& channel = reply.elements[1].str;
            if (message_handler_ && channels_.count(channel))
                message_handler_(channel, reply.elements[2].str);
            return;
        }
        if (kind == "pong") {
            received();
            return;
        }
        if ((kind == "subscribe" || kind == "unsubscribe") && reply.elements.size() == 3) {
            received();
            confirm(reply.elements[1].str);
            return;
        }
        fail_connection(make_error_code(redis_errc::protocol),
                        "unexpected pub/sub reply '" + std::string{kind} + "'");
    }

    void confirm(const std::string& channel) {
        auto found = waiters_.find(channel);
        if (found == waiters_.end() || found->second.empty())
            return; // a confirmation nobody waits for (an UNSUBSCRIBE of a stale channel)
        waiter w = std::move(found->second.front());
        found->second.pop_front();
        if (found->second.empty())
            waiters_.erase(found);
        if (w.done)
            w.done(std::error_code{});
        if (w.resubscription && resubscribe_left_ > 0 && --resubscribe_left_ == 0) {
            resubscribing_ = false;
            mark_connected();
        }
    }

    void fail_parked(const std::string& channel, std::error_code ec) {
        auto parked = parked_.find(channel);
        if (parked == parked_.end())
            return;
        auto handlers = std::move(parked->second);
        parked_.erase(parked);
        for (auto& h : handlers)
            if (h)
                post_call(std::move(h), ec);
    }

    void connection_down(std::error_code sent, std::error_code unsent) override {
        resubscribing_ = false;
        resubscribe_left_ = 0;
        auto waiting = std::move(waiters_);
        waiters_.clear();
        auto parked = std::move(parked_);
        parked_.clear();
        for (auto& [channel, queue] : waiting)
            for (auto& w : queue)
                if (w.done)
                    w.done(sent);
        for (auto& [channel, handlers] : parked)
            for (auto& h : handlers)
                if (h)
                    h(unsent);
    }

    void send_ping() override {
        std::string ping;
        append_command(ping, std::initializer_list<std::string_view>{"PING"});
        write(ping);
        expect(1);
    }

    void released() override {
        message_handler_ = nullptr;
        channels_.clear();
    }

    std::set<std::string> channels_; // what the application wants
    std::map<std::string, std::deque<waiter>> waiters_;
    std::map<std::string, std::vector<done_handler>> parked_; // subscribed while connecting
    bool resubscribing_ = false;
    std::size_t resubscribe_left_ = 0;
    message_handler message_handler_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
