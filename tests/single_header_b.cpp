// Second translation unit of the single-header test: see single_header_a.cpp.
#include <wschat/wschat.hpp>

#include <cstdio>
#include <system_error>

void single_header_a_snippet();
const std::error_category* single_header_a_category();

int main() {
    single_header_a_snippet();

    const std::error_category* a = single_header_a_category();
    const std::error_category* b = &ws::make_error_code(ws::error::invalid_utf8).category();
    if (a != b) {
        std::fprintf(stderr, "single header: the two TUs see different error categories\n");
        return 1;
    }
    std::printf("single header: 2 translation units linked into one program\n");
    return 0;
}
