// iot_devices — simulated devices on ws::client that publish telemetry to examples/iot_gateway.
//
//     iot_devices --url ws://127.0.0.1:8082/ --devices 200 --interval-ms 1000
//
// Device N (1..--devices) is `PREFIX-000N` and connects to URL + device/PREFIX-000N; each
// sends a reading (temperature, humidity, battery, telemetry.hpp) every --interval-ms, the
// first at a random moment within the first interval so that they do not all speak at once.
// Each reconnects on its own after losing the gateway (ws::client's backoff with jitter),
// keeping its readings in the client's bounded offline queue meanwhile. Prints `all N devices
// connected` once each has been connected; with --readings R each stops after R readings and
// the program prints one line per device (its last reading) and exits 0 when all went out;
// otherwise it runs until SIGINT or SIGTERM and prints the same.
//
// Flags:
//   --url URL          the gateway (default ws://127.0.0.1:8080/)
//   --devices N        how many devices (default 10)
//   --prefix P         the devices' id prefix (default dev)
//   --interval-ms N    time between two readings of a device (default 1000)
//   --readings R       readings per device, then stop (default 0: until a signal)
#include "../common/cli.hpp"
#include "../iot_gateway/telemetry.hpp"

#include <wschat/ws/client.hpp>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

struct devices_options {
    std::string url = "ws://127.0.0.1:8080/";
    unsigned devices = 10;
    std::string prefix = "dev";
    std::chrono::milliseconds interval{1000};
    unsigned readings = 0;
};

/// The id of device `index`: PREFIX-0001.
std::string device_id(const std::string& prefix, unsigned index) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%04u", index);
    return prefix + '-' + digits;
}

/// A reading of device `index`, a function of its index and seq (in the wire's ranges).
telemetry::reading make_reading(unsigned index, std::uint32_t seq) {
    telemetry::reading r;
    r.seq = seq;
    r.centi_celsius = static_cast<std::int16_t>(1500 + (index * 37) % 1500 + (seq * 13) % 200);
    r.centi_percent = static_cast<std::uint16_t>(3000 + (index * 53) % 4000 + (seq * 7) % 300);
    r.millivolts = static_cast<std::uint16_t>(4200 - index % 500 - seq % 700);
    r.time_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    return r;
}

/// One device: a ws::client and the timer of its readings.
class device {
public:
    /// `on_connected` runs at its first open; `on_stopped` once its client has stopped.
    device(asio::io_context& io, unsigned index, const devices_options& options,
           std::function<void()> on_connected, std::function<void()> on_stopped)
        : index_(index), id_(device_id(options.prefix, index)), options_(options),
          client_(io, make_options(options, id_)), timer_(io) {
        client_.on_open([on_connected = std::move(on_connected)](const ws::client_open& o) {
            if (!o.reconnected)
                on_connected();
        });
        client_.on_close([this, on_stopped = std::move(on_stopped)](const ws::client_closed& c) {
            if (c.will_retry)
                return;
            if (!finished_)
                problem_ = "stopped: " + c.stop_reason + " (" + std::to_string(c.code) + " " +
                           c.reason + ")";
            timer_.cancel();
            on_stopped();
        });
    }

    /// Connects, and sends the first reading at a random moment of the first interval.
    void start(std::mt19937& random) {
        client_.connect();
        const auto first = std::uniform_int_distribution<std::chrono::milliseconds::rep>{
            0, options_.interval.count()}(random);
        wait(std::chrono::milliseconds{first});
    }

    /// Stops sending and closes (SIGINT, SIGTERM).
    void stop() {
        if (finished_)
            return;
        finished_ = true;
        timer_.cancel();
        client_.close(ws::close_code::going_away, "simulator stopping");
    }

    bool ok() const { return problem_.empty(); }

    /// The device's line: its last reading sent, in the units the dashboard shows.
    std::string summary() const {
        char values[128];
        std::snprintf(values, sizeof values, "temperature %.2f humidity %.2f battery %.3f",
                      last_.centi_celsius / 100.0, last_.centi_percent / 100.0,
                      last_.millivolts / 1000.0);
        return "device " + id_ + " readings " + std::to_string(sent_) + " last seq " +
               std::to_string(last_.seq) + ' ' + values + (ok() ? " ok" : " FAILED " + problem_);
    }

private:
    static ws::client_options make_options(const devices_options& options, const std::string& id) {
        ws::client_options opts;
        opts.url = options.url + (options.url.back() == '/' ? "" : "/") + "device/" + id;
        return opts;
    }

    void wait(std::chrono::milliseconds delay) {
        timer_.expires_after(delay);
        timer_.async_wait([this](std::error_code ec) {
            if (!ec)
                due();
        });
    }

    void due() {
        if (finished_)
            return;
        if (options_.readings && sent_ == options_.readings) {
            // The last reading has left the offline queue only once the connection is open.
            if (!client_.is_open())
                return wait(std::chrono::milliseconds{50});
            finished_ = true;
            client_.close(ws::close_code::normal, "done");
            return;
        }
        const telemetry::reading r = make_reading(index_, last_.seq + 1);
        const ws::send_status status = client_.send_binary(telemetry::encode(r));
        if (ws::accepted(status)) {
            last_ = r;
            ++sent_;
        } else if (problem_.empty()) {
            problem_ = "reading " + std::to_string(r.seq) + " not sent";
        }
        wait(options_.readings && sent_ == options_.readings ? std::chrono::milliseconds{0}
                                                             : options_.interval);
    }

    const unsigned index_;
    const std::string id_;
    const devices_options& options_;
    ws::client<> client_;
    asio::steady_timer timer_;
    telemetry::reading last_;
    unsigned sent_ = 0;
    bool finished_ = false;
    std::string problem_;
};

} // namespace

int main(int argc, char** argv) try {
    devices_options options;
    const examples::program about{
        "simulated devices that publish telemetry to an iot_gateway",
        {{"--url", "URL", "the gateway (default " + options.url + ")",
          [&options](const std::string& value) {
              options.url = value;
              return value.empty() ? std::string{"expected a ws:// URL"} : std::string{};
          }},
         {"--devices", "N", "how many devices (default " + std::to_string(options.devices) + ")",
          [&options](const std::string& value) {
              std::string problem = examples::store_number(options.devices, 100000)(value);
              if (problem.empty() && options.devices == 0)
                  problem = "needs at least 1";
              return problem;
          }},
         {"--prefix", "P", "the devices' id prefix (default " + options.prefix + ")",
          [&options](const std::string& value) {
              options.prefix = value;
              if (!telemetry::valid_id(value + "-00000"))
                  return "expected up to 58 of A-Z a-z 0-9 _ -, got '" + value + "'";
              return std::string{};
          }},
         {"--interval-ms", "N",
          "time between two readings of a device (default " +
              std::to_string(options.interval.count()) + ")",
          [&options](const std::string& value) {
              std::string problem = examples::store_milliseconds(options.interval)(value);
              if (problem.empty() && options.interval.count() == 0)
                  problem = "needs at least 1";
              return problem;
          }},
         {"--readings", "R", "readings per device, then stop (default 0: until a signal)",
          examples::store_number(options.readings, 1000000000)}}};
    if (const auto exit_status = examples::parse_client_options(argc, argv, about))
        return *exit_status;

    asio::io_context io;
    asio::signal_set signals{io, SIGINT, SIGTERM};
    std::vector<std::unique_ptr<device>> devices;
    unsigned connected = 0;
    unsigned running = options.devices;
    for (unsigned i = 1; i <= options.devices; ++i)
        devices.push_back(std::make_unique<device>(
            io, i, options,
            [&] {
                if (++connected == options.devices)
                    std::cout << "all " << connected << " devices connected" << std::endl;
            },
            [&] {
                if (--running == 0)
                    signals.cancel(); // the last work: io.run() returns
            }));
    signals.async_wait([&devices](std::error_code ec, int) {
        if (!ec)
            for (auto& d : devices)
                d->stop();
    });
    std::mt19937 random{std::random_device{}()};
    for (auto& d : devices)
        d->start(random);
    io.run();

    unsigned failed = 0;
    for (const auto& d : devices) {
        std::cout << d->summary() << '\n';
        failed += d->ok() ? 0 : 1;
    }
    std::cout << "devices " << devices.size() << ", failed " << failed << std::endl;
    return failed ? 1 : 0;
} catch (const std::exception& e) {
    std::cerr << "iot_devices: " << e.what() << '\n';
    return 1;
}
