// wschat's compiled library (separate compilation): the server and the rooms over the shipped
// plain transports, instantiated once here instead of in every unit that uses them. Units
// built with WSCHAT_SEPARATE_COMPILATION see them declared `extern template` by the lists in
// <wschat/ws/detail/extern_templates.hpp> and <wschat/chat/detail/extern_templates.hpp>.
#include <wschat/wschat.hpp>

WSCHAT_SERVER_INSTANTIATIONS(template, ::ws::asio_tcp)
WSCHAT_SERVER_INSTANTIATIONS(template, ::ws::asio_local)
WSCHAT_ROOM_INSTANTIATIONS(template)
