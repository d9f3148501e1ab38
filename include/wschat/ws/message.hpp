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
struct message {
    opcode type = opcode::text;
    std::string_view data;

    bool is_text() const noexcept { return type == opcode::text; }
    bool is_binary() const noexcept { return type == opcode::binary; }
};

WSCHAT_END_NAMESPACE
