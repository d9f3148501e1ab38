// wschat — separate compilation of JSON rooms: the rooms of `json_policy` over the shipped
// plain transports that the compiled JSON library holds (src/wschat_json.cpp; CMake
// `wschat::compiled_json`, meson `wschat_compiled_json_dep`, which define
// WSCHAT_SEPARATE_COMPILATION_JSON for their users).
//
// Included at the end of <wschat/chat/json_policy.hpp>. Without the macro it declares nothing
// and includes nothing (so it compiles even where nlohmann/json is absent).
#pragma once

#ifdef WSCHAT_SEPARATE_COMPILATION_JSON
#include <wschat/chat/json_policy.hpp>
#include <wschat/chat/room.hpp>
#include <wschat/ws/transport.hpp>
#endif

/// The JSON rooms: declared with `how` = `extern template`, defined with `how` = `template`.
#define WSCHAT_JSON_ROOM_INSTANTIATIONS(how)                                                       \
    how class ::chat::room<::ws::asio_tcp, ::chat::json_policy>;                                   \
    how class ::chat::room<::ws::asio_local, ::chat::json_policy>;

#ifdef WSCHAT_SEPARATE_COMPILATION_JSON
WSCHAT_JSON_ROOM_INSTANTIATIONS(extern template)
#endif
