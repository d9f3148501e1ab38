// iot_gateway — devices publish binary telemetry into a room of their own; dashboards (the page
// the gateway serves) subscribe to the devices they choose and show the latest values.
//
//     iot_gateway --unix /tmp/wschat-iot/gateway.sock   behind nginx: examples/nginx/
//                        iot_gateway.conf says how; then point examples/iot_devices at
//                        ws://127.0.0.1:8082/ and open http://127.0.0.1:8082/
//     iot_gateway --port 8082        the same over TCP, without nginx
//
// Paths: /device/ID (ID: 1-64 of A-Z a-z 0-9 _ -) for a device, /dashboard for a dashboard's
// WebSocket, / for the page, /devices for the known devices as JSON. The wire format is in
// telemetry.hpp; what a dashboard says is in gateway.hpp.
//
// Flags of its own, besides the common ones (--address, --port, --unix, --threads, ...):
//   --max-devices N        devices known at most (default 10000); another is refused with 503
//   --max-subscriptions N  devices one dashboard may subscribe to (default 256)
#include "../common/cli.hpp"
#include "gateway.hpp"
#include "page.hpp"

#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

/// Where an upgrade leads: a device (with its id) or a dashboard.
struct route {
    bool is_device = false;
    std::string device_id;
};

} // namespace

int main(int argc, char** argv) try {
    examples::listen_options opts;
    // Behind nginx every device arrives from the proxy's one address.
    opts.server.max_connections_per_address = opts.server.max_connections;
    // A reading is 24 bytes and a dashboard's command a line: no peer needs the gateway to
    // buffer a megabyte for it.
    opts.server.max_message_size = 4096;
    iot::gateway_options options;
    const examples::program about{
        "an IoT gateway: devices publish binary telemetry at /device/ID, dashboards subscribe "
        "at /dashboard, the page at /",
        {{"--max-devices", "N",
          "devices known at most (default " + std::to_string(options.max_devices) + ")",
          [&options](const std::string& value) {
              std::string problem = examples::store_number(options.max_devices, 10000000)(value);
              if (problem.empty() && options.max_devices == 0)
                  problem = "needs at least 1";
              return problem;
          }},
         {"--max-subscriptions", "N",
          "devices one dashboard may subscribe to (default " +
              std::to_string(options.max_subscriptions) + ")",
          examples::store_number(options.max_subscriptions, 1000000)}}};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;

    return examples::serve(opts, [&options](auto& server) {
        using transport = typename std::decay_t<decltype(server)>::transport_type;
        using gateway_type = iot::gateway<transport>;
        using connection_ptr = typename gateway_type::connection_ptr;
        auto gateway = std::make_unique<gateway_type>(options);

        server.on_upgrade(
            [gw = gateway.get()](const ws::http_request& request, ws::upgrade_decision& decision) {
                constexpr std::string_view device_prefix = "/device/";
                const std::string_view path = request.path();
                if (path == "/dashboard")
                    return void(decision.user_data = route{});
                if (path.substr(0, device_prefix.size()) != device_prefix)
                    return decision.reject(404, "connect to /device/ID or /dashboard");
                const std::string id{path.substr(device_prefix.size())};
                if (!telemetry::valid_id(id))
                    return decision.reject(404, "a device id is 1-64 of A-Z a-z 0-9 _ -");
                if (!gw->may_connect(id))
                    return decision.reject(503, "the gateway knows as many devices as it may");
                decision.user_data = route{true, id};
            });
        server.on_open([gw = gateway.get()](const connection_ptr& conn) {
            const route* to = conn->template user_data_as<route>();
            if (!to)
                return;
            if (to->is_device)
                gw->device_opened(std::string{to->device_id}, conn);
            else
                gw->dashboard_opened(conn);
        });
        server.on_message([gw = gateway.get()](const connection_ptr& conn, const ws::message& msg) {
            if (auto* device = conn->template user_data_as<typename gateway_type::device_session>())
                gw->device_message(conn, *device, msg);
            else if (auto* dashboard =
                         conn->template user_data_as<typename gateway_type::dashboard_session>())
                gw->dashboard_message(conn, *dashboard, msg);
        });
        server.on_close([gw = gateway.get()](const connection_ptr& conn, const ws::close_info&) {
            if (auto* device = conn->template user_data_as<typename gateway_type::device_session>())
                gw->device_closed(conn, *device);
            else if (auto* dashboard =
                         conn->template user_data_as<typename gateway_type::dashboard_session>())
                gw->dashboard_closed(conn, *dashboard);
        });
        server.on_http(
            [gw = gateway.get()](const ws::http_request& request, ws::http_response& response) {
                if (request.method != "GET") {
                    response = ws::make_error_response(405, "GET only");
                    return;
                }
                response.set_header("Cache-Control", "no-store");
                if (request.path() == "/devices") {
                    response.set_header("Content-Type", "application/json");
                    response.body = gw->devices_json();
                } else if (request.path() == "/" || request.path() == "/index.html") {
                    response.set_header("Content-Type", "text/html; charset=utf-8");
                    response.body = iot_gateway::page;
                } else {
                    response = ws::make_error_response(404, "not found");
                }
            });
        return gateway;
    });
} catch (const std::exception& e) {
    std::cerr << "iot_gateway: " << e.what() << '\n';
    return 1;
}
