// A room's member index on its own: positions found after joins and swap-removing leaves in
// random order, checked against a std::unordered_map doing the same, and a table that
// grows with the room and shrinks when it empties.
#include <wschat/chat/detail/member_index.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

using chat::detail::member_index;

/// A room's member list as the room keeps it (swap-remove on leave), with the index under
/// test and a reference map kept in step.
struct member_list {
    std::vector<const int*> members;
    member_index index;
    std::unordered_map<const int*, member_index::position> reference;

    auto key_of() const {
        return [this](member_index::position at) -> const void* { return members.at(at); };
    }

    void join(const int* key) {
        const auto at = static_cast<member_index::position>(members.size());
        members.push_back(key);
        index.insert(key, at, key_of());
        reference[key] = at;
    }

    void leave(const int* key) {
        const member_index::position at = index.find(key, key_of());
        REQUIRE(at == reference.at(key));
        index.erase(key, key_of());
        reference.erase(key);
        const auto last = static_cast<member_index::position>(members.size() - 1);
        if (at != last) {
            index.relocate(members[last], at, key_of());
            reference[members[last]] = at;
            members[at] = members[last];
        }
        members.pop_back();
    }

    /// Every member is found where it is, and keys that left are not found.
    void check(const std::vector<std::unique_ptr<int>>& everyone) const {
        REQUIRE(index.size() == members.size());
        for (const auto& person : everyone) {
            const auto found = reference.find(person.get());
            const member_index::position expected =
                found == reference.end() ? member_index::absent : found->second;
            REQUIRE(index.find(person.get(), key_of()) == expected);
        }
    }
};

} // namespace

TEST_CASE("a member index finds every member after random joins and swap-removing leaves",
          "[room][member_index]") {
    std::vector<std::unique_ptr<int>> everyone;
    for (int i = 0; i < 3000; ++i)
        everyone.push_back(std::make_unique<int>(i));
    std::mt19937 random{20261122};
    member_list room;
    std::vector<const int*> outside;
    for (const auto& person : everyone)
        outside.push_back(person.get());

    for (int step = 0; step < 20000; ++step) {
        const bool join = !outside.empty() && (room.members.empty() || random() % 3 != 0);
        if (join) {
            const std::size_t pick = random() % outside.size();
            room.join(outside[pick]);
            outside[pick] = outside.back();
            outside.pop_back();
        } else {
            const int* leaving = room.members[random() % room.members.size()];
            room.leave(leaving);
            outside.push_back(leaving);
        }
        if (step % 1000 == 0)
            room.check(everyone);
    }
    room.check(everyone);
}

TEST_CASE("a member index grows with its room and gives its table back when the room empties",
          "[room][member_index]") {
    std::vector<std::unique_ptr<int>> everyone;
    member_list room;
    for (int i = 0; i < 5000; ++i) {
        everyone.push_back(std::make_unique<int>(i));
        room.join(everyone.back().get());
    }
    room.check(everyone);
    for (auto& person : everyone) // leaving in join order moves the last member each time
        room.leave(person.get());
    room.check(everyone);
    REQUIRE(room.index.size() == 0);
    CHECK(room.index.slot_count() <= 16);
    // Joining again after the room emptied starts from a small table and still works.
    room.join(everyone.front().get());
    room.check(everyone);
}
