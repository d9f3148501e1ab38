// loadgen — the clock, the server address, and the one JSON line each run prints.
#pragma once

#include <arpa/inet.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <unistd.h>

namespace loadgen {

/// steady_clock in nanoseconds: CLOCK_MONOTONIC, the same clock in every process, so a
/// stamp written by one connection is comparable where another receives it.
inline std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// CPU seconds (user + system) this process has used: a loadgen near 1.0 per second of
/// wall time is the bottleneck, one well below it is not.
inline double cpu_seconds() noexcept {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// CPU seconds (user + system, all threads) process `pid` has used, from /proc/PID/stat;
/// negative when it cannot be read.
inline double process_cpu_seconds(long pid) {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr)
        return -1;
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // Fields 14 and 15 (utime, stime) count from after the ")" that ends the command name.
    const char* at = std::strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (at == nullptr || std::sscanf(at + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                     &utime, &stime) != 2)
        return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// The CPU seconds of this process and of the server (its pid, when given) at the two edges
/// of a run's measured window, each taken the first time the run passes that edge.
class cpu_window {
public:
    explicit cpu_window(long server_pid) : server_pid_(server_pid) {}

    /// At time `now`, with the window [start, end): takes the readings now due.
    void note(std::uint64_t now, std::uint64_t start, std::uint64_t end) {
        if (now >= start && loadgen_at_start_ < 0)
            read(loadgen_at_start_, server_at_start_);
        if (now >= end && loadgen_at_end_ < 0)
            read(loadgen_at_end_, server_at_end_);
    }

    /// This process's share of a core over the window's `seconds`.
    double loadgen_share(double seconds) const {
        return (loadgen_at_end_ - loadgen_at_start_) / seconds;
    }

    /// The server's share of a core over the window, when it could be read.
    std::optional<double> server_share(double seconds) const {
        if (server_pid_ <= 0 || server_at_start_ < 0 || server_at_end_ < 0)
            return std::nullopt;
        return (server_at_end_ - server_at_start_) / seconds;
    }

private:
    void read(double& loadgen, double& server) const {
        loadgen = cpu_seconds();
        if (server_pid_ > 0)
            server = process_cpu_seconds(server_pid_);
    }

    long server_pid_;
    double loadgen_at_start_ = -1;
    double loadgen_at_end_ = -1;
    double server_at_start_ = -1;
    double server_at_end_ = -1;
};

inline std::uint64_t to_ns(double seconds) noexcept {
    return static_cast<std::uint64_t>(seconds * 1e9);
}

/// Microseconds, or null (JSON) for a latency that never arrived.
inline std::optional<double> micros(std::optional<std::uint64_t> ns) {
    if (!ns)
        return std::nullopt;
    return static_cast<double>(*ns) / 1e3;
}

inline sockaddr_in ipv4_address(const std::string& host, std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
        throw std::invalid_argument("not an IPv4 address: " + host);
    return addr;
}

/// Builds one flat JSON object: {"key": value, ...}.
class json_line {
public:
    json_line& add(std::string_view key, std::string_view text) {
        return raw(key, '"' + std::string{text} + '"');
    }
    json_line& add(std::string_view key, const char* text) {
        return add(key, std::string_view{text});
    }
    json_line& add(std::string_view key, double value) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", value);
        return raw(key, buf);
    }
    json_line& add(std::string_view key, std::uint64_t value) {
        return raw(key, std::to_string(value));
    }
    json_line& add(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
    /// null when `value` is empty.
    json_line& add(std::string_view key, std::optional<double> value) {
        return value ? add(key, *value) : raw(key, "null");
    }

    /// Prints the object as one line on stdout and flushes (a driver reads it at once).
    void print() const {
        std::printf("{%s}\n", body_.c_str());
        std::fflush(stdout);
    }

private:
    json_line& raw(std::string_view key, const std::string& value) {
        if (!body_.empty())
            body_ += ", ";
        body_ += '"';
        body_ += key;
        body_ += "\": ";
        body_ += value;
        return *this;
    }
    std::string body_;
};

} // namespace loadgen
