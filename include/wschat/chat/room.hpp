// wschat — a chat room: membership, broadcast and presence over a message policy.
#pragma once

#include <wschat/chat/policy.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/server.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {
template <class P, class = void>
struct has_message_type : std::false_type {};
template <class P>
struct has_message_type<P, std::void_t<typename P::message_type>> : std::true_type {};

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

template <class P, class = void>
struct has_announcements : std::false_type {};
template <class P>
struct has_announcements<
    P, std::void_t<decltype(ws::shared_frame{std::declval<const P&>().welcome(std::size_t{})}),
                   decltype(ws::shared_frame{std::declval<const P&>().presence(std::size_t{})})>>
    : std::true_type {};
} // namespace detail

/// Checks a Policy type at compile time, one readable message per missing piece.
template <class Policy, class Transport>
constexpr bool check_policy() {
    static_assert(detail::has_message_type<Policy>::value,
                  "wschat Policy: missing `using message_type = ...`");
    if constexpr (detail::has_message_type<Policy>::value) {
        static_assert(detail::has_decode<Policy, ws::connection<Transport>>::value,
                      "wschat Policy: missing `decode_result<message_type> decode(const "
                      "Connection& from, const ws::message&) const`");
        static_assert(detail::has_encode<Policy>::value,
                      "wschat Policy: missing `ws::shared_frame encode(const message_type&) "
                      "const`");
        static_assert(detail::has_announcements<Policy>::value,
                      "wschat Policy: missing `ws::shared_frame welcome(std::size_t) const` or "
                      "`ws::shared_frame presence(std::size_t) const`");
    }
    return true;
}

/// A set of connections that hear each other.
///
/// Every message a member sends is decoded by the Policy and broadcast to every member,
/// sender included: encoded once into one shared frame that every member's send queue
/// references. A member who joins gets the Policy's welcome; every join and leave
/// announces the new count to all. `size()` is the presence count.
///
/// ```cpp
/// ws::server<> server{io, opts};
/// chat::room<> room;   // plain TCP, plain text: the classic Node `ws` chat
/// room.attach(server); // every connection joins; messages are relayed; leaving is counted
/// ```
///
/// Thread safety: every member function may be called from any thread.
template <class Transport = ws::asio_tcp, class Policy = text_policy>
class room {
    static_assert(check_policy<Policy, Transport>());

public:
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;
    using message_type = typename Policy::message_type;

    explicit room(Policy policy = {}) : state_(std::make_shared<state>(std::move(policy))) {}

    /// Makes every connection of `server` a member for as long as it is open: joins on
    /// open, relays its messages, leaves on close. The server's handlers refer to the room
    /// weakly, so destroying the room simply ends its part.
    void attach(ws::server<Transport>& server) {
        std::weak_ptr<state> weak = state_;
        server.on_open([weak](const connection_ptr& conn) {
            if (auto s = weak.lock())
                s->join(conn);
        });
        server.on_message([weak](const connection_ptr& conn, const ws::message& msg) {
            if (auto s = weak.lock())
                s->receive(conn, msg);
        });
        server.on_close([weak](const connection_ptr& conn, const ws::close_info&) {
            if (auto s = weak.lock())
                s->leave(conn);
        });
    }

    /// Adds a member (for routing of your own instead of `attach`). Joining twice is a
    /// no-op.
    void join(const connection_ptr& conn) { state_->join(conn); }
    /// Removes a member; a no-op for a non-member.
    void leave(const connection_ptr& conn) { state_->leave(conn); }
    /// Handles a message from `from` as if the room were attached: decode, then broadcast.
    void receive(const connection_ptr& from, const ws::message& msg) { state_->receive(from, msg); }

    /// Sends a room message to every member (encoded once).
    void broadcast(const message_type& msg) { state_->broadcast(state_->policy.encode(msg)); }
    /// Sends an already encoded frame to every member.
    void broadcast(const ws::shared_frame& frame) { state_->broadcast(frame); }

    /// The number of members: the online count.
    std::size_t size() const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        return state_->members.size();
    }

    const Policy& policy() const noexcept { return state_->policy; }

private:
    struct state {
        explicit state(Policy p) : policy(std::move(p)) {}

        void join(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            if (std::find(members.begin(), members.end(), conn) != members.end())
                return;
            members.push_back(conn);
            // Under the lock, so that welcomes and counts reach everyone in join order.
            if (ws::shared_frame hello = policy.welcome(members.size()))
                conn->send(std::move(hello));
            announce_presence();
        }

        void leave(const connection_ptr& conn) {
            std::lock_guard<std::mutex> lock{mutex};
            const auto it = std::find(members.begin(), members.end(), conn);
            if (it == members.end())
                return;
            *it = std::move(members.back());
            members.pop_back();
            announce_presence();
        }

        void receive(const connection_ptr& from, const ws::message& msg) {
            auto result = policy.decode(*from, msg);
            if (result.refusal)
                return from->close(*result.refusal, result.reason);
            if (result.message)
                broadcast(policy.encode(*result.message));
        }

        void broadcast(const ws::shared_frame& frame) {
            std::lock_guard<std::mutex> lock{mutex};
            send_to_all(frame);
        }

        void announce_presence() {
            if (ws::shared_frame count = policy.presence(members.size()))
                send_to_all(count);
        }

        void send_to_all(const ws::shared_frame& frame) {
            for (const connection_ptr& member : members)
                member->send(frame);
        }

        const Policy policy;
        mutable std::mutex mutex;
        std::vector<connection_ptr> members;
    };

    std::shared_ptr<state> state_;
};

WSCHAT_END_NAMESPACE
