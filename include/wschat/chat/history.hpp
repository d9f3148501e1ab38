// wschat — a room's recent messages, numbered, for replay and for resuming after a reconnect.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/random.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// How much of its past a `history` keeps. A message is held while all three bounds allow
/// it; the oldest go first. Setting any bound to 0 turns the history off: nothing is held,
/// but messages are still numbered, so clients can tell that they missed some.
///
/// The defaults bound a room's memory whatever its traffic (a lobby of many rooms multiplies
/// them), while covering what resuming is for: a phone that lost its network for a few
/// minutes, a page reloaded, a server-side reconnect.
struct history_options {
    /// Messages held at most. 1000: a few minutes of a busy room, one screen of scrollback
    /// many times over; it also bounds the entries' own memory (16 B each, see `history`).
    std::size_t max_messages = 1000;
    /// Bytes of frames held at most (each frame's `size()`, header included). 1 MiB: a room
    /// holds at most this much of other people's text, however large its messages.
    std::size_t max_bytes = std::size_t{1} << 20;
    /// How long a message is held. 10 minutes: a client away longer than that reloads the
    /// room rather than replays it, and a quiet room's memory is freed (see
    /// `history::expire`). `std::chrono::seconds::max()`: no bound by age.
    std::chrono::seconds max_age{600};
};

/// Where a client is in a room's stream of messages: the room's epoch and the sequence
/// number of the last message it saw. Clients send it back when they reconnect
/// (`history::since`).
struct stream_position {
    /// The history's epoch: 16 lowercase hexadecimal digits of a random 64-bit value, new
    /// whenever a history is made or reset. It travels as a string, since JavaScript numbers
    /// lose the bits above 2^53.
    std::string epoch;
    /// The number of the last message seen; 0 before the first.
    std::uint64_t sequence = 0;
};

/// What `history::since` found out about a client's position.
enum class recovery_outcome : std::uint8_t {
    recovered,        ///< every message after the position is in `recovery::frames` (maybe none)
    epoch_changed,    ///< the position belongs to another epoch: the history was lost since
    too_old,          ///< some messages after the position are no longer held
    unknown_position, ///< the position is ahead of the history's last message
    too_many,         ///< more messages were missed than the caller is willing to send
};

/// The number of `recovery_outcome` values (for tables indexed by outcome).
inline constexpr std::size_t recovery_outcome_count =
    static_cast<std::size_t>(recovery_outcome::too_many) + 1;

/// The outcome's name as written above ("recovered", "epoch_changed", …): for protocol
/// messages, logs and metric labels. The view refers to a string literal.
constexpr std::string_view to_string(recovery_outcome outcome) noexcept {
    switch (outcome) {
    case recovery_outcome::recovered:
        return "recovered";
    case recovery_outcome::epoch_changed:
        return "epoch_changed";
    case recovery_outcome::too_old:
        return "too_old";
    case recovery_outcome::unknown_position:
        return "unknown_position";
    case recovery_outcome::too_many:
        return "too_many";
    }
    return "unknown";
}

/// The answer of `history::since`.
struct recovery {
    /// Whether the client's gap could be filled.
    recovery_outcome result = recovery_outcome::recovered;
    /// When recovered: the frames the client missed, oldest first, each once (the same
    /// shared frames the members received). Empty for every other outcome.
    std::vector<ws::shared_frame> frames;
    /// The history's position now: where the client is once it has `frames`, or where it
    /// starts again when the gap could not be filled.
    stream_position position;

    /// True when recovered.
    explicit operator bool() const noexcept { return result == recovery_outcome::recovered; }
};

/// A room's history: the frames it broadcast, each numbered (1, 2, 3 … in broadcast order),
/// kept within `history_options`' bounds, so that a member who joins can be shown the recent
/// past (`recent`) and a member who reconnects can be sent exactly what it missed (`since`).
///
/// The frames are the room's encoded broadcast frames themselves: appending one stores a
/// reference (no copy, no re-encoding), and a replay sends the same bytes again. The
/// history always holds the newest messages without a gap: messages
/// `last_sequence() - size() + 1` to `last_sequence()`.
///
/// The epoch names one unbroken numbering: it is random and new whenever a history is made
/// or reset, so a client that saw sequence 40 of a history that was since lost (a restarted
/// server, a room closed and opened again) is told so instead of being sent the wrong
/// messages.
///
/// Time comes in as arguments (no clock of its own), so tests are deterministic. Times are
/// expected not to go back; a time earlier than the newest entry's counts as that entry's.
///
/// Memory: 16 B per entry (the time and the frame reference; the sequence number is implied
/// by the position), in a ring that doubles as it fills, halves once three quarters are
/// empty and is freed when nothing is held: between 16 and 64 B per message held, plus the
/// frames themselves (their bytes and a 40 B block each), which are shared with the send
/// queues they are in.
///
/// Thread safety: none of its own. The room keeps its history under its lock; const members
/// may be called from several threads at once while nobody modifies the history.
///
/// ```cpp
/// chat::history past;                               // the defaults: 1000 messages, 1 MiB, 10 min
/// const auto frame = policy.encode(msg, past.next_sequence());
/// past.append(frame, now);                          // under the room's lock, with the broadcast
/// // a member reconnects, saying it saw {epoch, 41}:
/// chat::recovery r = past.since(seen, 200, now);
/// if (r) for (const auto& f : r.frames) conn->send(f);
/// ```
class history {
public:
    /// What the history reads its time as.
    using clock = std::chrono::steady_clock;

    /// An empty history with a new epoch and the given bounds. Throws what
    /// `ws::random_bytes` throws when the kernel gives no random bytes.
    explicit history(history_options options = {}) : options_(options), epoch_(ws::random_hex(8)) {}

    /// Not copyable: two histories never share an epoch.
    history(const history&) = delete;
    /// Not copyable: two histories never share an epoch.
    history& operator=(const history&) = delete;
    /// Takes `other`'s entries, numbering and epoch; `other` may then only be destroyed or
    /// assigned to.
    history(history&& other) noexcept = default;
    /// Takes `other`'s entries, numbering and epoch; `other` may then only be destroyed or
    /// assigned to.
    history& operator=(history&& other) noexcept = default;

    /// The bounds given at construction.
    const history_options& options() const noexcept { return options_; }

    /// The epoch: 16 lowercase hexadecimal digits, new at construction and at `reset()`.
    const std::string& epoch() const noexcept { return epoch_; }

    /// The number of the last message appended; 0 before the first.
    std::uint64_t last_sequence() const noexcept { return last_; }

    /// The number the next appended message gets, `last_sequence() + 1`: encode the frame
    /// with it, then `append` the frame.
    std::uint64_t next_sequence() const noexcept { return last_ + 1; }

    /// The epoch and the last sequence number: what a client that has seen every message
    /// holds.
    stream_position position() const { return {epoch_, last_}; }

    /// Stores `frame` as message `next_sequence()`, received at `now`, and returns its
    /// number. Then the oldest messages go until the bounds hold again: more than
    /// `max_messages`, more than `max_bytes`, or `max_age` old at `now`. A frame larger than
    /// `max_bytes` is numbered but not held, and neither is anything older (the history
    /// holds no gap). Amortised O(1); copies no bytes.
    std::uint64_t append(ws::shared_frame frame, clock::time_point now) {
        ++last_;
        if (count_ > 0)
            now = std::max(now, at(count_ - 1).time);
        if (!holds_any() || frame.size() > options_.max_bytes) {
            clear();
            return last_;
        }
        // Room is made before the frame goes in, so the ring never grows past what the
        // bounds let it hold. Each entry is looked at once more when it goes: amortised O(1).
        std::size_t dropped = 0;
        std::size_t bytes = bytes_;
        const auto must_go = [&](const entry& oldest) {
            return count_ - dropped >= options_.max_messages ||
                   bytes + frame.size() > options_.max_bytes || aged(oldest, now);
        };
        while (dropped < count_ && must_go(at(dropped)))
            bytes -= at(dropped++).frame.size();
        drop_oldest(dropped);
        if (count_ == ring_.size())
            resize(ring_.empty() ? min_ring : ring_.size() * 2);
        bytes_ += frame.size();
        at(count_++) = entry{now, std::move(frame)};
        return last_;
    }

    /// Drops the messages that are `max_age` old or older at `now`, and the memory they
    /// used. Appending does this too; call it on a timer for rooms that fall quiet.
    void expire(clock::time_point now) {
        std::size_t dropped = 0;
        while (dropped < count_ && aged(at(dropped), now))
            ++dropped;
        drop_oldest(dropped);
    }

    /// What a client that saw `seen` missed, as of `now`:
    /// - another epoch: `epoch_changed`;
    /// - a sequence past `last_sequence()`: `unknown_position`;
    /// - some message after `seen.sequence` no longer held (dropped for a bound, or
    ///   `max_age` old at `now`): `too_old`;
    /// - more than `max_messages` missed: `too_many`;
    /// - otherwise `recovered`, with the frames after `seen.sequence` in order (none when
    ///   `seen` is the last message, or 0 in a history that has none yet).
    ///
    /// `position` is the history's position in every case. O(k) for k frames returned.
    recovery since(const stream_position& seen, std::size_t max_messages,
                   clock::time_point now) const {
        recovery answer;
        answer.position = position();
        if (seen.epoch != epoch_)
            answer.result = recovery_outcome::epoch_changed;
        else if (seen.sequence > last_)
            answer.result = recovery_outcome::unknown_position;
        else if (last_ - seen.sequence > count_ - first_live(now))
            answer.result = recovery_outcome::too_old;
        else if (last_ - seen.sequence > max_messages)
            answer.result = recovery_outcome::too_many;
        else
            answer.frames = frames_from(count_ - static_cast<std::size_t>(last_ - seen.sequence));
        return answer;
    }

    /// The last `n` messages held that are younger than `max_age` at `now` (fewer when fewer
    /// are), oldest first: what a member who joins may be shown. O(k) for k frames.
    std::vector<ws::shared_frame> recent(std::size_t n, clock::time_point now) const {
        const std::size_t live = count_ - first_live(now);
        return frames_from(count_ - std::min(n, live));
    }

    /// Messages held (some may be `max_age` old already if nothing appended or expired
    /// since).
    std::size_t size() const noexcept { return count_; }

    /// Bytes of the frames held (the sum of their `size()`).
    std::size_t bytes() const noexcept { return bytes_; }

    /// The history is lost: a new epoch, numbering from 1 again, nothing held (the memory is
    /// freed). Clients that resume with a position of the old epoch get `epoch_changed`.
    void reset() {
        epoch_ = ws::random_hex(8);
        last_ = 0;
        clear();
    }

    /// The history takes up a numbering kept elsewhere (a cluster bus's): epoch `epoch`,
    /// message `last` the last one, nothing held; the next appended is `last + 1`.
    void restart(std::string epoch, std::uint64_t last) {
        epoch_ = std::move(epoch);
        last_ = last;
        clear();
    }

private:
    struct entry {
        clock::time_point time;
        ws::shared_frame frame;
    };

    /// The smallest ring, and the one below which it does not shrink.
    static constexpr std::size_t min_ring = 8;

    bool holds_any() const noexcept {
        return options_.max_messages > 0 && options_.max_bytes > 0 && options_.max_age.count() > 0;
    }

    /// True when `e` is `max_age` old at `now`. Compared in whole seconds, the unit of
    /// `max_age`, so that a huge `max_age` (seconds::max() for "no age bound") cannot
    /// overflow a conversion to the clock's nanoseconds.
    bool aged(const entry& e, clock::time_point now) const noexcept {
        return std::chrono::duration_cast<std::chrono::seconds>(now - e.time) >= options_.max_age;
    }

    /// The i-th oldest entry held; the ring's size is a power of two.
    entry& at(std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    const entry& at(std::size_t i) const noexcept {
        return ring_[(head_ + i) & (ring_.size() - 1)];
    }

    /// How many of the oldest entries are `max_age` old at `now` (times never decrease
    /// along the ring, so a binary search finds the first younger one): for the const
    /// readers, which drop nothing.
    std::size_t first_live(clock::time_point now) const {
        std::size_t low = 0;
        std::size_t high = count_;
        while (low < high) {
            const std::size_t middle = low + (high - low) / 2;
            if (aged(at(middle), now))
                low = middle + 1;
            else
                high = middle;
        }
        return low;
    }

    /// The frames of entries `from` to the newest, oldest first.
    std::vector<ws::shared_frame> frames_from(std::size_t from) const {
        std::vector<ws::shared_frame> frames;
        frames.reserve(count_ - from);
        for (std::size_t i = from; i < count_; ++i)
            frames.push_back(at(i).frame);
        return frames;
    }

    /// Drops the `n` oldest entries, then halves the ring while three quarters of it are
    /// empty (amortised O(1) per entry, like the doubling), or frees it when nothing is
    /// left.
    void drop_oldest(std::size_t n) {
        if (n == 0)
            return;
        for (std::size_t i = 0; i < n; ++i) {
            entry& oldest = at(i);
            bytes_ -= oldest.frame.size();
            oldest.frame = {};
        }
        count_ -= n;
        head_ = (head_ + n) & (ring_.size() - 1);
        if (count_ == 0)
            return clear(); // an idle room holds no ring at all
        std::size_t size = ring_.size();
        while (size > min_ring && count_ <= size / 4)
            size /= 2;
        if (size != ring_.size())
            resize(size);
    }

    /// Moves the entries, oldest first, into a ring of `size` slots (a power of two, at
    /// least count_).
    void resize(std::size_t size) {
        std::vector<entry> next(size);
        for (std::size_t i = 0; i < count_; ++i)
            next[i] = std::move(at(i));
        ring_ = std::move(next);
        head_ = 0;
    }

    void clear() {
        ring_ = {};
        head_ = 0;
        count_ = 0;
        bytes_ = 0;
    }

    history_options options_;
    std::string epoch_;
    std::uint64_t last_ = 0;  // the last sequence number given
    std::vector<entry> ring_; // empty, or a power of two slots
    std::size_t head_ = 0;    // the oldest entry's slot
    std::size_t count_ = 0;   // entries held
    std::size_t bytes_ = 0;   // their frames' bytes
};

WSCHAT_END_NAMESPACE
