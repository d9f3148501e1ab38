// wschat — separate compilation of rooms: which instantiations the compiled library holds.
//
// With WSCHAT_SEPARATE_COMPILATION defined (see <wschat/ws/detail/extern_templates.hpp>), the
// rooms of the shipped policies over the shipped plain transports are declared
// `extern template`, defined once in src/wschat.cpp. Without it nothing is declared.
#pragma once

#include <wschat/chat/policy.hpp>
#include <wschat/chat/room.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/transport.hpp>

/// The rooms the library holds: declared with `how` = `extern template`, defined with
/// `how` = `template`.
#define WSCHAT_ROOM_INSTANTIATIONS(how)                                                            \
    how class ::chat::room<::ws::asio_tcp, ::chat::text_policy>;                                   \
    how class ::chat::room<::ws::asio_tcp, ::chat::binary_policy>;                                 \
    how class ::chat::room<::ws::asio_local, ::chat::text_policy>;                                 \
    how class ::chat::room<::ws::asio_local, ::chat::binary_policy>;

#ifdef WSCHAT_SEPARATE_COMPILATION
WSCHAT_ROOM_INSTANTIATIONS(extern template)
#endif
