// wschat — configuration macros shared by every header.
#pragma once

// Included before the Asio headers wschat includes: Asio decides how it allocates handler
// memory (aligned_alloc and free, or operator new and delete) from macros the standard
// library's configuration defines. A translation unit whose first include was a wschat
// header would otherwise see Asio's configuration before the standard library's and pick
// the other pair, and memory allocated by one unit's inline code could be freed by
// another's (an ODR violation AddressSanitizer reports as alloc-dealloc-mismatch).
#include <cstddef>

#define WSCHAT_VERSION_MAJOR 0
#define WSCHAT_VERSION_MINOR 1
#define WSCHAT_VERSION_PATCH 0

// Every name lives in a versioned inline namespace, so two copies of wschat of
// different versions linked into one program cannot silently violate the ODR.
#define WSCHAT_ABI_NAMESPACE v0_1

#define WSCHAT_BEGIN_NAMESPACE(ns)                                                                 \
    namespace ns {                                                                                 \
    inline namespace WSCHAT_ABI_NAMESPACE {
#define WSCHAT_END_NAMESPACE                                                                       \
    }                                                                                              \
    }
