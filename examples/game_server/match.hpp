// game_server's matches: each a chat::room with the binary policy (membership and the one
// shared frame per snapshot) plus the authoritative state and its fixed-tick loop.
#pragma once

#include "protocol.hpp"

#include <wschat/wschat.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/wait_traits.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace game {

/// What every match of a server shares.
struct match_options {
    unsigned tick_hz = 30;              ///< snapshots per second (20-60)
    std::uint16_t max_players = 16;     ///< per match; a further player is closed with 1013
    std::size_t max_pending_inputs = 8; ///< per player between two ticks; more: closed with 1008
};

/// One match: players (connections) in a room, their state, and a timer that ticks at a fixed
/// rate while anyone plays. Each tick applies the inputs received since the last one, in the
/// order of their seq, and broadcasts a snapshot numbered tick 1, 2, 3 ... with no gap: a
/// late timer runs the missed ticks at once rather than skipping their numbers.
///
/// Thread safety: every member may be called from any thread (one mutex guards the state;
/// the room has its own, always taken after it).
template <class Transport>
class match : public std::enable_shared_from_this<match<Transport>> {
public:
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;

    match(std::string name, const asio::io_context::executor_type& executor,
          const match_options& options)
        : name_(std::move(name)), options_(options), timer_(executor),
          period_(std::chrono::duration_cast<clock::duration>(std::chrono::seconds{1}) /
                  options.tick_hz) {}

    const std::string& name() const noexcept { return name_; }

    /// Adds `conn` as a new player: it gets its welcome, then every snapshot from the next
    /// tick on. False (and the connection closed with 1013) when the match is full.
    bool add(const connection_ptr& conn) {
        std::lock_guard<std::mutex> lock{mutex_};
        if (players_.size() >= options_.max_players) {
            conn->close(ws::close_code::try_again_later,
                        "match full: " + std::to_string(options_.max_players) + " players");
            return false;
        }
        player& p = players_[conn->id()];
        p.state.id = ++last_player_id_;
        room_.join(conn);
        conn->send_binary(
            encode_welcome({tick_, p.state.id, static_cast<std::uint16_t>(options_.tick_hz),
                            options_.max_players}));
        std::cout << "match " << name_ << ": player " << p.state.id << " joined ("
                  << players_.size() << " playing)" << std::endl;
        if (players_.size() == 1)
            start_ticking();
        return true;
    }

    /// Removes `conn`'s player, saying where it ended. True when the match is now empty (it
    /// stops ticking).
    bool remove(const connection_ptr& conn) {
        std::lock_guard<std::mutex> lock{mutex_};
        const auto at = players_.find(conn->id());
        if (at == players_.end())
            return players_.empty();
        const player& p = at->second;
        std::cout << "match " << name_ << ": player " << p.state.id << " left at (" << p.state.x
                  << ", " << p.state.y << ") ack " << p.state.ack << " inputs " << p.applied
                  << " tick " << tick_ << std::endl;
        room_.leave(conn);
        players_.erase(at);
        if (!players_.empty())
            return false;
        timer_.cancel();
        ticking_ = false;
        return true;
    }

    /// A message from player `conn`: an input is queued for the next tick; anything else,
    /// or a flood, closes the connection with a code and a reason saying why.
    void receive(const connection_ptr& conn, const ws::message& msg) {
        if (!msg.is_binary())
            return conn->close(ws::close_code::unsupported_data, "binary inputs only");
        std::string why;
        const auto in = decode_input(msg.data, why);
        if (!in)
            return conn->close(ws::close_code::invalid_payload, why);
        std::lock_guard<std::mutex> lock{mutex_};
        const auto at = players_.find(conn->id());
        if (at == players_.end())
            return;
        player& p = at->second;
        if (in->seq <= p.last_seq) {
            conn->close(ws::close_code::invalid_payload,
                        "input seq " + std::to_string(in->seq) + " after " +
                            std::to_string(p.last_seq) + ": seq must grow");
            return;
        }
        if (p.pending.size() >= options_.max_pending_inputs) {
            conn->close(ws::close_code::policy_violation,
                        "more than " + std::to_string(options_.max_pending_inputs) +
                            " inputs in one tick");
            return;
        }
        p.last_seq = in->seq;
        p.pending.push_back(*in);
    }

    /// Stops the timer (the server is going away).
    void stop() {
        std::lock_guard<std::mutex> lock{mutex_};
        timer_.cancel();
        ticking_ = false;
    }

private:
    using clock = std::chrono::steady_clock;
    using timer_type = asio::basic_waitable_timer<clock, asio::wait_traits<clock>,
                                                  asio::io_context::executor_type>;

    struct player {
        player_state state;
        std::uint32_t last_seq = 0; // of the last input received
        std::uint64_t applied = 0;  // inputs applied
        std::vector<input> pending; // received since the last tick, in seq order
    };

    /// Called with the mutex held.
    void start_ticking() {
        ticking_ = true;
        next_ = clock::now() + period_;
        wait();
    }

    void wait() {
        timer_.expires_at(next_);
        timer_.async_wait([weak = this->weak_from_this()](std::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->tick_due();
        });
    }

    void tick_due() {
        std::lock_guard<std::mutex> lock{mutex_};
        if (!ticking_)
            return;
        // Every tick whose time has come, numbered without gaps. Far behind (a stalled
        // machine), the schedule restarts from now rather than firing a long burst.
        const clock::time_point now = clock::now();
        int due = 0;
        while (next_ <= now && due < 4) {
            step();
            next_ += period_;
            ++due;
        }
        if (next_ <= now)
            next_ = now + period_;
        wait();
    }

    /// One tick: apply, number, broadcast (with the mutex held, so a welcome is never
    /// overtaken by the snapshot of the tick it names).
    void step() {
        snapshot s;
        s.tick = ++tick_;
        s.players.reserve(players_.size());
        for (auto& [id, p] : players_) {
            for (const input& in : p.pending) {
                move(p.state, in.dx, in.dy);
                p.state.ack = in.seq;
                ++p.applied;
            }
            p.pending.clear();
            s.players.push_back(p.state);
        }
        const std::string bytes = encode_snapshot(s);
        room_.broadcast(std::string_view{bytes});
    }

    const std::string name_;
    const match_options options_;
    std::mutex mutex_;
    chat::room<Transport, chat::binary_policy> room_;
    std::map<std::uint64_t, player> players_; // by connection id: snapshots list them in join order
    std::uint32_t last_player_id_ = 0;
    std::uint32_t tick_ = 0; // of the last snapshot
    timer_type timer_;
    const clock::duration period_;
    clock::time_point next_;
    bool ticking_ = false;
};

/// The server's matches by name, made when a first player arrives and dropped when the last
/// one leaves, at most `max_matches` at once.
template <class Transport>
class lobby {
public:
    using connection_ptr = typename match<Transport>::connection_ptr;

    lobby(const asio::io_context::executor_type& executor, match_options options,
          std::size_t max_matches)
        : executor_(executor), options_(options), max_matches_(max_matches) {}

    ~lobby() {
        for (auto& [name, m] : matches_)
            m->stop();
    }

    /// True when `name` exists or may be made: an upgrade to a new match beyond the limit
    /// is refused with 503.
    bool has_room_for(const std::string& name) const {
        std::lock_guard<std::mutex> lock{mutex_};
        return matches_.count(name) || matches_.size() < max_matches_;
    }

    void join(const std::string& name, const connection_ptr& conn) {
        std::lock_guard<std::mutex> lock{mutex_};
        auto at = matches_.find(name);
        if (at == matches_.end()) {
            if (matches_.size() >= max_matches_)
                return conn->close(ws::close_code::try_again_later,
                                   "too many matches: " + std::to_string(max_matches_));
            at = matches_
                     .emplace(name, std::make_shared<match<Transport>>(name, executor_, options_))
                     .first;
        }
        if (at->second->add(conn))
            conn->user_data() = at->second;
    }

    void leave(const connection_ptr& conn) {
        const auto* playing = conn->template user_data_as<std::shared_ptr<match<Transport>>>();
        if (!playing)
            return;
        std::lock_guard<std::mutex> lock{mutex_};
        if ((*playing)->remove(conn))
            matches_.erase((*playing)->name());
    }

    void receive(const connection_ptr& conn, const ws::message& msg) {
        if (const auto* playing = conn->template user_data_as<std::shared_ptr<match<Transport>>>())
            (*playing)->receive(conn, msg);
    }

private:
    asio::io_context::executor_type executor_;
    const match_options options_;
    const std::size_t max_matches_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<match<Transport>>> matches_;
};

} // namespace game
