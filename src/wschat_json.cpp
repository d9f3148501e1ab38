// wschat's compiled JSON library (separate compilation): the rooms of `json_policy` over the
// shipped plain transports, instantiated once here. Units built with
// WSCHAT_SEPARATE_COMPILATION_JSON see them declared `extern template` by
// <wschat/chat/detail/extern_templates_json.hpp>.
#include <wschat/chat/json_policy.hpp>
#include <wschat/wschat.hpp>

WSCHAT_JSON_ROOM_INSTANTIATIONS(template)
