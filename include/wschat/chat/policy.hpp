// wschat — message policies: what a room's messages are and how they travel.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// What a policy's `decode` makes of an incoming WebSocket message: a room message to
/// broadcast, nothing (ignore it), or a refusal that closes the sender; and, in any case, an
/// optional reply that goes to the sender alone (an error, a pong).
///
/// The room sends the reply first, then closes the sender when refused, else broadcasts
/// the message when set. A default-constructed result is ignore().
///
/// ```cpp
/// if (in.data.size() > 280)
///     return chat::decode_result<message_type>::refuse(ws::close_code::message_too_big,
///                                                      "at most 280 bytes");
/// return chat::decode_result<message_type>::accept(in.data);
/// ```
template <class Message>
struct decode_result {
    std::optional<Message> message;        ///< broadcast this, when set
    std::optional<ws::close_code> refusal; ///< close the sender with this code, when set
    std::string reason;                    ///< the close reason that goes with `refusal`
    ws::shared_frame reply;                ///< sent to the sender only, when set

    /// Broadcast `m` to every member, the sender included.
    static decode_result accept(Message m) { return {std::move(m), std::nullopt, {}, {}}; }
    /// Do nothing: no broadcast, no reply; the sender stays.
    static decode_result ignore() { return {}; }
    /// Close the sender's connection with `code` and the reason `why`; nothing is broadcast.
    static decode_result refuse(ws::close_code code, std::string why) {
        return {std::nullopt, code, std::move(why), {}};
    }
    /// Nothing to broadcast; `frame` goes back to the sender, who stays.
    static decode_result answer(ws::shared_frame frame) {
        return {std::nullopt, std::nullopt, {}, std::move(frame)};
    }
};

/// What a room tells a policy with per-member state when it announces presence: everyone
/// present, and who came and went since the previous announcement (announcements are
/// coalesced, so several joins and leaves may arrive in one update).
template <class Member>
struct presence_update {
    std::size_t online;                 ///< the count, `members.size()`
    const std::vector<Member>& members; ///< everyone present, in no particular order
    const std::vector<Member>& joined;  ///< since the previous announcement, in join order
    const std::vector<Member>& left;    ///< since the previous announcement, in leave order
};

/// \page policy_concept The Policy concept
///
/// `chat::room<Transport, Policy>` asks of every Policy:
///
/// - `message_type`: what a room message is for the application.
/// - `ws::shared_frame encode(const message_type&) const`: the one frame every member
///   receives; or `encode(const message_type&, std::uint64_t sequence) const`, and the room
///   numbers its messages 1, 2, 3 … under its lock, so numbers follow delivery order.
///
/// A simple policy (`text_policy`, `binary_policy`) adds:
///
/// - `decode_result<message_type> decode(const Connection& from, const ws::message&) const`:
///   an incoming message becomes a room message, is ignored, is refused, or is answered.
/// - `ws::shared_frame welcome(std::size_t online) const`: sent to a member who joins
///   (empty: none).
/// - `ws::shared_frame presence(std::size_t online) const`: sent to everyone when the count
///   changed (empty: none).
///
/// A policy that keeps state per member (`json_policy`: each member's name) declares
/// `using member_type = ...;` (cheap to copy: the room copies it out of its lock to decode)
/// and adds instead:
///
/// - `member_type admit(Connection& conn, const std::vector<member_type>& present) const`:
///   the state of a joining member, knowing who is present (to resolve duplicate names).
/// - `ws::shared_frame welcome(const member_type&, std::size_t online) const`.
/// - `decode_result<message_type> decode(const Connection&, const member_type& from,
///   const ws::message&) const`.
/// - `std::vector<ws::shared_frame> presence(const presence_update<member_type>&) const`:
///   the frames everyone receives when members came or went (join/leave events, a roster).
///
/// Presence announcements are coalesced by the room (`room_options::presence_interval`):
/// the first change is announced at once, later ones at most once per interval, carrying
/// the latest state. `check_policy()` in room.hpp names whatever is missing.
///
/// Thread safety: the room calls these `const` members from its members' strands, so with
/// an io_context run by several threads they may run at the same time (`decode` and an
/// unnumbered `encode` outside the room's lock; `admit`, `welcome`, `presence` and a
/// numbered `encode` under it). A policy that changes state of its own must synchronise it.
/// The room keeps its copy of the policy and gives only const access to it.

/// The classic Node.js `ws` chat: text relayed to every member, sender included; a welcome
/// line for whoever joins; the online count announced on every join and leave.
///
/// Members cannot speak for the server: a text that starts with `presence_prefix`, or is
/// exactly `welcome_text`, is not relayed, since a page that reads the count from lines
/// starting with "Online users: " would believe anyone who sent `Online users: 999`. Its
/// sender gets one line saying why (see `reserved`) and stays connected. An empty
/// `presence_prefix` or `welcome_text` reserves nothing.
///
/// The default policy of `chat::room<>`. Its members only read its settings, so it is safe
/// on any number of threads (see \ref policy_concept).
///
/// ```cpp
/// chat::text_policy policy;
/// policy.welcome_text = "Welcome to #lobby";
/// chat::room<ws::asio_tcp, chat::text_policy> room{policy};
/// ```
struct text_policy {
    /// A room message is the received text itself: a view that the room encodes before the
    /// message handler returns, so relaying copies nothing but the one outgoing frame.
    using message_type = std::string_view;

    /// First line a member receives.
    std::string welcome_text = "Welcome to the chat room!";
    /// Presence announcement, followed by the count: "Online users: 3".
    std::string presence_prefix = "Online users: ";

    /// Text is relayed as is, unless it would pass for one of the server's own lines: then
    /// only its sender hears, in one line, why it was not sent. Binary is refused with 1003
    /// (unsupported data).
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_text())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays text only");
        const std::string why = reserved(in.data);
        if (!why.empty())
            return decode_result<message_type>::answer(ws::make_frame(ws::opcode::text, why));
        return decode_result<message_type>::accept(in.data);
    }
    /// Why `text` may not be relayed — it starts with `presence_prefix`, or it is
    /// `welcome_text` — as the line its sender hears; empty when it may.
    std::string reserved(std::string_view text) const {
        if (!presence_prefix.empty() && text.substr(0, presence_prefix.size()) == presence_prefix)
            return "Not sent: a line starting with \"" + presence_prefix +
                   "\" would pass for the server's online count";
        if (!welcome_text.empty() && text == welcome_text)
            return "Not sent: \"" + welcome_text + "\" would pass for the server's welcome";
        return {};
    }
    /// One text frame holding the text as received.
    ws::shared_frame encode(message_type text) const {
        return ws::make_frame(ws::opcode::text, text);
    }
    /// `welcome_text` as a text frame, whatever the count.
    ws::shared_frame welcome(std::size_t) const {
        return ws::make_frame(ws::opcode::text, welcome_text);
    }
    /// `presence_prefix` followed by the count, as a text frame.
    ws::shared_frame presence(std::size_t online) const {
        return ws::make_frame(ws::opcode::text, presence_prefix + std::to_string(online));
    }
};

/// Raw binary relay for game state and telemetry: binary messages go to every member
/// unchanged; text is refused with 1003; no welcome and no presence frames (the count is
/// still kept: `room::size()`).
///
/// Stateless, so safe on any number of threads.
///
/// ```cpp
/// chat::room<ws::asio_tcp, chat::binary_policy> room;
/// ```
struct binary_policy {
    /// A room message is the received bytes themselves, a view encoded before the message
    /// handler returns.
    using message_type = std::string_view;

    /// Binary is relayed as is; text is refused with 1003 (unsupported data).
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_binary())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays binary only");
        return decode_result<message_type>::accept(in.data);
    }
    /// One binary frame holding the bytes as received.
    ws::shared_frame encode(message_type bytes) const {
        return ws::make_frame(ws::opcode::binary, bytes);
    }
    /// No welcome: an empty frame, which the room does not send.
    ws::shared_frame welcome(std::size_t) const { return {}; }
    /// No presence announcement: an empty frame, which the room does not send.
    ws::shared_frame presence(std::size_t) const { return {}; }
};

WSCHAT_END_NAMESPACE
