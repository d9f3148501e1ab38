// iot_gateway's routing: a room per device that its dashboards subscribe to, the device's
// latest reading, and the text commands of a dashboard.
#pragma once

#include "telemetry.hpp"

#include <wschat/wschat.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace iot {

struct gateway_options {
    /// Devices the gateway knows at most (each costs its room and its latest reading, a few
    /// hundred bytes, kept after it disconnects so a dashboard still sees its last values).
    std::size_t max_devices = 10000;
    /// Devices one dashboard may subscribe to.
    std::size_t max_subscriptions = 256;
};

/// Devices by id, each with the room of the dashboards that subscribed to it.
///
/// A device connection (path /device/ID) publishes readings; each becomes one frame, kept as
/// the device's latest and sent to every subscriber. A newer connection of the same device
/// replaces the older one (closed with 1008). A dashboard (path /dashboard) sends text lines:
/// `subscribe ID...` and `unsubscribe ID...`; it gets the device's status and latest reading
/// at once, then every reading, and an answer line per command (`subscribed ID...`,
/// `unsubscribed ID...`, `error: ...`).
///
/// Thread safety: any member from any thread; a connection's own calls come from its strand.
template <class Transport>
class gateway {
public:
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;

    explicit gateway(gateway_options options) : options_(options) {}

    struct device;

    /// What a device connection keeps (its user_data).
    struct device_session {
        device* at;
        std::uint32_t last_seq;
    };
    /// What a dashboard connection keeps (its user_data).
    struct dashboard_session {
        std::set<device*> devices;
    };

    struct device {
        explicit device(std::string name) : id(std::move(name)) {}
        const std::string id;
        mutable std::mutex mutex;
        chat::room<Transport, chat::binary_policy> subscribers;
        std::weak_ptr<ws::connection<Transport>> connection; // the current one
        ws::shared_frame latest;                             // as dashboards receive it
        bool online = false;
        std::uint32_t seq = 0;
        std::uint64_t readings = 0;
    };

    /// Whether a device connection for `id` may be accepted (known, or room for one more).
    bool may_connect(const std::string& id) const {
        std::lock_guard<std::mutex> lock{mutex_};
        return devices_.count(id) || devices_.size() < options_.max_devices;
    }

    // --- devices ---------------------------------------------------------------------------

    /// Device `id` connected as `conn`: it speaks for the device from now on.
    void device_opened(const std::string& id, const connection_ptr& conn) {
        device* d = find_or_make(id);
        if (!d)
            return conn->close(ws::close_code::try_again_later,
                               "the gateway knows " + std::to_string(options_.max_devices) +
                                   " devices already");
        std::lock_guard<std::mutex> lock{d->mutex};
        if (auto older = d->connection.lock())
            older->close(ws::close_code::policy_violation,
                         "replaced by a newer connection of " + id);
        d->connection = conn;
        d->online = true;
        d->subscribers.broadcast(
            ws::make_frame(ws::opcode::binary, telemetry::dashboard_status(id, true)));
        conn->user_data() = device_session{d, 0};
    }

    /// A reading from a device: checked, kept as its latest and sent to its subscribers.
    void device_message(const connection_ptr& conn, device_session& session,
                        const ws::message& msg) {
        if (!msg.is_binary())
            return conn->close(ws::close_code::unsupported_data, "a device sends binary readings");
        std::string why;
        const auto r = telemetry::decode(msg.data, why);
        if (!r)
            return conn->close(ws::close_code::invalid_payload, why);
        if (r->seq <= session.last_seq)
            return conn->close(ws::close_code::invalid_payload,
                               "reading seq " + std::to_string(r->seq) + " after " +
                                   std::to_string(session.last_seq) + ": seq must grow");
        session.last_seq = r->seq;
        device& d = *session.at;
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch());
        ws::shared_frame frame = ws::make_frame(
            ws::opcode::binary,
            telemetry::dashboard_reading(d.id, msg.data, static_cast<std::uint64_t>(now.count())));
        std::lock_guard<std::mutex> lock{d.mutex};
        d.latest = frame;
        d.seq = r->seq;
        ++d.readings;
        d.subscribers.broadcast(frame);
    }

    /// A device's connection ended: its subscribers see it offline (unless it was replaced).
    void device_closed(const connection_ptr& conn, device_session& session) {
        device& d = *session.at;
        std::lock_guard<std::mutex> lock{d.mutex};
        if (d.connection.lock() != conn)
            return; // replaced: the newer connection speaks for the device
        d.connection.reset();
        d.online = false;
        d.subscribers.broadcast(
            ws::make_frame(ws::opcode::binary, telemetry::dashboard_status(d.id, false)));
    }

    // --- dashboards ------------------------------------------------------------------------

    /// A dashboard connected: subscribed to nothing yet.
    void dashboard_opened(const connection_ptr& conn) { conn->user_data() = dashboard_session{}; }

    /// A dashboard's command line: `subscribe ID...` or `unsubscribe ID...`.
    void dashboard_message(const connection_ptr& conn, dashboard_session& session,
                           const ws::message& msg) {
        if (!msg.is_text())
            return conn->close(ws::close_code::unsupported_data,
                               "a dashboard sends text: subscribe ID... or unsubscribe ID...");
        std::istringstream words{std::string{msg.data}};
        std::string command;
        words >> command;
        const bool subscribe = command == "subscribe";
        if (!subscribe && command != "unsubscribe")
            return conn->send_text("error: unknown command '" + command.substr(0, 32) +
                                   "': subscribe ID... or unsubscribe ID...");
        std::string done = subscribe ? "subscribed" : "unsubscribed";
        std::string problems;
        for (std::string id; words >> id;) {
            device* d = telemetry::valid_id(id) ? find(id) : nullptr;
            if (!d) {
                problems += " unknown device '" + id.substr(0, telemetry::max_id_size) + "';";
                continue;
            }
            if (subscribe) {
                if (session.devices.count(d)) {
                    done += ' ' + id; // already: nothing sent again
                    continue;
                }
                if (session.devices.size() >= options_.max_subscriptions) {
                    problems += " at most " + std::to_string(options_.max_subscriptions) +
                                " subscriptions;";
                    break;
                }
                session.devices.insert(d);
                // Under the device's lock: the latest reading, then every later one, none
                // twice and none missed.
                std::lock_guard<std::mutex> lock{d->mutex};
                conn->send_binary(telemetry::dashboard_status(d->id, d->online));
                if (d->latest)
                    conn->send(d->latest);
                d->subscribers.join(conn);
            } else {
                if (!session.devices.erase(d))
                    continue;
                d->subscribers.leave(conn);
            }
            done += ' ' + id;
        }
        conn->send_text(done);
        if (!problems.empty())
            conn->send_text("error:" + problems);
    }

    /// A dashboard left: it leaves every device's room.
    void dashboard_closed(const connection_ptr& conn, dashboard_session& session) {
        for (device* d : session.devices)
            d->subscribers.leave(conn);
        session.devices.clear();
    }

    /// Every device as JSON, for GET /devices: `{"devices":[{"id":..,"online":..,"seq":..,
    /// "readings":..},...]}`, by id.
    std::string devices_json() const {
        std::lock_guard<std::mutex> lock{mutex_};
        std::string out = "{\"devices\":[";
        bool first = true;
        for (const auto& [id, d] : devices_) {
            std::lock_guard<std::mutex> device_lock{d->mutex};
            out += first ? "" : ",";
            first = false;
            // Ids are [A-Za-z0-9_-] only (telemetry::valid_id): nothing to escape.
            out += "{\"id\":\"" + id + "\",\"online\":" + (d->online ? "true" : "false") +
                   ",\"seq\":" + std::to_string(d->seq) +
                   ",\"readings\":" + std::to_string(d->readings) + "}";
        }
        return out + "]}";
    }

private:
    device* find(const std::string& id) const {
        std::lock_guard<std::mutex> lock{mutex_};
        const auto at = devices_.find(id);
        return at == devices_.end() ? nullptr : at->second.get();
    }

    device* find_or_make(const std::string& id) {
        std::lock_guard<std::mutex> lock{mutex_};
        auto at = devices_.find(id);
        if (at != devices_.end())
            return at->second.get();
        if (devices_.size() >= options_.max_devices)
            return nullptr;
        return devices_.emplace(id, std::make_unique<device>(id)).first->second.get();
    }

    const gateway_options options_;
    mutable std::mutex mutex_;
    // Never erased (bounded by max_devices), so the device pointers sessions hold stay valid.
    std::map<std::string, std::unique_ptr<device>> devices_;
};

} // namespace iot
