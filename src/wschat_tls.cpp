// wschat's compiled TLS library (separate compilation): the server and the rooms over
// `asio_tls`, instantiated once here. Units built with WSCHAT_SEPARATE_COMPILATION_TLS see
// them declared `extern template` by <wschat/ws/detail/extern_templates_tls.hpp>.
#include <wschat/ws/tls.hpp>
#include <wschat/wschat.hpp>

WSCHAT_TLS_INSTANTIATIONS(template)
