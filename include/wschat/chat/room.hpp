// wschat — a chat room: membership, broadcast and presence over a message policy.
#pragma once

#include <wschat/chat/detail/member_index.hpp>
#include <wschat/chat/detail/presence_window.hpp>
#include <wschat/chat/history.hpp>
#include <wschat/chat/policy.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/server.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/wait_traits.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {
template <class P, class = void>
struct has_message_type : std::false_type {};
template <class P>
struct has_message_type<P, std::void_t<typename P::message_type>> : std::true_type {};

/// A policy with per-member state declares `member_type`.
template <class P, class = void>
struct has_member_type : std::false_type {};
template <class P>
struct has_member_type<P, std::void_t<typename P::member_type>> : std::true_type {};

template <class P, class Connection, class = void>
struct has_decode : std::false_type {};
template <class P, class Connection>
struct has_decode<P, Connection,
                  std::void_t<decltype(std::declval<const P&>().decode(
                      std::declval<const Connection&>(), std::declval<const ws::message&>()))>>
    : std::true_type {};

template <class P, class = void>
struct has_encode : std::false_type {};
template <class P>
struct has_encode<P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().encode(
                         std::declval<const typename P::message_type&>())})>> : std::true_type {};

/// `encode(message, sequence)`: the room numbers the messages it broadcasts.
template <class P, class = void>
struct has_sequenced_encode : std::false_type {};
template <class P>
struct has_sequenced_encode<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().encode(
           std::declval<const typename P::message_type&>(), std::uint64_t{})})>> : std::true_type {
};

template <class P, class = void>
struct has_announcements : std::false_type {};
template <class P>
struct has_announcements<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().welcome(std::size_t{})}),
                   decltype(ws::shared_frame{std::declval<const P&>().presence(std::size_t{})})>>
    : std::true_type {};

// The hooks of a policy with per-member state (only instantiated when it has member_type).
template <class P, class Connection, class = void>
struct has_admit : std::false_type {};
template <class P, class Connection>
struct has_admit<P, Connection,
                 std::void_t<decltype(typename P::member_type{std::declval<const P&>().admit(
                     std::declval<Connection&>(),
                     std::declval<const std::vector<typename P::member_type>&>())})>>
    : std::true_type {};

template <class P, class Connection, class = void>
struct has_member_decode : std::false_type {};
template <class P, class Connection>
struct has_member_decode<
    P, Connection,
    std::void_t<decltype(std::declval<const P&>().decode(
        std::declval<const Connection&>(), std::declval<const typename P::member_type&>(),
        std::declval<const ws::message&>()))>> : std::true_type {};

template <class P, class = void>
struct has_member_announcements : std::false_type {};
template <class P>
struct has_member_announcements<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().welcome(
                       std::declval<const typename P::member_type&>(), std::size_t{})}),
                   decltype(std::vector<ws::shared_frame>{std::declval<const P&>().presence(
                       std::declval<const presence_update<typename P::member_type>&>())})>>
    : std::true_type {};

/// The per-member state of a policy without any.
struct no_member_state {};
template <class P, bool = has_member_type<P>::value>
struct member_state {
    using type = no_member_state;
};
template <class P>
struct member_state<P, true> {
    using type = typename P::member_type;
};
} // namespace detail

/// Checks a Policy type at compile time, one readable message per missing piece.
template <class Policy, class Transport>
constexpr bool check_policy() {
    using connection = ws::connection<Transport>;
    static_assert(detail::has_message_type<Policy>::value,
                  "wschat Policy: missing `using message_type = ...`");
    if constexpr (detail::has_message_type<Policy>::value) {
        static_assert(detail::has_encode<Policy>::value ||
                          detail::has_sequenced_encode<Policy>::value,
                      "wschat Policy: missing `ws::shared_frame encode(const message_type&) "
                      "const` (or `encode(const message_type&, std::uint64_t sequence) const`)");
        if constexpr (detail::has_member_type<Policy>::value) {
            static_assert(detail::has_admit<Policy, connection>::value,
                          "wschat Policy with member_type: missing `member_type admit(Connection&, "
                          "const std::vector<member_type>& present) const`");
            static_assert(detail::has_member_decode<Policy, connection>::value,
                          "wschat Policy with member_type: missing `decode_result<message_type> "
                          "decode(const Connection&, const member_type&, const ws::message&) "
                          "const`");
            static_assert(detail::has_member_announcements<Policy>::value,
                          "wschat Policy with member_type: missing `ws::shared_frame "
                          "welcome(const member_type&, std::size_t) const` or "
                          "`std::vector<ws::shared_frame> presence(const "
                          "presence_update<member_type>&) const`");
        } else {
            static_assert(detail::has_decode<Policy, connection>::value,
                          "wschat Policy: missing `decode_result<message_type> decode(const "
                          "Connection& from, const ws::message&) const`");
            static_assert(detail::has_announcements<Policy>::value,
                          "wschat Policy: missing `ws::shared_frame welcome(std::size_t) const` "
                          "or `ws::shared_frame presence(std::size_t) const`");
        }
    }
    return true;
}

/// How a room behaves, beyond its policy.
struct room_options {
    /// Presence announcements are coalesced: the first change after a quiet period is
    /// announced at once (a lone join sees its count promptly), further changes at most once
    /// per window with the latest state, instead of one announcement to everyone per join.
    /// The timer runs on the server's io_context once the room is attached (or on the
    /// executor given to the constructor); zero announces every change at once.
    std::chrono::milliseconds presence_interval{50};
    /// The room's recent messages, kept as the frames its members received (no copy, no
    /// re-encoding). Keeps none by default: the three-line chat starts a newcomer with an
    /// empty page, as the classic Node `ws` chat does. `chat::lobby` rooms keep history by
    /// default, with positions for resume. Only `max_messages` is 0 here: setting it turns
    /// history on with the byte and age bounds of `history_options`.
    history_options history{0, history_options{}.max_bytes, history_options{}.max_age};
    /// Of the messages kept, how many a joiner receives right after its welcome, oldest
    /// first (Asio's chat example replays its last 100): a reloaded page shows the recent
    /// conversation.
    std::size_t replay_on_join = 0;
    /// How many presence frames per second a room sends at most, on average, while its
    /// members keep coming and going, so that presence cannot eat the server in a large
    /// room: after an announcement to N members the next waits N / presence_frames_per_second
    /// seconds (at least `presence_interval`). Each frame is a write to one member, a system
    /// call costing about a third of a handshake: at a fixed interval, a join storm of N
    /// members lasting T would cost every member T / interval announcements, O(N) frames
    /// per interval, and the slower the storm went the more. With the bound, churn costs
    /// the room at most about this many frames per second, and a storm the fewer
    /// announcements per member the faster it comes (fewer than one from some 3500 joins per
    /// second); the count still converges, within N / presence_frames_per_second of the
    /// last change. Rooms of up to presence_frames_per_second * presence_interval members
    /// (100 by default) keep the plain interval. Zero: every window is `presence_interval`.
    std::size_t presence_frames_per_second = 2000;
};

/// A set of connections that hear each other.
///
/// Every message a member sends is decoded by the Policy and broadcast to every member,
/// sender included: encoded once into one shared frame that every member's send queue
/// references. A member who joins gets the Policy's welcome at once; joins and leaves are
/// announced to all (coalesced, see `room_options::presence_interval`). `size()` is the
/// presence count.
///
/// ```cpp
/// ws::server<> server{io, opts};
/// chat::room<> room;  // plain text, the classic Node `ws` chat
/// room.attach(server); // every connection joins; messages are relayed; leaving is counted
/// ```
///
/// Thread safety: every member function may be called from any thread.
template <class Transport = ws::asio_tcp, class Policy = text_policy>
class room {
    static_assert(check_policy<Policy, Transport>());
    static constexpr bool has_members = detail::has_member_type<Policy>::value;

public:
    /// A member, as the server's handlers hand it over.
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;
    /// What the policy decodes a member's message into and encodes for everyone.
    using message_type = typename Policy::message_type;
    /// The policy's per-member state (an empty struct for policies without any).
    using member_type = typename detail::member_state<Policy>::type;

    /// A room that coalesces its presence announcements on the io_context of the first
    /// server it is attached to (until then, or without one, it announces at once).
    explicit room(Policy policy = {}, room_options options = {});

    /// A room whose presence announcements are coalesced on timers of `executor` (for a
    /// room used without `attach`).
    explicit room(const asio::io_context::executor_type& executor, Policy policy = {},
                  room_options options = {});

    /// Makes every connection of `server` that opens from now on a member for as long as it
    /// is open: joins on open, relays its messages, leaves on close. The server's handlers
    /// refer to the room weakly, so destroying the room simply ends its part. May be called
    /// from any thread, also while the server's io_context runs; attaching to a server the
    /// room is attached to already does nothing.
    void attach(ws::server<Transport>& server);

    /// Undoes `attach(server)`: the room stops hearing `server`, and that server's members
    /// leave the room (the others are told, as for any leave). Their connections stay open.
    /// May be called from any thread, also while the io_context runs; a no-op when the room
    /// is not attached to `server`.
    void detach(ws::server<Transport>& server);

    /// Adds a member (for routing of your own instead of `attach`). Joining twice is a
    /// no-op.
    void join(const connection_ptr& conn);
    /// Removes a member; a no-op for a non-member.
    void leave(const connection_ptr& conn);
    /// Handles a message from `from` as if the room were attached: decode, reply, broadcast.
    void receive(const connection_ptr& from, const ws::message& msg);

    /// Sends a room message to every member (encoded once).
    void broadcast(const message_type& msg);
    /// Sends an already encoded frame to every member.
    void broadcast(const ws::shared_frame& frame);

    /// The number of members: the online count.
    std::size_t size() const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        return state_->members.size();
    }

    /// The policy's state of member `conn` (its assigned name, for json_policy), or nothing
    /// when `conn` is not a member.
    std::optional<member_type> member(const connection_ptr& conn) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const auto at = state_->position_of(conn.get());
        if (at == detail::member_index::absent)
            return std::nullopt;
        return state_->data[at];
    }

    /// The room's policy (immutable once the room is made, so safe from any thread).
    const Policy& policy() const noexcept { return state_->policy; }

private:
    // On the io_context's own executor type, not Asio's type-erased default `steady_timer`,
    // whose machinery would cost every program some 20 KB of code.
    using timer_type = asio::basic_waitable_timer<std::chrono::steady_clock,
                                                  asio::wait_traits<std::chrono::steady_clock>,
                                                  asio::io_context::executor_type>;

    struct state : std::enable_shared_from_this<state> {
        state(Policy p, const room_options& options)
            : policy(std::move(p)), messages(options.history),
              keeps_history(options.history.max_messages > 0 && options.history.max_bytes > 0 &&
                            options.history.max_age.count() > 0),
              options(options) {}

        using clock = std::chrono::steady_clock;

        void join(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            if (position_of(conn.get()) != detail::member_index::absent)
                return;
            member_type who{};
            if constexpr (has_members)
                who = policy.admit(*conn, data);
            members.push_back(conn);
            data.push_back(who);
            index.insert(conn.get(), static_cast<position>(members.size() - 1), key_of());
            // Under the lock, so that a welcome always precedes the presence that counts
            // its member.
            if constexpr (has_members) {
                joined.push_back(std::move(who));
                if (ws::shared_frame hello = policy.welcome(data.back(), members.size()))
                    conn->send(std::move(hello));
            } else if (ws::shared_frame hello = policy.welcome(members.size())) {
                conn->send(std::move(hello));
            }
            if (options.replay_on_join > 0)
                for (const ws::shared_frame& past :
                     messages.recent(options.replay_on_join, clock::now()))
                    conn->send(past);
            presence_changed();
        }

        void leave(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            const position at = position_of(conn.get());
            if (at == detail::member_index::absent)
                return;
            index.erase(conn.get(), key_of());
            if constexpr (has_members)
                left.push_back(std::move(data[at]));
            if (at + 1 != members.size()) { // swap-remove, keeping `index` in step
                index.relocate(members.back().get(), at, key_of());
                members[at] = std::move(members.back());
                data[at] = std::move(data.back());
            }
            members.pop_back();
            data.pop_back();
            presence_changed();
        }

        bool is_member(const connection_ptr& conn) const {
            std::lock_guard<std::mutex> lock{mutex};
            return position_of(conn.get()) != detail::member_index::absent;
        }

        void receive(const connection_ptr& from, const ws::message& msg) {
            decode_result<message_type> result;
            if constexpr (has_members) {
                member_type who;
                {
                    std::lock_guard<std::mutex> lock{mutex};
                    const position at = position_of(from.get());
                    if (at == detail::member_index::absent)
                        return; // left meanwhile
                    who = data[at];
                }
                result = policy.decode(*from, who, msg);
            } else {
                result = policy.decode(*from, msg);
            }
            if (result.reply)
                from->send(std::move(result.reply));
            if (result.refusal)
                return from->close(*result.refusal, result.reason);
            if (result.message)
                publish(*result.message);
        }

        void publish(const message_type& msg) {
            if constexpr (detail::has_sequenced_encode<Policy>::value) {
                // Numbered and encoded under the lock: numbers follow delivery order.
                std::lock_guard<std::mutex> lock{mutex};
                deliver(policy.encode(msg, ++sequence));
            } else {
                broadcast(policy.encode(msg));
            }
        }

        void broadcast(const ws::shared_frame& frame) {
            std::lock_guard<std::mutex> lock{mutex};
            deliver(frame);
        }

        /// A room message to everyone, kept in the history when the room keeps one (called
        /// with the mutex held).
        void deliver(const ws::shared_frame& frame) {
            if (keeps_history && frame)
                messages.append(frame, clock::now());
            send_to_all(frame);
        }

        // --- coalesced presence (called with the mutex held) ---------------------------

        /// Leading edge at once; within the window only remember that something changed.
        void presence_changed() {
            if (window_open) {
                changed_in_window = true;
                return;
            }
            open_window(announce_presence());
        }

        /// Opens the window after an announcement of `sent` frames: the interval, or as long
        /// as spreading them at the room's rate takes.
        void open_window(std::size_t sent) {
            if (!executor || options.presence_interval.count() <= 0)
                return;
            window_open = true;
            const auto window = detail::presence_window(options.presence_interval,
                                                        options.presence_frames_per_second, sent);
            // The timer belongs to its own wait handler, not to the room: it goes when the
            // wait completes or when the io_context is destroyed with the handler, so a room
            // may outlive the io_context (as it does when declared before its server).
            auto timer = std::make_shared<timer_type>(*executor, window);
            timer->async_wait([weak = this->weak_from_this(), timer](std::error_code ec) {
                if (auto self = weak.lock(); self && !ec)
                    self->window_closed();
            });
        }

        /// Trailing edge: what changed during the window is announced, and another window
        /// begins; a quiet window ends the coalescing.
        void window_closed() {
            ws::cork corked{*executor}; // the announcement leaves in one batch
            std::lock_guard<std::mutex> lock{mutex};
            window_open = false;
            if (!changed_in_window)
                return;
            changed_in_window = false;
            open_window(announce_presence());
        }

        /// Sends the presence frames to everyone; returns how many frames were sent.
        std::size_t announce_presence() {
            std::size_t sent = 0;
            if constexpr (has_members) {
                const presence_update<member_type> update{members.size(), data, joined, left};
                for (const ws::shared_frame& frame : policy.presence(update))
                    sent += send_to_all(frame);
                joined.clear();
                left.clear();
            } else if (ws::shared_frame count = policy.presence(members.size())) {
                sent += send_to_all(count);
            }
            return sent;
        }

        /// Sends `frame` to every member; returns how many it went to.
        std::size_t send_to_all(const ws::shared_frame& frame) {
            if (!frame)
                return 0;
            for (const connection_ptr& member : members)
                member->send(frame);
            return members.size();
        }

        // --- the member list and its index (called with the mutex held) -----------------

        using attachment = std::pair<const ws::server<Transport>*, ws::handler_id>;

        auto attachment_of(const ws::server<Transport>& server) {
            return std::find_if(attachments.begin(), attachments.end(),
                                [&](const attachment& a) { return a.first == &server; });
        }

        using position = detail::member_index::position;

        /// Where `conn` is in `members` and `data`, or member_index::absent.
        position position_of(const ws::connection<Transport>* conn) const {
            return index.find(conn, key_of());
        }

        /// How the index reads the key at a position back from the list.
        auto key_of() const {
            return [this](position at) -> const void* { return members[at].get(); };
        }

        const Policy policy;
        mutable std::mutex mutex;
        std::vector<attachment> attachments; // the servers attach() added handlers to
        std::vector<connection_ptr> members;
        std::vector<member_type> data; // data[i] belongs to members[i]
        detail::member_index index;    // into both
        std::uint64_t sequence = 0;    // of the last numbered message
        history messages;              // recent room messages (room_options::history)
        bool keeps_history = false;
        // Coalescing: on when the room has an executor (given, or the attached server's).
        std::optional<asio::io_context::executor_type> executor;
        room_options options;
        bool window_open = false;
        bool changed_in_window = false;
        std::vector<member_type> joined; // since the last announcement (member policies)
        std::vector<member_type> left;
    };

    std::shared_ptr<state> state_;
};

// The members that reach into the room's state are defined out of the class: not being
// inline, they are not instantiated in a unit that sees them declared `extern template`
// (separate compilation, <wschat/chat/detail/extern_templates.hpp>), where the compiler would
// otherwise instantiate everything behind them to consider inlining it.

template <class Transport, class Policy>
room<Transport, Policy>::room(Policy policy, room_options options)
    : state_(std::make_shared<state>(std::move(policy), options)) {
}

template <class Transport, class Policy>
room<Transport, Policy>::room(const asio::io_context::executor_type& executor, Policy policy,
                              room_options options)
    : state_(std::make_shared<state>(std::move(policy), options)) {
    state_->executor = executor;
}

template <class Transport, class Policy>
void room<Transport, Policy>::attach(ws::server<Transport>& server) {
    std::lock_guard<std::mutex> lock{state_->mutex};
    if (!state_->executor)
        state_->executor = server.get_executor();
    if (state_->attachment_of(server) != state_->attachments.end())
        return;
    std::weak_ptr<state> weak = state_;
    const ws::handler_id id = server.add_handlers({
        [weak](const connection_ptr& conn) {
            if (auto s = weak.lock())
                s->join(conn);
        },
        [weak](const connection_ptr& conn, const ws::message& msg) {
            // A connection opened before the room was attached is not a member (receive
            // itself checks that for policies with member state).
            if (auto s = weak.lock(); s && (has_members || s->is_member(conn)))
                s->receive(conn, msg);
        },
        [weak](const connection_ptr& conn, const ws::close_info&) {
            if (auto s = weak.lock())
                s->leave(conn);
        },
    });
    state_->attachments.emplace_back(&server, id);
}

template <class Transport, class Policy>
void room<Transport, Policy>::detach(ws::server<Transport>& server) {
    std::vector<connection_ptr> leaving;
    {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const auto at = state_->attachment_of(server);
        if (at == state_->attachments.end())
            return;
        server.remove_handlers(at->second);
        state_->attachments.erase(at);
        for (const connection_ptr& member : state_->members)
            if (server.serves(*member))
                leaving.push_back(member);
    }
    for (const connection_ptr& member : leaving)
        state_->leave(member);
}

template <class Transport, class Policy>
void room<Transport, Policy>::join(const connection_ptr& conn) {
    state_->join(conn);
}

template <class Transport, class Policy>
void room<Transport, Policy>::leave(const connection_ptr& conn) {
    state_->leave(conn);
}

template <class Transport, class Policy>
void room<Transport, Policy>::receive(const connection_ptr& from, const ws::message& msg) {
    state_->receive(from, msg);
}

template <class Transport, class Policy>
void room<Transport, Policy>::broadcast(const message_type& msg) {
    state_->publish(msg);
}

template <class Transport, class Policy>
void room<Transport, Policy>::broadcast(const ws::shared_frame& frame) {
    state_->broadcast(frame);
}

WSCHAT_END_NAMESPACE

#include <wschat/chat/detail/extern_templates.hpp>
