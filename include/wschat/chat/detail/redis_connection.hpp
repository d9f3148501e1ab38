// wschat — an asynchronous Redis command connection on Asio: pipelined commands, replies in
// order, Lua scripts by SHA-1, bounded memory while Redis is away. Needs hiredis.
#pragma once

#include <wschat/chat/detail/redis_link.hpp>
#include <wschat/chat/detail/redis_protocol.hpp>
#include <wschat/chat/detail/redis_reply.hpp>
#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/sha1.hpp>

#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// A Lua script and its SHA-1, which is how Redis names a cached script (EVALSHA). Computed
/// once here, so the first call can already be an EVALSHA. Cheap to copy (shared text).
class redis_script {
public:
    /// The script `source` (Lua, as for EVAL).
    explicit redis_script(std::string source)
        : data_(std::make_shared<const data>(data{hex_sha1(source), std::move(source)})) {}

    /// The Lua text.
    const std::string& source() const noexcept { return data_->source; }
    /// The SHA-1 of the text in 40 lowercase hex digits, as `SCRIPT LOAD` returns it.
    const std::string& sha1() const noexcept { return data_->sha1; }

private:
    struct data {
        std::string sha1;
        std::string source;
    };

    static std::string hex_sha1(const std::string& text) {
        static constexpr char digits[] = "0123456789abcdef";
        std::string hex;
        for (const auto byte : ws::detail::sha1(text.data(), text.size())) {
            hex += digits[byte >> 4];
            hex += digits[byte & 0xF];
        }
        return hex;
    }

    std::shared_ptr<const data> data_;
};

/// An asynchronous connection to Redis for commands (not pub/sub: see `redis_subscriber`).
///
/// ```cpp
/// auto redis = chat::detail::redis_connection::create(
///     io, {chat::detail::parse_redis_url("redis://127.0.0.1:6379/0")});
/// redis->start();
/// redis->command({"SET", "greeting", "hello"}, [](std::error_code ec, auto reply) { ... });
/// ```
///
/// - Commands are pipelined: every command issued while a write is in flight goes out in the
///   next write, and replies are matched to commands in order. Each handler is called exactly
///   once, on the strand, never inside the call that issued the command.
/// - A handler receives `redis_errc::reply_error` with the reply when Redis answers with an
///   error; `unavailable` at once while disconnected (nothing is buffered then);
///   `queue_full` beyond `max_pending`/`max_pending_bytes`; `connection_lost`, `timeout` or
///   `protocol` when the connection failed after sending; `stopped` after `stop()`.
/// - While connecting (at start and on each reconnection) commands wait in the bounded
///   queue and go out once AUTH and SELECT succeeded; if the attempt fails they fail with
///   `unavailable`.
/// - Scripts run with EVALSHA; on NOSCRIPT (an empty cache: a restarted or flushed Redis) the
///   same call is retried once as EVAL, which also caches it. Every script run is loaded
///   again (SCRIPT LOAD) when the connection is re-established, before any queued command,
///   so calls issued in an order run in that order after a Redis restart too.
///
/// Thread safety: every member may be called from any thread.
class redis_connection final : public redis_link {
public:
    /// Receives the outcome of one command: an error code (empty on success) and the reply
    /// (an error reply with `reply_error`, nil when nothing was received).
    using reply_handler = std::function<void(std::error_code, redis_reply)>;

    /// A connection on a new strand of `io`; `start()` it.
    static std::shared_ptr<redis_connection> create(asio::io_context& io, redis_options options) {
        return create(asio::make_strand(io.get_executor()), std::move(options));
    }
    /// A connection whose handlers run on `strand` (shared with the caller's own work, so the
    /// caller's state needs no lock); `start()` it.
    static std::shared_ptr<redis_connection> create(redis_strand strand, redis_options options) {
        return std::shared_ptr<redis_connection>(
            new redis_connection(std::move(strand), std::move(options)));
    }

    /// Sends the command `args` (binary-safe: `{"SET", key, bytes}`).
    void command(std::initializer_list<std::string_view> args, reply_handler handler) {
        submit(args, std::move(handler));
    }

    /// Sends the command `args`: any range of things convertible to `std::string_view`
    /// (`std::vector<std::string>`, an array of views).
    template <class Range>
    void command(const Range& args, reply_handler handler) {
        submit(args, std::move(handler));
    }

    /// Runs `script` with `keys` and `args` (EVALSHA, falling back to EVAL once on NOSCRIPT).
    void run_script(const redis_script& script, std::vector<std::string> keys,
                    std::vector<std::string> args, reply_handler handler) {
        auto call = std::make_shared<script_call>(
            script_call{script, std::move(keys), std::move(args), std::move(handler)});
        std::string wire = format_script(*call, false);
        auto self = std::static_pointer_cast<redis_connection>(shared_from_this());
        asio::dispatch(strand_, [self, call, wire = std::move(wire)]() mutable {
            self->scripts_.emplace(call->script.sha1(), call->script);
            self->enqueue(std::move(wire), [self, call](std::error_code ec, redis_reply reply) {
                if (ec == redis_errc::reply_error && reply.is_error_code("NOSCRIPT")) {
                    self->enqueue(self->format_script(*call, true), std::move(call->handler));
                    return;
                }
                call->handler(ec, std::move(reply));
            });
        });
    }

    /// Commands queued or awaiting a reply, as of the last event on the strand (for metrics
    /// and tests; may be stale when read from another thread).
    std::size_t pending() const noexcept { return pending_count_.load(std::memory_order_relaxed); }

private:
    redis_connection(redis_strand strand, redis_options options)
        : redis_link(std::move(strand), std::move(options)) {}

    struct entry {
        reply_handler handler; // empty for the connection's own PING and SCRIPT LOAD
        std::size_t bytes = 0;
    };

    struct script_call {
        redis_script script;
        std::vector<std::string> keys;
        std::vector<std::string> args;
        reply_handler handler;
    };

    std::string format_script(const script_call& call, bool eval) const {
        const std::string numkeys = std::to_string(call.keys.size());
        std::vector<std::string_view> argv;
        argv.reserve(3 + call.keys.size() + call.args.size());
        argv.push_back(eval ? "EVAL" : "EVALSHA");
        argv.push_back(eval ? call.script.source() : call.script.sha1());
        argv.push_back(numkeys);
        argv.insert(argv.end(), call.keys.begin(), call.keys.end());
        argv.insert(argv.end(), call.args.begin(), call.args.end());
        std::string wire;
        append_command(wire, argv);
        return wire;
    }

    template <class Range>
    void submit(const Range& args, reply_handler handler) {
        std::string wire;
        bool allowed = true;
        for (const auto& first : args) {
            allowed = !changes_protocol(std::string_view{first});
            break;
        }
        if (!allowed || !append_command(wire, args)) {
            post_call(std::move(handler), make_error_code(redis_errc::invalid_command),
                      redis_reply{});
            return;
        }
        dispatch_command(std::move(wire), std::move(handler));
    }

    /// Commands after which replies no longer come one per command (pub/sub, MONITOR) or that
    /// undo the login (RESET) or change the protocol (HELLO 3): they would break the matching
    /// of replies to commands; pub/sub belongs on a `redis_subscriber`.
    static bool changes_protocol(std::string_view name) noexcept {
        static constexpr std::string_view refused[] = {
            "SUBSCRIBE",    "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
            "SUNSUBSCRIBE", "MONITOR",    "RESET",      "HELLO"};
        for (const std::string_view r : refused) {
            if (r.size() != name.size())
                continue;
            bool same = true;
            for (std::size_t i = 0; i < r.size() && same; ++i)
                same = r[i] == (name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
            if (same)
                return true;
        }
        return false;
    }

    void dispatch_command(std::string wire, reply_handler handler) {
        asio::dispatch(strand_,
                       [self = std::static_pointer_cast<redis_connection>(shared_from_this()),
                        wire = std::move(wire), h = std::move(handler)]() mutable {
                           self->enqueue(std::move(wire), std::move(h));
                       });
    }

    // On the strand from here on.

    void enqueue(std::string wire, reply_handler handler) {
        const redis_state state = current_state();
        if (state == redis_state::stopped || state == redis_state::idle ||
            state == redis_state::disconnected) {
            post_call(std::move(handler),
                      make_error_code(state == redis_state::stopped ? redis_errc::stopped
                                                                    : redis_errc::unavailable),
                      redis_reply{});
            return;
        }
        if (pending_.size() >= options_.max_pending ||
            pending_bytes_ + wire.size() > options_.max_pending_bytes) {
            post_call(std::move(handler), make_error_code(redis_errc::queue_full), redis_reply{});
            return;
        }
        pending_bytes_ += wire.size();
        pending_.push_back({std::move(handler), wire.size()});
        count_changed();
        if (state == redis_state::connected) {
            write(wire);
            expect(1);
        } else {
            queued_ += wire;
            ++unsent_;
        }
    }

    void handshake_done() override {
        // The scripts go first, so that the queued EVALSHAs behind them find them cached.
        std::string loads;
        for (const auto& [sha, script] : scripts_) {
            append_command(
                loads, std::initializer_list<std::string_view>{"SCRIPT", "LOAD", script.source()});
            pending_.push_front({});
        }
        loads += queued_;
        queued_.clear();
        queued_.shrink_to_fit();
        unsent_ = 0;
        count_changed();
        if (!loads.empty())
            write(loads);
        expect(pending_.size());
        mark_connected();
    }

    void handle_reply(redis_reply reply) override {
        if (pending_.empty()) {
            fail_connection(make_error_code(redis_errc::protocol),
                            "a reply from " + options_.endpoint.describe() +
                                " that no command asked for");
            return;
        }
        entry e = std::move(pending_.front());
        pending_.pop_front();
        pending_bytes_ -= e.bytes;
        received();
        count_changed();
        if (e.handler) {
            const std::error_code ec =
                reply.is_error() ? make_error_code(redis_errc::reply_error) : std::error_code{};
            e.handler(ec, std::move(reply));
        }
    }

    void connection_down(std::error_code sent, std::error_code unsent) override {
        std::deque<entry> failed;
        failed.swap(pending_);
        const std::size_t unsent_count = unsent_;
        pending_bytes_ = 0;
        unsent_ = 0;
        queued_.clear();
        queued_.shrink_to_fit();
        count_changed();
        // The queued ones come last; handlers may issue new commands, which see the new
        // state (and fail at once), never this list.
        const std::size_t sent_count = failed.size() - unsent_count;
        for (std::size_t i = 0; i < failed.size(); ++i) {
            if (failed[i].handler)
                failed[i].handler(i < sent_count ? sent : unsent, redis_reply{});
        }
    }

    void send_ping() override {
        std::string ping;
        append_command(ping, std::initializer_list<std::string_view>{"PING"});
        pending_.push_back({});
        count_changed();
        write(ping);
        expect(1);
    }

    void count_changed() noexcept {
        pending_count_.store(pending_.size(), std::memory_order_relaxed);
    }

    std::deque<entry> pending_; // sent (in order), then queued while connecting
    std::size_t unsent_ = 0;    // how many of pending_'s last entries are queued_
    std::string queued_;        // commands issued while connecting
    std::size_t pending_bytes_ = 0;
    std::atomic<std::size_t> pending_count_{0};
    std::map<std::string, redis_script> scripts_; // every script run, by SHA-1
};

} // namespace detail

WSCHAT_END_NAMESPACE
