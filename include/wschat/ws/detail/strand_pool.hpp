// wschat — the strands a server's connections share: a fixed set, each connection bound to
// one of them for its whole life.
#pragma once

#include <wschat/detail/config.hpp>

#include <asio/strand.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// A connection's handlers must never run at the same time, which a strand guarantees;
/// the strand need not be its own. A strand of its own costs every connection an
/// allocation of about 80 bytes (Asio's strand state) and a cache line more to touch on
/// every write: at 10 000 idle connections, 0.8 MB for nothing.
///
/// Connections therefore share `size` strands, the n-th connection taking strand n mod
/// `size`. Handlers of two connections on one strand run one after the other instead of
/// side by side; with many more strands than threads, threads still find work on other
/// strands, as with Asio's own `io_context::strand`, which shares 193.
///
/// Not thread-safe: the server picks strands from its accepting handler only.
template <class Executor>
class strand_pool {
public:
    using strand_type = asio::strand<Executor>;
    static constexpr std::size_t size = 64;

    /// The strand of connection number `n`, made on `executor` the first time it is used.
    /// The reference stays valid as long as the pool.
    strand_type& pick(std::uint64_t n, const Executor& executor) {
        std::optional<strand_type>& slot = strands_[n % size];
        if (!slot)
            slot.emplace(executor);
        return *slot;
    }

    /// The strand `pick(n, …)` returned earlier. Safe from any thread: slots are only ever
    /// added, and the one read was made before whatever asks for it.
    strand_type& at(std::uint64_t n) noexcept { return *strands_[n % size]; }

private:
    std::array<std::optional<strand_type>, size> strands_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
