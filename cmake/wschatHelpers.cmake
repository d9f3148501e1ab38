# Helpers shared by wschat's own targets (tests, examples, bench). Never applied to
# wschat::wschat itself: a consumer's flags are the consumer's business.

# Warnings (-Wall -Wextra -Wpedantic, -Werror with WSCHAT_WERROR), strict C++17 without
# extensions, and ASIO_NO_DEPRECATED with WSCHAT_ASIO_NO_DEPRECATED.
function(wschat_target_defaults target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(WSCHAT_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(WSCHAT_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  endif()
  if(WSCHAT_ASIO_NO_DEPRECATED)
    target_compile_definitions(${target} PRIVATE ASIO_NO_DEPRECATED)
  endif()
  set_target_properties(${target} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
endfunction()

# Links wschat::tls into `target` when one of `sources` includes <wschat/ws/tls.hpp>.
# Returns FALSE in `out_ok` when TLS is needed but OpenSSL was not found.
function(wschat_link_tls_if_needed target out_ok)
  set(ok TRUE)
  foreach(src IN LISTS ARGN)
    file(READ "${src}" text)
    if(text MATCHES "wschat/ws/(client_)?tls\\.hpp")
      if(TARGET wschat::tls)
        target_link_libraries(${target} PRIVATE wschat::tls)
      else()
        set(ok FALSE)
      endif()
      break()
    endif()
  endforeach()
  set(${out_ok} ${ok} PARENT_SCOPE)
endfunction()

# TRUE in `out` when `file` defines main().
function(wschat_has_main file out)
  file(READ "${file}" text)
  if(text MATCHES "int[ \t\r\n]+main[ \t\r\n]*\\(")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()
