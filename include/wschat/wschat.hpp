// wschat — the umbrella header: the WebSocket server and the chat room, nothing optional.
//
//     #include <wschat/wschat.hpp>
//
// works the same with include/ (split headers) or single_include/ (one generated file) on
// the include path. Standalone Asio must be on the include path, with ASIO_STANDALONE.
#pragma once

#include <wschat/detail/config.hpp>

#include <wschat/ws/close_code.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/limits.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/server.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>
#include <wschat/ws/utf8.hpp>

#include <wschat/chat/policy.hpp>
#include <wschat/chat/room.hpp>

/// \namespace ws
/// The WebSocket layer: RFC 6455 framing and handshake, the server, its connections and
/// transports.
///
/// Usable on its own, without the chat layer: `ws::server` hands each connection to the
/// application's handlers. Every name lives in a versioned inline namespace
/// (`ws::v0_1`), which user code never needs to spell.

/// \namespace chat
/// The chat layer over `ws`: rooms that broadcast, count presence, and the message
/// policies that decide what a room's messages are.
