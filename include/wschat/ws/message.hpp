// wschat — a message received from a peer.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/frame.hpp>

#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A message received from a peer: its type and its whole (reassembled) payload.
///
/// `data` points into the connection's buffers and is valid only during the handler call
/// that receives it; copy it to keep it.
///
/// ```cpp
/// server.on_message([](const auto& conn, const ws::message& msg) {
///     if (msg.is_text())
///         log(std::string{msg.data}); // a copy outlives the handler call
/// });
/// ```
struct message {
    /// opcode::text or opcode::binary; a text message's data is valid UTF-8 (checked before
    /// delivery).
    opcode type = opcode::text;
    /// The payload of every frame of the message, unmasked, in order; may be empty.
    std::string_view data;

    /// True for a text message.
    bool is_text() const noexcept { return type == opcode::text; }
    /// True for a binary message.
    bool is_binary() const noexcept { return type == opcode::binary; }
};

WSCHAT_END_NAMESPACE
