// wschat — separate compilation over TLS: the server and rooms over `asio_tls` that the
// compiled TLS library holds (src/wschat_tls.cpp; CMake `wschat::compiled_tls`, meson
// `wschat_compiled_tls_dep`, which define WSCHAT_SEPARATE_COMPILATION_TLS for their users).
//
// Included at the end of <wschat/ws/tls.hpp>. Without the macro it declares nothing and
// includes nothing (so it compiles even where OpenSSL is absent).
#pragma once

#ifdef WSCHAT_SEPARATE_COMPILATION_TLS
#include <wschat/chat/policy.hpp>
#include <wschat/chat/room.hpp>
#include <wschat/ws/detail/extern_templates.hpp>
#include <wschat/ws/tls.hpp>
#endif

/// The instantiations over `asio_tls`: declared with `how` = `extern template`, defined with
/// `how` = `template`.
#define WSCHAT_TLS_INSTANTIATIONS(how)                                                             \
    WSCHAT_SERVER_INSTANTIATIONS(how, ::ws::asio_tls)                                              \
    how class ::chat::room<::ws::asio_tls, ::chat::text_policy>;                                   \
    how class ::chat::room<::ws::asio_tls, ::chat::binary_policy>;

#ifdef WSCHAT_SEPARATE_COMPILATION_TLS
WSCHAT_TLS_INSTANTIATIONS(extern template)
#endif
