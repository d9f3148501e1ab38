// wschat — where each member sits in a room's member list, found by its connection's
// address in a table that holds only positions.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// Finds a member's position in a room's member list by its key (the connection's
/// address). An open-addressing table, at most half full, of 4-byte positions: the key of
/// an entry is read back from the list through `key_of(position)`, which every call that
/// looks at entries takes. A node-based map costs about 40 bytes per member, which is more
/// than a tenth of what an idle connection costs the server; this costs 8 to 16.
///
/// The list is the caller's; the index only follows it, so every call must see the list
/// as it was when the entries it reads were made (see `erase` and `relocate`).
class member_index {
public:
    using position = std::uint32_t;
    static constexpr position absent = std::numeric_limits<position>::max();

    /// The position of `key`, or `absent`.
    template <class KeyOf>
    position find(const void* key, KeyOf key_of) const {
        if (slots_.empty())
            return absent;
        for (std::size_t i = home(key);; i = next(i))
            if (slots_[i] == absent || key_of(slots_[i]) == key)
                return slots_[i];
    }

    /// Adds `key`, not in the index yet, which the list now holds at `at`.
    template <class KeyOf>
    void insert(const void* key, position at, KeyOf key_of) {
        if (2 * (entries_ + 1) > slots_.size())
            rebuild(std::max(min_slots, 2 * slots_.size()), key_of);
        place(key, at);
        ++entries_;
    }

    /// Removes `key`, which must be in the index, before the list loses it.
    template <class KeyOf>
    void erase(const void* key, KeyOf key_of) {
        std::size_t hole = slot_of(key, key_of);
        // Backward-shift deletion: later entries of the same probe run move into the hole
        // when their home is not between the hole and them, so no search stops early.
        for (std::size_t i = next(hole); slots_[i] != absent; i = next(i)) {
            const std::size_t wanted = home(key_of(slots_[i]));
            if (distance(wanted, i) >= distance(hole, i)) {
                slots_[hole] = slots_[i];
                hole = i;
            }
        }
        slots_[hole] = absent;
        --entries_;
        if (slots_.size() > min_slots && 8 * entries_ < slots_.size())
            rebuild(slots_.size() / 2, key_of); // a room that emptied gives its table back
    }

    /// `key`, which must be in the index, moves to position `to`: called before the list
    /// moves it.
    template <class KeyOf>
    void relocate(const void* key, position to, KeyOf key_of) {
        slots_[slot_of(key, key_of)] = to;
    }

    std::size_t size() const noexcept { return entries_; }
    /// Entries the table has room for (twice the most it holds before it grows).
    std::size_t slot_count() const noexcept { return slots_.size(); }

private:
    static constexpr std::size_t min_slots = 16;

    std::size_t mask() const noexcept { return slots_.size() - 1; }
    std::size_t next(std::size_t i) const noexcept { return (i + 1) & mask(); }
    std::size_t distance(std::size_t from, std::size_t to) const noexcept {
        return (to - from) & mask();
    }
    /// Where the search for `key` begins: Fibonacci hashing of the address, whose low bits
    /// are always zero (alignment) and whose high bits rarely differ.
    std::size_t home(const void* key) const noexcept {
        const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key));
        return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15ull) >> 32) & mask();
    }

    template <class KeyOf>
    std::size_t slot_of(const void* key, KeyOf key_of) const {
        std::size_t i = home(key);
        while (key_of(slots_[i]) != key)
            i = next(i);
        return i;
    }

    void place(const void* key, position at) {
        std::size_t i = home(key);
        while (slots_[i] != absent)
            i = next(i);
        slots_[i] = at;
    }

    template <class KeyOf>
    void rebuild(std::size_t slots, KeyOf key_of) {
        std::vector<position> old(slots, absent);
        old.swap(slots_);
        for (const position at : old)
            if (at != absent)
                place(key_of(at), at);
    }

    std::vector<position> slots_;
    std::size_t entries_ = 0;
};

} // namespace detail

WSCHAT_END_NAMESPACE
