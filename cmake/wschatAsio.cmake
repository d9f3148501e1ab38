# Creates the imported INTERFACE target wschat::asio for standalone Asio.
#
# Debian's libasio-dev (and most distributions) ship Asio as bare headers with no CMake package
# and no pkg-config file, so we look for asio.hpp and wrap it. Used by the build tree and by the
# installed wschatConfig.cmake. Set ASIO_INCLUDE_DIR to point at another copy of Asio.
# Needs Threads::Threads (find_package(Threads) or find_dependency(Threads) first).
if(NOT TARGET wschat::asio)
  find_path(ASIO_INCLUDE_DIR asio.hpp DOC "Directory holding the standalone Asio headers (asio.hpp)")
  if(ASIO_INCLUDE_DIR)
    add_library(wschat::asio INTERFACE IMPORTED)
    set_target_properties(wschat::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${ASIO_INCLUDE_DIR}"
      INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE"
      INTERFACE_LINK_LIBRARIES "Threads::Threads")
  endif()
endif()
