// wschat — the choice of a connection's I/O back end, made once from its stream's type.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/io/plain_socket.hpp>
#include <wschat/ws/detail/io/socket_io.hpp>
#include <wschat/ws/detail/io/stream_io.hpp>

#include <type_traits>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The I/O back end of `Connection` over `Stream`: socket_io for plain sockets (see
/// is_plain_socket), stream_io for every other stream.
template <class Connection, class Stream>
using io_backend = std::conditional_t<is_plain_socket<Stream>::value, socket_io<Connection>,
                                      stream_io<Connection>>;

} // namespace detail

WSCHAT_END_NAMESPACE
