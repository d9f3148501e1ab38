// loadgen — a latency histogram: constant memory, about 1 % precision, any number of samples.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace loadgen {

/// Log-linear buckets over nanoseconds: values below 2^sub_bits are exact, above that each
/// power of two is split into 2^(sub_bits-1) buckets, so a percentile is off by < 1 %.
class histogram {
public:
    void record(std::uint64_t ns) noexcept {
        ++buckets_[index(ns)];
        ++count_;
        if (ns > max_)
            max_ = ns;
    }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }

    /// The value at quantile `q` (0..1) of `population` values, of which count() were
    /// recorded and the rest never arrived (they count as infinitely late): the upper bound of
    /// the bucket holding it, or nullopt when that value is one that never arrived.
    std::optional<std::uint64_t> quantile(double q, std::uint64_t population) const noexcept {
        if (population < count_)
            population = count_;
        if (population == 0)
            return std::nullopt;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(population - 1)) + 1;
        if (rank > count_)
            return std::nullopt;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank)
                return upper_bound(i) < max_ ? upper_bound(i) : max_;
        }
        return max_;
    }

private:
    static constexpr unsigned sub_bits = 8;
    static constexpr std::size_t half = std::size_t{1} << (sub_bits - 1);
    static constexpr std::size_t bucket_count = (64 - sub_bits + 2) * half;

    static std::size_t index(std::uint64_t v) noexcept {
        if (v < (std::uint64_t{1} << sub_bits))
            return static_cast<std::size_t>(v);
        const unsigned top = 63U - static_cast<unsigned>(__builtin_clzll(v)); // >= sub_bits
        const unsigned shift = top - (sub_bits - 1);
        // (v >> shift) is in [half, 2 * half): the bucket within this power of two.
        return (shift + 1) * half + static_cast<std::size_t>(v >> shift) - half;
    }

    static std::uint64_t upper_bound(std::size_t i) noexcept {
        if (i < 2 * half)
            return i;
        const std::size_t shift = i / half - 1;
        const std::uint64_t mantissa = i % half + half;
        return ((mantissa + 1) << shift) - 1;
    }

    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace loadgen
