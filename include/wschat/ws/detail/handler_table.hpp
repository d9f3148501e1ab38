// wschat — the server's handlers, replaceable while the io_context runs.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/spin_lock.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// Names a group of handlers added together (`server::add_handlers`), so that they can be
/// removed together (`server::remove_handlers`). Never 0 for a group that was added.
using handler_id = std::uint64_t;

namespace detail {

/// The handlers of one server, as an immutable table that a change replaces whole (copy on
/// write). Readers take the current table with one reference count and call it without any
/// lock held, so a handler may add or remove handlers, and handlers may change from any
/// thread while connections are being served. A handler already running on another thread
/// when its group is removed finishes that call; what it refers to must tolerate that (a
/// room's handlers hold the room weakly).
template <class Group, class Deciders>
class handler_table {
public:
    /// One snapshot: the groups in the order added, and the single deciders.
    struct table {
        std::vector<std::pair<handler_id, Group>> groups;
        Deciders deciders;
    };
    using snapshot = std::shared_ptr<const table>;

    /// The table as it is now; empty after `clear()`.
    snapshot current() const {
        std::lock_guard<spin_lock> lock{lock_};
        return table_;
    }

    handler_id add(Group group) {
        handler_id id = 0;
        change([&](table& next) {
            id = ++last_id_;
            next.groups.emplace_back(id, std::move(group));
        });
        return id;
    }

    /// Removes the group `id`; false when there is none (removed already, or never added).
    bool remove(handler_id id) {
        bool found = false;
        change([&](table& next) {
            const auto at = std::find_if(next.groups.begin(), next.groups.end(),
                                         [id](const auto& entry) { return entry.first == id; });
            found = at != next.groups.end();
            if (found)
                next.groups.erase(at);
        });
        return found;
    }

    /// Replaces the deciders through `edit(Deciders&)`.
    template <class Edit>
    void set_deciders(Edit&& edit) {
        change([&](table& next) { edit(next.deciders); });
    }

    /// Drops every handler for good (the server object is gone, and with it possibly what
    /// the handlers refer to); later changes are ignored.
    void clear() {
        std::lock_guard<std::mutex> writing{writer_};
        cleared_ = true;
        publish(std::make_shared<const table>());
    }

private:
    /// Writers are serialised by a mutex and build the next table outside the readers'
    /// lock, which is held only to swap one pointer.
    template <class Edit>
    void change(Edit&& edit) {
        std::lock_guard<std::mutex> writing{writer_};
        if (cleared_)
            return;
        auto next = std::make_shared<table>(*current());
        edit(*next);
        publish(std::move(next));
    }

    void publish(snapshot next) {
        std::lock_guard<spin_lock> lock{lock_};
        table_.swap(next); // the old table is released after the lock
    }

    mutable spin_lock lock_; // of table_
    snapshot table_ = std::make_shared<const table>();
    std::mutex writer_; // of last_id_ and cleared_, and orders the changes
    handler_id last_id_ = 0;
    bool cleared_ = false;
};

} // namespace detail

WSCHAT_END_NAMESPACE
