// wschat — configuration macros shared by every header.
#pragma once

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
