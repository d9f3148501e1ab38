// wschat — the bus seam: how a lobby publishes its rooms' messages and hears those of the
// other nodes of a cluster, their presence, and their members' resume tokens.
#pragma once

#include <wschat/chat/history.hpp>
#include <wschat/detail/config.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// One room message as a bus stores and carries it: its number in the room's stream and its
/// body, the envelope's fields after `seq` (see `lobby`: the bytes `,"from":…}` that follow
/// `{"type":"message","room":R,"epoch":E,"seq":N`).
struct bus_entry {
    std::uint64_t seq = 0; ///< the message's number in its room (1, 2, 3 …)
    std::string body;      ///< the envelope's fields after `seq`, up to and with its `}`
};

/// What a lobby is told by its bus. Every call comes from the bus's executor, never while
/// the bus holds a lock of its own, so the listener may call the bus back.
///
/// For a room the lobby subscribed to, the bus first calls `bus_synced` (the stream's
/// position and tail), then `bus_message` for each later message, once each, in sequence
/// order without gaps. A gap it cannot fill or a stream that restarted is a new
/// `bus_synced`, whose outcome says why.
class bus_listener {
public:
    /// Message `seq` of `room` in `epoch`, the one after the last delivered or synced.
    virtual void bus_message(std::string_view room, std::string_view epoch, std::uint64_t seq,
                             std::string_view body) = 0;

    /// `room`'s stream is at `position`, and `tail` are its newest messages held, oldest
    /// first (the last numbered `position.sequence`, or none). `why` is `recovered` when the
    /// room was (re)subscribed and nothing was lost; `epoch_changed` when the broker lost
    /// the room's stream (a new epoch numbers from 1); `too_old` when messages after the last
    /// delivered are gone (trimmed or expired) before they could be fetched.
    virtual void bus_synced(std::string_view room, const stream_position& position,
                            std::vector<bus_entry> tail, recovery_outcome why) = 0;

    /// Node `node` has exactly `names` in `room` now (empty: it has none, or it is gone).
    virtual void bus_presence(std::string_view room, std::string_view node,
                              std::vector<std::string> names) = 0;

    /// `name` joined (`joined`) or left `room` on node `node`.
    virtual void bus_presence_delta(std::string_view room, std::string_view node,
                                    std::string_view name, bool joined) = 0;

protected:
    ~bus_listener() = default;
};

/// A member as another node knew it, for a resume on this one (`bus::claim_member`).
struct bus_member {
    std::string name; ///< its name
    std::string id;   ///< its public id
};

/// The seam through which a lobby spans several processes: the lobby publishes its rooms'
/// messages through the bus, which numbers them (one order per room, cluster-wide) and
/// delivers each once, to every node subscribed to the room, the publisher included.
///
/// A lobby made without a bus is the in-process bus: it numbers and delivers its rooms'
/// messages itself, as it always did, with no call through this interface (one pointer test
/// per message). `chat::redis_bus` (`<wschat/chat/redis_bus.hpp>`, needs hiredis) is the
/// cluster bus.
///
/// Thread safety: every member function may be called from any thread, also under the
/// caller's own lock: none calls the listener before it returns (replies and events come
/// later, from the bus's executor). Calls from one thread take effect in the order made.
class bus {
public:
    virtual ~bus() = default;

    /// Tells the bus whom to tell (one listener per bus; a second call replaces the first).
    /// The bus holds it weakly: a listener that is gone is told nothing.
    virtual void listen(std::weak_ptr<bus_listener> listener) = 0;

    /// This node's id in the cluster: hexadecimal digits, unique per bus object.
    virtual const std::string& node() const noexcept = 0;

    /// Starts hearing `room` (the node has members there now): the listener gets
    /// `bus_synced` once the room's channel is heard and its tail read, then its messages.
    /// Subscribing to a room subscribed already does nothing.
    virtual void subscribe(const std::string& room) = 0;

    /// Stops hearing `room` (its last member here left).
    virtual void unsubscribe(const std::string& room) = 0;

    /// What `publish` answers: an error (the message was not published, or may not have
    /// been: see the code), or the number the message got.
    using publish_handler = std::function<void(std::error_code, std::uint64_t seq)>;

    /// Numbers `body` (see `bus_entry`) as `room`'s next message, stores it and delivers it
    /// to every subscribed node, then calls `done` from the bus's executor. Fails at once
    /// (`done` with an error, still from the executor) when the broker is away or too many
    /// publishes wait for it: nothing is queued without bound.
    virtual void publish(const std::string& room, std::string body, publish_handler done) = 0;

    /// `name` joined `room` on this node (for the other nodes' presence).
    virtual void member_joined(const std::string& room, const std::string& name) = 0;
    /// `name` left `room` on this node.
    virtual void member_left(const std::string& room, const std::string& name) = 0;

    /// A new resume token for a member of this node: unguessable, and telling other nodes
    /// where to `claim_member` it.
    virtual std::string new_token() = 0;
    /// Makes `token` resumable on any node as member `who`, for the resume window (from the
    /// moment this node is no longer heard from, or `forget_member`).
    virtual void remember_member(const std::string& token, const bus_member& who) = 0;
    /// `token` is no longer resumable (expired here, or replaced by a new one).
    virtual void forget_member(const std::string& token) = 0;

    /// What `claim_member` answers: the member, or an error (`bus_errc::unknown_token` for a
    /// token no node holds; another code when the broker could not be asked).
    using claim_handler = std::function<void(std::error_code, bus_member)>;
    /// Takes `token` from the node that issued it, once: a second claim of the same token
    /// fails. Calls `done` from the bus's executor.
    virtual void claim_member(const std::string& token, claim_handler done) = 0;
};

/// The bus's own errors (beside its broker's, which it passes on).
enum class bus_errc {
    unavailable = 1, ///< the broker is away or the bus stopped: nothing was published
    busy,            ///< too many publishes wait for the broker: this one was not published
    unknown_token,   ///< no node holds this resume token (expired, claimed, or never issued)
};

/// The std::error_category of `bus_errc`, named "wschat.bus".
inline const std::error_category& bus_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "wschat.bus"; }
        std::string message(int value) const override {
            switch (static_cast<bus_errc>(value)) {
            case bus_errc::unavailable:
                return "the message bus is unavailable";
            case bus_errc::busy:
                return "too many messages wait for the message bus";
            case bus_errc::unknown_token:
                return "unknown or expired resume token";
            }
            return "unknown bus error";
        }
    };
    static const category instance;
    return instance;
}

/// `e` as a std::error_code of bus_category() (found by argument-dependent lookup).
inline std::error_code make_error_code(bus_errc e) noexcept {
    return {static_cast<int>(e), bus_category()};
}

WSCHAT_END_NAMESPACE

namespace std {
template <>
struct is_error_code_enum<chat::bus_errc> : true_type {};
} // namespace std
