// wschat — separate compilation of the server: which instantiations the compiled library holds.
//
// Defining WSCHAT_SEPARATE_COMPILATION (the `wschat::compiled` CMake target and meson's
// `wschat_compiled_dep` define it for their users) declares the server over the shipped plain
// transports `extern template`: a unit that uses them calls the library's copy (src/wschat.cpp)
// instead of instantiating and optimising it again. Without the macro nothing is declared
// and wschat stays header-only. Other transports are instantiated where used, as always.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/server.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

#include <string_view>

/// The server's instantiations over `Transport`: declared with `how` = `extern template`,
/// defined once with `how` = `template` (in src/wschat.cpp). A connection is not instantiated
/// as a whole (only plain sockets have a readiness report, `ready`), only its entry points
/// that applications call.
#define WSCHAT_SERVER_INSTANTIATIONS(how, Transport)                                               \
    how class ::ws::detail::server_core<Transport>;                                                \
    how class ::ws::server<Transport>;                                                             \
    how void ::ws::connection<Transport>::send(::ws::shared_frame);                                \
    how void ::ws::connection<Transport>::close(::ws::close_code, std::string_view);

#ifdef WSCHAT_SEPARATE_COMPILATION
WSCHAT_SERVER_INSTANTIATIONS(extern template, ::ws::asio_tcp)
WSCHAT_SERVER_INSTANTIATIONS(extern template, ::ws::asio_local)
#endif
