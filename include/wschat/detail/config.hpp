// wschat — configuration macros shared by every header.
#pragma once

// Included before the Asio headers wschat includes: Asio decides how it allocates handler
// memory (aligned_alloc and free, or operator new and delete) from macros the standard
// library's configuration defines. A translation unit whose first include was a wschat
// header would otherwise see Asio's configuration before the standard library's and pick
// the other pair, and memory allocated by one unit's inline code could be freed by
// another's (an ODR violation AddressSanitizer reports as alloc-dealloc-mismatch).
#include <cstddef>

/// \file
/// The version of wschat and the macros that put every name in its versioned namespace.
///
/// Every wschat header includes this one first; an application may test the version:
///
/// ```cpp
/// #if WSCHAT_VERSION_MAJOR == 0 && WSCHAT_VERSION_MINOR < 2
/// // ... code for wschat 0.1
/// #endif
/// ```

/// The major part of wschat's version. While it is 0, a new minor version may change the
/// API (the installed CMake package accepts the same minor version only).
#define WSCHAT_VERSION_MAJOR 0
/// The minor part of wschat's version.
#define WSCHAT_VERSION_MINOR 1
/// The patch part of wschat's version.
#define WSCHAT_VERSION_PATCH 0

/// The inline namespace that holds every wschat name: `ws::server` is really
/// `ws::v0_1::server`. Two copies of wschat of different versions linked into one program
/// then have different names, instead of silently violating the ODR. User code never
/// spells it.
#define WSCHAT_ABI_NAMESPACE v0_1

/// Opens namespace `ns` and the versioned inline namespace inside it; every wschat header
/// uses it (`tools/check_hygiene.py` refuses a plain `namespace ws {`). For wschat's own
/// headers, not for applications.
#define WSCHAT_BEGIN_NAMESPACE(ns)                                                                 \
    namespace ns {                                                                                 \
    inline namespace WSCHAT_ABI_NAMESPACE {
/// Closes what WSCHAT_BEGIN_NAMESPACE opened.
#define WSCHAT_END_NAMESPACE                                                                       \
    }                                                                                              \
    }
