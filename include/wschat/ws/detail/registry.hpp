// wschat — a server's registry: every connection not yet finished, the count of open ones and
// the per-address counts that the connection limits read, under one lock.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/options.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The connections of one server, from their acceptance until they finish. A vector rather
/// than a map, as a map's node would cost each idle connection about 50 bytes: each
/// connection keeps its slot (registry_entry), and the last one moves into a slot that
/// empties. Thread-safe: every member takes the registry's lock.
template <class Connection>
class connection_registry {
public:
    using connection_ptr = std::shared_ptr<Connection>;

    /// Registers a connection just accepted; false when a connection limit refuses it (the
    /// total, or its address's). A trusted proxy's connections are counted later, by the
    /// client address it forwards (count_forwarded).
    bool add(const connection_ptr& conn, const server_options& options) {
        std::lock_guard<std::mutex> lock{mutex_};
        bool admitted = connections_.size() < options.max_connections;
        if (!options.trusts_proxy(conn->remote_address()))
            admitted = count_address(*conn, options) && admitted;
        connection_access::entry(*conn).slot = static_cast<std::uint32_t>(connections_.size());
        connections_.push_back(conn);
        return admitted;
    }

    /// A connection through a trusted proxy has named its client: counts it under that
    /// address; false when the address is over its limit.
    bool count_forwarded(Connection& conn, const server_options& options) {
        std::lock_guard<std::mutex> lock{mutex_};
        return count_address(conn, options);
    }

    /// A connection has opened: true when it counts (false once the registry is detached,
    /// when no handler may run).
    bool opened() {
        std::lock_guard<std::mutex> lock{mutex_};
        if (detached_)
            return false;
        ++open_count_;
        return true;
    }

    /// Takes out a finished connection, which had opened or not (`was_open`).
    void remove(Connection& conn, bool was_open) {
        std::lock_guard<std::mutex> lock{mutex_};
        registry_entry& entry = connection_access::entry(conn);
        if (entry.slot + std::size_t{1} != connections_.size()) {
            connections_[entry.slot] = std::move(connections_.back());
            connection_access::entry(*connections_[entry.slot]).slot = entry.slot;
        }
        connections_.pop_back();
        if (entry.counted_per_address) {
            const auto from_address = per_address_.find(std::string{conn.remote_address()});
            if (--from_address->second == 0)
                per_address_.erase(from_address);
        }
        if (was_open)
            --open_count_;
    }

    /// Connections that opened and have not finished.
    std::size_t open_count() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return open_count_;
    }

    /// True when every connection has finished.
    bool empty() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return connections_.empty();
    }

    /// A copy of the registry, to act on without the lock.
    std::vector<connection_ptr> all() const {
        std::lock_guard<std::mutex> lock{mutex_};
        return connections_;
    }

    /// The server is gone: no connection counts as opened any more. Returns them all.
    std::vector<connection_ptr> detach() {
        std::lock_guard<std::mutex> lock{mutex_};
        detached_ = true;
        return connections_;
    }

    /// Calls `visit(conn)` for each connection under the lock, rather than over a copy: a
    /// copy would cost a pointer pair per connection. `visit` must not take the lock.
    template <class Visit>
    void for_each(Visit&& visit) {
        std::lock_guard<std::mutex> lock{mutex_};
        for (const connection_ptr& conn : connections_)
            visit(*conn);
    }

private:
    /// Counts `conn` under its remote address; false when that address already has its
    /// maximum. Called with the lock held.
    bool count_address(Connection& conn, const server_options& options) {
        connection_access::entry(conn).counted_per_address = true;
        return ++per_address_[std::string{conn.remote_address()}] <=
               options.max_connections_per_address;
    }

    mutable std::mutex mutex_;
    std::vector<connection_ptr> connections_; // each at its registry_entry's slot
    std::unordered_map<std::string, std::size_t> per_address_;
    std::size_t open_count_ = 0;
    bool detached_ = false;
};

} // namespace detail

WSCHAT_END_NAMESPACE
