// wschat — the cluster bus on Redis: a lobby's rooms span every lobby on the same Redis.
//
// Not in the umbrella header: it needs hiredis (Debian: libhiredis-dev; CMake wschat::redis).
#pragma once

#include <wschat/chat/bus.hpp>
#include <wschat/chat/detail/redis_connection.hpp>
#include <wschat/chat/detail/redis_subscriber.hpp>
#include <wschat/chat/detail/redis_url.hpp>
#include <wschat/chat/metrics.hpp>
#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/random.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// How a `redis_bus` behaves. Match `history_messages`, `history_age` and `resume_window` to
/// the lobby's `lobby_options` (`history.max_messages`, `history.max_age`, `resume_window`).
struct redis_bus_options {
    /// The connection to Redis (its endpoint: `parse_redis_url`; `redis_bus::create` with a
    /// URL fills it in). Both of the bus's connections use it.
    detail::redis_options redis;
    /// Prefix of every key and channel: clusters (or tests) sharing one Redis use different
    /// ones. A room's keys share the hash tag `{room}`, as Redis Cluster wants for scripts.
    std::string prefix = "wschat:";
    /// Messages a room's stream holds (XADD MAXLEN ~, so a few more may stay): what a node
    /// can replay to a resuming member or fetch to fill a gap.
    std::size_t history_messages = 500;
    /// A room's sequence, epoch and stream expire this long after its last message: a room
    /// quiet that long starts a new epoch, as a lobby's room does when its history expires.
    std::chrono::seconds history_age{600};
    /// A node that stops refreshing (killed, cut off) is gone from every other node's counts
    /// within this. Each node refreshes its entries every third of it.
    std::chrono::milliseconds presence_ttl{15000};
    /// A member's resume token stays claimable this long after its node was last heard of
    /// (the node forgets tokens itself when its own window ends).
    std::chrono::seconds resume_window{120};
    /// Publishes waiting for Redis at most; more are refused (`bus_errc::busy`) at once.
    std::size_t max_publishing = 4096;
    /// Messages a room holds while it fetches what it missed; beyond them it drops the
    /// newest and fetches again afterwards.
    std::size_t max_buffered = 1024;
};

/// The cluster bus on Redis (Centrifugo's design): each room's messages are numbered, stored
/// and published by one Lua script, so every node subscribed to the room delivers them in one
/// order, each once; presence and resume tokens live in Redis too.
///
/// ```cpp
/// asio::io_context io;
/// auto cluster = chat::redis_bus::create(io, "redis://127.0.0.1:6379");
/// chat::lobby<> lobby{options, {}, cluster};
/// lobby.attach(server);
/// io.run();            // cluster->stop() to end it
/// ```
///
/// - Publish: INCR the room's sequence, XADD to its capped stream (entry id `seq-0`),
///   PUBLISH to its channel, SET NX its epoch (a new one when Redis lost the room), refresh
///   the TTLs; the sender's handler gets the number when the script returns. Nodes deliver
///   only what they hear on the channel (their own messages too).
/// - Each subscribed room keeps the last number delivered: a message heard again is skipped;
///   one after a gap (lost while resubscribing) makes the node read the stream (XREVRANGE)
///   and deliver what it missed first; if that is gone, or the room's epoch changed (Redis
///   restarted empty), the lobby is told (`bus_synced` with `too_old` or `epoch_changed`).
/// - While Redis is away, publishing fails at once (`bus_errc::unavailable`, or
///   `redis_errc`'s codes): nothing queues beyond `redis.max_pending`/`max_publishing`. On
///   reconnection the subscriber resubscribes every room and each room reads what it
///   missed.
/// - Presence: a set of names per (room, node) and a sorted set of the room's nodes with a
///   deadline each, refreshed every `presence_ttl / 3` with the node's whole list (which also
///   rebuilds them after a Redis restart); joins and leaves are published as deltas. Each
///   refresh drops the nodes past their deadline and returns the others' lists.
/// - Resume tokens: 48 hex digits, the issuing node's id and 16 random bytes; the node keeps
///   `token -> member` in a hash it refreshes with the resume window as TTL, and another node
///   claims a token by taking it out of that hash (once).
///
/// Thread safety: every member may be called from any thread; the bus's work runs on one
/// strand of the io_context it was made with.
class redis_bus final : public bus, public std::enable_shared_from_this<redis_bus> {
public:
    /// A bus on `io` (a new strand of it), connecting to `options.redis.endpoint`; started.
    static std::shared_ptr<redis_bus> create(asio::io_context& io, redis_bus_options options) {
        std::shared_ptr<redis_bus> made{new redis_bus(io, std::move(options))};
        made->start();
        return made;
    }

    /// A bus connecting to `url` (`redis://host:port/db`, `unix:///path`, see
    /// `parse_redis_url`). Throws `std::system_error` for a bad URL.
    static std::shared_ptr<redis_bus> create(asio::io_context& io, std::string_view url,
                                             redis_bus_options options = {}) {
        options.redis.endpoint = detail::parse_redis_url(url);
        return create(io, std::move(options));
    }

    ~redis_bus() override {
        conn_->stop();
        sub_->stop();
    }

    /// Ends the bus: both connections close, refreshing stops, publishing fails. What this
    /// node had in Redis stays until it expires, as when a node dies (its members then
    /// vanish from the other nodes' counts within `presence_ttl`).
    void stop() {
        conn_->stop();
        sub_->stop();
        asio::post(strand_, [self = shared_from_this()] {
            self->stopped_ = true;
            self->timer_->cancel();
        });
    }

    /// What the bus did so far.
    bus_stats stats() const noexcept { return counters_->snapshot(); }

    void listen(std::weak_ptr<bus_listener> listener) override {
        asio::post(strand_, [self = shared_from_this(), listener = std::move(listener)] {
            self->listener_ = listener;
        });
    }

    const std::string& node() const noexcept override { return node_; }

    void subscribe(const std::string& room) override {
        asio::post(strand_, [self = shared_from_this(), room] { self->open(room); });
    }

    void unsubscribe(const std::string& room) override {
        asio::post(strand_, [self = shared_from_this(), room] { self->close(room); });
    }

    void publish(const std::string& room, std::string body, publish_handler done) override {
        asio::post(strand_, [self = shared_from_this(), room, body = std::move(body),
                             done = std::move(done)]() mutable {
            self->send(room, std::move(body), std::move(done));
        });
    }

    void member_joined(const std::string& room, const std::string& name) override {
        asio::post(strand_, [self = shared_from_this(), room, name] {
            self->rooms_[room].names.insert(name);
            self->run(
                self->scripts_->join, {self->key(room, "nodes"), self->own_set(room)},
                {self->node_, self->deadline_ms(), self->ttl_ms(), name, self->channel(room)});
        });
    }

    void member_left(const std::string& room, const std::string& name) override {
        asio::post(strand_, [self = shared_from_this(), room, name] {
            if (const auto at = self->rooms_.find(room); at != self->rooms_.end())
                at->second.names.erase(name);
            self->run(self->scripts_->leave, {self->key(room, "nodes"), self->own_set(room)},
                      {self->node_, name, self->channel(room)});
        });
    }

    std::string new_token() override { return node_ + ws::random_hex(16); }

    void remember_member(const std::string& token, const bus_member& who) override {
        asio::post(strand_, [self = shared_from_this(), token, value = who.id + ' ' + who.name] {
            const std::string key = self->members_key(self->node_);
            self->conn_->command({"HSET", key, token, value}, self->counted_failure());
            self->conn_->command({"PEXPIRE", key, std::to_string(self->resume_ms())},
                                 self->counted_failure());
        });
    }

    void forget_member(const std::string& token) override {
        asio::post(strand_, [self = shared_from_this(), token] {
            self->conn_->command({"HDEL", self->members_key(self->node_), token},
                                 self->counted_failure());
        });
    }

    void claim_member(const std::string& token, claim_handler done) override {
        asio::post(strand_, [self = shared_from_this(), token, done = std::move(done)]() mutable {
            self->claim(token, std::move(done));
        });
    }

private:
    /// What the bus knows of a room it hears.
    struct room_cursor {
        std::string epoch;
        std::uint64_t last = 0; // the last message delivered (or synced)
        bool synced = false;    // `bus_synced` was told since subscribed
        bool syncing = false;   // a read of the stream is on its way
        bool subscribed = false;
        std::uint64_t generation = 0; // new at each subscribe: stale replies are ignored
        /// A message heard on the room's channel.
        struct heard_message {
            std::string epoch; ///< its room's epoch
            std::uint64_t seq; ///< its number
            std::string body;  ///< its fields after `seq`
        };
        std::deque<heard_message> buffer; // heard while syncing
        bool overflowed = false;          // some were dropped: read again
        std::set<std::string> names;      // this node's members
        std::set<std::string> nodes;      // the other nodes the lobby was told of
    };

    /// The scripts; each one call, atomic in Redis.
    struct scripts {
        // KEYS seq epoch stream; ARGV body candidate-epoch maxlen ttl-s channel
        detail::redis_script publish{R"lua(
if redis.call('SET', KEYS[2], ARGV[2], 'NX') then redis.call('DEL', KEYS[1], KEYS[3]) end
local epoch = redis.call('GET', KEYS[2])
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'p', ARGV[1])
redis.call('PUBLISH', ARGV[5], 'm' .. epoch .. ' ' .. seq .. ARGV[1])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return {epoch, seq}
)lua"};
        // KEYS seq epoch stream; ARGV candidate-epoch known-epoch after count ttl-s
        // -> {epoch, last seq, newest entries after `after` (all when the epoch is not known)}
        detail::redis_script read{R"lua(
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[5]) then
  redis.call('DEL', KEYS[1], KEYS[3])
end
local epoch = redis.call('GET', KEYS[2])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[3])
if epoch ~= ARGV[2] then after = 0 end
local entries = {}
if seq > after then
  entries = redis.call('XREVRANGE', KEYS[3], '+', (after + 1) .. '-0', 'COUNT', ARGV[4])
end
return {epoch, seq, entries}
)lua"};
        // KEYS nodes own-set; ARGV node deadline-ms ttl-ms set-prefix name...
        // -> {node, {names}, ...} of the other live nodes
        detail::redis_script refresh{R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('DEL', KEYS[2])
for i = 5, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= 5 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('DEL', ARGV[4] .. gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local out = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if n ~= ARGV[1] then
    out[#out + 1] = n
    out[#out + 1] = redis.call('SMEMBERS', ARGV[4] .. n)
  end
end
return out
)lua"};
        // KEYS nodes own-set; ARGV node deadline-ms ttl-ms name channel
        detail::redis_script join{R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[5], 'j' .. ARGV[1] .. ' ' .. ARGV[4])
)lua"};
        // KEYS nodes own-set; ARGV node name channel
        detail::redis_script leave{R"lua(
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[3], 'l' .. ARGV[1] .. ' ' .. ARGV[2])
)lua"};
        // KEYS members-hash; ARGV token -> "id name", taken out; or nil
        detail::redis_script claim{R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v
)lua"};
    };

    redis_bus(asio::io_context& io, redis_bus_options options)
        : options_(std::move(options)), strand_(asio::make_strand(io.get_executor())),
          node_(ws::random_hex(8)),
          conn_(detail::redis_connection::create(strand_, options_.redis)),
          sub_(detail::redis_subscriber::create(strand_, options_.redis)),
          timer_(std::make_shared<asio::steady_timer>(strand_)) {}

    void start() {
        std::weak_ptr<redis_bus> weak = shared_from_this();
        sub_->on_message([weak](std::string_view channel, std::string_view payload) {
            if (auto self = weak.lock())
                self->heard(channel, payload);
        });
        const auto state = [weak](const detail::redis_state_event& e) {
            if (auto self = weak.lock())
                self->state_changed(e);
        };
        sub_->on_state(state);
        conn_->on_state(state);
        conn_->start();
        sub_->start();
        asio::post(strand_, [weak] {
            if (auto self = weak.lock())
                self->tick();
        });
    }

    // --- names in Redis ---------------------------------------------------------------------

    std::string key(std::string_view room, std::string_view what) const {
        std::string k = options_.prefix;
        k += '{';
        k += room;
        k += "}:";
        k += what;
        return k;
    }
    std::string channel(std::string_view room) const { return key(room, "channel"); }
    std::string set_prefix(std::string_view room) const { return key(room, "node:"); }
    std::string own_set(std::string_view room) const { return set_prefix(room) + node_; }
    std::string members_key(std::string_view node) const {
        return options_.prefix + "node:" + std::string{node} + ":members";
    }
    /// The room a channel name is for.
    std::string_view room_of(std::string_view channel) const {
        const std::size_t open = options_.prefix.size() + 1;
        const std::size_t close = channel.rfind("}:");
        if (channel.size() < open || close == std::string_view::npos || close < open)
            return {};
        return channel.substr(open, close - open);
    }

    std::string ttl_ms() const { return std::to_string(options_.presence_ttl.count()); }
    /// A node is gone two refresh periods after its last refresh; others look every period,
    /// so it is gone from their counts within `presence_ttl`.
    std::string deadline_ms() const {
        return std::to_string(options_.presence_ttl.count() * 2 / 3);
    }
    std::chrono::milliseconds period() const {
        return std::max(std::chrono::milliseconds{10}, options_.presence_ttl / 3);
    }
    long long resume_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(options_.resume_window)
            .count();
    }

    // --- on the strand from here on -----------------------------------------------------------

    detail::redis_connection::reply_handler counted_failure() {
        return [counters = counters_](std::error_code ec, const detail::redis_reply&) {
            if (ec)
                bus_counters::add(counters->command_errors);
        };
    }

    void run(const detail::redis_script& script, std::vector<std::string> keys,
             std::vector<std::string> args) {
        conn_->run_script(script, std::move(keys), std::move(args), counted_failure());
    }

    void claim(const std::string& token, claim_handler done) {
        const bool well_formed = token.size() == node_.size() + 32 &&
                                 token.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!well_formed)
            return done(make_error_code(bus_errc::unknown_token), {});
        conn_->run_script(scripts_->claim, {members_key(token.substr(0, node_.size()))}, {token},
                          [done = std::move(done)](std::error_code ec, detail::redis_reply r) {
                              if (ec)
                                  return done(ec, {});
                              const std::size_t space = r.str.find(' ');
                              if (!r.is_string() || space == std::string::npos)
                                  return done(make_error_code(bus_errc::unknown_token), {});
                              done({}, {r.str.substr(space + 1), r.str.substr(0, space)});
                          });
    }

    void send(const std::string& room, std::string body, publish_handler done) {
        const auto fail = [this, &done](std::error_code ec) {
            bus_counters::add(counters_->publish_errors);
            if (done)
                asio::post(strand_, [done = std::move(done), ec] { done(ec, 0); });
        };
        if (conn_->state() != detail::redis_state::connected)
            return fail(bus_errc::unavailable);
        if (publishing_ >= options_.max_publishing)
            return fail(bus_errc::busy);
        ++publishing_;
        conn_->run_script(
            scripts_->publish, {key(room, "seq"), key(room, "epoch"), key(room, "stream")},
            {std::move(body), ws::random_hex(8), std::to_string(options_.history_messages),
             std::to_string(options_.history_age.count()), channel(room)},
            [self = shared_from_this(), done = std::move(done)](std::error_code ec,
                                                                detail::redis_reply r) {
                --self->publishing_;
                std::uint64_t seq = 0;
                if (!ec && r.is_array() && r.elements.size() == 2 && r.elements[1].is_integer())
                    seq = static_cast<std::uint64_t>(r.elements[1].integer);
                else if (!ec)
                    ec = make_error_code(redis_errc::protocol);
                bus_counters::add(ec ? self->counters_->publish_errors
                                     : self->counters_->published);
                if (done)
                    done(ec, seq);
            });
    }

    void open(const std::string& room) {
        room_cursor& c = rooms_[room];
        if (c.subscribed)
            return;
        c.subscribed = true;
        c.synced = c.syncing = c.overflowed = false;
        c.buffer.clear();
        const std::uint64_t generation = ++c.generation;
        sub_->subscribe(channel(room),
                        [self = shared_from_this(), room, generation](std::error_code ec) {
                            // Not connected: the subscriber subscribes it on reconnection, and the
                            // `connected` event syncs every room.
                            if (!ec)
                                self->resync(room, generation);
                        });
    }

    void close(const std::string& room) {
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || !at->second.subscribed)
            return;
        sub_->unsubscribe(channel(room));
        // Its names are gone already (member_left); so is its entry in the room's nodes.
        rooms_.erase(at);
    }

    /// Reads the room's presence and then its stream (replies come in that order, so the
    /// lobby knows the other nodes' members when it is told the room is synced).
    void resync(const std::string& room, std::uint64_t generation) {
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || at->second.generation != generation || at->second.syncing)
            return;
        refresh(room, at->second);
        read(room, at->second);
    }

    void read(const std::string& room, room_cursor& c) {
        c.syncing = true;
        conn_->run_script(scripts_->read,
                          {key(room, "seq"), key(room, "epoch"), key(room, "stream")},
                          {ws::random_hex(8), c.synced ? c.epoch : std::string{},
                           std::to_string(c.synced ? c.last : 0),
                           std::to_string(std::max<std::size_t>(options_.history_messages, 1)),
                           std::to_string(options_.history_age.count())},
                          [self = shared_from_this(), room,
                           generation = c.generation](std::error_code ec, detail::redis_reply r) {
                              self->was_read(room, generation, ec, r);
                          });
    }

    void was_read(const std::string& room, std::uint64_t generation, std::error_code ec,
                  const detail::redis_reply& r) {
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || at->second.generation != generation)
            return;
        room_cursor& c = at->second;
        c.syncing = false;
        if (ec || !r.is_array() || r.elements.size() != 3 || !r.elements[0].is_string() ||
            !r.elements[1].is_integer() || !r.elements[2].is_array()) {
            // Tried again at the next `connected` event or refresh tick.
            bus_counters::add(counters_->command_errors);
            return;
        }
        const stream_position now{r.elements[0].str,
                                  static_cast<std::uint64_t>(r.elements[1].integer)};
        std::vector<bus_entry> entries;
        for (auto e = r.elements[2].elements.rbegin(); e != r.elements[2].elements.rend(); ++e)
            if (e->is_array() && e->elements.size() == 2 && e->elements[1].is_array() &&
                e->elements[1].elements.size() == 2)
                entries.push_back({std::strtoull(e->elements[0].str.c_str(), nullptr, 10),
                                   e->elements[1].elements[1].str});
        auto listener = listener_.lock();
        if (!c.synced || now.epoch != c.epoch || now.sequence < c.last ||
            (now.sequence > c.last && (entries.empty() || entries.front().seq > c.last + 1))) {
            const recovery_outcome why = !c.synced              ? recovery_outcome::recovered
                                         : now.epoch != c.epoch ? recovery_outcome::epoch_changed
                                                                : recovery_outcome::too_old;
            if (c.synced)
                bus_counters::add(counters_->resets);
            c.synced = true;
            c.epoch = now.epoch;
            c.last = now.sequence;
            if (listener)
                listener->bus_synced(room, now, std::move(entries), why);
        } else {
            for (const bus_entry& e : entries) {
                if (e.seq <= c.last)
                    continue;
                c.last = e.seq;
                bus_counters::add(counters_->gaps_filled);
                bus_counters::add(counters_->delivered);
                if (listener)
                    listener->bus_message(room, c.epoch, e.seq, e.body);
            }
        }
        drain(room, generation);
    }

    /// Hands over what was heard while the room synced, or reads again if some was dropped.
    void drain(const std::string& room, std::uint64_t generation) {
        for (;;) {
            const auto at = rooms_.find(room);
            if (at == rooms_.end() || at->second.generation != generation || at->second.syncing)
                return;
            room_cursor& c = at->second;
            if (std::exchange(c.overflowed, false))
                return read(room, c);
            if (c.buffer.empty())
                return;
            room_cursor::heard_message m = std::move(c.buffer.front());
            c.buffer.pop_front();
            take(room, c, std::move(m));
        }
    }

    void heard(std::string_view channel, std::string_view payload) {
        const std::string_view room = room_of(channel);
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || payload.size() < 2)
            return;
        const char kind = payload.front();
        payload.remove_prefix(1);
        const std::size_t space = payload.find(' ');
        if (space == std::string_view::npos)
            return;
        const std::string_view first = payload.substr(0, space);
        const std::string_view rest = payload.substr(space + 1);
        if (kind == 'j' || kind == 'l') {
            if (first == node_)
                return;
            at->second.nodes.insert(std::string{first});
            if (auto listener = listener_.lock())
                listener->bus_presence_delta(room, first, rest, kind == 'j');
            return;
        }
        if (kind != 'm')
            return;
        const std::size_t digits = rest.find(',');
        if (digits == 0 || digits == std::string_view::npos)
            return;
        const std::uint64_t seq =
            std::strtoull(std::string{rest.substr(0, digits)}.c_str(), nullptr, 10);
        take(std::string{room}, at->second,
             {std::string{first}, seq, std::string{rest.substr(digits)}});
    }

    /// One message heard: delivered if it is the next, skipped if seen, kept and fetched
    /// around if it comes after a gap or in another epoch.
    void take(const std::string& room, room_cursor& c, room_cursor::heard_message m) {
        if (!c.synced || c.syncing) {
            if (c.buffer.size() < options_.max_buffered) {
                c.buffer.push_back(std::move(m));
            } else {
                c.overflowed = true;
                bus_counters::add(counters_->dropped);
            }
            return;
        }
        if (m.epoch == c.epoch && m.seq <= c.last) {
            bus_counters::add(counters_->duplicates);
            return;
        }
        if (m.epoch != c.epoch || m.seq > c.last + 1) {
            c.buffer.push_back(std::move(m));
            return read(room, c);
        }
        c.last = m.seq;
        bus_counters::add(counters_->delivered);
        if (auto listener = listener_.lock())
            listener->bus_message(room, m.epoch, m.seq, m.body);
    }

    // --- presence and liveness ------------------------------------------------------------------

    /// Writes this node's names in `room` and learns the other live nodes' (dropping the
    /// dead ones).
    void refresh(const std::string& room, room_cursor& c) {
        std::vector<std::string> args{node_, deadline_ms(), ttl_ms(), set_prefix(room)};
        args.insert(args.end(), c.names.begin(), c.names.end());
        conn_->run_script(scripts_->refresh, {key(room, "nodes"), own_set(room)}, std::move(args),
                          [self = shared_from_this(), room,
                           generation = c.generation](std::error_code ec, detail::redis_reply r) {
                              self->refreshed(room, generation, ec, r);
                          });
    }

    void refreshed(const std::string& room, std::uint64_t generation, std::error_code ec,
                   const detail::redis_reply& r) {
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || at->second.generation != generation)
            return;
        if (ec || !r.is_array()) {
            bus_counters::add(counters_->command_errors);
            return;
        }
        room_cursor& c = at->second;
        auto listener = listener_.lock();
        std::set<std::string> live;
        for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
            const std::string& node = r.elements[i].str;
            std::vector<std::string> names;
            for (const detail::redis_reply& name : r.elements[i + 1].elements)
                names.push_back(name.str);
            live.insert(node);
            c.nodes.insert(node);
            if (listener)
                listener->bus_presence(room, node, std::move(names));
        }
        for (auto node = c.nodes.begin(); node != c.nodes.end();) {
            if (live.count(*node)) {
                ++node;
                continue;
            }
            if (listener)
                listener->bus_presence(room, *node, {});
            node = c.nodes.erase(node);
        }
    }

    /// Every period: each room's presence (and a read for a room whose last one failed), and
    /// the resume tokens' TTL.
    void tick() {
        if (stopped_)
            return;
        if (conn_->state() == detail::redis_state::connected) {
            for (auto& [room, c] : rooms_) {
                if (!c.subscribed)
                    continue;
                refresh(room, c);
                if (!c.syncing && (!c.synced || c.overflowed || !c.buffer.empty()) &&
                    sub_->state() == detail::redis_state::connected)
                    read(room, c);
            }
            conn_->command({"PEXPIRE", members_key(node_), std::to_string(resume_ms())},
                           counted_failure());
        }
        timer_->expires_after(period());
        timer_->async_wait(
            [weak = std::weak_ptr<redis_bus>(shared_from_this())](std::error_code ec) {
                if (auto self = weak.lock(); self && !ec)
                    self->tick();
            });
    }

    void state_changed(const detail::redis_state_event& e) {
        const bool up = conn_->state() == detail::redis_state::connected &&
                        sub_->state() == detail::redis_state::connected;
        if (!up) {
            if (counters_->connected.exchange(0) && e.state == detail::redis_state::disconnected)
                bus_counters::add(counters_->disconnects);
            return;
        }
        counters_->connected = 1;
        // Both links are up (the subscriber has every channel again): each room reads what
        // it missed meanwhile, and rewrites its presence (Redis may have restarted empty).
        for (auto& [room, c] : rooms_)
            if (c.subscribed && !c.syncing) {
                refresh(room, c);
                read(room, c);
            }
    }

    const redis_bus_options options_;
    detail::redis_strand strand_;
    const std::string node_;
    const std::shared_ptr<detail::redis_connection> conn_;
    const std::shared_ptr<detail::redis_subscriber> sub_;
    const std::shared_ptr<asio::steady_timer> timer_;
    const std::shared_ptr<const scripts> scripts_ = std::make_shared<const scripts>();
    const std::shared_ptr<bus_counters> counters_ = std::make_shared<bus_counters>();
    std::weak_ptr<bus_listener> listener_;
    std::map<std::string, room_cursor, std::less<>> rooms_;
    std::size_t publishing_ = 0;
    bool stopped_ = false;
};

WSCHAT_END_NAMESPACE
