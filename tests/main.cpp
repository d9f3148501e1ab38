// The one main() of wschat_tests: every other tests/*.cpp holds TEST_CASEs only.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
