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

WSCHAT_BEGIN_NAMESPACE(chat)

/// What a policy's `decode` makes of an incoming WebSocket message: a room message to
/// broadcast, nothing (ignore it), or a refusal that closes the sender.
template <class Message>
struct decode_result {
    std::optional<Message> message;        ///< broadcast this, when set
    std::optional<ws::close_code> refusal; ///< close the sender with this code, when set
    std::string reason;                    ///< the close reason that goes with `refusal`

    static decode_result accept(Message m) { return {std::move(m), std::nullopt, {}}; }
    static decode_result ignore() { return {}; }
    static decode_result refuse(ws::close_code code, std::string why) {
        return {std::nullopt, code, std::move(why)};
    }
};

/// # The Policy concept
///
/// `chat::room<Transport, Policy>` asks of its Policy:
///
/// | member | meaning |
/// |---|---|
/// | `message_type` | what a room message is for the application |
/// | `decode_result<message_type> decode(const Connection& from, const ws::message&) const` | an
/// incoming message becomes a room message, is ignored, or is refused | | `ws::shared_frame
/// encode(const message_type&) const` | the one frame every member receives | | `ws::shared_frame
/// welcome(std::size_t online) const` | sent to a member who joins (empty: none) | |
/// `ws::shared_frame presence(std::size_t online) const` | sent to everyone when the count changes
/// (empty: none) |
///
/// `decode` is a template over the connection type so a policy may read who sent the
/// message (its request, its address); the shipped policies ignore it.

/// The classic Node.js `ws` chat: text relayed to every member, sender included; a welcome
/// line for whoever joins; the online count announced on every join and leave.
struct text_policy {
    using message_type = std::string_view;

    /// First line a member receives.
    std::string welcome_text = "Welcome to the chat room!";
    /// Presence announcement, followed by the count: "Online users: 3".
    std::string presence_prefix = "Online users: ";

    /// Text is relayed as is; binary is refused with 1003 (unsupported data).
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_text())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays text only");
        return decode_result<message_type>::accept(in.data);
    }
    ws::shared_frame encode(message_type text) const {
        return ws::make_frame(ws::opcode::text, text);
    }
    ws::shared_frame welcome(std::size_t) const {
        return ws::make_frame(ws::opcode::text, welcome_text);
    }
    ws::shared_frame presence(std::size_t online) const {
        return ws::make_frame(ws::opcode::text, presence_prefix + std::to_string(online));
    }
};

/// Raw binary relay for game state and telemetry: binary messages go to every member
/// unchanged; text is refused with 1003; no welcome and no presence frames (the count is
/// still kept: `room::size()`).
struct binary_policy {
    using message_type = std::string_view;

    template <class Connection>
    decode_result<message_type> decode(const Connection&, const ws::message& in) const {
        if (!in.is_binary())
            return decode_result<message_type>::refuse(ws::close_code::unsupported_data,
                                                       "this room relays binary only");
        return decode_result<message_type>::accept(in.data);
    }
    ws::shared_frame encode(message_type bytes) const {
        return ws::make_frame(ws::opcode::binary, bytes);
    }
    ws::shared_frame welcome(std::size_t) const { return {}; }
    ws::shared_frame presence(std::size_t) const { return {}; }
};

WSCHAT_END_NAMESPACE
